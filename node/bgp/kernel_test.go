package bgp

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/opencalico/calicoctl/node/routes"
	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

func routeLines(rs []routes.Route) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.String())
	}
	return out
}

func learned(prefix, nh string) Learned {
	return Learned{Prefix: pfx(prefix), NextHop: addr(nh), Peer: addr(nh)}
}

func TestKernelRoutes(t *testing.T) {
	mode := func(ipip, vxlan resources.EncapMode) routes.PoolInfo {
		return routes.PoolInfo{IPIPMode: ipip, VXLANMode: vxlan}
	}
	poolAt := func(cidr string, p routes.PoolInfo) routes.PoolInfo { p.CIDR = pfx(cidr); return p }
	in := RouteInput{
		NodeIPv4: pfx("10.0.0.1/24"), NodeIPv6: pfx("fd00::1/64"),
		Pools: []routes.PoolInfo{
			poolAt("10.10.0.0/16", mode(resources.EncapNever, resources.EncapAlways)),
			poolAt("10.11.0.0/16", mode(resources.EncapNever, resources.EncapCrossSubnet)),
			poolAt("10.12.0.0/16", mode(resources.EncapAlways, resources.EncapNever)),
			poolAt("10.13.0.0/16", mode(resources.EncapCrossSubnet, "")),
			poolAt("10.14.0.0/16", mode("", "")),
			poolAt("fd00:14::/48", mode("", "")),
			{CIDR: pfx("10.15.0.0/16"), IPIPMode: resources.EncapAlways, Disabled: true},
		},
		LocalBlocks: []netip.Prefix{pfx("10.14.0.0/26")},
		Reject:      []netip.Prefix{pfx("10.96.0.0/12")},
	}
	cases := []struct {
		name    string
		learned []Learned
		want    []string
	}{
		{name: "VXLAN pool: the plan's job", learned: []Learned{learned("10.10.1.0/26", "10.0.0.2")}},
		{name: "VXLAN CrossSubnet pool too", learned: []Learned{learned("10.11.1.0/26", "10.0.0.2")}},
		{name: "IPIP Always, same subnet", learned: []Learned{learned("10.12.1.0/26", "10.0.0.2")},
			want: []string{"10.12.1.0/26 via 10.0.0.2 dev tunl0 proto 12 onlink"}},
		{name: "IPIP Always, other subnet", learned: []Learned{learned("10.12.2.0/26", "10.1.0.2")},
			want: []string{"10.12.2.0/26 via 10.1.0.2 dev tunl0 proto 12 onlink"}},
		{name: "IPIP CrossSubnet, same subnet: direct", learned: []Learned{learned("10.13.1.0/26", "10.0.0.2")},
			want: []string{"10.13.1.0/26 via 10.0.0.2 proto 12"}},
		{name: "IPIP CrossSubnet, other subnet: tunnel", learned: []Learned{learned("10.13.2.0/26", "10.1.0.2")},
			want: []string{"10.13.2.0/26 via 10.1.0.2 dev tunl0 proto 12 onlink"}},
		{name: "disabled IPIP pool still tunnels", learned: []Learned{learned("10.15.1.0/26", "10.0.0.2")},
			want: []string{"10.15.1.0/26 via 10.0.0.2 dev tunl0 proto 12 onlink"}},
		{name: "no encapsulation", learned: []Learned{learned("10.14.1.0/26", "10.0.0.2")},
			want: []string{"10.14.1.0/26 via 10.0.0.2 proto 12"}},
		{name: "no encapsulation, IPv6", learned: []Learned{learned("fd00:14:0:1::/64", "fd00::2")},
			want: []string{"fd00:14:0:1::/64 via fd00::2 proto 12"}},
		{name: "outside every pool: a ToR's default route", learned: []Learned{learned("0.0.0.0/0", "10.0.0.254")},
			want: []string{"0.0.0.0/0 via 10.0.0.254 proto 12"}},
		{name: "our own block: never", learned: []Learned{learned("10.14.0.0/26", "10.0.0.2")}},
		{name: "an address of our block used elsewhere: routed", learned: []Learned{learned("10.14.0.9/32", "10.0.0.3")},
			want: []string{"10.14.0.9/32 via 10.0.0.3 proto 12"}},
		{name: "a service range: never", learned: []Learned{learned("10.96.0.0/12", "10.0.0.2"), learned("10.96.5.0/24", "10.0.0.2")}},
		{name: "via ourselves: never", learned: []Learned{learned("10.50.0.0/16", "10.0.0.1"), learned("fd00:50::/64", "fd00::1")}},
		{name: "next hop of the other family: never", learned: []Learned{learned("10.60.0.0/16", "fd00::2")}},
		{name: "several next hops: the lowest", learned: []Learned{learned("10.70.0.0/16", "10.0.0.3"), learned("10.70.0.0/16", "10.0.0.2")},
			want: []string{"10.70.0.0/16 via 10.0.0.2 proto 12"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantLines(t, "routes", routeLines(KernelRoutes(tc.learned, in)), tc.want)
		})
	}
}

// TestKernelRoutesReachableBy: a peer's reachableBy host route is
// programmed and beats a learned route to the same address.
func TestKernelRoutesReachableBy(t *testing.T) {
	in := RouteInput{
		NodeIPv4: pfx("10.0.0.1/24"),
		Peers:    []Peer{{Name: "Global_192_0_2_1", Address: addr("192.0.2.1"), ReachableBy: addr("10.0.0.254")}, {Name: "x", Address: addr("192.0.2.2")}},
		Protocol: 99,
	}
	got := routeLines(KernelRoutes([]Learned{learned("192.0.2.1/32", "10.0.0.9"), learned("192.0.2.0/24", "10.0.0.9")}, in))
	wantLines(t, "routes", got, []string{
		"192.0.2.0/24 via 10.0.0.9 proto 99",
		"192.0.2.1/32 via 10.0.0.254 proto 99",
	})
}

// TestRouteInputFor: KernelRoutes' input comes from the planner's input
// (this node's subnets, pools, own live blocks) and result (rejects,
// peers).
func TestRouteInputFor(t *testing.T) {
	gone := block("10.244.0.128/26", "n1")
	gone.Deleted = true
	in := Input{
		NodeName: "n1",
		Nodes:    nodeMap(mkNode("n1", "10.0.0.1/24", v6("fd00::1/64")), mkNode("n2", "10.0.0.2/24")),
		Configs:  cfgMap(bgpCfg("default", resources.BGPConfigurationSpec{ServiceClusterIPs: []resources.ServiceIPBlock{{CIDR: "10.96.0.0/12"}}})),
		Pools:    []*resources.IPPool{pool("p", "10.244.0.0/16", func(s *resources.IPPoolSpec) { s.IPIPMode = resources.EncapCrossSubnet })},
		Blocks:   []*state.Block{block("10.244.0.0/26", "n1"), block("10.244.1.0/26", "n2"), gone},
	}
	d := Compute(in)
	ri := RouteInputFor(in, d)
	if ri.NodeIPv4 != pfx("10.0.0.1/24") || ri.NodeIPv6 != pfx("fd00::1/64") {
		t.Errorf("node subnets %v %v", ri.NodeIPv4, ri.NodeIPv6)
	}
	if !slices.Equal(ri.LocalBlocks, []netip.Prefix{pfx("10.244.0.0/26")}) {
		t.Errorf("local blocks %v", ri.LocalBlocks)
	}
	if len(ri.Pools) != 1 || ri.Pools[0].CIDR != pfx("10.244.0.0/16") || ri.Pools[0].IPIPMode != resources.EncapCrossSubnet {
		t.Errorf("pools %+v", ri.Pools)
	}
	if !slices.Equal(ri.Reject, []netip.Prefix{pfx("10.96.0.0/12")}) || len(ri.Peers) != 1 {
		t.Errorf("reject %v, %d peers", ri.Reject, len(ri.Peers))
	}
	got := routeLines(KernelRoutes([]Learned{learned("10.244.1.0/26", "10.0.0.2"), learned("10.244.0.0/26", "10.0.0.2")}, ri))
	wantLines(t, "routes", got, []string{"10.244.1.0/26 via 10.0.0.2 proto 12"})
}
