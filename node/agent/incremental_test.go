package agent

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"

	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/node/plan"
	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

// checkIncremental fails unless the plan input kept up to date one change
// at a time equals the snapshot and plan built from the whole model.
func checkIncremental(t *testing.T, step string, in *planInput, m *state.Model) {
	t.Helper()
	in.update(m)
	full := BuildSnapshot(m, in.node)
	full.Felix = overrideFelix(full.Felix, in.felixEnv)
	if got := in.inc.Snapshot(); !reflect.DeepEqual(got, full) {
		t.Fatalf("%s: incremental snapshot\n%+v\nwant\n%+v", step, got, full)
	}
	for _, facts := range []plan.HostFacts{
		{NodeIP: netip.MustParseAddr("10.0.0.1"), HostMTU: 1500, IPIP: true},
		{NodeIP: netip.MustParseAddr("10.0.0.1"), HostMTU: 9000, IPIP: false},
	} {
		if got, want := in.inc.Plan(facts), plan.Plan(full, facts); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: incremental plan (facts %+v)\n%+v\nwant\n%+v", step, facts, got, want)
		}
	}
}

func testNode(name, v4, vxlan, mac string) *resources.Node {
	n := &resources.Node{}
	n.Name = name
	n.Spec.BGP = &resources.NodeBGPSpec{IPv4Address: v4}
	n.Spec.IPv4VXLANTunnelAddr, n.Spec.VXLANTunnelMACAddr = vxlan, mac
	return n
}

func testPool(name, cidr string, ipip, vxlan resources.EncapMode, natOut, disabled bool) *resources.IPPool {
	p := &resources.IPPool{}
	p.Name = name
	p.Spec = resources.IPPoolSpec{CIDR: cidr, IPIPMode: ipip, VXLANMode: vxlan, NATOutgoing: natOut, Disabled: disabled}
	return p
}

func testBlock(cidr, host string) *ipam.Block {
	b := &ipam.Block{CIDR: netip.MustParsePrefix(cidr)}
	if host != "" {
		b.Affinity = "host:" + host
	}
	return b
}

func testWEP(name, node, iface string, ips []string, nats ...resources.IPNAT) *resources.WorkloadEndpoint {
	w := &resources.WorkloadEndpoint{}
	w.Namespace, w.Name = "default", name
	w.Spec = resources.WorkloadEndpointSpec{Node: node, InterfaceName: iface, IPNetworks: ips, IPNATs: nats}
	return w
}

// TestIncrementalMatchesFull walks through the changes that touch each
// part of the plan, checking after every one.
func TestIncrementalMatchesFull(t *testing.T) {
	m := state.NewModel()
	in := newPlanInput("a", FelixSettings{})
	steps := []struct {
		name string
		do   func()
	}{
		{"empty", func() {}},
		{"local node", func() { m.SetNode(testNode("a", "10.0.0.1/24", "100.64.255.1", "66:00:00:00:00:01")) }},
		{"pool", func() { m.SetPool(testPool("p", "192.168.0.0/16", "", resources.EncapAlways, true, false)) }},
		{"remote node", func() { m.SetNode(testNode("b", "10.0.0.2/24", "100.64.255.2", "66:00:00:00:00:02")) }},
		{"remote block", func() { m.SetBlock(testBlock("192.168.1.0/26", "b")) }},
		{"local block", func() { m.SetBlock(testBlock("192.168.0.0/26", "a")) }},
		{"local pod", func() { m.SetWorkloadEndpoint(testWEP("p1", "a", "cali1", []string{"192.168.0.1/32"})) }},
		{"local pod with NAT", func() {
			m.SetWorkloadEndpoint(testWEP("p2", "a", "cali2", []string{"192.168.0.2/32"}, resources.IPNAT{InternalIP: "192.168.0.2", ExternalIP: "172.16.0.2"}))
		}},
		{"remote pod in its block", func() { m.SetWorkloadEndpoint(testWEP("p3", "b", "cali3", []string{"192.168.1.3/32"})) }},
		{"remote pod borrowing from ours", func() { m.SetWorkloadEndpoint(testWEP("p4", "b", "cali4", []string{"192.168.0.4/32"})) }},
		{"remote pod outside blocks", func() { m.SetWorkloadEndpoint(testWEP("p5", "b", "cali5", []string{"192.168.9.5/32"})) }},
		{"block appears under a borrowed address", func() { m.SetBlock(testBlock("192.168.9.0/26", "b")) }},
		{"block changes hands", func() { m.SetBlock(testBlock("192.168.9.0/26", "c")) }},
		{"node c joins", func() { m.SetNode(testNode("c", "10.0.1.3/24", "100.64.255.3", "66:00:00:00:00:03")) }},
		{"block allocations only", func() {
			b := testBlock("192.168.9.0/26", "c")
			b.Allocations = make([]*int, 64)
			m.SetBlock(b)
		}},
		{"remote node moves subnet", func() { m.SetNode(testNode("b", "10.0.2.2/24", "100.64.255.2", "66:00:00:00:00:02")) }},
		{"two nodes share a VTEP", func() { m.SetNode(testNode("d", "10.0.2.2/24", "100.64.255.2", "66:00:00:00:00:02")) }},
		{"one of them leaves", func() { m.DeleteNode("d") }},
		{"pool CrossSubnet", func() { m.SetPool(testPool("p", "192.168.0.0/16", "", resources.EncapCrossSubnet, false, false)) }},
		{"IPIP pool", func() { m.SetPool(testPool("q", "172.20.0.0/16", resources.EncapAlways, "", false, false)) }},
		{"IPIP block", func() { m.SetBlock(testBlock("172.20.0.0/26", "c")) }},
		{"felix config", func() {
			f := &resources.FelixConfiguration{}
			f.Name = "default"
			mtu := 1400
			f.Spec.VXLANMTU = &mtu
			m.SetFelixConfiguration(f)
		}},
		{"local node moves", func() { m.SetNode(testNode("a", "10.0.2.1/24", "100.64.255.1", "66:00:00:00:00:01")) }},
		{"pod deleted", func() { m.DeleteWorkloadEndpoint(resources.Key{Namespace: "default", Name: "p4"}) }},
		{"local pod moves away", func() { m.SetWorkloadEndpoint(testWEP("p1", "b", "cali1", []string{"192.168.0.1/32"})) }},
		{"block deleted", func() { m.DeleteBlock(netip.MustParsePrefix("192.168.9.0/26")) }},
		{"node with blocks deleted", func() { m.DeleteNode("c") }},
		{"pool deleted", func() { m.DeletePool("q") }},
		{"local node deleted", func() { m.DeleteNode("a") }},
	}
	for _, s := range steps {
		s.do()
		checkIncremental(t, s.name, in, m)
	}
	if in.rebuilds != 1 {
		t.Errorf("%d rebuilds from the whole model, want 1 (the first)", in.rebuilds)
	}
}

// TestIncrementalRandomMatchesFull applies random sequences of changes to
// a small cluster and checks the incremental plan against the full one
// after every few.
func TestIncrementalRandomMatchesFull(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 9))
			m := state.NewModel()
			in := newPlanInput("n0", FelixSettings{VXLANVNI: 4097})
			nodes := []string{"n0", "n1", "n2", "n3", "n4"}
			modes := []resources.EncapMode{"", resources.EncapAlways, resources.EncapCrossSubnet, resources.EncapNever}
			block := func() string { return fmt.Sprintf("10.%d.%d.%d/26", 244+r.IntN(2), r.IntN(3), 64*r.IntN(4)) }
			addr := func() string {
				if r.IntN(8) == 0 {
					return fmt.Sprintf("fd00::%x/128", r.IntN(8))
				}
				return fmt.Sprintf("10.%d.%d.%d/32", 244+r.IntN(2), r.IntN(3), r.IntN(256))
			}
			for i := range 400 {
				switch k := r.IntN(20); {
				case k < 3:
					n := nodes[r.IntN(len(nodes))]
					if r.IntN(6) == 0 {
						m.DeleteNode(n)
						break
					}
					j := r.IntN(4)
					m.SetNode(testNode(n, fmt.Sprintf("192.168.%d.%d/24", j%2, 1+r.IntN(5)), fmt.Sprintf("100.64.0.%d", 1+r.IntN(5)), fmt.Sprintf("66:00:00:00:00:%02x", r.IntN(5))))
				case k < 4:
					name := fmt.Sprintf("p%d", r.IntN(3))
					if r.IntN(4) == 0 {
						m.DeletePool(name)
						break
					}
					cidr := []string{"10.244.0.0/16", "10.245.0.0/16", "10.244.0.0/24", "fd00::/64"}[r.IntN(4)]
					m.SetPool(testPool(name, cidr, modes[r.IntN(4)], modes[r.IntN(4)], r.IntN(2) == 0, r.IntN(5) == 0))
				case k < 5:
					f := &resources.FelixConfiguration{}
					f.Name = []string{"default", "node.n0", "node.n1"}[r.IntN(3)]
					mtu := 1300 + r.IntN(3)*50
					f.Spec.VXLANMTU = &mtu
					m.SetFelixConfiguration(f)
				case k < 10:
					if r.IntN(4) == 0 {
						m.DeleteBlock(netip.MustParsePrefix(block()))
						break
					}
					host := nodes[r.IntN(len(nodes))]
					if r.IntN(6) == 0 {
						host = ""
					}
					m.SetBlock(testBlock(block(), host))
				default:
					name := fmt.Sprintf("w%d", r.IntN(30))
					if r.IntN(5) == 0 {
						m.DeleteWorkloadEndpoint(resources.Key{Namespace: "default", Name: name})
						break
					}
					var ips []string
					for range r.IntN(3) {
						ips = append(ips, addr())
					}
					var nats []resources.IPNAT
					if r.IntN(4) == 0 && len(ips) > 0 {
						nats = append(nats, resources.IPNAT{InternalIP: netip.MustParsePrefix(ips[0]).Addr().String(), ExternalIP: fmt.Sprintf("172.16.0.%d", r.IntN(4))})
					}
					iface := fmt.Sprintf("cali%d", r.IntN(4))
					if r.IntN(8) == 0 {
						iface = ""
					}
					m.SetWorkloadEndpoint(testWEP(name, nodes[r.IntN(len(nodes))], iface, ips, nats...))
				}
				if r.IntN(3) == 0 {
					checkIncremental(t, fmt.Sprintf("step %d", i), in, m)
				}
			}
			checkIncremental(t, "end", in, m)
			d := in.inc.Plan(plan.HostFacts{IPIP: true})
			t.Logf("%d routes, %d FDB entries, %d rebuilds", len(d.Routes.Routes), len(d.VXLAN.FDB), in.rebuilds)
		})
	}
}
