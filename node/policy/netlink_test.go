package policy

import (
	"errors"
	"fmt"
	"testing"
)

func TestEncodeElements(t *testing.T) {
	v4 := Set{Name: "s4", Type: "ipv4_addr", Interval: true}
	v6 := Set{Name: "s6", Type: "ipv6_addr", Interval: true}
	np4 := Set{Name: "n4", Type: "ipv4_addr . inet_proto . inet_service"}
	np6 := Set{Name: "n6", Type: "ipv6_addr . inet_proto . inet_service"}
	tests := []struct {
		name string
		set  Set
		elem string
		want string // fmt of the keys, "error" when not encodable
	}{
		{"v4 address", v4, "10.0.0.1", "[10 0 0 1] [10 0 0 2]/end"},
		{"v4 prefix", v4, "10.0.0.0/24", "[10 0 0 0] [10 0 1 0]/end"},
		{"v4 prefix carries", v4, "10.0.255.0/24", "[10 0 255 0] [10 1 0 0]/end"},
		{"v4 odd prefix", v4, "192.168.0.0/23", "[192 168 0 0] [192 168 2 0]/end"},
		{"v4 top of space", v4, "255.255.255.255", "error"},
		{"v4 all", v4, "0.0.0.0/0", "error"},
		{"v6 in a v4 set", v4, "fd00::1", "error"},
		{"v6 address", v6, "fd00::1", "[253 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1] [253 0 0 0 0 0 0 0 0 0 0 0 0 0 0 2]/end"},
		{"v6 prefix", v6, "fd00:0:0:1::/64", "[253 0 0 0 0 0 0 1 0 0 0 0 0 0 0 0] [253 0 0 0 0 0 0 2 0 0 0 0 0 0 0 0]/end"},
		{"named port tcp", np4, "10.0.0.1 . tcp . 8080", "[10 0 0 1 6 0 0 0 31 144 0 0]"},
		{"named port by number", np4, "10.0.0.1 . 132 . 80", "[10 0 0 1 132 0 0 0 0 80 0 0]"},
		{"named port v6 udp", np6, "fd00::1 . udp . 53", "[253 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 17 0 0 0 0 53 0 0]"},
		{"named port garbage", np4, "10.0.0.1 . tcp", "error"},
		{"other type", Set{Name: "x", Type: "ifname"}, "eth0", "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, err := encodeElements(tt.set, []string{tt.elem})
			got := ""
			if err != nil {
				if !errors.Is(err, errUnencodable) {
					t.Errorf("error %v is not errUnencodable", err)
				}
				got = "error"
			}
			for i, e := range es {
				if i > 0 {
					got += " "
				}
				got += fmt.Sprint(e.Key)
				if e.IntervalEnd {
					got += "/end"
				}
			}
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestSetElementDiff(t *testing.T) {
	base := func() Desired {
		return Desired{
			Chains: []Chain{{Name: "c", Rules: []Rule{{Rule: "accept"}}}},
			Sets:   []Set{{Name: "a", Type: "ipv4_addr", Interval: true, Elements: []string{"10.0.0.1", "10.0.0.2"}}, {Name: "b", Type: "ipv4_addr", Interval: true}},
			Maps:   []Map{{Name: "m", Type: "ifname : verdict", Elements: []MapElement{{Key: `"x"`, Value: "goto c"}}}},
		}
	}
	tests := []struct {
		name   string
		change func(d *Desired)
		want   string
	}{
		{"nothing", func(d *Desired) {}, "[] true"},
		{"elements", func(d *Desired) { d.Sets[0].Elements = []string{"10.0.0.2", "10.0.0.3"} }, "[a -[10.0.0.1] +[10.0.0.3]] true"},
		{"chain rule", func(d *Desired) { d.Chains[0].Rules = []Rule{{Rule: "drop"}} }, "[] false"},
		{"map element", func(d *Desired) { d.Maps[0].Elements = nil }, "[] false"},
		{"set type", func(d *Desired) { d.Sets[1].Type = "ipv6_addr" }, "[] false"},
		{"set gone", func(d *Desired) { d.Sets = d.Sets[:1] }, "[] false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := base()
			tt.change(&d)
			ops, ok := setElementDiff(base(), d)
			got := "["
			for i, op := range ops {
				if i > 0 {
					got += " "
				}
				got += fmt.Sprintf("%s -%v +%v", op.set.Name, op.del, op.add)
			}
			got += fmt.Sprintf("] %v", ok)
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}
