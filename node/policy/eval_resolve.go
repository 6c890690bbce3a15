package policy

import (
	"fmt"
	"maps"
	"math"
	"net/netip"

	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

// evaluator holds Input indexed for one evaluation.
type evaluator struct {
	in       *Input
	m        Matcher
	tiers    []*evalTier
	profiles map[string]*resources.Profile
}

// protectedTiers are upstream's built-in tiers, assumed when absent.
var protectedTiers = []struct {
	name   string
	order  float64
	action string
}{
	{resources.KubeAdminTierName, resources.KubeAdminTierOrder, Pass},
	{resources.DefaultTierName, resources.DefaultTierOrder, Deny},
	{resources.KubeBaselineTierName, resources.KubeBaselineTierOrder, Pass},
}

func newEvaluator(in *Input) *evaluator {
	ev := &evaluator{in: in, profiles: map[string]*resources.Profile{}}
	for _, p := range in.Profiles {
		ev.profiles[p.Name] = p
	}
	byName := map[string]*evalTier{}
	for _, t := range in.Tiers {
		act := Deny
		if t.Spec.DefaultAction != nil && *t.Spec.DefaultAction == resources.ActionPass {
			act = Pass
		}
		byName[t.Name] = &evalTier{name: t.Name, order: t.Spec.Order, defaultAction: act, valid: true}
	}
	for _, pt := range protectedTiers {
		if byName[pt.name] == nil {
			o := pt.order
			byName[pt.name] = &evalTier{name: pt.name, order: &o, defaultAction: pt.action, valid: true}
		}
	}
	tierOf := func(name string) *evalTier {
		if name == "" {
			name = resources.DefaultTierName
		}
		t := byName[name]
		if t == nil {
			// Upstream still evaluates a policy whose tier is missing, in
			// an invalid tier after all valid ones, acting as Deny.
			t = &evalTier{name: name, defaultAction: Deny}
			byName[name] = t
		}
		return t
	}
	order := func(o *float64) float64 {
		if o == nil {
			return math.Inf(1)
		}
		return *o
	}
	for _, g := range in.GlobalPolicies {
		if g.Spec.PreDNAT || g.Spec.DoNotTrack {
			continue // host endpoint raw/mangle policy: not explained
		}
		p := &pol{kind: "GlobalNetworkPolicy", gnp: g, order: order(g.Spec.Order), selector: g.Spec.Selector,
			trace: PolicyTrace{Kind: "GlobalNetworkPolicy", Name: g.Name, Order: g.Spec.Order, Rule: -1}}
		p.ingress, p.egress = directions(g.Spec.Types, g.Spec.Ingress, g.Spec.Egress)
		t := tierOf(g.Spec.Tier)
		t.policies = append(t.policies, p)
	}
	for _, n := range in.Policies {
		p := &pol{kind: "NetworkPolicy", np: n, order: order(n.Spec.Order), selector: n.Spec.Selector,
			scope: Scope{Namespace: n.Namespace},
			trace: PolicyTrace{Kind: "NetworkPolicy", Namespace: n.Namespace, Name: n.Name, Order: n.Spec.Order, Rule: -1}}
		p.ingress, p.egress = directions(n.Spec.Types, n.Spec.Ingress, n.Spec.Egress)
		t := tierOf(n.Spec.Tier)
		t.policies = append(t.policies, p)
	}
	for _, t := range byName {
		sortPolicies(t.policies)
		ev.tiers = append(ev.tiers, t)
	}
	sortTiers(ev.tiers)
	return ev
}

// inherited is the labels e's profiles apply (earlier profiles win).
func (ev *evaluator) inherited(profiles []string) map[string]string {
	out := map[string]string{}
	for i := len(profiles) - 1; i >= 0; i-- {
		if p := ev.profiles[profiles[i]]; p != nil {
			maps.Copy(out, p.Spec.LabelsToApply)
		}
	}
	return out
}

// effective is own labels over inherited ones, plus the system labels.
func (ev *evaluator) effective(own map[string]string, profiles []string, namespace, sa string) map[string]string {
	l := ev.inherited(profiles)
	maps.Copy(l, own)
	if namespace != "" {
		l[LabelNamespace] = namespace
		if _, ok := l[PrefixNamespace+LabelNamespaceName]; !ok {
			l[PrefixNamespace+LabelNamespaceName] = namespace
		}
	}
	if sa != "" {
		l[LabelServiceAccount] = sa
	}
	return l
}

func (ev *evaluator) workload(e *state.Endpoint) *resolved {
	r := &resolved{ep: e, Entity: Entity{Kind: "WorkloadEndpoint", Namespace: e.Key.Namespace, Name: e.Key.Name,
		Node: e.Node, Profiles: e.Profiles}}
	r.Labels = ev.effective(e.Labels, e.Profiles, e.Key.Namespace, e.ServiceAccount)
	r.members = []Member{{Name: r.Entity.String(), Labels: r.Labels}}
	for _, p := range e.Ports {
		if n, ok := p.Protocol.Number(); ok {
			r.namedPorts = append(r.namedPorts, NamedPort{Name: p.Name, Protocol: n, Port: p.Port})
		}
	}
	return r
}

func (ev *evaluator) hostEndpoint(h *resources.HostEndpoint) *resolved {
	r := &resolved{hep: h, Entity: Entity{Kind: "HostEndpoint", Name: h.Name, Node: h.Spec.Node, Profiles: h.Spec.Profiles}}
	r.Labels = ev.effective(h.Labels, h.Spec.Profiles, "", "")
	r.members = []Member{{Name: r.Entity.String(), Labels: r.Labels}}
	for _, p := range h.Spec.Ports {
		if n, ok := p.Protocol.Number(); ok {
			r.namedPorts = append(r.namedPorts, NamedPort{Name: p.Name, Protocol: n, Port: p.Port})
		}
	}
	return r
}

// resolve finds what ref names. other is the other end's address (to pick
// an address of the same family).
func (ev *evaluator) resolve(ref Ref, other netip.Addr, notes *[]string) (*resolved, any) {
	var r *resolved
	var obj any
	switch ref.Key.Kind {
	case "WorkloadEndpoint":
		for _, e := range ev.in.Endpoints {
			if e.Key.Namespace == ref.Key.Namespace && e.Key.Name == ref.Key.Name {
				r, obj = ev.workload(e), e
				break
			}
		}
	case "HostEndpoint":
		for _, h := range ev.in.HostEndpoints {
			if h.Name == ref.Key.Name {
				r, obj = ev.hostEndpoint(h), h
				break
			}
		}
	case "":
	default:
		*notes = append(*notes, fmt.Sprintf("cannot explain traffic of a %s", ref.Key.Kind))
	}
	if ref.Key.Kind != "" && r == nil {
		*notes = append(*notes, fmt.Sprintf("%s %q not found: treated as an unknown address", ref.Key.Kind, ref.Key.Name))
	}
	if r == nil && ref.Addr.IsValid() {
		r, obj = ev.byAddr(ref.Addr)
	}
	if r == nil {
		r = &resolved{Entity: Entity{Kind: "IP"}}
	}
	if ref.Addr.IsValid() {
		r.Addr = ref.Addr
	} else if obj != nil {
		r.Addr = ev.addrOf(obj, other)
	}
	if r.Addr.IsValid() {
		// The address also belongs to every network set containing it:
		// selectors matching those sets' labels match it too (IP sets).
		r.members = append(r.members, ev.setMembers(r.Addr, r.Kind)...)
	}
	return r, obj
}

// byAddr finds a workload endpoint, then a host endpoint (expectedIPs),
// then the most specific network set holding a.
func (ev *evaluator) byAddr(a netip.Addr) (*resolved, any) {
	for _, e := range ev.in.Endpoints {
		for _, n := range e.Networks {
			if n.Contains(a) {
				return ev.workload(e), e
			}
		}
	}
	for _, h := range ev.in.HostEndpoints {
		for _, s := range h.Spec.ExpectedIPs {
			if x, err := netip.ParseAddr(s); err == nil && x == a {
				return ev.hostEndpoint(h), h
			}
		}
	}
	best, bits := (*resolved)(nil), -1
	consider := func(kind, ns, name string, labels map[string]string, nets []string) {
		for _, c := range nets {
			p, err := resources.ParseCIDR(c)
			if err != nil || !p.Masked().Contains(a) || p.Bits() <= bits {
				continue
			}
			bits = p.Bits()
			best = &resolved{Entity: Entity{Kind: kind, Namespace: ns, Name: name}}
			best.Labels = ev.setLabels(labels, ns)
		}
	}
	for _, s := range ev.in.NetworkSets {
		consider("NetworkSet", s.Namespace, s.Name, s.Labels, s.Spec.Nets)
	}
	for _, s := range ev.in.GlobalNetworkSets {
		consider("GlobalNetworkSet", "", s.Name, s.Labels, s.Spec.Nets)
	}
	if best != nil {
		return best, nil // members come from setMembers
	}
	return nil, nil
}

func (ev *evaluator) setLabels(own map[string]string, ns string) map[string]string {
	var profiles []string
	if ns != "" {
		profiles = []string{"kns." + ns}
	}
	return ev.effective(own, profiles, ns, "")
}

// setMembers are the network sets containing a. For an address that is
// itself a set's (kind NetworkSet or GlobalNetworkSet), these include it.
func (ev *evaluator) setMembers(a netip.Addr, kind string) []Member {
	var out []Member
	add := func(kind, ns, name string, labels map[string]string, nets []string) {
		for _, c := range nets {
			if p, err := resources.ParseCIDR(c); err == nil && p.Masked().Contains(a) {
				e := Entity{Kind: kind, Namespace: ns, Name: name}
				out = append(out, Member{Name: e.String(), Labels: ev.setLabels(labels, ns)})
				return
			}
		}
	}
	for _, s := range ev.in.NetworkSets {
		add("NetworkSet", s.Namespace, s.Name, s.Labels, s.Spec.Nets)
	}
	for _, s := range ev.in.GlobalNetworkSets {
		add("GlobalNetworkSet", "", s.Name, s.Labels, s.Spec.Nets)
	}
	return out
}

// addrOf picks obj's address, of other's family when possible.
func (ev *evaluator) addrOf(obj any, other netip.Addr) netip.Addr {
	var addrs []netip.Addr
	switch o := obj.(type) {
	case *state.Endpoint:
		addrs = o.Addrs()
	case *resources.HostEndpoint:
		for _, s := range o.Spec.ExpectedIPs {
			if a, err := netip.ParseAddr(s); err == nil {
				addrs = append(addrs, a)
			}
		}
	}
	for _, a := range addrs {
		if !other.IsValid() || a.Is4() == other.Is4() {
			return a
		}
	}
	if len(addrs) > 0 {
		return addrs[0]
	}
	return netip.Addr{}
}
