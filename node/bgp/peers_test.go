package bgp

import (
	"slices"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

// TestBGPPeerExpansion: how BGPPeers become this node's sessions (global,
// node-specific, selectors, ports, reverse peering, own address, dedupe).
func TestBGPPeerExpansion(t *testing.T) {
	nodes := nodeMap(
		mkNode("n1", "10.0.0.1/24", v6("fd00::1/64"), labels("rack", "a")),
		mkNode("n2", "10.0.0.2/24", labels("rack", "a")),
		mkNode("n3", "10.0.0.3/24", labels("rack", "b")),
	)
	tor := resources.BGPPeerSpec{PeerIP: "10.0.0.254", ASNumber: 65000}
	with := func(s resources.BGPPeerSpec, f func(*resources.BGPPeerSpec)) resources.BGPPeerSpec { f(&s); return s }
	cases := []struct {
		name     string
		local    string
		peers    []*resources.BGPPeer
		configs  []*resources.BGPConfiguration // besides the mesh-off default
		mesh     bool
		want     []string
		wantWarn []string // fragments of one warning
	}{
		{name: "global peerIP", local: "n2", peers: []*resources.BGPPeer{bgpPeer("tor", tor)},
			want: []string{"Global_10_0_0_254 10.0.0.254:0 as65000"}},
		{name: "global peerIP with port", local: "n2",
			peers: []*resources.BGPPeer{bgpPeer("tor", with(tor, func(s *resources.BGPPeerSpec) { s.PeerIP = "10.0.0.254:1790" }))},
			want:  []string{"Global_10_0_0_254_port_1790 10.0.0.254:1790 as65000"}},
		{name: "global IPv6 peerIP with port", local: "n1",
			peers: []*resources.BGPPeer{bgpPeer("tor6", resources.BGPPeerSpec{PeerIP: "[fd00::fe]:1790", ASNumber: 65000})},
			want:  []string{"Global_fd00__fe_port_1790 fd00::fe:1790 as65000"}},
		{name: "node-specific, this node", local: "n1",
			peers: []*resources.BGPPeer{bgpPeer("tor", with(tor, func(s *resources.BGPPeerSpec) { s.Node = "n1" }))},
			want:  []string{"Node_10_0_0_254 10.0.0.254:0 as65000"}},
		{name: "node-specific, another node", local: "n2",
			peers: []*resources.BGPPeer{bgpPeer("tor", with(tor, func(s *resources.BGPPeerSpec) { s.Node = "n1" }))}},
		{name: "nodeSelector matches", local: "n3",
			peers: []*resources.BGPPeer{bgpPeer("tor", with(tor, func(s *resources.BGPPeerSpec) { s.NodeSelector = "rack == 'b'" }))},
			want:  []string{"Node_10_0_0_254 10.0.0.254:0 as65000"}},
		{name: "nodeSelector does not match", local: "n1",
			peers: []*resources.BGPPeer{bgpPeer("tor", with(tor, func(s *resources.BGPPeerSpec) { s.NodeSelector = "rack == 'b'" }))}},
		{name: "peerIP of a Calico node: its listen port, its passive rule", local: "n1",
			peers:   []*resources.BGPPeer{bgpPeer("to-n2", resources.BGPPeerSpec{PeerIP: "10.0.0.2", ASNumber: 64512})},
			configs: []*resources.BGPConfiguration{bgpCfg("node.n2", resources.BGPConfigurationSpec{ListenPort: 1790})},
			want:    []string{"Global_10_0_0_2_port_1790 10.0.0.2:1790 as64512 passive"}},
		{name: "that node peers back with every node (reverse peering)", local: "n2",
			peers:   []*resources.BGPPeer{bgpPeer("to-n2", resources.BGPPeerSpec{PeerIP: "10.0.0.2", ASNumber: 64512})},
			configs: []*resources.BGPConfiguration{bgpCfg("node.n2", resources.BGPConfigurationSpec{ListenPort: 1790})},
			want: []string{
				"Node_10_0_0_1 10.0.0.1:0 as64512",
				"Node_10_0_0_3 10.0.0.3:0 as64512 passive",
			}},
		{name: "no reverse peering with another AS", local: "n2",
			peers: []*resources.BGPPeer{bgpPeer("to-n2", resources.BGPPeerSpec{PeerIP: "10.0.0.2", ASNumber: 65000})}},
		{name: "no reverse peering when Manual", local: "n2",
			peers: []*resources.BGPPeer{bgpPeer("to-n2", resources.BGPPeerSpec{PeerIP: "10.0.0.2", ASNumber: 64512, ReversePeering: new("Manual")})}},
		{name: "reverse of a node-specific peering", local: "n2",
			peers: []*resources.BGPPeer{bgpPeer("n1-n2", resources.BGPPeerSpec{Node: "n1", PeerIP: "10.0.0.2", ASNumber: 64512})},
			want:  []string{"Node_10_0_0_1 10.0.0.1:0 as64512"}},
		{name: "global peerSelector", local: "n3",
			peers: []*resources.BGPPeer{bgpPeer("rack-a", resources.BGPPeerSpec{PeerSelector: "rack == 'a'"})},
			want: []string{
				"Global_10_0_0_1 10.0.0.1:0 as64512",
				"Global_10_0_0_2 10.0.0.2:0 as64512",
			}},
		{name: "global peerSelector, a selected node: global then reverse sessions", local: "n1",
			peers: []*resources.BGPPeer{bgpPeer("rack-a", resources.BGPPeerSpec{PeerSelector: "rack == 'a'"})},
			want: []string{
				// Its own address is skipped; the reverse peering to n2
				// duplicates the global one and is dropped.
				"Global_10_0_0_2 10.0.0.2:0 as64512 passive",
				"Node_10_0_0_3 10.0.0.3:0 as64512 passive",
			}},
		{name: "own address skipped", local: "n1",
			peers: []*resources.BGPPeer{bgpPeer("all", resources.BGPPeerSpec{NodeSelector: "all()", PeerSelector: "all()"})},
			want: []string{
				"Node_10_0_0_2 10.0.0.2:0 as64512 passive",
				"Node_10_0_0_3 10.0.0.3:0 as64512 passive",
			}},
		{name: "a node-specific peering to a global one's address is dropped", local: "n1",
			peers: []*resources.BGPPeer{
				bgpPeer("a-global", tor),
				bgpPeer("b-node", resources.BGPPeerSpec{Node: "n1", PeerIP: "10.0.0.254", ASNumber: 65001}),
			},
			want: []string{"Global_10_0_0_254 10.0.0.254:0 as65000"}},
		{name: "one session per address: the first BGPPeer by name wins", local: "n1",
			peers: []*resources.BGPPeer{
				bgpPeer("tor-alt", with(tor, func(s *resources.BGPPeerSpec) { s.PeerIP = "10.0.0.254:1790" })),
				bgpPeer("tor", tor),
			},
			want:     []string{"Global_10_0_0_254 10.0.0.254:0 as65000"},
			wantWarn: []string{"Global_10_0_0_254_port_1790 dropped", "Global_10_0_0_254 already"}},
		{name: "one session per address: the mesh before a BGPPeer", local: "n1", mesh: true,
			peers: []*resources.BGPPeer{bgpPeer("all", resources.BGPPeerSpec{NodeSelector: "all()", PeerSelector: "rack == 'b'"})},
			want: []string{
				"Mesh_10_0_0_2 10.0.0.2:0 as64512 passive",
				"Mesh_10_0_0_3 10.0.0.3:0 as64512 passive",
			},
			wantWarn: []string{"Node_10_0_0_3 dropped", "Mesh_10_0_0_3 already"}},
		{name: "IPv6 peer on a node without IPv6", local: "n2",
			peers:    []*resources.BGPPeer{bgpPeer("tor6", resources.BGPPeerSpec{PeerIP: "fd00::fe", ASNumber: 65000})},
			wantWarn: []string{"BGPPeer tor6", "no IPv6 address"}},
		{name: "bad selector", local: "n1",
			peers:    []*resources.BGPPeer{bgpPeer("bad", resources.BGPPeerSpec{PeerSelector: "rack =="}), bgpPeer("tor", tor)},
			want:     []string{"Global_10_0_0_254 10.0.0.254:0 as65000"},
			wantWarn: []string{"BGPPeer bad", "spec.peerSelector", "ignored"}},
		{name: "peerIP without AS", local: "n1",
			peers:    []*resources.BGPPeer{bgpPeer("noas", resources.BGPPeerSpec{PeerIP: "10.0.0.254"})},
			wantWarn: []string{"BGPPeer noas", "asNumber"}},
		{name: "no remote side", local: "n1",
			peers:    []*resources.BGPPeer{bgpPeer("empty", resources.BGPPeerSpec{Node: "n1"})},
			wantWarn: []string{"BGPPeer empty", "none of"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfgs := tc.configs
			if !tc.mesh {
				cfgs = append(slices.Clone(cfgs), meshOff())
			}
			d := Compute(Input{NodeName: tc.local, Nodes: nodes, Configs: cfgMap(cfgs...), Peers: tc.peers})
			wantLines(t, "peers", summaries(d.Peers), tc.want)
			if tc.wantWarn != nil && !hasWarning(d.Warnings, tc.wantWarn...) {
				t.Errorf("no warning with %q in %q", tc.wantWarn, d.Warnings)
			}
			if tc.wantWarn == nil && len(d.Warnings) != 0 {
				t.Errorf("unexpected warnings %q", d.Warnings)
			}
		})
	}
}

// TestPeerSessionFields: every BGPPeer field that shapes a session.
func TestPeerSessionFields(t *testing.T) {
	nodes := nodeMap(mkNode("n1", "10.0.0.1/24"), mkNode("n2", "10.0.0.2/24"))
	filters := map[string]*resources.BGPFilter{"f1": {}, "f2": {}}
	filters["f1"].Name, filters["f2"].Name = "f1", "f2"
	full := resources.BGPPeerSpec{
		PeerIP: "192.0.2.1", ASNumber: 65000,
		Password:                 &resources.BGPPassword{SecretKeyRef: &resources.SecretKeySelector{Name: "bgp", Key: "tor"}},
		KeepaliveTime:            dur(10 * time.Second),
		MaxRestartTime:           dur(300 * time.Second),
		NumAllowedLocalASNumbers: new(int32(2)),
		TTLSecurity:              new(uint8(1)),
		NextHopMode:              new("Self"),
		Filters:                  []string{"f2", "missing", "f1"},
		ReachableBy:              "10.0.0.253",
		LocalASNumber:            new(resources.ASNumber(65100)),
	}
	cases := []struct {
		name     string
		spec     resources.BGPPeerSpec
		check    func(t *testing.T, p Peer)
		wantWarn string
	}{
		{name: "all fields", spec: full, wantWarn: "BGPFilter missing does not exist", check: func(t *testing.T, p Peer) {
			if p.PasswordRef == nil || *p.PasswordRef != (SecretRef{Name: "bgp", Key: "tor"}) {
				t.Errorf("password ref %+v", p.PasswordRef)
			}
			if p.SourceAddress != addr("10.0.0.1") || p.Passive || p.IsCalicoNode {
				t.Errorf("source %v passive %v calico %v", p.SourceAddress, p.Passive, p.IsCalicoNode)
			}
			if p.Keepalive != 10*time.Second || p.RestartTime != 300*time.Second || p.AllowOwnAS != 2 || p.TTLSecurity != 1 {
				t.Errorf("keepalive %v restart %v allow-own-as %d ttl %d", p.Keepalive, p.RestartTime, p.AllowOwnAS, p.TTLSecurity)
			}
			if p.NextHop != NextHopSelf || p.LocalASN != 65100 || p.ReachableBy != addr("10.0.0.253") || p.Source != "tor" {
				t.Errorf("next hop %q local AS %d reachable by %v source %q", p.NextHop, p.LocalASN, p.ReachableBy, p.Source)
			}
			if !slices.Equal(p.Filters, []string{"f2", "f1"}) {
				t.Errorf("filters %v", p.Filters)
			}
		}},
		{name: "sourceAddress None", spec: resources.BGPPeerSpec{PeerIP: "192.0.2.1", ASNumber: 65000, SourceAddress: "None"},
			check: func(t *testing.T, p Peer) {
				if p.SourceAddress.IsValid() {
					t.Errorf("source address %v, want none", p.SourceAddress)
				}
			}},
		{name: "keepOriginalNextHop on eBGP", spec: resources.BGPPeerSpec{PeerIP: "192.0.2.1", ASNumber: 65000, KeepOriginalNextHop: true},
			check: func(t *testing.T, p Peer) {
				if p.NextHop != NextHopKeep {
					t.Errorf("next hop %q, want Keep", p.NextHop)
				}
			}},
		{name: "keepOriginalNextHop ignored on iBGP", spec: resources.BGPPeerSpec{PeerIP: "192.0.2.1", ASNumber: 64512, KeepOriginalNextHop: true},
			check: func(t *testing.T, p Peer) {
				if p.NextHop != NextHopAuto {
					t.Errorf("next hop %q, want Auto", p.NextHop)
				}
			}},
		{name: "nextHopMode Keep", spec: resources.BGPPeerSpec{PeerIP: "192.0.2.1", ASNumber: 64512, NextHopMode: new("Keep")},
			check: func(t *testing.T, p Peer) {
				if p.NextHop != NextHopKeep {
					t.Errorf("next hop %q, want Keep", p.NextHop)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Compute(Input{NodeName: "n1", Nodes: nodes, Configs: cfgMap(meshOff()), Filters: filters,
				Peers: []*resources.BGPPeer{bgpPeer("tor", tc.spec)}})
			tc.check(t, peerNamed(t, d, "Global_192_0_2_1"))
			if tc.wantWarn != "" && !hasWarning(d.Warnings, tc.wantWarn) {
				t.Errorf("no warning %q in %q", tc.wantWarn, d.Warnings)
			}
		})
	}
}

// TestReflectorClientRule: on a reflector an iBGP peer is a client unless
// it reflects for our cluster; the session's local AS decides iBGP.
func TestReflectorClientRule(t *testing.T) {
	nodes := nodeMap(
		mkNode("rr1", "10.0.0.1/24", rr("1.0.0.1"), labels("rr", "x")),
		mkNode("rr2", "10.0.0.2/24", rr("1.0.0.2"), labels("rr", "x")),
		mkNode("rr3", "10.0.0.3/24", rr("1.0.0.1"), labels("rr", "x")),
	)
	cases := []struct {
		name string
		spec resources.BGPPeerSpec
		want []string
	}{
		{name: "reflectors of another cluster are clients", spec: resources.BGPPeerSpec{NodeSelector: "all()", PeerSelector: "has(rr)"},
			want: []string{
				"Node_10_0_0_2 10.0.0.2:0 as64512 passive rr-client/1.0.0.1",
				"Node_10_0_0_3 10.0.0.3:0 as64512 passive",
			}},
		{name: "a peerIP carries no cluster ID: even our cluster's reflector is a client",
			spec: resources.BGPPeerSpec{Node: "rr1", PeerIP: "10.0.0.3", ASNumber: 64512, ReversePeering: new("Manual")},
			want: []string{"Node_10_0_0_3 10.0.0.3:0 as64512 passive rr-client/1.0.0.1"}},
		{name: "eBGP peers are never clients", spec: resources.BGPPeerSpec{PeerIP: "192.0.2.1", ASNumber: 65000},
			want: []string{"Global_192_0_2_1 192.0.2.1:0 as65000"}},
		{name: "a local AS makes it eBGP", spec: resources.BGPPeerSpec{PeerIP: "192.0.2.1", ASNumber: 64512, LocalASNumber: new(resources.ASNumber(65001))},
			want: []string{"Global_192_0_2_1 192.0.2.1:0 as64512"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Compute(Input{NodeName: "rr1", Nodes: nodes, Peers: []*resources.BGPPeer{bgpPeer("p", tc.spec)}})
			wantLines(t, "peers", summaries(d.Peers), tc.want)
		})
	}
}

// TestLocalWorkloadPeers: localWorkloadSelector peers with this node's
// matching workloads, passively and without a source address.
func TestLocalWorkloadPeers(t *testing.T) {
	in := Input{
		NodeName: "n1",
		Nodes:    nodeMap(mkNode("n1", "10.0.0.1/24", v6("fd00::1/64")), mkNode("n2", "10.0.0.2/24")),
		Configs:  cfgMap(meshOff()),
		Peers: []*resources.BGPPeer{bgpPeer("pods", resources.BGPPeerSpec{LocalWorkloadSelector: "app == 'router'", ASNumber: 65010}),
			bgpPeer("other-node", resources.BGPPeerSpec{Node: "n2", LocalWorkloadSelector: "all()", ASNumber: 65011})},
		Workloads: []*state.Endpoint{
			wep("n1", "r1", map[string]string{"app": "router"}, "10.244.0.5/32", "fd00:244::5/128"),
			wep("n1", "web", map[string]string{"app": "web"}, "10.244.0.6/32"),
			wep("n2", "r2", map[string]string{"app": "router"}, "10.244.1.5/32"),
		},
	}
	d := Compute(in)
	wantLines(t, "peers", summaries(d.Peers), []string{
		"Local_Workload_10_244_0_5 10.244.0.5:0 as65010 passive",
		"Local_Workload_fd00_244__5 fd00:244::5:0 as65010 passive",
	})
	for _, p := range d.Peers {
		if p.Type != PeerLocalWorkload || p.SourceAddress.IsValid() || p.IsCalicoNode {
			t.Errorf("%s: type %q source %v calico %v", p.Name, p.Type, p.SourceAddress, p.IsCalicoNode)
		}
	}
}
