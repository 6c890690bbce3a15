package autodetect

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/node/config"
)

type fakeHost struct {
	ifaces  []Interface
	sources map[netip.Addr]netip.Addr
	names   map[string][]netip.Addr
}

func (f fakeHost) Interfaces() ([]Interface, error) { return f.ifaces, nil }
func (f fakeHost) SourceFor(_ context.Context, d netip.Addr) (netip.Addr, error) {
	if s, ok := f.sources[d]; ok {
		return s, nil
	}
	return netip.Addr{}, errors.New("network is unreachable")
}
func (f fakeHost) ResolveHost(_ context.Context, n string) ([]netip.Addr, error) {
	if a, ok := f.names[n]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

func pfx(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

var host = fakeHost{
	ifaces: []Interface{
		{Name: "lo", Up: true, Addrs: pfx("127.0.0.1/8", "::1/128")},
		{Name: "docker0", Up: true, Addrs: pfx("172.17.0.1/16")},
		{Name: "cali1234", Up: true, Addrs: pfx("169.254.1.1/32")},
		{Name: "eth0", Up: true, Addrs: pfx("fe80::1/64", "10.0.0.5/24", "fd00::5/64")},
		{Name: "eth1", Up: false, Addrs: pfx("10.1.0.5/24")},
		{Name: "ens5", Up: true, Addrs: pfx("192.168.7.9/16")},
		{Name: "vxlan.calico", Up: true, Addrs: pfx("10.244.0.1/32")},
	},
	sources: map[netip.Addr]netip.Addr{netip.MustParseAddr("8.8.8.8"): netip.MustParseAddr("192.168.7.9")},
	names:   map[string][]netip.Addr{"gw.example": {netip.MustParseAddr("8.8.8.8")}},
}

func TestDetect(t *testing.T) {
	k8s := func(context.Context) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("fd00::5"), netip.MustParseAddr("10.0.0.5")}, nil
	}
	for _, tc := range []struct {
		method string
		family int
		want   string
		iface  string
		err    string
	}{
		{method: "", family: 4, want: "10.0.0.5/24", iface: "eth0"},
		{method: "", family: 6, want: "fd00::5/64", iface: "eth0"},
		{method: "interface=ens.*", family: 4, want: "192.168.7.9/16", iface: "ens5"},
		{method: "interface=eth1", family: 4, err: "no IPv4 address found on the candidate interfaces eth1(down)"},
		{method: "skip-interface=eth.*", family: 4, want: "192.168.7.9/16", iface: "ens5"},
		{method: "cidr=192.168.0.0/16", family: 4, want: "192.168.7.9/16", iface: "ens5"},
		{method: "cidr=10.9.0.0/16", family: 4, err: "no local IPv4 address inside 10.9.0.0/16"},
		{method: "can-reach=8.8.8.8", family: 4, want: "192.168.7.9/16", iface: "ens5"},
		{method: "can-reach=gw.example", family: 4, want: "192.168.7.9/16", iface: "ens5"},
		{method: "can-reach=9.9.9.9", family: 4, err: "network is unreachable"},
		{method: "can-reach=nowhere.example", family: 4, err: `resolving "nowhere.example"`},
		{method: "kubernetes-internal-ip", family: 4, want: "10.0.0.5/24", iface: "eth0"},
		{method: "kubernetes-internal-ip", family: 6, want: "fd00::5/64", iface: "eth0"},
		{method: "interface=docker0", family: 4, err: "none left after exclusions"},
	} {
		t.Run(tc.method+"/v"+string(rune('0'+tc.family)), func(t *testing.T) {
			m, err := config.ParseMethod("IP_AUTODETECTION_METHOD", tc.method)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Detect(context.Background(), host, m, tc.family, k8s)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Addr.String() != tc.want || r.Interface != tc.iface || r.Reason == "" {
				t.Fatalf("got %+v, want %s on %s", r, tc.want, tc.iface)
			}
		})
	}
}

func TestKubernetesInternalIPWithoutKubernetes(t *testing.T) {
	_, err := Detect(context.Background(), host, config.Method{Kind: "kubernetes-internal-ip"}, 4, nil)
	if err == nil || !strings.Contains(err.Error(), "no Kubernetes node") {
		t.Fatalf("err = %v", err)
	}
}

// The real host: loopback is always there and always excluded, and
// can-reach to 127.0.0.1 resolves to lo's address through the kernel.
func TestSystemHost(t *testing.T) {
	ifs, err := System{}.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var lo bool
	for _, i := range ifs {
		if i.Name == "lo" {
			lo = true
		}
	}
	if !lo {
		if _, err := os.Stat("/proc/net/dev"); err == nil {
			t.Fatalf("no lo in %v", ifs)
		}
	}
	src, err := System{}.SourceFor(context.Background(), netip.MustParseAddr("127.0.0.1"))
	if err != nil || src != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("SourceFor(127.0.0.1) = %v, %v", src, err)
	}
}
