package plan

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/opencalico/calicoctl/node/nat"
	"github.com/opencalico/calicoctl/node/routes"
	"github.com/opencalico/calicoctl/node/tunnel"
	"github.com/opencalico/calicoctl/resources"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

const (
	macA = "66:00:00:00:00:0a"
	macB = "66:00:00:00:00:0b"
	macC = "66:00:00:00:00:0c"
)

// cluster is three nodes: a (local) and b share 10.0.0.0/24, c is on
// 10.1.0.0/24; each has a VXLAN VTEP (v4 and v6) and an IPIP address, and
// an IPv4 and an IPv6 block.
func cluster(pools ...routes.PoolInfo) *Snapshot {
	node := func(name, v4, v6 string, n byte, mac string) routes.NodeInfo {
		return routes.NodeInfo{Name: name, IPv4: pfx(v4), IPv6: pfx(v6),
			IPv4IPIPTunnelAddr:  netip.AddrFrom4([4]byte{192, 168, n, 1}),
			IPv4VXLANTunnelAddr: netip.AddrFrom4([4]byte{192, 168, n, 0}),
			IPv6VXLANTunnelAddr: addr("fd10:0:0:" + string('0'+n) + "::"),
			VXLANTunnelMACAddr:  mac, VXLANTunnelMACAddrV6: mac}
	}
	nodes := map[string]routes.NodeInfo{
		"a": node("a", "10.0.0.1/24", "fd00::1/64", 1, macA),
		"b": node("b", "10.0.0.2/24", "fd00::2/64", 2, macB),
		"c": node("c", "10.1.0.3/24", "fd01::3/64", 3, macC),
	}
	s := &Snapshot{Routes: routes.State{
		LocalNode: "a", Nodes: nodes, Pools: pools,
		Blocks: []routes.BlockInfo{
			{CIDR: pfx("192.168.1.0/26"), Node: "a"}, {CIDR: pfx("192.168.2.0/26"), Node: "b"}, {CIDR: pfx("192.168.3.0/26"), Node: "c"},
			{CIDR: pfx("fd10:0:0:1::/122"), Node: "a"}, {CIDR: pfx("fd10:0:0:2::/122"), Node: "b"}, {CIDR: pfx("fd10:0:0:3::/122"), Node: "c"},
		},
		Workloads: []routes.WorkloadRoute{{Addr: pfx("192.168.1.5/32"), Iface: "cali1"}, {Addr: pfx("fd10:0:0:1::5/128"), Iface: "cali1"}},
	}, Local: nodes["a"]}
	s.IPIP, s.VXLAN, s.VXLANv6 = EncapsInUse(pools)
	return s
}

func v4Pool(ipip, vxlan resources.EncapMode) routes.PoolInfo {
	return routes.PoolInfo{CIDR: pfx("192.168.0.0/16"), IPIPMode: ipip, VXLANMode: vxlan}
}

func v6Pool(vxlan resources.EncapMode) routes.PoolInfo {
	return routes.PoolInfo{CIDR: pfx("fd10::/48"), VXLANMode: vxlan}
}

// via names how d routes dst: "-" (no route), "blackhole", "direct", or the
// device.
func via(d Desired, dst string) string {
	for _, r := range d.Routes.Routes {
		if r.Dst != pfx(dst) {
			continue
		}
		switch {
		case r.Type == routes.Blackhole:
			return "blackhole"
		case r.Dev == "":
			return "direct"
		}
		return r.Dev
	}
	return "-"
}

func TestPlanPoolModes(t *testing.T) {
	facts := HostFacts{NodeIP: addr("10.0.0.1"), HostMTU: 1500, IPIP: true}
	const (
		direct = "direct"
		ipip   = tunnel.IPIPDevice
		vx     = tunnel.VXLANDevice
		vx6    = tunnel.VXLANDevice6
	)
	tests := []struct {
		name  string
		pools []routes.PoolInfo
		facts *HostFacts
		// how the blocks of b (same subnet) and c (other subnet) are routed
		toB, toC, toB6, toC6 string
		vxlanDev, ipipDev    bool
		vteps                int // FDB entries
		podMTU               int
	}{
		{name: "no pools", toB: "-", toC: "-", toB6: "-", toC6: "-", podMTU: 1500},
		// c is on another subnet: its plain route is BGP's, not the plan's.
		{name: "v4 never", pools: []routes.PoolInfo{v4Pool(resources.EncapNever, resources.EncapNever)},
			toB: direct, toC: "-", toB6: "-", toC6: "-", podMTU: 1500},
		{name: "v4 unset modes", pools: []routes.PoolInfo{v4Pool("", "")},
			toB: direct, toC: "-", toB6: "-", toC6: "-", podMTU: 1500},
		{name: "ipip always", pools: []routes.PoolInfo{v4Pool(resources.EncapAlways, resources.EncapNever)},
			toB: ipip, toC: ipip, toB6: "-", toC6: "-", ipipDev: true, podMTU: 1480},
		{name: "ipip cross-subnet", pools: []routes.PoolInfo{v4Pool(resources.EncapCrossSubnet, resources.EncapNever)},
			toB: direct, toC: ipip, toB6: "-", toC6: "-", ipipDev: true, podMTU: 1480},
		{name: "ipip always, kernel without ipip", pools: []routes.PoolInfo{v4Pool(resources.EncapAlways, resources.EncapNever)},
			facts: &HostFacts{NodeIP: addr("10.0.0.1"), HostMTU: 1500},
			toB:   "-", toC: "-", toB6: "-", toC6: "-", podMTU: 1500},
		{name: "vxlan always", pools: []routes.PoolInfo{v4Pool(resources.EncapNever, resources.EncapAlways)},
			toB: vx, toC: vx, toB6: "-", toC6: "-", vxlanDev: true, vteps: 2, podMTU: 1450},
		{name: "vxlan cross-subnet", pools: []routes.PoolInfo{v4Pool(resources.EncapNever, resources.EncapCrossSubnet)},
			toB: direct, toC: vx, toB6: "-", toC6: "-", vxlanDev: true, vteps: 2, podMTU: 1450},
		{name: "vxlan disabled pool", pools: []routes.PoolInfo{{CIDR: pfx("192.168.0.0/16"), VXLANMode: resources.EncapAlways, Disabled: true}},
			// A disabled pool keeps routing its blocks but brings up no device.
			toB: vx, toC: vx, toB6: "-", toC6: "-", vteps: 2, podMTU: 1500},
		{name: "v6 never", pools: []routes.PoolInfo{v6Pool(resources.EncapNever)},
			toB: "-", toC: "-", toB6: direct, toC6: "-", podMTU: 1500},
		{name: "v6 vxlan always", pools: []routes.PoolInfo{v6Pool(resources.EncapAlways)},
			toB: "-", toC: "-", toB6: vx6, toC6: vx6, vteps: 2, podMTU: 1500},
		{name: "v6 vxlan cross-subnet", pools: []routes.PoolInfo{v6Pool(resources.EncapCrossSubnet)},
			toB: "-", toC: "-", toB6: direct, toC6: vx6, vteps: 2, podMTU: 1500},
		{name: "dual stack, ipip v4 and vxlan v6",
			pools: []routes.PoolInfo{v4Pool(resources.EncapCrossSubnet, resources.EncapNever), v6Pool(resources.EncapAlways)},
			toB:   direct, toC: ipip, toB6: vx6, toC6: vx6, ipipDev: true, vteps: 2, podMTU: 1480},
		{name: "jumbo host", pools: []routes.PoolInfo{v4Pool(resources.EncapNever, resources.EncapAlways)},
			facts: &HostFacts{NodeIP: addr("10.0.0.1"), HostMTU: 9001},
			toB:   vx, toC: vx, toB6: "-", toC6: "-", vxlanDev: true, vteps: 2, podMTU: 8951},
		{name: "unknown host MTU", pools: []routes.PoolInfo{v4Pool(resources.EncapAlways, resources.EncapNever)},
			facts: &HostFacts{NodeIP: addr("10.0.0.1"), IPIP: true},
			toB:   ipip, toC: ipip, toB6: "-", toC6: "-", ipipDev: true, podMTU: 1480},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := facts
			if tt.facts != nil {
				f = *tt.facts
			}
			d := Plan(cluster(tt.pools...), f)
			for _, c := range []struct{ dst, want string }{
				{"192.168.2.0/26", tt.toB}, {"192.168.3.0/26", tt.toC},
				{"fd10:0:0:2::/122", tt.toB6}, {"fd10:0:0:3::/122", tt.toC6},
			} {
				if got := via(d, c.dst); got != c.want {
					t.Errorf("route to %s via %q, want %q", c.dst, got, c.want)
				}
			}
			// The local block is a blackhole and the workload a device route
			// whenever a pool of the family exists.
			if len(tt.pools) > 0 && via(d, "192.168.1.5/32") != "cali1" {
				t.Errorf("workload route via %q, want cali1", via(d, "192.168.1.5/32"))
			}
			if (d.VXLAN.Device != nil) != tt.vxlanDev {
				t.Errorf("vxlan device = %+v, want one: %v", d.VXLAN.Device, tt.vxlanDev)
			}
			if (d.Tunnels.IPIP != nil) != tt.ipipDev {
				t.Errorf("ipip device = %+v, want one: %v", d.Tunnels.IPIP, tt.ipipDev)
			}
			if len(d.VXLAN.FDB) != tt.vteps || len(d.VXLAN.Neighbors) != tt.vteps {
				t.Errorf("vteps: %d fdb, %d neighbours; want %d", len(d.VXLAN.FDB), len(d.VXLAN.Neighbors), tt.vteps)
			}
			if d.Tunnels.MTUs.Pod != tt.podMTU {
				t.Errorf("pod MTU %d, want %d", d.Tunnels.MTUs.Pod, tt.podMTU)
			}
		})
	}
}

func TestPlanDevices(t *testing.T) {
	s := cluster(v4Pool(resources.EncapNever, resources.EncapAlways))
	s.Felix = FelixSettings{VXLANVNI: 4097, VXLANPort: 8472}
	d := Plan(s, HostFacts{NodeIP: addr("10.0.0.1"), HostMTU: 1500})
	want := &tunnel.VXLANConfig{ParentAddr: addr("10.0.0.1"), MTU: 1450, MAC: macA, VNI: 4097, Port: 8472, Addr: pfx("192.168.1.0/32")}
	if !reflect.DeepEqual(d.VXLAN.Device, want) {
		t.Errorf("vxlan device\n got %+v\nwant %+v", d.VXLAN.Device, want)
	}

	// No tunnel address yet (startup has not allocated it): no device.
	s.Local.IPv4VXLANTunnelAddr = netip.Addr{}
	if d := Plan(s, HostFacts{HostMTU: 1500}); d.VXLAN.Device != nil {
		t.Errorf("vxlan device without a tunnel address: %+v", d.VXLAN.Device)
	}

	s = cluster(v4Pool(resources.EncapAlways, resources.EncapNever))
	d = Plan(s, HostFacts{HostMTU: 1500, IPIP: true})
	if want := (&tunnel.IPIPConfig{MTU: 1480, Addr: pfx("192.168.1.1/32")}); !reflect.DeepEqual(d.Tunnels.IPIP, want) {
		t.Errorf("ipip device %+v, want %+v", d.Tunnels.IPIP, want)
	}
	s.Local.IPv4IPIPTunnelAddr = netip.Addr{}
	if d := Plan(s, HostFacts{HostMTU: 1500, IPIP: true}); d.Tunnels.IPIP == nil || d.Tunnels.IPIP.Addr.IsValid() {
		t.Errorf("ipip device without a tunnel address = %+v, want one without an address", d.Tunnels.IPIP)
	}
	if d := Plan(s, HostFacts{HostMTU: 1500}); !d.Tunnels.IPIPUnavailable || d.Tunnels.IPIP != nil {
		t.Errorf("no kernel IPIP: tunnels %+v, want IPIPUnavailable and no device", d.Tunnels)
	}
}

func TestPlanMTUOverrides(t *testing.T) {
	tests := []struct {
		name                  string
		pool                  routes.PoolInfo
		felix                 FelixSettings
		wantVXLAN, wantIPIP   int
		wantPod               int
		wantDeviceMTUFromPlan int
	}{
		{"vxlan derived", v4Pool("", resources.EncapAlways), FelixSettings{}, 1450, 1480, 1450, 1450},
		{"vxlan configured", v4Pool("", resources.EncapAlways), FelixSettings{VXLANMTU: 1400}, 1400, 1480, 1400, 1400},
		{"vxlan configured above derived", v4Pool("", resources.EncapAlways), FelixSettings{VXLANMTU: 1480}, 1480, 1480, 1480, 1480},
		{"ipip configured", v4Pool(resources.EncapAlways, ""), FelixSettings{IPIPMTU: 1300}, 1450, 1300, 1300, 1300},
		{"ipip override unused without ipip", v4Pool("", ""), FelixSettings{IPIPMTU: 1300}, 1450, 1300, 1500, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := cluster(tt.pool)
			s.Felix = tt.felix
			d := Plan(s, HostFacts{HostMTU: 1500, IPIP: true})
			m := d.Tunnels.MTUs
			if m.VXLAN != tt.wantVXLAN || m.IPIP != tt.wantIPIP || m.Pod != tt.wantPod {
				t.Errorf("MTUs vxlan %d ipip %d pod %d; want %d %d %d", m.VXLAN, m.IPIP, m.Pod, tt.wantVXLAN, tt.wantIPIP, tt.wantPod)
			}
			dev := 0
			if d.VXLAN.Device != nil {
				dev = d.VXLAN.Device.MTU
			}
			if d.Tunnels.IPIP != nil {
				dev = d.Tunnels.IPIP.MTU
			}
			if dev != tt.wantDeviceMTUFromPlan {
				t.Errorf("device MTU %d, want %d", dev, tt.wantDeviceMTUFromPlan)
			}
		})
	}
}

func TestPlanBorrowedAndFloating(t *testing.T) {
	s := cluster(v4Pool(resources.EncapNever, resources.EncapCrossSubnet))
	// 192.168.3.7 is in c's block but used on b; 192.168.2.9 is in b's
	// block but used here (its workload route wins over b's block route).
	s.Routes.Borrowed = []routes.BlockInfo{{CIDR: pfx("192.168.3.7/32"), Node: "b"}, {CIDR: pfx("192.168.2.9/32"), Node: "a"}}
	s.Routes.Workloads = append(s.Routes.Workloads, routes.WorkloadRoute{Addr: pfx("192.168.2.9/32"), Iface: "cali2"})
	s.NAT = nat.Desired{MasqPools: []netip.Prefix{pfx("192.168.0.0/16")}, AllPools: []netip.Prefix{pfx("192.168.0.0/16")},
		FloatingIPs: []nat.FloatingNAT{{Ext: addr("172.16.0.1"), Int: addr("192.168.1.5")}}}
	d := Plan(s, HostFacts{HostMTU: 1500})
	for dst, want := range map[string]string{
		"192.168.3.0/26": tunnel.VXLANDevice, // c: other subnet
		"192.168.3.7/32": "direct",           // borrowed by b: same subnet
		"192.168.2.9/32": "cali2",
		"192.168.1.0/26": "blackhole",
	} {
		if got := via(d, dst); got != want {
			t.Errorf("route to %s via %q, want %q", dst, got, want)
		}
	}
	if !reflect.DeepEqual(d.NAT, s.NAT) {
		t.Errorf("NAT %+v, want the snapshot's %+v", d.NAT, s.NAT)
	}
	if want := []string{"cali1", "cali2"}; !reflect.DeepEqual(d.Routes.Links, want) {
		t.Errorf("links %v, want %v", d.Routes.Links, want)
	}
	if want := []netip.Prefix{pfx("192.168.0.0/16")}; !reflect.DeepEqual(d.Routes.Owned, want) {
		t.Errorf("owned %v, want %v", d.Routes.Owned, want)
	}
}

func TestEncapsInUse(t *testing.T) {
	tests := []struct {
		name                 string
		pools                []routes.PoolInfo
		ipip, vxlan, vxlanV6 bool
	}{
		{"none", nil, false, false, false},
		{"never", []routes.PoolInfo{v4Pool(resources.EncapNever, resources.EncapNever)}, false, false, false},
		{"ipip", []routes.PoolInfo{v4Pool(resources.EncapCrossSubnet, "")}, true, false, false},
		{"vxlan", []routes.PoolInfo{v4Pool("", resources.EncapAlways)}, false, true, false},
		{"vxlan v6", []routes.PoolInfo{v6Pool(resources.EncapCrossSubnet)}, false, false, true},
		{"disabled", []routes.PoolInfo{{CIDR: pfx("10.0.0.0/8"), IPIPMode: resources.EncapAlways, Disabled: true}}, false, false, false},
	}
	for _, tt := range tests {
		ipip, vxlan, v6 := EncapsInUse(tt.pools)
		if ipip != tt.ipip || vxlan != tt.vxlan || v6 != tt.vxlanV6 {
			t.Errorf("%s: EncapsInUse = %v %v %v, want %v %v %v", tt.name, ipip, vxlan, v6, tt.ipip, tt.vxlan, tt.vxlanV6)
		}
	}
}
