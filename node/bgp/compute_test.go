package bgp

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

// TestGlobalSettings: AS, router ID, listen port and addresses, and when
// BGP runs at all.
func TestGlobalSettings(t *testing.T) {
	dual := nodeMap(mkNode("master", "10.0.0.1/24", v6("fd00::1/64")), mkNode("n2", "10.0.0.2/24"))
	asCfg := func(a uint32) *resources.BGPConfiguration {
		x := resources.ASNumber(a)
		return bgpCfg("default", resources.BGPConfigurationSpec{ASNumber: &x})
	}
	cases := []struct {
		name     string
		in       Input
		want     Global
		disabled bool
		wantWarn string
	}{
		{name: "defaults", in: Input{Nodes: dual},
			want: Global{ASN: 64512, RouterID: addr("10.0.0.1"), ListenPort: 179, NodeIPv4: addr("10.0.0.1"), NodeIPv6: addr("fd00::1")}},
		{name: "AS from the default BGPConfiguration", in: Input{Nodes: dual, Configs: cfgMap(asCfg(65000))},
			want: Global{ASN: 65000, RouterID: addr("10.0.0.1"), ListenPort: 179, NodeIPv4: addr("10.0.0.1"), NodeIPv6: addr("fd00::1")}},
		{name: "the Node's AS wins", in: Input{Nodes: nodeMap(mkNode("master", "10.0.0.1/24", asn(65001))), Configs: cfgMap(asCfg(65000))},
			want: Global{ASN: 65001, RouterID: addr("10.0.0.1"), ListenPort: 179, NodeIPv4: addr("10.0.0.1")}},
		{name: "hashed router ID", in: Input{Nodes: dual, Env: Env{RouterID: "hash"}},
			// sha256("master") starts fc 61 3b 4d: 252 > 223, so 252-32.
			want: Global{ASN: 64512, RouterID: addr("220.97.59.77"), ListenPort: 179, NodeIPv4: addr("10.0.0.1"), NodeIPv6: addr("fd00::1")}},
		{name: "explicit router ID", in: Input{Nodes: dual, Env: Env{RouterID: "192.0.2.9", Backend: "bird"}},
			want: Global{ASN: 64512, RouterID: addr("192.0.2.9"), ListenPort: 179, NodeIPv4: addr("10.0.0.1"), NodeIPv6: addr("fd00::1")}},
		{name: "malformed router ID: hashed, with a warning", in: Input{Nodes: dual, Env: Env{RouterID: "fd00::9"}},
			want:     Global{ASN: 64512, RouterID: addr("220.97.59.77"), ListenPort: 179, NodeIPv4: addr("10.0.0.1"), NodeIPv6: addr("fd00::1")},
			wantWarn: "CALICO_ROUTER_ID"},
		{name: "IPv6-only node: hashed, with a warning", in: Input{Nodes: nodeMap(mkNode("master", "", v6("fd00::1/64")))},
			want:     Global{ASN: 64512, RouterID: addr("220.97.59.77"), ListenPort: 179, NodeIPv6: addr("fd00::1")},
			wantWarn: "no IPv4 address"},
		{name: "listen port: this node's configuration, then the default", in: Input{Nodes: dual, Configs: cfgMap(
			bgpCfg("default", resources.BGPConfigurationSpec{ListenPort: 1790}),
			bgpCfg("node.master", resources.BGPConfigurationSpec{ListenPort: 1791}),
			bgpCfg("node.n2", resources.BGPConfigurationSpec{ListenPort: 1792}))},
			want: Global{ASN: 64512, RouterID: addr("10.0.0.1"), ListenPort: 1791, NodeIPv4: addr("10.0.0.1"), NodeIPv6: addr("fd00::1")}},
		{name: "listen port from the default", in: Input{Nodes: dual, Configs: cfgMap(
			bgpCfg("default", resources.BGPConfigurationSpec{ListenPort: 1790}),
			bgpCfg("node.n2", resources.BGPConfigurationSpec{ListenPort: 1792}))},
			want: Global{ASN: 64512, RouterID: addr("10.0.0.1"), ListenPort: 1790, NodeIPv4: addr("10.0.0.1"), NodeIPv6: addr("fd00::1")}},
		{name: "bindMode NodeIP", in: Input{Nodes: dual, Configs: cfgMap(bgpCfg("default", resources.BGPConfigurationSpec{
			BindMode: new("NodeIP"), LocalWorkloadPeeringIPV4: "169.254.0.179"}))},
			want: Global{ASN: 64512, RouterID: addr("10.0.0.1"), ListenPort: 179, NodeIPv4: addr("10.0.0.1"), NodeIPv6: addr("fd00::1"),
				ListenAddresses: []netip.Addr{addr("10.0.0.1"), addr("fd00::1"), addr("169.254.0.179")}}},
		{name: "bindMode None", in: Input{Nodes: dual, Configs: cfgMap(bgpCfg("default", resources.BGPConfigurationSpec{BindMode: new("None")}))},
			want: Global{ASN: 64512, RouterID: addr("10.0.0.1"), ListenPort: 179, NodeIPv4: addr("10.0.0.1"), NodeIPv6: addr("fd00::1")}},
		{name: "VXLAN backend: no BGP", in: Input{Nodes: dual, Env: Env{Backend: "vxlan"}}, disabled: true},
		{name: "no Node: no BGP", in: Input{Nodes: nodeMap(mkNode("n2", "10.0.0.2/24"))}, disabled: true, wantWarn: "no Node resource"},
		{name: "no address: no BGP", in: Input{Nodes: nodeMap(mkNode("master", ""))}, disabled: true, wantWarn: "no BGP address"},
		{name: "malformed address: no BGP", in: Input{Nodes: nodeMap(mkNode("master", "10.0.0.300/24"))}, disabled: true, wantWarn: "spec.bgp.ipv4Address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.NodeName = "master"
			d := Compute(tc.in)
			if d.Enabled == tc.disabled {
				t.Fatalf("Enabled = %v, want %v (warnings %q)", d.Enabled, !tc.disabled, d.Warnings)
			}
			if tc.disabled {
				if len(d.Peers) != 0 || len(d.Paths) != 0 {
					t.Errorf("disabled BGP still has %d peers and %d paths", len(d.Peers), len(d.Paths))
				}
			} else if g := d.Global; g.ASN != tc.want.ASN || g.RouterID != tc.want.RouterID || g.ListenPort != tc.want.ListenPort ||
				g.NodeIPv4 != tc.want.NodeIPv4 || g.NodeIPv6 != tc.want.NodeIPv6 || !slices.Equal(g.ListenAddresses, tc.want.ListenAddresses) {
				t.Errorf("global = %+v\nwant     %+v", g, tc.want)
			}
			if tc.wantWarn != "" && !hasWarning(d.Warnings, tc.wantWarn) {
				t.Errorf("no warning with %q in %q", tc.wantWarn, d.Warnings)
			}
			if tc.wantWarn == "" && len(d.Warnings) != 0 {
				t.Errorf("unexpected warnings %q", d.Warnings)
			}
		})
	}
}

func TestHashToIPv4(t *testing.T) {
	cases := []struct{ node, want string }{
		{"node1", "202.18.243.27"}, // first byte 202: kept
		{"master", "220.97.59.77"}, // first byte 252: 252-32
		{"worker-7", "138.202.13.211"},
	}
	for _, tc := range cases {
		if got := HashToIPv4(tc.node); got != addr(tc.want) {
			t.Errorf("HashToIPv4(%q) = %v, want %s", tc.node, got, tc.want)
		}
	}
}

// TestComputeIsDeterministic: the same input in another order gives the
// same result (the speaker reconciles on equality).
func TestComputeIsDeterministic(t *testing.T) {
	in := seed004(true)
	in.NodeName = "master2"
	in.Pools = []*resources.IPPool{pool("a", "10.244.0.0/16"), pool("b", "10.245.0.0/16")}
	in.Blocks = []*state.Block{block("10.244.0.0/26", "master2"), block("10.245.0.64/26", "master2")}
	first := Compute(in)
	slices.Reverse(in.Peers)
	slices.Reverse(in.Pools)
	slices.Reverse(in.Blocks)
	second := Compute(in)
	if !slices.Equal(summaries(first.Peers), summaries(second.Peers)) || !slices.EqualFunc(first.Paths, second.Paths, func(a, b Path) bool { return a.Prefix == b.Prefix }) {
		t.Errorf("order changed the result:\n%v %v\n%v %v", summaries(first.Peers), first.Paths, summaries(second.Peers), second.Paths)
	}
	if len(first.Paths) != 2 || len(first.Peers) != 5 {
		t.Errorf("%d paths and %d peers, want 2 and 5", len(first.Paths), len(first.Peers))
	}
}
