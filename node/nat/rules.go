package nat

import "sigs.k8s.io/knftables"

// setSpec defines one set or map of our table.
type setSpec struct {
	name    string
	isMap   bool
	typ     string
	flags   []knftables.SetFlag
	comment string
}

type ruleSpec struct{ rule, comment string }

// chainSpec defines one base chain of our table.
type chainSpec struct {
	name     string
	hook     knftables.BaseChainHook
	priority knftables.BaseChainPriority
	comment  string
	rules    []ruleSpec
}

type family struct {
	sfx, addrType, match, kw string // "", "ipv4_addr", "ip", "ip"
}

var families = []family{
	{sfx: "", addrType: "ipv4_addr", match: "ip", kw: "ip"},
	{sfx: v6Suffix, addrType: "ipv6_addr", match: "ip6", kw: "ip6"},
}

// setSpecs returns our sets and maps in a fixed order.
func setSpecs() []setSpec {
	var out []setSpec
	for _, f := range families {
		out = append(out,
			setSpec{name: SetMasqPools + f.sfx, typ: f.addrType, flags: []knftables.SetFlag{knftables.IntervalFlag},
				comment: "IP pools with natOutgoing"},
			setSpec{name: SetAllPools + f.sfx, typ: f.addrType, flags: []knftables.SetFlag{knftables.IntervalFlag},
				comment: "all IP pools"},
			setSpec{name: MapFloatingDNAT + f.sfx, isMap: true, typ: f.addrType + " : " + f.addrType,
				comment: "floating IP -> workload IP"},
			setSpec{name: MapFloatingSNAT + f.sfx, isMap: true, typ: f.addrType + " : " + f.addrType,
				comment: "workload IP -> floating IP"},
			setSpec{name: MapFloatingHairpin + f.sfx, isMap: true, typ: f.addrType + " . " + f.addrType + " : " + f.addrType,
				comment: "workload IP . workload IP -> floating IP"},
		)
	}
	return out
}

// chainSpecs returns our base chains. Rules reference sets and maps only, so
// they never change with the Desired state. A map lookup that misses ends the
// rule without a verdict, so the next rule is evaluated.
func chainSpecs() []chainSpec {
	var dnat, post []ruleSpec
	for _, f := range families {
		dnat = append(dnat, ruleSpec{
			rule:    "dnat " + f.kw + " to " + f.match + " daddr map @" + MapFloatingDNAT + f.sfx,
			comment: "floating IP to workload",
		})
	}
	for _, f := range families {
		post = append(post,
			ruleSpec{
				rule:    "snat " + f.kw + " to " + f.match + " saddr . " + f.match + " daddr map @" + MapFloatingHairpin + f.sfx,
				comment: "workload to its own floating IP",
			},
			ruleSpec{
				rule:    f.match + " daddr != @" + SetAllPools + f.sfx + " snat " + f.kw + " to " + f.match + " saddr map @" + MapFloatingSNAT + f.sfx,
				comment: "workload with a floating IP to outside the pools",
			},
			ruleSpec{
				rule:    f.match + " saddr @" + SetMasqPools + f.sfx + " " + f.match + " daddr != @" + SetAllPools + f.sfx + " masquerade",
				comment: "natOutgoing: pool to outside the pools",
			},
		)
	}
	return []chainSpec{
		{name: chainPrerouting, hook: knftables.PreroutingHook, priority: knftables.DNATPriority,
			comment: "floating IP DNAT", rules: dnat},
		{name: chainOutput, hook: knftables.OutputHook, priority: knftables.DNATPriority,
			comment: "floating IP DNAT for local traffic", rules: dnat},
		{name: chainPostrouting, hook: knftables.PostroutingHook, priority: knftables.SNATPriority,
			comment: "floating IP SNAT and natOutgoing masquerade", rules: post},
	}
}
