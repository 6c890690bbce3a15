package bgp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/resources"
)

// TestMesh: names, passive side, ports and AS of the node-to-node mesh, and
// who leaves it.
func TestMesh(t *testing.T) {
	three := func(opts ...nodeOpt) map[string]*resources.Node {
		return nodeMap(mkNode("n1", "10.0.0.1/24", opts...), mkNode("n2", "10.0.0.2/24"), mkNode("n3", "10.0.0.10/24"))
	}
	cases := []struct {
		name    string
		local   string
		nodes   map[string]*resources.Node
		configs map[string]*resources.BGPConfiguration
		want    []string
	}{
		{name: "from n1", local: "n1", nodes: three(), want: []string{
			// "10.0.0.10" and "10.0.0.2" both sort after "10.0.0.1": n1 waits.
			"Mesh_10_0_0_10 10.0.0.10:0 as64512 passive",
			"Mesh_10_0_0_2 10.0.0.2:0 as64512 passive",
		}},
		{name: "from n2", local: "n2", nodes: three(), want: []string{
			// The rule compares strings: "10.0.0.10" < "10.0.0.2", so n2 dials.
			"Mesh_10_0_0_1 10.0.0.1:0 as64512",
			"Mesh_10_0_0_10 10.0.0.10:0 as64512",
		}},
		{name: "from n3", local: "n3", nodes: three(), want: []string{
			"Mesh_10_0_0_1 10.0.0.1:0 as64512",
			"Mesh_10_0_0_2 10.0.0.2:0 as64512 passive",
		}},
		{name: "remote AS and listen ports", local: "n3",
			nodes: nodeMap(mkNode("n1", "10.0.0.1/24", asn(65001)), mkNode("n2", "10.0.0.2/24"), mkNode("n3", "10.0.0.10/24")),
			configs: cfgMap(bgpCfg("default", resources.BGPConfigurationSpec{ListenPort: 1791}),
				bgpCfg("node.n1", resources.BGPConfigurationSpec{ListenPort: 1790})),
			want: []string{
				"Mesh_10_0_0_1 10.0.0.1:1790 as65001",
				"Mesh_10_0_0_2 10.0.0.2:1791 as64512 passive",
			}},
		{name: "dual stack", local: "n1",
			nodes: nodeMap(mkNode("n1", "10.0.0.1/24", v6("fd00::1/64")), mkNode("n2", "10.0.0.2/24", v6("fd00::2/64")), mkNode("n3", "", v6("fd00::a/64"))),
			want: []string{
				"Mesh_10_0_0_2 10.0.0.2:0 as64512 passive",
				"Mesh_fd00__2 fd00::2:0 as64512 passive",
				"Mesh_fd00__a fd00::a:0 as64512 passive",
			}},
		{name: "a route reflector leaves the mesh", local: "n1",
			nodes: nodeMap(mkNode("n1", "10.0.0.1/24"), mkNode("n2", "10.0.0.2/24"), mkNode("n3", "10.0.0.10/24", rr("1.1.1.1"))),
			want:  []string{"Mesh_10_0_0_2 10.0.0.2:0 as64512 passive"}},
		{name: "and builds none itself", local: "n3",
			nodes: nodeMap(mkNode("n1", "10.0.0.1/24"), mkNode("n2", "10.0.0.2/24"), mkNode("n3", "10.0.0.10/24", rr("1.1.1.1"))),
			want:  nil},
		{name: "a node without BGP is not in the mesh", local: "n1",
			nodes: nodeMap(mkNode("n1", "10.0.0.1/24"), mkNode("n2", "10.0.0.2/24"), &resources.Node{ObjectMeta: mkNode("n4", "").ObjectMeta}),
			want:  []string{"Mesh_10_0_0_2 10.0.0.2:0 as64512 passive"}},
		{name: "mesh disabled", local: "n1", nodes: three(), configs: cfgMap(meshOff()), want: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Compute(Input{NodeName: tc.local, Nodes: tc.nodes, Configs: tc.configs})
			if !d.Enabled {
				t.Fatalf("BGP not enabled: %v", d.Warnings)
			}
			wantLines(t, "peers", summaries(d.Peers), tc.want)
			for _, p := range d.Peers {
				own := d.Global.NodeIPv4
				if p.Address.Is6() {
					own = d.Global.NodeIPv6
				}
				if p.Type != PeerMesh || p.SourceAddress != own || !p.IsCalicoNode || p.Source != "" {
					t.Errorf("%s: type %q source %v calico %v from %q", p.Name, p.Type, p.SourceAddress, p.IsCalicoNode, p.Source)
				}
			}
		})
	}
}

// TestMeshSecrets: the mesh takes nodeMeshPassword and
// nodeMeshMaxRestartTime.
func TestMeshSecrets(t *testing.T) {
	cfg := bgpCfg("default", resources.BGPConfigurationSpec{
		NodeMeshPassword:       &resources.BGPPassword{SecretKeyRef: &resources.SecretKeySelector{Name: "bgp", Key: "mesh"}},
		NodeMeshMaxRestartTime: dur(300 * time.Second),
	})
	d := Compute(Input{NodeName: "n1", Nodes: nodeMap(mkNode("n1", "10.0.0.1/24"), mkNode("n2", "10.0.0.2/24")), Configs: cfgMap(cfg)})
	p := peerNamed(t, d, "Mesh_10_0_0_2")
	if p.PasswordRef == nil || *p.PasswordRef != (SecretRef{Name: "bgp", Key: "mesh"}) {
		t.Errorf("password ref = %+v", p.PasswordRef)
	}
	if p.RestartTime != 300*time.Second {
		t.Errorf("restart time = %v", p.RestartTime)
	}
}

// TestMeshOffWarning: disabling the mesh with nothing to replace it is
// reported; a reflector or any BGPPeer silences it.
func TestMeshOffWarning(t *testing.T) {
	cases := []struct {
		name  string
		nodes map[string]*resources.Node
		peers []*resources.BGPPeer
		warn  bool
	}{
		{name: "nothing instead", nodes: nodeMap(mkNode("n1", "10.0.0.1/24"), mkNode("n2", "10.0.0.2/24")), warn: true},
		{name: "a route reflector", nodes: nodeMap(mkNode("n1", "10.0.0.1/24"), mkNode("n2", "10.0.0.2/24", rr("1.0.0.1")))},
		{name: "a BGPPeer", nodes: nodeMap(mkNode("n1", "10.0.0.1/24")),
			peers: []*resources.BGPPeer{bgpPeer("tor", resources.BGPPeerSpec{PeerIP: "10.0.0.254", ASNumber: 65000})}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Compute(Input{NodeName: "n1", Nodes: tc.nodes, Configs: cfgMap(meshOff()), Peers: tc.peers})
			if got := hasWarning(d.Warnings, "node-to-node mesh is disabled", "no BGPPeer"); got != tc.warn {
				t.Errorf("mesh-off warning = %v, want %v (warnings %q)", got, tc.warn, d.Warnings)
			}
		})
	}
}

// seed004 is the route-reflector topology of seed 004: three masters are
// reflectors of cluster 224.0.0.1 labelled i-am-a-route-reflector, the
// workers peer with them, they peer with each other and with the border
// router 192.168.83.1 (AS 64512, so iBGP).
func seed004(mesh bool) Input {
	rrLabel := labels("i-am-a-route-reflector", "true")
	in := Input{
		Nodes: nodeMap(
			mkNode("master1", "192.168.83.36/24", rr("224.0.0.1"), rrLabel),
			mkNode("master2", "192.168.83.49/24", rr("224.0.0.1"), rrLabel),
			mkNode("master3", "192.168.83.54/24", rr("224.0.0.1"), rrLabel),
			mkNode("node1", "192.168.83.60/24"),
			mkNode("node2", "192.168.83.61/24"),
		),
		Peers: []*resources.BGPPeer{
			bgpPeer("peer-to-rrs", resources.BGPPeerSpec{NodeSelector: "!has(i-am-a-route-reflector)", PeerSelector: "has(i-am-a-route-reflector)"}),
			bgpPeer("rr-mesh", resources.BGPPeerSpec{NodeSelector: "has(i-am-a-route-reflector)", PeerSelector: "has(i-am-a-route-reflector)"}),
			bgpPeer("rr-border", resources.BGPPeerSpec{NodeSelector: "has(i-am-a-route-reflector)", PeerIP: "192.168.83.1", ASNumber: 64512}),
		},
	}
	if !mesh {
		in.Configs = cfgMap(meshOff())
	}
	return in
}

func TestRouteReflectorTopology(t *testing.T) {
	rrView := []string{
		// The border router is iBGP and carries no cluster ID: a client.
		"Node_192_168_83_1 192.168.83.1:0 as64512 rr-client/224.0.0.1",
		// Reflectors of our cluster are not clients; .49 and .54 dial us.
		"Node_192_168_83_49 192.168.83.49:0 as64512 passive",
		"Node_192_168_83_54 192.168.83.54:0 as64512 passive",
		"Node_192_168_83_60 192.168.83.60:0 as64512 passive rr-client/224.0.0.1",
		"Node_192_168_83_61 192.168.83.61:0 as64512 passive rr-client/224.0.0.1",
	}
	clientView := []string{
		"Node_192_168_83_36 192.168.83.36:0 as64512",
		"Node_192_168_83_49 192.168.83.49:0 as64512",
		"Node_192_168_83_54 192.168.83.54:0 as64512",
	}
	cases := []struct {
		name  string
		mesh  bool
		local string
		want  []string
	}{
		{name: "client, mesh off", local: "node1", want: clientView},
		{name: "client, mesh on: clients mesh among themselves", mesh: true, local: "node1",
			want: append(append([]string{}, "Mesh_192_168_83_61 192.168.83.61:0 as64512 passive"), clientView...)},
		{name: "reflector, mesh off", local: "master1", want: rrView},
		{name: "reflector, mesh on: no mesh on a reflector", mesh: true, local: "master1", want: rrView},
		{name: "last reflector dials the others", local: "master3", want: []string{
			"Node_192_168_83_1 192.168.83.1:0 as64512 rr-client/224.0.0.1",
			"Node_192_168_83_36 192.168.83.36:0 as64512",
			"Node_192_168_83_49 192.168.83.49:0 as64512",
			"Node_192_168_83_60 192.168.83.60:0 as64512 passive rr-client/224.0.0.1",
			"Node_192_168_83_61 192.168.83.61:0 as64512 passive rr-client/224.0.0.1",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := seed004(tc.mesh)
			in.NodeName = tc.local
			d := Compute(in)
			wantLines(t, "peers", summaries(d.Peers), tc.want)
			if len(d.Warnings) != 0 {
				t.Errorf("warnings: %q", d.Warnings)
			}
			for _, p := range d.Peers {
				if p.Type == PeerNode && p.Address != addr("192.168.83.1") && (!p.IsCalicoNode || p.Source == "") {
					t.Errorf("%s: calico node %v, source %q", p.Name, p.IsCalicoNode, p.Source)
				}
			}
		})
	}
}

// TestOneSideDials: across a mixed topology (mesh, reflector, peerSelector,
// node-specific peerIP with its reverse peering, a global peerSelector),
// every session between two of our nodes exists on both ends and exactly
// one end dials: gobgp v3 cannot resolve a connection collision.
func TestOneSideDials(t *testing.T) {
	base := Input{
		Nodes: nodeMap(
			mkNode("a", "10.0.0.1/24", v6("fd00::1/64")),
			mkNode("b", "10.0.0.2/24", v6("fd00::2/64"), labels("edge", "true")),
			mkNode("c", "10.0.0.9/24"),
			mkNode("d", "10.0.0.10/24", rr("10.255.0.1"), labels("rr", "true")),
			mkNode("e", "10.0.0.11/24", rr("10.255.0.1"), labels("rr", "true")),
			mkNode("f", "10.0.0.100/24", asn(65100)),
		),
		Peers: []*resources.BGPPeer{
			bgpPeer("to-rr", resources.BGPPeerSpec{NodeSelector: "!has(rr)", PeerSelector: "has(rr)"}),
			bgpPeer("rr-mesh", resources.BGPPeerSpec{NodeSelector: "has(rr)", PeerSelector: "has(rr)"}),
			bgpPeer("a-to-f", resources.BGPPeerSpec{Node: "a", PeerIP: "10.0.0.100", ASNumber: 65100}),
			bgpPeer("edge", resources.BGPPeerSpec{PeerSelector: "edge == 'true'"}),
		},
	}
	views := map[string]map[netip.Addr]Peer{}
	addrs := map[string][]netip.Addr{}
	for name, n := range base.Nodes {
		in := base
		in.NodeName = name
		d := Compute(in)
		views[name] = map[netip.Addr]Peer{}
		for _, p := range d.Peers {
			views[name][p.Address] = p
		}
		for _, s := range []string{n.Spec.BGP.IPv4Address, n.Spec.BGP.IPv6Address} {
			if p, err := netip.ParsePrefix(s); err == nil {
				addrs[name] = append(addrs[name], p.Addr())
			}
		}
	}
	sessions := 0
	for x, xv := range views {
		for y := range views {
			if x == y {
				continue
			}
			for i, ya := range addrs[y] {
				p, ok := xv[ya]
				if !ok {
					continue
				}
				sessions++
				xa := addrs[x][min(i, len(addrs[x])-1)]
				if xa.Is4() != ya.Is4() {
					continue
				}
				back, ok := views[y][xa]
				if !ok {
					t.Errorf("%s has %s toward %s, %s has nothing back", x, p.Name, y, y)
					continue
				}
				if p.Passive == back.Passive {
					t.Errorf("%s %s passive=%v and %s %s passive=%v: want exactly one dialling side", x, p.Name, p.Passive, y, back.Name, back.Passive)
				}
			}
		}
	}
	if sessions < 20 {
		t.Errorf("only %d node-to-node session ends: the topology is not what the test means", sessions)
	}
}
