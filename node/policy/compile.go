package policy

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
	"github.com/opencalico/calicoctl/resources/selector"
)

// The compiled table, `inet calico-filter`, mirrors upstream's nftables
// dataplane (spec/policy.md §4) with the "filter-" layer prefix dropped:
//
//   - base chains cali-FORWARD, cali-INPUT, cali-OUTPUT (type filter,
//     priority filter, policy accept): established/related accepted and
//     invalid workload traffic dropped first, then dispatch;
//   - cali-from-wl-dispatch / cali-to-wl-dispatch: `iifname vmap` /
//     `oifname vmap` through the maps of the same names ("caliX" : goto
//     cali-fw-caliX / cali-tw-caliX), then drop ("Unknown interface");
//   - cali-wl-to-host: workload egress policy, then
//     DefaultEndpointToHostAction;
//   - endpoint chains cali-fw-<iface> / cali-tw-<iface> (and for host
//     endpoints cali-fh-/cali-th-/cali-fhfw-/cali-thfw-<iface>, with
//     "any-interface-at-all" for "*"): tiers in order, each policy
//     jumped to unless the pass mark is set, return on the accept mark,
//     end-of-tier drop unless the tier passes, then profiles, then drop;
//   - policy chains cali-pi-/cali-po-<kind>/[<ns>/]<name> (kind gnp, np or
//     knp) and profile chains cali-pri-/cali-pro-<name>: one or more nft
//     rules per API rule, Allow/Pass setting the accept/pass mark and
//     returning, Deny dropping, Log logging;
//   - sets cali40s-/cali60s-<hash> (selector: addresses, interval) and
//     cali40n-/cali60n-<hash> (named port: addr . proto . port), named as
//     upstream's IP sets, the selector in the comment.
//
// Chains no endpoint reaches are not compiled.

// TableName is the name of the policy writer's nftables table (family
// inet: one table carries IPv4 and IPv6, like node/nat's calico-nat).
const TableName = "calico-filter"

// Mark bits, as upstream's with NftablesMarkMask 0xffff0000.
const (
	markAccept = 0x10000
	markPass   = 0x20000
)

// Names of the static chains and maps (upstream's names without the
// "filter-" layer prefix: this table only has the filter layer).
const (
	ChainForward        = "cali-FORWARD"
	ChainInput          = "cali-INPUT"
	ChainOutput         = "cali-OUTPUT"
	ChainWlToHost       = "cali-wl-to-host"
	ChainFromWlDispatch = "cali-from-wl-dispatch"
	ChainToWlDispatch   = "cali-to-wl-dispatch"
	// MapFromWlDispatch and MapToWlDispatch are the verdict maps
	// (ifname : verdict) of the dispatch chains; nft keeps maps and
	// chains in separate namespaces, so they share the chains' names.
	MapFromWlDispatch = "cali-from-wl-dispatch"
	MapToWlDispatch   = "cali-to-wl-dispatch"
)

// Desired is the nftables content of TableName for one node: every chain,
// set and map with its rules and elements. It is a pure value: Render puts
// it into one knftables transaction, Dump renders it as text.
type Desired struct {
	// Chains sorted by name; base chains have a Hook.
	Chains []Chain
	// Sets sorted by name (selector and named-port sets).
	Sets []Set
	// Maps sorted by name (the workload dispatch verdict maps).
	Maps []Map
	// Notes lists what was not compiled and why (http matches, host
	// endpoints, invalid input), sorted and deduplicated.
	Notes []string
}

// Chain is one chain of the table.
type Chain struct {
	Name string
	// Hook is "" for a regular chain; base chains have a hook, type
	// filter and policy accept, at Priority ("" = filter; "mangle" and
	// "raw" for the preDNAT and doNotTrack layers).
	Hook     string
	Priority string
	Comment  string
	Rules    []Rule
}

// Rule is one nft rule (without the chain) and its comment.
type Rule struct {
	Rule, Comment string
}

// Set is a named set: Type is an nft type ("ipv4_addr", or
// "ipv4_addr . inet_proto . inet_service" for named ports).
type Set struct {
	Name, Type string
	Interval   bool
	Comment    string
	Elements   []string
}

// Map is a verdict map keyed by interface name.
type Map struct {
	Name, Type, Comment string
	Elements            []MapElement
}

// MapElement is one key : value of a Map, in nft syntax.
type MapElement struct{ Key, Value string }

// Chain returns the chain named name, or nil.
func (d *Desired) Chain(name string) *Chain {
	i, ok := slices.BinarySearchFunc(d.Chains, name, func(c Chain, n string) int { return cmp.Compare(c.Name, n) })
	if !ok {
		return nil
	}
	return &d.Chains[i]
}

// Set returns the set named name, or nil.
func (d *Desired) Set(name string) *Set {
	i, ok := slices.BinarySearchFunc(d.Sets, name, func(s Set, n string) int { return cmp.Compare(s.Name, n) })
	if !ok {
		return nil
	}
	return &d.Sets[i]
}

// compiler holds the indexes of one Compile call.
type compiler struct {
	in       Input
	tiers    map[string]compileTier
	policies []*compilePolicy // sorted in evaluation order
	profiles map[string]*resources.Profile
	subjects []compileSubject // everything that can be a selector set member
	// subjectFPs are the fingerprints of the first subjects (a Compiler's
	// memo of workload endpoints; the rest are computed when needed).
	subjectFPs []string
	// subjectsByNS are the subjects of each namespace, in subjects' order
	// (the candidates of a namespace-scoped selector).
	subjectsByNS map[string][]compileSubject
	namespaces   []string // the keys of subjectsByNS, sorted ("" = global)
	// nsMatched memoizes nsMatch per namespaceSelector and namespace.
	nsMatched map[nsMatchKey]bool
	nsLabels  map[string]map[string]string
	saLabels  map[string]map[string]string // "<ns>/<sa>"

	chains map[string]Chain
	sets   map[string]Set
	notes  map[string]bool
	// memo remembers set members and rule chains across the calls of a
	// Compiler (nil for Compile).
	memo *setMemo
	// rec, when set, records what the chain being compiled asked for
	// (sets, notes), to be asked for again when the memo reuses it.
	rec *chainRecord
	// policyByID indexes policies (a Compiler's memo only).
	policyByID map[string]*compilePolicy
}

type compileTier struct {
	name  string
	order float64 // +Inf when unset
	pass  bool    // defaultAction Pass
	valid bool
}

// compilePolicy is a GNP or NP with what the compiler needs of it.
type compilePolicy struct {
	id                string // chain id: gnp/<name>, np/<ns>/<name>, knp/<ns>/<name>
	kind, ns, name    string
	tier              compileTier
	order             float64
	selectsEndpoint   func(compileSubject) bool
	applyOnForward    bool   // GNP only: also polices forwarded host endpoint traffic
	layer             string // "" (filter), layerMangle (preDNAT) or layerRaw (doNotTrack)
	ingress, egress   bool   // types
	inRules, outRules []resources.Rule
	// selectors are the texts of the selectors selectsEndpoint evaluates.
	selectors string
}

// compileSubject is anything whose addresses can be in a selector set:
// a workload endpoint, a host endpoint or a (global) network set.
type compileSubject struct {
	ns, sa     string // namespace ("" = global), service account
	labels     map[string]string
	nets       []string // CIDRs or addresses
	namedPorts []resources.WorkloadEndpointPort
	ep         *state.Endpoint // nil unless a workload endpoint
}

// Compile returns the desired content of our nftables table for the
// workload endpoints of in.NodeName. It is pure and deterministic.
func Compile(in Input) Desired { return compile(in, nil) }

func compile(in Input, memo *setMemo) Desired {
	c := &compiler{
		memo: memo,
		in:   in, profiles: map[string]*resources.Profile{},
		nsLabels: map[string]map[string]string{}, saLabels: map[string]map[string]string{},
		chains: map[string]Chain{}, sets: map[string]Set{}, notes: map[string]bool{},
		subjectsByNS: map[string][]compileSubject{}, nsMatched: map[nsMatchKey]bool{},
	}
	c.indexProfiles()
	c.indexTiers()
	if memo != nil {
		memo.beginProfiles(c)
	}
	c.indexSubjects()
	c.indexPolicies()
	if memo != nil {
		memo.begin(c)
		defer memo.end()
	}

	var local []*state.Endpoint
	for _, ep := range in.Endpoints {
		if ep != nil && ep.Node == in.NodeName {
			if ep.InterfaceName == "" {
				c.note("endpoint %s/%s: no interface name, not programmed", ep.Key.Namespace, ep.Key.Name)
				continue
			}
			local = append(local, ep)
		}
	}
	slices.SortFunc(local, func(a, b *state.Endpoint) int { return cmp.Compare(a.InterfaceName, b.InterfaceName) })

	fromMap := Map{Name: MapFromWlDispatch, Type: "ifname : verdict", Comment: "workload interface -> its egress chain"}
	toMap := Map{Name: MapToWlDispatch, Type: "ifname : verdict", Comment: "workload interface -> its ingress chain"}
	for i, ep := range local {
		if i > 0 && local[i-1].InterfaceName == ep.InterfaceName {
			c.note("endpoint %s/%s: interface %s already used by another endpoint, not programmed", ep.Key.Namespace, ep.Key.Name, ep.InterfaceName)
			continue
		}
		fw, tw := "cali-fw-"+ep.InterfaceName, "cali-tw-"+ep.InterfaceName
		who := fmt.Sprintf("workload %s/%s", ep.Key.Namespace, ep.Key.Name)
		if memo != nil {
			subj, fp := memo.endpointSubject(c, ep)
			c.chains[fw] = memo.workloadChain(c, compileEndpoint{chain: fw, comment: "egress of " + who, subj: subj, profiles: ep.Profiles, fromWorkload: true}, fp)
			c.chains[tw] = memo.workloadChain(c, compileEndpoint{chain: tw, comment: "ingress of " + who, subj: subj, profiles: ep.Profiles, ingress: true}, fp)
		} else {
			subj := c.endpointSubject(ep)
			c.chains[fw] = c.endpointChain(compileEndpoint{chain: fw, comment: "egress of " + who, subj: subj, profiles: ep.Profiles, fromWorkload: true})
			c.chains[tw] = c.endpointChain(compileEndpoint{chain: tw, comment: "ingress of " + who, subj: subj, profiles: ep.Profiles, ingress: true})
		}
		key := quote(ep.InterfaceName)
		fromMap.Elements = append(fromMap.Elements, MapElement{Key: key, Value: "goto " + fw})
		toMap.Elements = append(toMap.Elements, MapElement{Key: key, Value: "goto " + tw})
	}
	c.staticChains()
	hepMaps := c.hostEndpoints()

	d := Desired{Maps: append([]Map{fromMap, toMap}, hepMaps...)}
	for _, ch := range c.chains {
		d.Chains = append(d.Chains, ch)
	}
	for _, s := range c.sets {
		d.Sets = append(d.Sets, s)
	}
	for n := range c.notes {
		d.Notes = append(d.Notes, n)
	}
	slices.SortFunc(d.Chains, func(a, b Chain) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(d.Sets, func(a, b Set) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(d.Maps, func(a, b Map) int { return cmp.Compare(a.Name, b.Name) })
	slices.Sort(d.Notes)
	return d
}

func (c *compiler) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	c.notes[n] = true
	if c.rec != nil {
		c.rec.notes = append(c.rec.notes, n)
	}
}

func (c *compiler) indexProfiles() {
	for _, p := range c.in.Profiles {
		if p == nil {
			continue
		}
		c.profiles[p.Name] = p
		switch {
		case strings.HasPrefix(p.Name, "kns."):
			c.nsLabels[strings.TrimPrefix(p.Name, "kns.")] = stripPrefix(p.Spec.LabelsToApply, "pcns.")
		case strings.HasPrefix(p.Name, "ksa."):
			rest := strings.TrimPrefix(p.Name, "ksa.")
			if ns, sa, ok := strings.Cut(rest, "."); ok {
				c.saLabels[ns+"/"+sa] = stripPrefix(p.Spec.LabelsToApply, "pcsa.")
			}
		}
	}
	if _, ok := c.profiles["projectcalico-default-allow"]; !ok {
		c.profiles["projectcalico-default-allow"] = &resources.Profile{
			Spec: resources.ProfileSpec{
				Ingress: []resources.Rule{{Action: resources.ActionAllow}},
				Egress:  []resources.Rule{{Action: resources.ActionAllow}},
			},
		}
		c.profiles["projectcalico-default-allow"].Name = "projectcalico-default-allow"
	}
}

func stripPrefix(m map[string]string, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			out[rest] = v
		}
	}
	return out
}

// indexTiers records every tier, adding the protected ones with upstream's
// orders and default actions when absent.
func (c *compiler) indexTiers() {
	c.tiers = map[string]compileTier{
		"kube-admin":    {name: "kube-admin", order: 1000, pass: true, valid: true},
		"default":       {name: "default", order: 1_000_000, valid: true},
		"kube-baseline": {name: "kube-baseline", order: 10_000_000, pass: true, valid: true},
	}
	for _, t := range c.in.Tiers {
		if t == nil {
			continue
		}
		ct := compileTier{name: t.Name, order: math.Inf(1), valid: true}
		if t.Spec.Order != nil {
			ct.order = *t.Spec.Order
		}
		ct.pass = t.Spec.DefaultAction != nil && *t.Spec.DefaultAction == resources.ActionPass
		c.tiers[t.Name] = ct
	}
}

// compileTierLess orders tiers as upstream's TierLess: valid ones first, by
// order (unset last), then by name.
func compileTierLess(a, b compileTier) int {
	if a.valid != b.valid {
		if a.valid {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(a.order, b.order); c != 0 {
		return c
	}
	return cmp.Compare(a.name, b.name)
}

// endpointSubject is a workload endpoint's view for selectors: its labels
// over the system labels over its profiles' labelsToApply.
func (c *compiler) endpointSubject(ep *state.Endpoint) compileSubject {
	labels := map[string]string{}
	for i := len(ep.Profiles) - 1; i >= 0; i-- { // the first profile wins
		if p := c.profiles[ep.Profiles[i]]; p != nil {
			for k, v := range p.Spec.LabelsToApply {
				labels[k] = v
			}
		}
	}
	if ep.Key.Namespace != "" {
		labels["projectcalico.org/namespace"] = ep.Key.Namespace
	}
	if ep.ServiceAccount != "" {
		labels["projectcalico.org/serviceaccount"] = ep.ServiceAccount
	}
	for k, v := range ep.Labels {
		labels[k] = v
	}
	s := compileSubject{ns: ep.Key.Namespace, sa: ep.ServiceAccount, labels: labels, namedPorts: ep.Ports, ep: ep}
	for _, n := range ep.Networks {
		s.nets = append(s.nets, n.String())
	}
	return s
}

func (c *compiler) indexSubjects() {
	for _, ep := range c.in.Endpoints {
		if ep == nil {
			continue
		}
		if c.memo != nil {
			s, fp := c.memo.endpointSubject(c, ep)
			c.subjects = append(c.subjects, s)
			c.subjectFPs = append(c.subjectFPs, fp)
			continue
		}
		c.subjects = append(c.subjects, c.endpointSubject(ep))
	}
	for _, h := range c.in.HostEndpoints {
		if h == nil {
			continue
		}
		s := compileSubject{labels: h.Labels, nets: h.Spec.ExpectedIPs}
		for _, p := range h.Spec.Ports {
			s.namedPorts = append(s.namedPorts, resources.WorkloadEndpointPort{Name: p.Name, Protocol: p.Protocol, Port: p.Port})
		}
		c.subjects = append(c.subjects, s)
	}
	for _, n := range c.in.GlobalNetworkSets {
		if n != nil {
			c.subjects = append(c.subjects, compileSubject{labels: n.Labels, nets: n.Spec.Nets})
		}
	}
	for _, n := range c.in.NetworkSets {
		if n == nil {
			continue
		}
		labels := map[string]string{"projectcalico.org/namespace": n.Namespace}
		for k, v := range n.Labels {
			labels[k] = v
		}
		c.subjects = append(c.subjects, compileSubject{ns: n.Namespace, labels: labels, nets: n.Spec.Nets})
	}
	for _, s := range c.subjects {
		if _, ok := c.subjectsByNS[s.ns]; !ok {
			c.namespaces = append(c.namespaces, s.ns)
		}
		c.subjectsByNS[s.ns] = append(c.subjectsByNS[s.ns], s)
	}
	slices.Sort(c.namespaces)
}

// policyTypes returns the directions a policy governs (`types`, defaulted
// as the API does when empty).
func policyTypes(types []resources.PolicyType, in, out []resources.Rule) (ingress, egress bool) {
	if len(types) == 0 {
		types = resources.DefaultPolicyTypes(in, out)
	}
	return slices.Contains(types, resources.PolicyTypeIngress), slices.Contains(types, resources.PolicyTypeEgress)
}

func (c *compiler) tierOf(name string) compileTier {
	if name == "" {
		name = resources.DefaultTierName
	}
	if t, ok := c.tiers[name]; ok {
		return t
	}
	// Upstream: a policy whose tier is missing sorts after all valid
	// tiers, with no default action (so it acts as Deny).
	return compileTier{name: name, order: math.Inf(1), valid: false}
}

func (c *compiler) indexPolicies() {
	for _, p := range c.in.GlobalPolicies {
		if p == nil {
			continue
		}
		s := p.Spec
		if why := layerPolicyProblem(s); why != "" {
			c.note("gnp/%s: %s, not programmed", p.Name, why)
			continue
		}
		sel, err1 := selector.Parse(s.Selector)
		nsSel, err2 := selector.Parse(s.NamespaceSelector)
		saSel, err3 := selector.Parse(s.ServiceAccountSelector)
		if err := cmp.Or(err1, err2, err3); err != nil {
			c.note("gnp/%s: bad selector, not programmed: %v", p.Name, err)
			continue
		}
		hasNS, hasSA := s.NamespaceSelector != "", s.ServiceAccountSelector != ""
		cp := &compilePolicy{
			id: "gnp/" + p.Name, kind: "gnp", name: p.Name, tier: c.tierOf(s.Tier), order: orderOf(s.Order),
			inRules: s.Ingress, outRules: s.Egress, selectors: s.Selector + "\x00" + s.NamespaceSelector + "\x00" + s.ServiceAccountSelector,
			selectsEndpoint: func(sub compileSubject) bool {
				if !sel.Evaluate(sub.labels) {
					return false
				}
				if hasNS && !c.nsMatch(nsSel, sub.ns) {
					return false
				}
				return !hasSA || (sub.sa != "" && saSel.Evaluate(c.saLabels[sub.ns+"/"+sub.sa]))
			},
		}
		cp.applyOnForward = s.ApplyOnForward
		switch {
		case s.DoNotTrack:
			cp.layer = layerRaw
		case s.PreDNAT:
			cp.layer = layerMangle
		}
		cp.ingress, cp.egress = policyTypes(s.Types, s.Ingress, s.Egress)
		c.policies = append(c.policies, cp)
	}
	for _, p := range c.in.Policies {
		if p == nil {
			continue
		}
		s := p.Spec
		sel, err1 := selector.Parse(s.Selector)
		saSel, err2 := selector.Parse(s.ServiceAccountSelector)
		kind, name := "np", p.Name
		if rest, ok := strings.CutPrefix(p.Name, "knp.default."); ok {
			kind, name = "knp", rest
		}
		id := kind + "/" + p.Namespace + "/" + name
		if err := cmp.Or(err1, err2); err != nil {
			c.note("%s: bad selector, not programmed: %v", id, err)
			continue
		}
		ns, hasSA := p.Namespace, s.ServiceAccountSelector != ""
		cp := &compilePolicy{
			id: id, kind: kind, ns: ns, name: name, tier: c.tierOf(s.Tier), order: orderOf(s.Order),
			inRules: s.Ingress, outRules: s.Egress, selectors: s.Selector + "\x00" + s.ServiceAccountSelector,
			selectsEndpoint: func(sub compileSubject) bool {
				if sub.ep == nil || sub.ns != ns || !sel.Evaluate(sub.labels) {
					return false
				}
				return !hasSA || (sub.sa != "" && saSel.Evaluate(c.saLabels[sub.ns+"/"+sub.sa]))
			},
		}
		if kind == "knp" {
			cp.order = 1000
		}
		cp.ingress, cp.egress = policyTypes(s.Types, s.Ingress, s.Egress)
		c.policies = append(c.policies, cp)
	}
	slices.SortFunc(c.policies, func(a, b *compilePolicy) int {
		if r := compileTierLess(a.tier, b.tier); r != 0 {
			return r
		}
		if r := cmp.Compare(a.order, b.order); r != 0 {
			return r
		}
		// Upstream's PolKVLess compares "name/namespace/kind".
		return cmp.Compare(a.name+"/"+a.ns+"/"+a.kind, b.name+"/"+b.ns+"/"+b.kind)
	})
}

func orderOf(o *float64) float64 {
	if o == nil {
		return math.Inf(1)
	}
	return *o
}

// nsMatch evaluates a namespaceSelector for an object in namespace ns
// ("" = global). A selector using global() matches only global objects
// (HEPs, GlobalNetworkSets); otherwise only namespaced ones whose
// namespace's labels match.
func (c *compiler) nsMatch(nsSel *selector.Selector, ns string) bool {
	if nsSel.UsesGlobal() {
		return ns == ""
	}
	if ns == "" {
		return false
	}
	key := nsMatchKey{nsSel, ns}
	if m, ok := c.nsMatched[key]; ok {
		return m
	}
	labels := map[string]string{"projectcalico.org/name": ns}
	for k, v := range c.nsLabels[ns] {
		labels[k] = v
	}
	m := nsSel.Evaluate(labels)
	c.nsMatched[key] = m
	return m
}

// nsMatchKey is a parsed namespaceSelector (alive for the whole Compile,
// so its address is its identity) and a namespace.
type nsMatchKey struct {
	sel *selector.Selector
	ns  string
}

// compileEndpoint is one endpoint chain to build.
type compileEndpoint struct {
	chain, comment string
	subj           compileSubject
	profiles       []string
	ingress        bool
	// failsafe is the chain jumped to after conntrack (host endpoints).
	failsafe string
	// forward: a host endpoint's forward chain (cali-fhfw-/cali-thfw-):
	// only applyOnForward policies, no profiles, and traffic no policy
	// decided is allowed (return).
	forward bool
	// fromWorkload: a workload's egress chain.
	fromWorkload bool
	// layer: a host endpoint's preDNAT (layerMangle) or doNotTrack
	// (layerRaw) chain: only that layer's policies, no profiles, no
	// end-of-tier drop (upstream forces Pass), undecided traffic returns.
	layer string
}

// endpointChain builds an endpoint chain as upstream's: conntrack, (host
// endpoints) failsafes, tiers in order with Pass and end-of-tier drops,
// then profiles and the final drop.
func (c *compiler) endpointChain(e compileEndpoint) Chain {
	ch := Chain{Name: e.chain, Comment: e.comment}
	add := func(rule, comment string) { ch.Rules = append(ch.Rules, Rule{Rule: rule, Comment: comment}) }
	switch e.layer {
	case "":
		add("ct state established,related accept", "")
		add("ct state invalid drop", "")
	case layerMangle:
		add("ct state established,related accept", "preDNAT policy: new flows only")
	}
	if e.failsafe != "" {
		add("jump "+e.failsafe, "")
	}
	add(fmt.Sprintf("meta mark set meta mark & 0x%08x", ^uint32(markAccept|markPass)), "clear accept and pass marks")
	if e.fromWorkload {
		// Upstream's defaults (AllowVXLANPacketsFromWorkloads and
		// AllowIPIPPacketsFromWorkloads false).
		add("meta l4proto udp udp dport 4789 drop", "Drop VXLAN encapped packets originating in workloads")
		add("meta l4proto 4 drop", "Drop IPinIP encapped packets originating in workloads")
	}

	var tier *compileTier
	endTier := func() {
		if tier != nil && !tier.pass && e.layer == "" {
			add(dropUnlessPassed, "End of tier "+tier.name)
		}
	}
	for _, p := range c.policies {
		if p.layer != e.layer || (e.ingress && !p.ingress) || (!e.ingress && !p.egress) || (e.forward && !p.applyOnForward) || !p.selectsEndpoint(e.subj) {
			continue
		}
		if tier == nil || tier.name != p.tier.name {
			endTier()
			t := p.tier
			tier = &t
			add(clearPass, "Start of tier "+t.name)
		}
		chain := c.policyChain(p, e.ingress)
		add(jumpUnlessPassed+chain, "")
		add(returnIfAccepted, "Return if policy accepted")
	}
	endTier()
	if e.forward || e.layer != "" {
		return ch // no profiles for forwarded traffic; undecided is allowed
	}
	for _, prof := range e.profiles {
		chain := c.profileChain(prof, e.ingress)
		if chain == "" {
			continue
		}
		add("jump "+chain, "")
		add(returnIfAccepted, "Return if profile accepted")
	}
	add("counter drop", "Drop if no profiles matched")
	return ch
}

// The mark rules of endpoint chains, formatted once (an endpoint chain has
// two per policy that selects the endpoint).
var (
	jumpUnlessPassed = fmt.Sprintf("meta mark & 0x%08x == 0 jump ", markPass)
	returnIfAccepted = fmt.Sprintf("meta mark & 0x%08x != 0 return", markAccept)
	clearPass        = fmt.Sprintf("meta mark set meta mark & 0x%08x", ^uint32(markPass))
	dropUnlessPassed = fmt.Sprintf("meta mark & 0x%08x == 0 counter drop", markPass)
)

// policyChain makes sure the chain of p in one direction exists and
// returns its name.
func (c *compiler) policyChain(p *compilePolicy, ingress bool) string {
	if c.rec != nil {
		id := p.id
		c.rec.replay = append(c.rec.replay, func(c *compiler) { c.policyChain(c.policyByID[id], ingress) })
	}
	prefix, rules, dir := "cali-po-", p.outRules, "egress"
	if ingress {
		prefix, rules, dir = "cali-pi-", p.inRules, "ingress"
	}
	name := chainName(layerPrefix(p.layer)+prefix, p.id)
	if _, ok := c.chains[name]; ok {
		return name
	}
	ch := Chain{Name: name, Comment: fmt.Sprintf("%s %s (tier %s)", dir, p.id, p.tier.name)}
	if p.layer != "" {
		ch.Comment = fmt.Sprintf("%s %s %s (tier %s)", layerWhat(p.layer), dir, p.id, p.tier.name)
	}
	scope := ""
	if p.kind != "gnp" {
		scope = p.ns
	}
	c.chains[name] = c.ruleChain(ch, rules, func(ch Chain) Chain {
		for i, r := range rules {
			ch.Rules = append(ch.Rules, c.compileRule(r, ruleCtx{owner: p.id, dir: dir, index: i, scopeNS: scope, layer: p.layer})...)
		}
		return ch
	})
	return name
}

// profileChain makes sure the chain of a profile in one direction exists
// and returns its name ("" for an unknown profile, which allows nothing).
func (c *compiler) profileChain(name string, ingress bool) string {
	if c.rec != nil {
		c.rec.replay = append(c.rec.replay, func(c *compiler) { c.profileChain(name, ingress) })
	}
	p := c.profiles[name]
	if p == nil {
		c.note("profile %s: not found (an endpoint's reference to it allows nothing)", name)
		return ""
	}
	prefix, rules, dir := "cali-pro-", p.Spec.Egress, "egress"
	if ingress {
		prefix, rules, dir = "cali-pri-", p.Spec.Ingress, "ingress"
	}
	chain := chainName(prefix, name)
	if _, ok := c.chains[chain]; ok {
		return chain
	}
	ch := Chain{Name: chain, Comment: fmt.Sprintf("%s profile %s", dir, name)}
	c.chains[chain] = c.ruleChain(ch, rules, func(ch Chain) Chain {
		for i, r := range rules {
			ch.Rules = append(ch.Rules, c.compileRule(r, ruleCtx{owner: "pro/" + name, dir: dir, index: i})...)
		}
		return ch
	})
	return chain
}

// staticChains adds the base chains, the dispatch chains and
// cali-wl-to-host.
func (c *compiler) staticChains() {
	toHost := Rule{Rule: "drop", Comment: "DefaultEndpointToHostAction Drop"}
	switch strings.ToLower(c.in.Felix.DefaultEndpointToHostAction) {
	case "accept":
		toHost = Rule{Rule: "accept", Comment: "DefaultEndpointToHostAction Accept"}
	case "return":
		toHost = Rule{Rule: "return", Comment: "DefaultEndpointToHostAction Return"}
	}
	for _, ch := range []Chain{
		{Name: ChainForward, Hook: "forward", Comment: "Calico policy: forwarded traffic (owned by calicoctl node)", Rules: []Rule{
			{Rule: "ct state established,related accept"},
			{Rule: `iifname "cali*" ct state invalid drop`},
			{Rule: `oifname "cali*" ct state invalid drop`},
			{Rule: `iifname "cali*" jump ` + ChainFromWlDispatch, Comment: "from workload"},
			{Rule: `oifname "cali*" jump ` + ChainToWlDispatch, Comment: "to workload"},
		}},
		{Name: ChainInput, Hook: "input", Comment: "Calico policy: traffic to the host (owned by calicoctl node)", Rules: []Rule{
			{Rule: "ct state established,related accept"},
			{Rule: `iifname "cali*" ct state invalid drop`},
			{Rule: `iifname "cali*" goto ` + ChainWlToHost, Comment: "from workload to host"},
		}},
		{Name: ChainOutput, Hook: "output", Comment: "Calico policy: traffic from the host (owned by calicoctl node)", Rules: []Rule{
			{Rule: "ct state established,related accept"},
			{Rule: `oifname "cali*" return`, Comment: "host to workload: not policed (as upstream)"},
		}},
		{Name: ChainWlToHost, Comment: "workload to host: its egress policy, then DefaultEndpointToHostAction", Rules: []Rule{
			{Rule: "icmpv6 type { 130, 131, 132, 133, 135, 136 } accept", Comment: "ICMPv6 MLD and neighbour discovery"},
			{Rule: "jump " + ChainFromWlDispatch},
			toHost,
		}},
		{Name: ChainFromWlDispatch, Comment: "dispatch by input interface to cali-fw-<iface>", Rules: []Rule{
			{Rule: "iifname vmap @" + MapFromWlDispatch},
			{Rule: "drop", Comment: "Unknown interface"},
		}},
		{Name: ChainToWlDispatch, Comment: "dispatch by output interface to cali-tw-<iface>", Rules: []Rule{
			{Rule: "oifname vmap @" + MapToWlDispatch},
			{Rule: "drop", Comment: "Unknown interface"},
		}},
	} {
		c.chains[ch.Name] = ch
	}
}

func quote(s string) string { return `"` + s + `"` }
