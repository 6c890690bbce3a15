package bgp

import (
	"reflect"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/resources"
)

func TestCompileRule(t *testing.T) {
	pl := func(lo, hi *int32) *resources.BGPFilterPrefixLength {
		return &resources.BGPFilterPrefixLength{Min: lo, Max: hi}
	}
	i32 := func(v int32) *int32 { return &v }
	cases := []struct {
		name    string
		rule    resources.BGPFilterRuleV4
		v4      bool
		want    FilterRule
		wantErr string
	}{
		{name: "accept all", rule: resources.BGPFilterRuleV4{Action: "Accept"}, v4: true, want: FilterRule{Action: "Accept"}},
		{name: "In: cidr length up to 32 by default", v4: true,
			rule: resources.BGPFilterRuleV4{Action: "Reject", CIDR: "10.244.1.0/16", MatchOperator: "In"},
			want: FilterRule{Action: "Reject", CIDR: pfx("10.244.0.0/16"), MatchOperator: "In", PrefixLenMin: 16, PrefixLenMax: 32}},
		{name: "Equal v6: exactly the cidr's length", v4: false,
			rule: resources.BGPFilterRuleV4{Action: "Accept", CIDR: "fd00::/48", MatchOperator: "Equal"},
			want: FilterRule{Action: "Accept", CIDR: pfx("fd00::/48"), MatchOperator: "Equal", PrefixLenMin: 48, PrefixLenMax: 48}},
		{name: "prefixLength narrows", v4: true,
			rule: resources.BGPFilterRuleV4{Action: "Accept", CIDR: "10.0.0.0/8", MatchOperator: "NotIn", PrefixLength: pl(i32(16), i32(24))},
			want: FilterRule{Action: "Accept", CIDR: pfx("10.0.0.0/8"), MatchOperator: "NotIn", PrefixLenMin: 16, PrefixLenMax: 24}},
		{name: "prefixLength clamped into the cidr's range", v4: true,
			rule: resources.BGPFilterRuleV4{Action: "Accept", CIDR: "10.0.0.0/16", MatchOperator: "In", PrefixLength: pl(i32(8), i32(40))},
			want: FilterRule{Action: "Accept", CIDR: pfx("10.0.0.0/16"), MatchOperator: "In", PrefixLenMin: 16, PrefixLenMax: 32}},
		{name: "only a max", v4: true,
			rule: resources.BGPFilterRuleV4{Action: "Accept", CIDR: "10.0.0.0/16", MatchOperator: "In", PrefixLength: pl(nil, i32(26))},
			want: FilterRule{Action: "Accept", CIDR: pfx("10.0.0.0/16"), MatchOperator: "In", PrefixLenMin: 16, PrefixLenMax: 26}},
		{name: "every match field and operation", v4: true,
			rule: resources.BGPFilterRuleV4{
				Action: "Accept", Source: "RemotePeers", Interface: "cali*", PeerType: "eBGP",
				Communities:  &resources.BGPFilterCommunityMatch{Values: []string{"65000:100"}},
				ASPathPrefix: []resources.ASNumber{65001, 65002}, Priority: new(512),
				Operations: []resources.BGPFilterOperation{
					{AddCommunity: &resources.BGPFilterAddCommunity{Value: "65000:1:2"}},
					{PrependASPath: &resources.BGPFilterPrependASPath{Prefix: []resources.ASNumber{64512, 64513}}},
					{SetPriority: &resources.BGPFilterSetPriority{Value: 256}},
				},
			},
			want: FilterRule{
				Action: "Accept", Source: "RemotePeers", Interface: "cali*", PeerType: "eBGP", Community: "65000:100",
				ASPathPrefix: []uint32{65001, 65002}, Priority: 512,
				Operations: []FilterOperation{{AddCommunity: "65000:1:2"}, {PrependASPath: []uint32{64512, 64513}}, {SetPriority: 256}},
			}},
		{name: "bad action", rule: resources.BGPFilterRuleV4{Action: "Drop"}, v4: true, wantErr: "action"},
		{name: "v6 cidr in a v4 rule", v4: true, rule: resources.BGPFilterRuleV4{Action: "Accept", CIDR: "fd00::/8", MatchOperator: "In"}, wantErr: "IPv4 CIDR"},
		{name: "cidr without operator", v4: true, rule: resources.BGPFilterRuleV4{Action: "Accept", CIDR: "10.0.0.0/8"}, wantErr: "matchOperator"},
		{name: "operator without cidr", v4: true, rule: resources.BGPFilterRuleV4{Action: "Accept", MatchOperator: "In"}, wantErr: "need a cidr"},
		{name: "min above max", v4: true, rule: resources.BGPFilterRuleV4{Action: "Accept", CIDR: "10.0.0.0/8", MatchOperator: "In", PrefixLength: pl(i32(24), i32(16))}, wantErr: "above max"},
		{name: "two communities", v4: true, rule: resources.BGPFilterRuleV4{Action: "Accept", Communities: &resources.BGPFilterCommunityMatch{Values: []string{"1:1", "2:2"}}}, wantErr: "exactly one"},
		{name: "operations on Reject", v4: true, rule: resources.BGPFilterRuleV4{Action: "Reject", Operations: []resources.BGPFilterOperation{{SetPriority: &resources.BGPFilterSetPriority{Value: 1}}}}, wantErr: "Accept"},
		{name: "empty operation", v4: true, rule: resources.BGPFilterRuleV4{Action: "Accept", Operations: []resources.BGPFilterOperation{{}}}, wantErr: "operations[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CompileRule(tc.rule, tc.v4)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestPeerFilters: each session with filters gets its chain, in the
// peer's order, per family; a bad rule is skipped with a warning.
func TestPeerFilters(t *testing.T) {
	onlyPods := &resources.BGPFilter{Spec: resources.BGPFilterSpec{
		ExportV4: []resources.BGPFilterRuleV4{
			{Action: "Accept", CIDR: "10.244.0.0/16", MatchOperator: "In"},
			{Action: "Reject", CIDR: "bogus", MatchOperator: "In"},
			{Action: "Reject"},
		},
		ImportV6: []resources.BGPFilterRuleV6{{Action: "Reject", CIDR: "::/0", MatchOperator: "Equal"}},
	}}
	onlyPods.Name = "only-pods"
	noDefault := &resources.BGPFilter{Spec: resources.BGPFilterSpec{ImportV4: []resources.BGPFilterRuleV4{{Action: "Reject", CIDR: "0.0.0.0/0", MatchOperator: "Equal"}}}}
	noDefault.Name = "no-default"
	in := Input{
		NodeName: "n1",
		Nodes:    nodeMap(mkNode("n1", "10.0.0.1/24"), mkNode("n2", "10.0.0.2/24")),
		Configs:  cfgMap(meshOff()),
		Filters:  map[string]*resources.BGPFilter{"only-pods": onlyPods, "no-default": noDefault},
		Peers: []*resources.BGPPeer{
			bgpPeer("tor", resources.BGPPeerSpec{PeerIP: "192.0.2.1", ASNumber: 65000, Filters: []string{"no-default", "only-pods"}}),
			bgpPeer("plain", resources.BGPPeerSpec{PeerIP: "192.0.2.2", ASNumber: 65000}),
		},
	}
	d := Compute(in)
	if len(d.Filters) != 1 || d.Filters[0].Peer != addr("192.0.2.1") {
		t.Fatalf("filters = %+v, want one chain for 192.0.2.1", d.Filters)
	}
	chain := d.Filters[0].Filters
	if len(chain) != 2 || chain[0].Name != "no-default" || chain[1].Name != "only-pods" {
		t.Fatalf("chain = %+v", chain)
	}
	wantExport := []FilterRule{
		{Action: "Accept", CIDR: pfx("10.244.0.0/16"), MatchOperator: "In", PrefixLenMin: 16, PrefixLenMax: 32},
		{Action: "Reject"},
	}
	if !reflect.DeepEqual(chain[1].ExportV4, wantExport) {
		t.Errorf("only-pods exportV4 = %+v", chain[1].ExportV4)
	}
	if len(chain[1].ImportV6) != 1 || chain[1].ImportV6[0].CIDR != pfx("::/0") || len(chain[1].ImportV4) != 0 {
		t.Errorf("only-pods importV6 = %+v, importV4 = %+v", chain[1].ImportV6, chain[1].ImportV4)
	}
	if len(chain[0].ImportV4) != 1 || chain[0].ImportV4[0].PrefixLenMin != 0 || chain[0].ImportV4[0].PrefixLenMax != 0 {
		t.Errorf("no-default importV4 = %+v, want the default route only", chain[0].ImportV4)
	}
	if !hasWarning(d.Warnings, "BGPFilter only-pods", "exportV4[1]", "skipped") {
		t.Errorf("no warning about the bad rule in %q", d.Warnings)
	}
}
