package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

func pathLines(ps []Path) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		line := fmt.Sprintf("%s %s", p.Prefix, p.Kind)
		if len(p.Communities) > 0 {
			line += " " + strings.Join(p.Communities, ",")
		}
		out = append(out, line)
	}
	return out
}

func prefixLines(ps []netip.Prefix) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

// pathInput is node n1 with blocks and workloads in three pools (one not
// exported) and addresses borrowed from n2's block.
func pathInput() Input {
	deleted := block("10.244.0.128/26", "n1")
	deleted.Deleted = true
	return Input{
		NodeName: "n1",
		Nodes:    nodeMap(mkNode("n1", "10.0.0.1/24", v6("fd00::1/64")), mkNode("n2", "10.0.0.2/24")),
		Pools: []*resources.IPPool{
			pool("v4", "10.244.0.0/16"),
			pool("quiet", "10.245.0.0/16", func(s *resources.IPPoolSpec) { s.DisableBGPExport = true }),
			pool("v6", "fd00:244::/48"),
		},
		Blocks: []*state.Block{
			block("10.244.0.64/26", "n1"), block("10.244.0.0/26", "n1"), block("10.245.0.0/26", "n1"),
			block("fd00:244::/122", "n1"), block("10.244.1.0/26", "n2"), deleted,
		},
		Workloads: []*state.Endpoint{
			wep("n1", "own-block", nil, "10.244.0.5/32"),
			wep("n1", "borrowed", nil, "10.244.1.7/32", "fd00:244::1:5/128"),
			wep("n1", "quiet-pool", nil, "10.245.1.9/32"),
			wep("n1", "no-pool", nil, "192.168.99.9/32"),
			wep("n2", "elsewhere", nil, "10.244.2.9/32"),
		},
	}
}

func TestPaths(t *testing.T) {
	nodePaths := []string{
		"10.244.0.0/26 block",
		"10.244.0.64/26 block",
		"10.244.1.7/32 borrowed",
		"fd00:244::/122 block",
		"fd00:244::1:5/128 borrowed",
	}
	svc := resources.BGPConfigurationSpec{
		ServiceClusterIPs:      []resources.ServiceIPBlock{{CIDR: "10.96.0.0/12"}, {CIDR: "10.97.0.1/32"}},
		ServiceExternalIPs:     []resources.ServiceIPBlock{{CIDR: "192.0.2.0/24"}, {CIDR: "192.0.2.77/32"}},
		ServiceLoadBalancerIPs: []resources.ServiceIPBlock{{CIDR: "198.51.100.0/24"}, {CIDR: "198.51.100.9/32"}},
	}
	svcWith := func(f func(*resources.BGPConfigurationSpec)) resources.BGPConfigurationSpec {
		s := svc
		f(&s)
		return s
	}
	cases := []struct {
		name       string
		cfg        *resources.BGPConfigurationSpec
		env        Env
		nodeLabels map[string]string
		want       []string
		wantReject []string
	}{
		{name: "blocks and borrowed addresses, nothing from the quiet pool", want: nodePaths},
		{name: "service ranges", cfg: &svc,
			want: append([]string{"10.96.0.0/12 service", "10.97.0.1/32 service"}, append(slices.Clone(nodePaths[:3]),
				"192.0.2.0/24 service", "198.51.100.0/24 service", nodePaths[3], nodePaths[4])...),
			wantReject: []string{"10.96.0.0/12", "10.97.0.1/32", "192.0.2.0/24", "198.51.100.0/24"}},
		{name: "CALICO_ADVERTISE_CLUSTER_IPS replaces serviceClusterIPs", cfg: &svc, env: Env{AdvertiseClusterIPs: "10.100.0.0/16"},
			want: append([]string{"10.100.0.0/16 service"}, append(slices.Clone(nodePaths[:3]),
				"192.0.2.0/24 service", "198.51.100.0/24 service", nodePaths[3], nodePaths[4])...),
			wantReject: []string{"10.100.0.0/16", "192.0.2.0/24", "198.51.100.0/24"}},
		{name: "CALICO_ADVERTISE_CLUSTER_IPS alone", env: Env{AdvertiseClusterIPs: "fd00:96::/108"},
			want:       append(append(slices.Clone(nodePaths[:3]), "fd00:96::/108 service"), nodePaths[3:]...),
			wantReject: []string{"fd00:96::/108"}},
		{name: "load balancer aggregation disabled", cfg: new(svcWith(func(s *resources.BGPConfigurationSpec) {
			s.ServiceLoadBalancerAggregation = new("Disabled")
		})),
			want: append([]string{"10.96.0.0/12 service", "10.97.0.1/32 service"}, append(slices.Clone(nodePaths[:3]),
				"192.0.2.0/24 service", nodePaths[3], nodePaths[4])...),
			wantReject: []string{"10.96.0.0/12", "10.97.0.1/32", "192.0.2.0/24"}},
		{name: "excluded node: no service paths, rejects stay", cfg: &svc,
			nodeLabels: map[string]string{LabelExcludeFromLB: "true"},
			want:       nodePaths,
			wantReject: []string{"10.96.0.0/12", "10.97.0.1/32", "192.0.2.0/24", "198.51.100.0/24"}},
		{name: "no service path inside a quiet pool", cfg: &resources.BGPConfigurationSpec{
			ServiceExternalIPs: []resources.ServiceIPBlock{{CIDR: "10.245.128.0/24"}}},
			want: nodePaths, wantReject: []string{"10.245.128.0/24"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := pathInput()
			in.Env = tc.env
			if tc.cfg != nil {
				in.Configs = cfgMap(bgpCfg("default", *tc.cfg))
			}
			in.Nodes["n1"].Labels = tc.nodeLabels
			d := Compute(in)
			wantLines(t, "paths", pathLines(d.Paths), tc.want)
			wantLines(t, "reject", prefixLines(d.Reject), tc.wantReject)
			if len(d.Warnings) != 0 {
				t.Errorf("warnings %q", d.Warnings)
			}
		})
	}
}

// TestCommunities: prefixAdvertisements add communities to every path
// inside their CIDR; a node's own list replaces the default's; names
// resolve in the object that uses them.
func TestCommunities(t *testing.T) {
	global := bgpCfg("default", resources.BGPConfigurationSpec{
		Communities: []resources.Community{{Name: "rack-a", Value: "65000:100"}},
		PrefixAdvertisements: []resources.PrefixAdvertisement{
			{CIDR: "10.244.0.0/16", Communities: []string{"rack-a", "65000:200:3"}},
			{CIDR: "10.244.0.0/26", Communities: []string{"65000:300", "rack-a"}},
			{CIDR: "fd00:244::/48", Communities: []string{"rack-b"}},
		},
	})
	local := bgpCfg("node.n1", resources.BGPConfigurationSpec{
		Communities:          []resources.Community{{Name: "mine", Value: "65000:999"}},
		PrefixAdvertisements: []resources.PrefixAdvertisement{{CIDR: "10.244.0.64/26", Communities: []string{"mine", "rack-a"}}},
	})
	cases := []struct {
		name     string
		configs  []*resources.BGPConfiguration
		want     []string
		wantWarn []string
	}{
		{name: "global", configs: []*resources.BGPConfiguration{global},
			want: []string{
				"10.244.0.0/26 block 65000:100,65000:200:3,65000:300",
				"10.244.0.64/26 block 65000:100,65000:200:3",
				"10.244.1.7/32 borrowed 65000:100,65000:200:3",
				"fd00:244::/122 block",
				"fd00:244::1:5/128 borrowed",
			},
			wantWarn: []string{"BGPConfiguration default", `"rack-b"`}},
		{name: "per node replaces global; names resolve locally", configs: []*resources.BGPConfiguration{global, local},
			want: []string{
				"10.244.0.0/26 block",
				"10.244.0.64/26 block 65000:999",
				"10.244.1.7/32 borrowed",
				"fd00:244::/122 block",
				"fd00:244::1:5/128 borrowed",
			},
			wantWarn: []string{"BGPConfiguration node.n1", `"rack-a"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := pathInput()
			in.Configs = cfgMap(tc.configs...)
			d := Compute(in)
			wantLines(t, "paths", pathLines(d.Paths), tc.want)
			if !hasWarning(d.Warnings, tc.wantWarn...) {
				t.Errorf("no warning with %q in %q", tc.wantWarn, d.Warnings)
			}
		})
	}
}
