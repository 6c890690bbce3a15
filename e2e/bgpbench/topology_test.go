package bgpbench

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/node/bgp"
	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

// The planner's input for the two topologies, as a datastore would hold
// them: Nodes, BGPConfiguration default (listen port, bindMode NodeIP),
// an IP pool and one affine /26 block per node.

func node(name string, a netip.Addr, labels map[string]string, rrCluster string) *resources.Node {
	n := &resources.Node{Spec: resources.NodeSpec{BGP: &resources.NodeBGPSpec{
		IPv4Address: netip.PrefixFrom(a, 8).String(), RouteReflectorClusterID: rrCluster}}}
	n.Name, n.Labels = name, labels
	return n
}

func defaultConfig(port uint16, mesh bool) map[string]*resources.BGPConfiguration {
	bind := "NodeIP"
	c := &resources.BGPConfiguration{Spec: resources.BGPConfigurationSpec{
		ListenPort: port, BindMode: &bind, NodeToNodeMeshEnabled: &mesh}}
	c.Name = "default"
	return map[string]*resources.BGPConfiguration{"default": c}
}

func podPool() []*resources.IPPool {
	p := &resources.IPPool{Spec: resources.IPPoolSpec{CIDR: "10.0.0.0/15"}}
	p.Name = "default-ipv4-ippool"
	return []*resources.IPPool{p}
}

func meshNodeName(i int) string   { return fmt.Sprintf("node-%03d", i) }
func clientNodeName(i int) string { return fmt.Sprintf("client-%04d", i) }

// meshDesired is every mesh node's intent: n nodes with the mesh on.
func meshDesired(n int) []bgp.Desired {
	nodes := map[string]*resources.Node{}
	for i := range n {
		nodes[meshNodeName(i)] = node(meshNodeName(i), meshAddr(i), nil, "")
	}
	cfg, pools := defaultConfig(meshPort, true), podPool()
	out := make([]bgp.Desired, n)
	for i := range n {
		name := meshNodeName(i)
		out[i] = bgp.Compute(bgp.Input{NodeName: name, Nodes: nodes, Configs: cfg, Pools: pools,
			Blocks: []*state.Block{state.BlockOf(&ipam.Block{CIDR: block(i, false), Affinity: "host:" + name})}})
	}
	return out
}

// reflectorDesired is the reflector's intent: a node with
// routeReflectorClusterID, total client nodes, the mesh off and upstream's
// usual BGPPeer, every non-reflector node peering with the reflectors.
func reflectorDesired(total int) bgp.Desired {
	nodes := map[string]*resources.Node{
		"rr": node("rr", rrAddr, map[string]string{"route-reflector": "true"}, clusterID),
	}
	for i := range total {
		nodes[clientNodeName(i)] = node(clientNodeName(i), clientAddr(i), nil, "")
	}
	peer := &resources.BGPPeer{Spec: resources.BGPPeerSpec{
		NodeSelector: "!has(route-reflector)", PeerSelector: "has(route-reflector)"}}
	peer.Name = "peer-to-rrs"
	return bgp.Compute(bgp.Input{NodeName: "rr", Nodes: nodes, Configs: defaultConfig(rrPort, false),
		Peers: []*resources.BGPPeer{peer}, Pools: podPool()})
}

func TestMeshDesired(t *testing.T) {
	ds := meshDesired(4)
	dialled := map[[2]netip.Addr]int{}
	for i, d := range ds {
		if !d.Enabled || len(d.Peers) != 3 || len(d.Paths) != 1 || d.Paths[0].Prefix != block(i, false) ||
			d.Global.ListenPort != meshPort || len(d.Global.ListenAddresses) != 1 || d.Global.ListenAddresses[0] != meshAddr(i) {
			t.Fatalf("node %d: %+v", i, d)
		}
		for _, p := range d.Peers {
			if p.Type != bgp.PeerMesh || p.Port != meshPort {
				t.Errorf("node %d: peer %+v", i, p)
			}
			if !p.Passive {
				a, b := meshAddr(i), p.Address
				if b.Less(a) {
					a, b = b, a
				}
				dialled[[2]netip.Addr{a, b}]++
			}
		}
	}
	if len(dialled) != 6 {
		t.Errorf("%d of 6 pairs have a dialling side", len(dialled))
	}
	for pair, n := range dialled {
		if n != 1 {
			t.Errorf("pair %v dialled from %d sides", pair, n)
		}
	}
}

func TestReflectorDesired(t *testing.T) {
	d := reflectorDesired(20)
	if !d.Enabled || len(d.Peers) != 20 || len(d.Paths) != 0 || d.Global.ListenPort != rrPort {
		t.Fatalf("reflector intent: %+v", d)
	}
	for _, p := range d.Peers {
		if !p.RouteReflectorClient || p.ClusterID != clusterID || !p.Passive || p.PeerASN != asn {
			t.Errorf("peer %+v: want a passive route-reflector client of cluster %s", p, clusterID)
		}
	}
}
