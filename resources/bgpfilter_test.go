package resources

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestBGPFilterValidate(t *testing.T) {
	v4 := func(r BGPFilterRuleV4) BGPFilterSpec { return BGPFilterSpec{ExportV4: []BGPFilterRuleV4{r}} }
	v6 := func(r BGPFilterRuleV6) BGPFilterSpec { return BGPFilterSpec{ImportV6: []BGPFilterRuleV6{r}} }
	pl := func(lo, hi int32) *BGPFilterPrefixLength { return &BGPFilterPrefixLength{Min: &lo, Max: &hi} }
	cases := []struct {
		name      string
		spec      BGPFilterSpec
		wantField string
	}{
		{name: "empty"},
		{name: "accept all", spec: v4(BGPFilterRuleV4{Action: "Accept"})},
		{name: "v4 match", spec: v4(BGPFilterRuleV4{CIDR: "10.0.0.0/8", MatchOperator: "In", PrefixLength: pl(16, 24), Action: "Reject"})},
		{name: "v6 match", spec: v6(BGPFilterRuleV6{CIDR: "fd00::/48", MatchOperator: "NotIn", PrefixLength: pl(64, 128), Action: "Accept"})},
		{name: "source and interface", spec: v4(BGPFilterRuleV4{Source: "RemotePeers", Interface: "eth*", Action: "Accept"})},

		{name: "missing action", spec: v4(BGPFilterRuleV4{}), wantField: "spec.exportV4[0].action"},
		{name: "bad action", spec: v4(BGPFilterRuleV4{Action: "accept"}), wantField: "spec.exportV4[0].action"},
		{name: "bad operator", spec: v4(BGPFilterRuleV4{CIDR: "10.0.0.0/8", MatchOperator: "Contains", Action: "Accept"}), wantField: "spec.exportV4[0].matchOperator"},
		{name: "cidr without operator", spec: v4(BGPFilterRuleV4{CIDR: "10.0.0.0/8", Action: "Accept"}), wantField: "spec.exportV4[0].cidr"},
		{name: "operator without cidr", spec: v4(BGPFilterRuleV4{MatchOperator: "Equal", Action: "Accept"}), wantField: "spec.exportV4[0].cidr"},
		{name: "bad cidr", spec: v4(BGPFilterRuleV4{CIDR: "10.0.0.0/99", MatchOperator: "Equal", Action: "Accept"}), wantField: "spec.exportV4[0].cidr"},
		{name: "v6 cidr in v4 rule", spec: v4(BGPFilterRuleV4{CIDR: "fd00::/8", MatchOperator: "Equal", Action: "Accept"}), wantField: "spec.exportV4[0].cidr"},
		{name: "v4 cidr in v6 rule", spec: v6(BGPFilterRuleV6{CIDR: "10.0.0.0/8", MatchOperator: "Equal", Action: "Accept"}), wantField: "spec.importV6[0].cidr"},
		{name: "prefix without cidr", spec: v4(BGPFilterRuleV4{PrefixLength: pl(8, 24), Action: "Accept"}), wantField: "spec.exportV4[0].prefixLength"},
		{name: "prefix max over 32", spec: v4(BGPFilterRuleV4{CIDR: "10.0.0.0/8", MatchOperator: "In", PrefixLength: pl(8, 33), Action: "Accept"}), wantField: "spec.exportV4[0].prefixLength.max"},
		{name: "prefix min under cidr", spec: v4(BGPFilterRuleV4{CIDR: "10.0.0.0/16", MatchOperator: "In", PrefixLength: pl(8, 24), Action: "Accept"}), wantField: "spec.exportV4[0].prefixLength.min"},
		{name: "prefix min over max", spec: v6(BGPFilterRuleV6{CIDR: "fd00::/16", MatchOperator: "In", PrefixLength: pl(100, 64), Action: "Accept"}), wantField: "spec.importV6[0].prefixLength.min"},
		{name: "v6 prefix over 128", spec: v6(BGPFilterRuleV6{CIDR: "fd00::/16", MatchOperator: "In", PrefixLength: pl(64, 129), Action: "Accept"}), wantField: "spec.importV6[0].prefixLength.max"},
		{name: "bad source", spec: v4(BGPFilterRuleV4{Source: "Peers", Action: "Accept"}), wantField: "spec.exportV4[0].source"},
		{name: "bad interface", spec: v4(BGPFilterRuleV4{Interface: "eth 0", Action: "Accept"}), wantField: "spec.exportV4[0].interface"},
		{name: "second list", spec: BGPFilterSpec{ImportV4: []BGPFilterRuleV4{{Action: "Accept"}, {Action: "Drop"}}}, wantField: "spec.importV4[1].action"},
		{name: "export v6", spec: BGPFilterSpec{ExportV6: []BGPFilterRuleV6{{Action: "x"}}}, wantField: "spec.exportV6[0].action"},

		{name: "peer type", spec: v4(BGPFilterRuleV4{PeerType: "iBGP", Action: "Reject"})},
		{name: "bad peer type", spec: v4(BGPFilterRuleV4{PeerType: "ibgp", Action: "Reject"}), wantField: "spec.exportV4[0].peerType"},
		{name: "community match", spec: v6(BGPFilterRuleV6{Communities: &BGPFilterCommunityMatch{Values: []string{"65000:100:7"}}, Action: "Accept"})},
		{name: "two communities", spec: v4(BGPFilterRuleV4{Communities: &BGPFilterCommunityMatch{Values: []string{"1:2", "3:4"}}, Action: "Accept"}), wantField: "spec.exportV4[0].communities.values"},
		{name: "bad community", spec: v4(BGPFilterRuleV4{Communities: &BGPFilterCommunityMatch{Values: []string{"70000:1"}}, Action: "Accept"}), wantField: "spec.exportV4[0].communities.values[0]"},
		{name: "as path and priority", spec: v4(BGPFilterRuleV4{ASPathPrefix: []ASNumber{65001, 65002}, Priority: new(512), Action: "Accept"})},
		{name: "priority zero", spec: v4(BGPFilterRuleV4{Priority: new(0), Action: "Accept"}), wantField: "spec.exportV4[0].priority"},
		{name: "operations", spec: v4(BGPFilterRuleV4{Action: "Accept", Operations: []BGPFilterOperation{
			{AddCommunity: &BGPFilterAddCommunity{Value: "65000:1"}},
			{PrependASPath: &BGPFilterPrependASPath{Prefix: []ASNumber{65000, 65000}}},
			{SetPriority: &BGPFilterSetPriority{Value: 100}},
		}})},
		{name: "operations on reject", spec: v4(BGPFilterRuleV4{Action: "Reject", Operations: []BGPFilterOperation{{SetPriority: &BGPFilterSetPriority{Value: 100}}}}), wantField: "spec.exportV4[0].operations"},
		{name: "empty operation", spec: v4(BGPFilterRuleV4{Action: "Accept", Operations: []BGPFilterOperation{{}}}), wantField: "spec.exportV4[0].operations[0]"},
		{name: "two ops in one", spec: v4(BGPFilterRuleV4{Action: "Accept", Operations: []BGPFilterOperation{{
			AddCommunity: &BGPFilterAddCommunity{Value: "1:1"}, SetPriority: &BGPFilterSetPriority{Value: 5},
		}}}), wantField: "spec.exportV4[0].operations[0]"},
		{name: "empty prepend", spec: v4(BGPFilterRuleV4{Action: "Accept", Operations: []BGPFilterOperation{{PrependASPath: &BGPFilterPrependASPath{}}}}), wantField: "spec.exportV4[0].operations[0].prependASPath.prefix"},
		{name: "bad set priority", spec: v6(BGPFilterRuleV6{Action: "Accept", Operations: []BGPFilterOperation{{SetPriority: &BGPFilterSetPriority{Value: -1}}}}), wantField: "spec.importV6[0].operations[0].setPriority.value"},
		{name: "bad add community", spec: v4(BGPFilterRuleV4{Action: "Accept", Operations: []BGPFilterOperation{{AddCommunity: &BGPFilterAddCommunity{Value: "x"}}}}), wantField: "spec.exportV4[0].operations[0].addCommunity.value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &BGPFilter{ObjectMeta: metav1.ObjectMeta{Name: "filter"}, Spec: tc.spec}
			expectDefaultIdempotent(t, f)
			expectValidation(t, f, tc.wantField)
		})
	}
}

func TestBGPFilterStrictDecode(t *testing.T) {
	expectStrictRoundTrip[BGPFilter](t, `
apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata:
  name: only-pods
spec:
  exportV4:
  - action: Accept
    matchOperator: In
    cidr: 10.244.0.0/16
    prefixLength: {min: 26, max: 32}
  - action: Reject
    peerType: eBGP
  - action: Accept
    communities:
      values: ["65000:100"]
    asPathPrefix: [65001, 65002]
    priority: 512
    operations:
    - addCommunity: {value: "65000:200:1"}
    - prependASPath: {prefix: [64512, 64512]}
    - setPriority: {value: 256}
  importV4:
  - action: Reject
    source: RemotePeers
    interface: "vxlan.*"
  exportV6:
  - action: Accept
    matchOperator: Equal
    cidr: fd00:10::/64
  importV6:
  - action: Accept
    matchOperator: NotEqual
    cidr: "::/0"
`)
}
