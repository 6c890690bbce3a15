package routes

import (
	"reflect"
	"testing"
)

func TestMerge(t *testing.T) {
	planA := Route{Dst: pfx("192.168.1.0/26"), Type: Blackhole, Protocol: 80}
	planB := Route{Dst: pfx("192.168.2.0/26"), Gw: addr("10.0.0.2"), Protocol: 80}
	bgpB := Route{Dst: pfx("192.168.2.0/26"), Gw: addr("10.0.0.9"), Protocol: 186}
	bgpX := Route{Dst: pfx("10.99.0.0/16"), Gw: addr("10.0.0.9"), Protocol: 186}
	otherX := Route{Dst: pfx("10.99.0.0/16"), Gw: addr("10.0.0.7"), Protocol: 186}
	unmasked := Route{Dst: pfx("10.98.0.1/16"), Gw: addr("10.0.0.9"), Protocol: 186}
	tests := []struct {
		name    string
		sources map[string][]Route
		want    []Route
	}{
		{"nothing", nil, nil},
		{"plan only", map[string][]Route{SourcePlan: {planB, planA}}, []Route{planA, planB}},
		{"plan wins over bgp", map[string][]Route{"bgp": {bgpB, bgpX}, SourcePlan: {planA, planB}}, []Route{bgpX, planA, planB}},
		{"sources in name order", map[string][]Route{"zeta": {otherX}, "bgp": {bgpX}}, []Route{bgpX}},
		{"destinations masked", map[string][]Route{"bgp": {unmasked}}, []Route{{Dst: pfx("10.98.0.0/16"), Gw: addr("10.0.0.9"), Protocol: 186}}},
		{"an emptied source", map[string][]Route{"bgp": nil, SourcePlan: {planA}}, []Route{planA}},
	}
	for _, tt := range tests {
		if got := Merge(tt.sources); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %v\nwant %v", tt.name, got, tt.want)
		}
	}
}
