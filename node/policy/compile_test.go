package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

// rulesOf returns the rules of a chain as "rule # comment" lines.
func rulesOf(d Desired, chain string) []string {
	ch := d.Chain(chain)
	if ch == nil {
		return nil
	}
	var out []string
	for _, r := range ch.Rules {
		s := r.Rule
		if r.Comment != "" {
			s += " # " + r.Comment
		}
		out = append(out, s)
	}
	return out
}

// containsInOrder reports whether every sub occurs in lines, in order, each
// in a later line than the previous.
func containsInOrder(lines, subs []string) bool {
	i := 0
	for _, l := range lines {
		if i < len(subs) && strings.Contains(l, subs[i]) {
			i++
		}
	}
	return i == len(subs)
}

func oneEP(labels map[string]string, profiles ...string) []*state.Endpoint {
	return []*state.Endpoint{ep("ns1", "n1-k8s-a-eth0", "n1", "calix", labels, []string{"10.65.0.1/32"}, profiles...)}
}

func TestCompile(t *testing.T) {
	deny := []resources.Rule{{Action: resources.ActionDeny}}
	tests := []struct {
		name string
		in   Input
		// chains: chain -> substrings its rules must contain in order;
		// a nil value means the chain must not exist.
		chains map[string][]string
		// sets: selector comment -> elements (v4 set).
		sets  map[string][]string
		notes []string
	}{
		{
			name: "no policy, no profile: dispatch, then drop everything",
			in:   Input{NodeName: "n1", Endpoints: oneEP(nil)},
			chains: map[string][]string{
				"cali-tw-calix":         {"ct state established,related accept", "ct state invalid drop", "counter drop # Drop if no profiles matched"},
				"cali-from-wl-dispatch": {"iifname vmap @cali-from-wl-dispatch", "drop # Unknown interface"},
				"cali-to-wl-dispatch":   {"oifname vmap @cali-to-wl-dispatch", "drop # Unknown interface"},
				"cali-FORWARD":          {"ct state established,related accept", `iifname "cali*" jump cali-from-wl-dispatch`, `oifname "cali*" jump cali-to-wl-dispatch`},
				"cali-wl-to-host":       {"jump cali-from-wl-dispatch", "drop # DefaultEndpointToHostAction Drop"},
			},
		},
		{
			name: "remote endpoints get no chains",
			in:   Input{NodeName: "n9", Endpoints: oneEP(nil)},
			chains: map[string][]string{
				"cali-tw-calix": nil, "cali-fw-calix": nil, "cali-FORWARD": {"jump cali-from-wl-dispatch"},
			},
		},
		{
			name: "types default: egress rules only -> egress; no rules -> ingress",
			in: Input{NodeName: "n1", Endpoints: oneEP(map[string]string{"a": "b"}), GlobalPolicies: []*resources.GlobalNetworkPolicy{
				gnp("eg", "", nil, "has(a)", nil, allowAll),
				gnp("none", "", nil, "has(a)", nil, nil),
			}},
			chains: map[string][]string{
				"cali-po-gnp/eg": {"return"}, "cali-pi-gnp/eg": nil,
				"cali-pi-gnp/none": {}, "cali-po-gnp/none": nil,
				"cali-tw-calix": {"Start of tier default", "jump cali-pi-gnp/none", "End of tier default", "Drop if no profiles"},
				"cali-fw-calix": {"Start of tier default", "jump cali-po-gnp/eg", "End of tier default"},
			},
		},
		{
			name: "tier order, policy order then name, Pass tier has no end-of-tier drop, missing tier last",
			in: Input{NodeName: "n1", Endpoints: oneEP(nil, "p"),
				Tiers: []*resources.Tier{tier("b", 10, resources.ActionPass), tier("a", 20, resources.ActionDeny)},
				GlobalPolicies: []*resources.GlobalNetworkPolicy{
					gnp("z", "", nil, "", deny, nil),
					gnp("a.x", "a", fptr(2), "", deny, nil),
					gnp("a.w", "a", fptr(2), "", deny, nil),
					gnp("a.v", "a", fptr(1), "", deny, nil),
					gnp("b.y", "b", nil, "", deny, nil),
					gnp("ghost.q", "ghost", nil, "", deny, nil),
				},
				Profiles: []*resources.Profile{profile("p", nil, allowAll, allowAll)},
			},
			chains: map[string][]string{
				"cali-tw-calix": {
					"Start of tier b", "jump cali-pi-gnp/b.y", "Start of tier a", "jump cali-pi-gnp/a.v", "jump cali-pi-gnp/a.w",
					"jump cali-pi-gnp/a.x", "End of tier a", "Start of tier default", "jump cali-pi-gnp/z", "End of tier default",
					"Start of tier ghost", "jump cali-pi-gnp/ghost.q", "End of tier ghost", "jump cali-pri-p", "Return if profile accepted", "Drop if no profiles",
				},
			},
		},
		{
			name: "actions: Allow and Pass set marks and return, Deny drops (or rejects), Log names policy and rule",
			in: Input{NodeName: "n1", Endpoints: oneEP(nil), Felix: Settings{FilterDenyAction: "Reject"},
				GlobalPolicies: []*resources.GlobalNetworkPolicy{gnp("acts", "", nil, "", []resources.Rule{
					{Action: resources.ActionLog}, {Action: resources.ActionPass, Protocol: proto("UDP")},
					{Action: resources.ActionDeny, Protocol: proto("TCP")}, {Action: resources.ActionAllow},
				}, nil)}},
			chains: map[string][]string{"cali-pi-gnp/acts": {
				`counter log prefix "calico gnp/acts ingress 0: " level info`,
				"meta l4proto udp counter meta mark set meta mark | 0x00020000 return",
				"meta l4proto tcp counter reject", "counter meta mark set meta mark | 0x00010000 return",
			}},
		},
		{
			name: "ipVersion, icmp and notNets filter families",
			in: Input{NodeName: "n1", Endpoints: oneEP(nil), GlobalPolicies: []*resources.GlobalNetworkPolicy{gnp("fam", "", nil, "", []resources.Rule{
				{Action: resources.ActionAllow, IPVersion: iptr(6)},
				{Action: resources.ActionAllow, Protocol: proto("ICMPv6"), ICMP: &resources.ICMPFields{Type: iptr(128)}},
				{Action: resources.ActionAllow, Source: resources.EntityRule{NotNets: []string{"0.0.0.0/0"}}},
				{Action: resources.ActionAllow, Source: resources.EntityRule{Nets: []string{"10.1.0.0/16", "10.1.2.0/24"}}},
			}, nil)}},
			chains: map[string][]string{"cali-pi-gnp/fam": {
				"meta nfproto ipv6 counter", "meta nfproto ipv6 meta l4proto 58 icmpv6 type 128 counter",
				"meta nfproto ipv6 counter meta mark", // notNets 0.0.0.0/0: v6 only
				"meta nfproto ipv4 ip saddr { 10.1.0.0/16 } counter",
			}},
		},
		{
			name: "NetworkPolicy selects only its namespace; rule selectors are scoped to it",
			in: Input{NodeName: "n1",
				Endpoints: []*state.Endpoint{
					ep("ns1", "a", "n1", "calia", map[string]string{"app": "x"}, []string{"10.0.0.1/32"}),
					ep("ns2", "b", "n1", "calib", map[string]string{"app": "x"}, []string{"10.0.0.2/32"}),
				},
				Policies: []*resources.NetworkPolicy{np("ns1", "p", nil, "app == 'x'", []resources.Rule{
					{Action: resources.ActionAllow, Source: resources.EntityRule{Selector: "app == 'x'"}},
				}, nil)}},
			chains: map[string][]string{
				"cali-tw-calia": {"jump cali-pi-np/ns1/p"},
				"cali-tw-calib": {"meta mark set meta mark & 0xfffcffff", "drop # Drop if no profiles"},
			},
			sets: map[string][]string{"projectcalico.org/namespace == 'ns1' && app == 'x'": {"10.0.0.1"}},
		},
		{
			name: "preDNAT policy, unknown profile, http match and host endpoints are reported",
			in: Input{NodeName: "n1", Endpoints: oneEP(nil, "missing"),
				HostEndpoints: []*resources.HostEndpoint{{}},
				GlobalPolicies: []*resources.GlobalNetworkPolicy{
					func() *resources.GlobalNetworkPolicy {
						p := gnp("pre", "", nil, "", deny, nil)
						p.Spec.PreDNAT = true // without applyOnForward: invalid
						return p
					}(),
					gnp("web", "", nil, "", []resources.Rule{{Action: resources.ActionAllow, Protocol: proto("TCP"),
						HTTP: &resources.HTTPMatch{Methods: []string{"GET"}}}}, nil),
				}},
			chains: map[string][]string{"cali-pi-gnp/pre": nil, "cali-pi-gnp/web": {"meta l4proto tcp counter"}},
			notes:  []string{"gnp/pre: preDNAT and doNotTrack need applyOnForward", "http match not enforced", "profile missing: not found"},
		},
		{
			name: "host endpoints: failsafes first, forward chains only with applyOnForward, * fallback",
			in:   hostEndpoints(),
			chains: map[string][]string{
				"cali-fh-eth0": {"ct state established,related accept", "jump cali-failsafe-in", "Start of tier default",
					"jump cali-pi-gnp/deny-all", "End of tier default", "Drop if no profiles"},
				"cali-th-eth0":                 {"jump cali-failsafe-out", "jump cali-po-gnp/deny-all", "Drop if no profiles"},
				"cali-fhfw-eth0":               {"jump cali-pi-gnp/fwd-ssh-only", "End of tier default"},
				"cali-thfw-eth0":               {"clear accept and pass marks"},
				"cali-failsafe-in":             {"meta l4proto tcp th dport 22 accept", "ip saddr 192.0.2.0/24 meta l4proto udp th dport 161 accept"},
				"cali-failsafe-out":            {"meta l4proto udp th dport 53 accept", "meta l4proto tcp th dport 6667 accept"},
				"cali-fh-any-interface-at-all": {"jump cali-failsafe-in", "jump cali-pri-projectcalico-default-allow", "Drop if no profiles"},
				"cali-from-host-endpoint":      {"iifname vmap @cali-from-host-endpoint", `iifname != "lo" iifname != "cali*" goto cali-fh-any-interface-at-all`},
				"cali-INPUT":                   {`goto cali-wl-to-host`, "jump cali-from-host-endpoint"},
				"cali-OUTPUT":                  {`oifname "cali*" return`, "jump cali-to-host-endpoint"},
				"cali-FORWARD":                 {"ct state invalid drop", "jump cali-from-hep-forward", "jump cali-from-wl-dispatch", "jump cali-to-wl-dispatch", "jump cali-to-hep-forward"},
			},
			notes: []string{"host endpoint noiface: no interfaceName"},
		},
		{
			name: "preDNAT and doNotTrack layers: own base chains, no end-of-tier drop, marks skip the filter layer",
			in:   hostLayers(),
			chains: map[string][]string{
				"mangle-PREROUTING":              {"allowed by preDNAT", "jump mangle-cali-from-host-endpoint", "allowed by preDNAT"},
				"mangle-cali-from-host-endpoint": {"iifname vmap @mangle-cali-from-host-endpoint", "goto mangle-cali-fh-any-interface-at-all"},
				"mangle-cali-fh-eth0": {"ct state established,related accept", "jump cali-failsafe-in", "Start of tier default",
					"jump mangle-cali-pi-gnp/pre-block", "Return if policy accepted"},
				"mangle-cali-pi-gnp/pre-block":     {"ip saddr { 198.51.100.0/24 } counter drop", "meta l4proto tcp th dport { 8080 } counter meta mark set meta mark | 0x00010000 return"},
				"raw-PREROUTING":                   {"jump raw-cali-from-host-endpoint"},
				"raw-OUTPUT":                       {"jump raw-cali-to-host-endpoint"},
				"raw-cali-fh-eth0":                 {"jump raw-cali-failsafe-in", "jump raw-cali-pi-gnp/untracked"},
				"raw-cali-th-eth0":                 {"jump raw-cali-failsafe-out", "jump raw-cali-po-gnp/untracked"},
				"raw-cali-pi-gnp/untracked":        {"th dport { 7000 } counter meta mark set meta mark | 0x00010000 notrack return"},
				"raw-cali-failsafe-in":             {"meta l4proto tcp th dport 22 accept", "meta l4proto udp th sport 53 accept"},
				"raw-cali-failsafe-out":            {"meta l4proto udp th dport 53 accept", "meta l4proto tcp th sport 22 accept"},
				"cali-INPUT":                       {"allowed by preDNAT", "jump cali-from-host-endpoint"},
				"cali-OUTPUT":                      {"allowed by preDNAT", "jump cali-to-host-endpoint"},
				"cali-FORWARD":                     {"meta mark & 0x00010000 == 0 jump cali-from-hep-forward"},
				"cali-fh-eth0":                     {"jump cali-pi-gnp/host-deny", "End of tier default"},
				"cali-pi-gnp/pre-block":            nil,
				"raw-cali-fh-any-interface-at-all": nil,
			},
			notes: []string{`doNotTrack policy is not supported on interfaceName "*"`},
		},
		{
			name: "DefaultEndpointToHostAction Return",
			in:   Input{NodeName: "n1", Felix: Settings{DefaultEndpointToHostAction: "Return"}},
			chains: map[string][]string{
				"cali-wl-to-host": {"jump cali-from-wl-dispatch", "return # DefaultEndpointToHostAction Return"},
				"cali-INPUT":      {`iifname "cali*" goto cali-wl-to-host`},
			},
		},
		{
			name: "a name too long for nft is hashed",
			in: Input{NodeName: "n1", Endpoints: oneEP(nil), GlobalPolicies: []*resources.GlobalNetworkPolicy{
				gnp(strings.Repeat("a", 250), "", nil, "", deny, nil),
			}},
			chains: map[string][]string{"cali-tw-calix": {"jump cali-pi-_"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Compile(tt.in)
			for chain, subs := range tt.chains {
				got := rulesOf(d, chain)
				if subs == nil {
					if d.Chain(chain) != nil {
						t.Errorf("chain %s exists, want none", chain)
					}
					continue
				}
				if d.Chain(chain) == nil {
					t.Errorf("chain %s missing", chain)
					continue
				}
				if !containsInOrder(got, subs) {
					t.Errorf("chain %s:\n  %s\nwant in order %q", chain, strings.Join(got, "\n  "), subs)
				}
			}
			for comment, want := range tt.sets {
				var found *Set
				for i, s := range d.Sets {
					if s.Comment == strings.ReplaceAll(comment, "'", `"`) && s.Type == "ipv4_addr" {
						found = &d.Sets[i]
					}
				}
				if found == nil {
					t.Errorf("no set for %s in %v", comment, d.Sets)
				} else if !slices.Equal(found.Elements, want) {
					t.Errorf("set %s = %v, want %v", comment, found.Elements, want)
				}
			}
			for _, sub := range tt.notes {
				if !slices.ContainsFunc(d.Notes, func(n string) bool { return strings.Contains(n, sub) }) {
					t.Errorf("notes %q lack %q", d.Notes, sub)
				}
			}
			for _, ch := range d.Chains {
				if len(ch.Name) > maxNameLen {
					t.Errorf("chain name %d bytes long", len(ch.Name))
				}
			}
		})
	}
}
