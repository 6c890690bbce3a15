package routes

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/opencalico/calicoctl/resources"
)

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

const (
	macB = "66:00:00:00:00:0b"
	macC = "66:00:00:00:00:0c"
)

// nodes: a (local, 10.0.0.1/24), b (same subnet), c (another subnet).
func baseNodes() map[string]NodeInfo {
	return map[string]NodeInfo{
		"a": {Name: "a", IPv4: pfx("10.0.0.1/24"), IPv6: pfx("fd00::1/64"),
			IPv4VXLANTunnelAddr: addr("192.168.1.0"), VXLANTunnelMACAddr: "66:00:00:00:00:0a"},
		"b": {Name: "b", IPv4: pfx("10.0.0.2/24"), IPv6: pfx("fd00::2/64"),
			IPv4IPIPTunnelAddr: addr("192.168.2.1"), IPv4VXLANTunnelAddr: addr("192.168.2.0"), VXLANTunnelMACAddr: macB,
			IPv6VXLANTunnelAddr: addr("fd10:0:0:2::"), VXLANTunnelMACAddrV6: "66:00:00:00:06:0b"},
		"c": {Name: "c", IPv4: pfx("10.1.0.3/24"), IPv6: pfx("fd01::3/64"),
			IPv4VXLANTunnelAddr: addr("192.168.3.0"), VXLANTunnelMACAddr: "66:00:00:00:00:0C"},
	}
}

func baseBlocks() []BlockInfo {
	return []BlockInfo{
		{CIDR: pfx("192.168.1.0/26"), Node: "a"},
		{CIDR: pfx("192.168.2.0/26"), Node: "b"},
		{CIDR: pfx("192.168.3.0/26"), Node: "c"},
	}
}

var blackholeA = Route{Dst: pfx("192.168.1.0/26"), Type: Blackhole, Protocol: 80}

func TestComputeModes(t *testing.T) {
	direct := func(dst, gw string) Route {
		return Route{Dst: pfx(dst), Gw: addr(gw), Protocol: 80}
	}
	ipip := func(dst, gw string) Route {
		return Route{Dst: pfx(dst), Dev: "tunl0", Gw: addr(gw), OnLink: true, Protocol: 80}
	}
	vx := func(dst, gw string) Route {
		return Route{Dst: pfx(dst), Dev: "vxlan.calico", Gw: addr(gw), OnLink: true, Protocol: 80}
	}
	bDirect := direct("192.168.2.0/26", "10.0.0.2")
	bIPIP, cIPIP := ipip("192.168.2.0/26", "10.0.0.2"), ipip("192.168.3.0/26", "10.1.0.3")
	bVX, cVX := vx("192.168.2.0/26", "192.168.2.0"), vx("192.168.3.0/26", "192.168.3.0")
	vtepFDB := []FDBEntry{
		{MAC: macB, Dst: addr("10.0.0.2"), Dev: "vxlan.calico"},
		{MAC: macC, Dst: addr("10.1.0.3"), Dev: "vxlan.calico"},
	}
	vtepNeigh := []NeighEntry{
		{IP: addr("192.168.2.0"), MAC: macB, Dev: "vxlan.calico"},
		{IP: addr("192.168.3.0"), MAC: macC, Dev: "vxlan.calico"},
	}
	tests := []struct {
		ipip, vxlan resources.EncapMode
		want        []Route
		vtep        bool
	}{
		// c is on another subnet: a plain route to it is BGP's (the kernel
		// would refuse a gateway that is not on a connected subnet).
		{"Never", "Never", []Route{blackholeA, bDirect}, false},
		{"", "", []Route{blackholeA, bDirect}, false},
		{"Always", "Never", []Route{blackholeA, bIPIP, cIPIP}, false},
		{"CrossSubnet", "Never", []Route{blackholeA, bDirect, cIPIP}, false},
		{"cross-subnet", "Never", []Route{blackholeA, bDirect, cIPIP}, false},
		{"Never", "Always", []Route{blackholeA, bVX, cVX}, true},
		{"Never", "CrossSubnet", []Route{blackholeA, bDirect, cVX}, true},
		{"never", "always", []Route{blackholeA, bVX, cVX}, true},
		// Both set is rejected by validation; VXLAN wins if it happens anyway.
		{"Always", "Always", []Route{blackholeA, bVX, cVX}, true},
		{"Always", "CrossSubnet", []Route{blackholeA, bIPIP, cVX}, true},
		{"CrossSubnet", "Always", []Route{blackholeA, bVX, cVX}, true},
		{"CrossSubnet", "CrossSubnet", []Route{blackholeA, bDirect, cVX}, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.ipip)+"/"+string(tt.vxlan), func(t *testing.T) {
			s := State{
				LocalNode: "a",
				Nodes:     baseNodes(),
				Pools:     []PoolInfo{{CIDR: pfx("192.168.0.0/16"), IPIPMode: tt.ipip, VXLANMode: tt.vxlan}},
				Blocks:    baseBlocks(),
			}
			got := Compute(s, Options{})
			if !reflect.DeepEqual(got.Routes, tt.want) {
				t.Errorf("routes:\n got %v\nwant %v", got.Routes, tt.want)
			}
			var wantFDB []FDBEntry
			var wantNeigh []NeighEntry
			if tt.vtep {
				wantFDB, wantNeigh = vtepFDB, vtepNeigh
			}
			if !reflect.DeepEqual(got.FDB, wantFDB) {
				t.Errorf("fdb: got %v want %v", got.FDB, wantFDB)
			}
			if !reflect.DeepEqual(got.Neighbors, wantNeigh) {
				t.Errorf("neighbors: got %v want %v", got.Neighbors, wantNeigh)
			}
		})
	}
}

// CrossSubnet is decided from the local node's subnet: seen from c, node a
// is remote-subnet (encap) while seen from b it is same-subnet (direct).
func TestComputeCrossSubnetBothSides(t *testing.T) {
	pools := []PoolInfo{{CIDR: pfx("192.168.0.0/16"), IPIPMode: "CrossSubnet"}}
	tests := []struct {
		local string
		want  Route
	}{
		{"b", Route{Dst: pfx("192.168.1.0/26"), Gw: addr("10.0.0.1"), Protocol: 80}},
		{"c", Route{Dst: pfx("192.168.1.0/26"), Dev: "tunl0", Gw: addr("10.0.0.1"), OnLink: true, Protocol: 80}},
	}
	for _, tt := range tests {
		t.Run(tt.local, func(t *testing.T) {
			got := Compute(State{LocalNode: tt.local, Nodes: baseNodes(), Pools: pools, Blocks: baseBlocks()}, Options{})
			r, ok := findRoute(got.Routes, tt.want.Dst)
			if !ok || r != tt.want {
				t.Errorf("route to a's block = %v (found %v), want %v", r, ok, tt.want)
			}
			own, _ := findRoute(got.Routes, baseBlocksFor(tt.local))
			if own.Type != Blackhole {
				t.Errorf("own block route = %v, want blackhole", own)
			}
		})
	}
}

func baseBlocksFor(node string) netip.Prefix {
	for _, b := range baseBlocks() {
		if b.Node == node {
			return b.CIDR
		}
	}
	return netip.Prefix{}
}

func findRoute(rs []Route, dst netip.Prefix) (Route, bool) {
	for _, r := range rs {
		if r.Dst == dst {
			return r, true
		}
	}
	return Route{}, false
}

func TestComputeIPv6(t *testing.T) {
	tests := []struct {
		name      string
		vxlan     resources.EncapMode
		want      Route
		wantNeigh []NeighEntry
	}{
		{"never", "Never", Route{Dst: pfx("fd10:0:0:2::/122"), Gw: addr("fd00::2"), Protocol: 80}, nil},
		{"always", "Always",
			Route{Dst: pfx("fd10:0:0:2::/122"), Dev: "vxlan-v6.calico", Gw: addr("fd10:0:0:2::"), OnLink: true, Protocol: 80},
			[]NeighEntry{{IP: addr("fd10:0:0:2::"), MAC: "66:00:00:00:06:0b", Dev: "vxlan-v6.calico"}}},
		{"crosssubnet-same", "CrossSubnet", Route{Dst: pfx("fd10:0:0:2::/122"), Gw: addr("fd00::2"), Protocol: 80},
			[]NeighEntry{{IP: addr("fd10:0:0:2::"), MAC: "66:00:00:00:06:0b", Dev: "vxlan-v6.calico"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := State{
				LocalNode: "a",
				Nodes:     baseNodes(),
				// IPIP never applies to v6 even if a pool says so.
				Pools: []PoolInfo{{CIDR: pfx("fd10::/48"), IPIPMode: "Always", VXLANMode: tt.vxlan}},
				Blocks: []BlockInfo{
					{CIDR: pfx("fd10:0:0:1::/122"), Node: "a"},
					{CIDR: pfx("fd10:0:0:2::/122"), Node: "b"},
					{CIDR: pfx("fd10:0:0:3::/122"), Node: "c"}, // c has no v6 VTEP
				},
				Workloads: []WorkloadRoute{{Addr: pfx("fd10:0:0:1::5/128"), Iface: "cali1"}},
			}
			got := Compute(s, Options{})
			want := []Route{
				{Dst: pfx("fd10:0:0:1::/122"), Type: Blackhole, Protocol: 80},
				{Dst: pfx("fd10:0:0:1::5/128"), Dev: "cali1", Protocol: 3, Scope: ScopeLink},
				tt.want,
			}
			// c lacks a v6 VTEP, so VXLAN (Always, or CrossSubnet to another
			// subnet) gives it no route; nor does Never (c is on another
			// subnet: BGP's route).
			if !reflect.DeepEqual(got.Routes, want) {
				t.Errorf("routes:\n got %v\nwant %v", got.Routes, want)
			}
			if !reflect.DeepEqual(got.Neighbors, tt.wantNeigh) {
				t.Errorf("neighbors: got %v want %v", got.Neighbors, tt.wantNeigh)
			}
		})
	}
}

func TestComputeWorkloadsAndBorrowed(t *testing.T) {
	s := State{
		LocalNode: "a",
		Nodes:     baseNodes(),
		Pools:     []PoolInfo{{CIDR: pfx("192.168.0.0/16"), VXLANMode: "Always"}},
		Blocks:    baseBlocks(),
		Workloads: []WorkloadRoute{
			{Addr: pfx("192.168.1.5/32"), Iface: "cali5"},
			{Addr: pfx("192.168.2.9/26"), Iface: "cali9"}, // borrowed from b's block; prefix normalised to /32
			{Addr: pfx("192.168.1.6/32")},                 // no interface yet: skipped
		},
		Borrowed: []BlockInfo{
			{CIDR: pfx("192.168.1.7/32"), Node: "c"}, // c uses an address of our block
			{CIDR: pfx("192.168.2.9/32"), Node: "a"}, // we use one of b's
			{CIDR: pfx("192.168.3.8/32"), Node: "b"}, // b uses one of c's
		},
	}
	want := []Route{
		blackholeA,
		{Dst: pfx("192.168.1.5/32"), Dev: "cali5", Protocol: 3, Scope: ScopeLink},
		{Dst: pfx("192.168.1.7/32"), Dev: "vxlan.calico", Gw: addr("192.168.3.0"), OnLink: true, Protocol: 80},
		{Dst: pfx("192.168.2.0/26"), Dev: "vxlan.calico", Gw: addr("192.168.2.0"), OnLink: true, Protocol: 80},
		{Dst: pfx("192.168.2.9/32"), Dev: "cali9", Protocol: 3, Scope: ScopeLink},
		{Dst: pfx("192.168.3.0/26"), Dev: "vxlan.calico", Gw: addr("192.168.3.0"), OnLink: true, Protocol: 80},
		{Dst: pfx("192.168.3.8/32"), Dev: "vxlan.calico", Gw: addr("192.168.2.0"), OnLink: true, Protocol: 80},
	}
	got := Compute(s, Options{})
	if !reflect.DeepEqual(got.Routes, want) {
		t.Errorf("routes:\n got %v\nwant %v", got.Routes, want)
	}
}

func TestComputeMissingData(t *testing.T) {
	nodes := baseNodes()
	nodes["noaddr"] = NodeInfo{Name: "noaddr", IPv4VXLANTunnelAddr: addr("192.168.4.0"), VXLANTunnelMACAddr: macB}
	nodes["nomac"] = NodeInfo{Name: "nomac", IPv4: pfx("10.0.0.5/24"), IPv4VXLANTunnelAddr: addr("192.168.5.0")}
	nodes["badmac"] = NodeInfo{Name: "badmac", IPv4: pfx("10.0.0.6/24"), IPv4VXLANTunnelAddr: addr("192.168.6.0"), VXLANTunnelMACAddr: "zz"}
	nodes["notun"] = NodeInfo{Name: "notun", IPv4: pfx("10.0.0.7/24"), VXLANTunnelMACAddr: macC}
	blocks := []BlockInfo{
		{CIDR: pfx("192.168.1.0/26"), Node: "a"},
		{CIDR: pfx("192.168.4.0/26"), Node: "noaddr"},
		{CIDR: pfx("192.168.5.0/26"), Node: "nomac"},
		{CIDR: pfx("192.168.6.0/26"), Node: "badmac"},
		{CIDR: pfx("192.168.7.0/26"), Node: "notun"},
		{CIDR: pfx("192.168.8.0/26"), Node: "ghost"}, // no Node resource
		{CIDR: pfx("192.168.9.0/26")},                // no affinity
		{CIDR: pfx("172.16.0.0/26"), Node: "b"},      // outside every pool
		{},                                           // invalid
	}
	tests := []struct {
		name  string
		pools []PoolInfo
		want  []Route
	}{
		{"vxlan", []PoolInfo{{CIDR: pfx("192.168.0.0/16"), VXLANMode: "Always"}}, []Route{blackholeA}},
		{"direct", []PoolInfo{{CIDR: pfx("192.168.0.0/16")}}, []Route{
			blackholeA,
			{Dst: pfx("192.168.5.0/26"), Gw: addr("10.0.0.5"), Protocol: 80},
			{Dst: pfx("192.168.6.0/26"), Gw: addr("10.0.0.6"), Protocol: 80},
			{Dst: pfx("192.168.7.0/26"), Gw: addr("10.0.0.7"), Protocol: 80},
		}},
		// Disabled pools still route their existing blocks.
		{"disabled", []PoolInfo{{CIDR: pfx("192.168.0.0/16"), Disabled: true}}, []Route{
			blackholeA,
			{Dst: pfx("192.168.5.0/26"), Gw: addr("10.0.0.5"), Protocol: 80},
			{Dst: pfx("192.168.6.0/26"), Gw: addr("10.0.0.6"), Protocol: 80},
			{Dst: pfx("192.168.7.0/26"), Gw: addr("10.0.0.7"), Protocol: 80},
		}},
		// No pools: only the local blackhole.
		{"nopools", nil, []Route{blackholeA}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compute(State{LocalNode: "a", Nodes: nodes, Pools: tt.pools, Blocks: blocks}, Options{})
			if !reflect.DeepEqual(got.Routes, tt.want) {
				t.Errorf("routes:\n got %v\nwant %v", got.Routes, tt.want)
			}
		})
	}
}

// Without a local Node (or its address), CrossSubnet cannot prove a shared
// subnet and encapsulates; custom protocols are honoured.
func TestComputeUnknownLocalNode(t *testing.T) {
	nodes := baseNodes()
	delete(nodes, "a")
	s := State{LocalNode: "a", Nodes: nodes, Blocks: baseBlocks(),
		Pools: []PoolInfo{{CIDR: pfx("192.168.0.0/16"), IPIPMode: "CrossSubnet"}}}
	got := Compute(s, Options{ClusterProtocol: 4})
	want := []Route{
		{Dst: pfx("192.168.1.0/26"), Type: Blackhole, Protocol: 4},
		{Dst: pfx("192.168.2.0/26"), Dev: "tunl0", Gw: addr("10.0.0.2"), OnLink: true, Protocol: 4},
		{Dst: pfx("192.168.3.0/26"), Dev: "tunl0", Gw: addr("10.1.0.3"), OnLink: true, Protocol: 4},
	}
	if !reflect.DeepEqual(got.Routes, want) {
		t.Errorf("routes:\n got %v\nwant %v", got.Routes, want)
	}
}

// The most specific pool decides the mode.
func TestComputeNestedPools(t *testing.T) {
	s := State{LocalNode: "a", Nodes: baseNodes(), Blocks: baseBlocks(), Pools: []PoolInfo{
		{CIDR: pfx("192.168.0.0/16"), IPIPMode: "Always"},
		{CIDR: pfx("192.168.3.0/24")},
	}}
	got := Compute(s, Options{})
	// c's block is in the plain /24 and c is on another subnet: no route
	// from the plan (BGP's), where the /16 alone would give a tunl0 route.
	if r, ok := findRoute(got.Routes, pfx("192.168.3.0/26")); ok {
		t.Errorf("got %v, want no route", r)
	}
	if r, _ := findRoute(got.Routes, pfx("192.168.2.0/26")); r.Dev != "tunl0" {
		t.Errorf("got %v, want via tunl0", r)
	}
}

func TestRouteString(t *testing.T) {
	tests := []struct {
		r    Route
		want string
	}{
		{blackholeA, "blackhole 192.168.1.0/26 proto 80"},
		{Route{Dst: pfx("192.168.1.5/32"), Dev: "cali5", Protocol: 3, Scope: ScopeLink}, "192.168.1.5/32 dev cali5 proto 3 scope link"},
		{Route{Dst: pfx("192.168.2.0/26"), Dev: "tunl0", Gw: addr("10.0.0.2"), OnLink: true, Protocol: 80}, "192.168.2.0/26 via 10.0.0.2 dev tunl0 proto 80 onlink"},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

// A plain route to a node on another subnet is left to BGP only when the
// local address carries a real subnet; with a /32 the plan cannot tell and
// keeps the route.
func TestComputePlainOtherSubnet(t *testing.T) {
	for _, tt := range []struct {
		local string
		want  bool
	}{{"10.0.0.1/24", false}, {"10.0.0.1/32", true}} {
		nodes := baseNodes()
		a := nodes["a"]
		a.IPv4 = pfx(tt.local)
		nodes["a"] = a
		s := State{LocalNode: "a", Nodes: nodes, Blocks: baseBlocks(), Pools: []PoolInfo{{CIDR: pfx("192.168.0.0/16")}}}
		_, got := findRoute(Compute(s, Options{}).Routes, pfx("192.168.3.0/26"))
		if got != tt.want {
			t.Errorf("local %s: route to c's block present=%v, want %v", tt.local, got, tt.want)
		}
	}
}
