package policy

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"

	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

// Packet is the packet to explain.
type Packet struct {
	Src Ref `json:"src"`
	Dst Ref `json:"dst"`
	// Protocol is the IP protocol number (6 tcp, 17 udp, 1 icmp, ...).
	Protocol uint8  `json:"protocol"`
	SrcPort  uint16 `json:"srcPort,omitempty"`
	DstPort  uint16 `json:"dstPort,omitempty"`
	// ICMPType and ICMPCode (nil: not given).
	ICMPType *int `json:"icmpType,omitempty"`
	ICMPCode *int `json:"icmpCode,omitempty"`
}

// Ref names one end of a packet: an endpoint (Key.Kind WorkloadEndpoint or
// HostEndpoint), or an address. With both, Addr picks among the
// endpoint's addresses.
type Ref struct {
	Key  resources.Key `json:"key,omitzero"`
	Addr netip.Addr    `json:"addr,omitzero"`
}

// Entity is what a Ref resolved to.
type Entity struct {
	// Kind is WorkloadEndpoint, HostEndpoint, NetworkSet,
	// GlobalNetworkSet or IP (an address Calico knows nothing of).
	Kind      string            `json:"kind"`
	Namespace string            `json:"namespace,omitempty"`
	Name      string            `json:"name,omitempty"`
	Node      string            `json:"node,omitempty"`
	Addr      netip.Addr        `json:"addr"`
	Labels    map[string]string `json:"labels,omitempty"`
	Profiles  []string          `json:"profiles,omitempty"`
}

// String is "Kind namespace/name" or the address.
func (e Entity) String() string {
	switch {
	case e.Kind == "IP" || e.Name == "":
		return e.Addr.String()
	case e.Namespace != "":
		return fmt.Sprintf("%s %s/%s", e.Kind, e.Namespace, e.Name)
	default:
		return fmt.Sprintf("%s %s", e.Kind, e.Name)
	}
}

// The actions of a trace.
const (
	Allow = "Allow"
	Deny  = "Deny"
	Pass  = "Pass"
	// NoMatch: no rule of the policy matched; the tier goes on.
	NoMatch = "NoMatch"
	Log     = "Log"
)

// Verdict is the result of Evaluate.
type Verdict struct {
	Packet Packet `json:"packet"`
	Src    Entity `json:"src"`
	Dst    Entity `json:"dst"`
	// Egress is the source's egress policy; Ingress the destination's.
	Egress  Direction `json:"egress"`
	Ingress Direction `json:"ingress"`
	// Action is Allow when both directions allow, else Deny.
	Action string `json:"action"`
	// Notes are remarks about the evaluation (unknown references,
	// unenforced fields).
	Notes []string `json:"notes,omitempty"`
}

// Allowed reports whether the packet is allowed.
func (v *Verdict) Allowed() bool { return v.Action == Allow }

// Direction is the trace of one endpoint's policy for one direction.
type Direction struct {
	// Direction is "egress" or "ingress".
	Direction string `json:"direction"`
	// Endpoint is whose policy this is ("" when not policed).
	Endpoint string `json:"endpoint,omitempty"`
	// Policed is false when no Calico policy applies in this direction
	// (the end is not one of our endpoints, or the path skips it).
	Policed  bool          `json:"policed"`
	Tiers    []TierTrace   `json:"tiers,omitempty"`
	Profiles []PolicyTrace `json:"profiles,omitempty"`
	// Action is Allow or Deny.
	Action string `json:"action"`
	// Reason says what decided.
	Reason string `json:"reason"`
}

// TierTrace is one tier with at least one policy applying to the endpoint
// in this direction (other tiers are skipped, as Felix does).
type TierTrace struct {
	Name          string        `json:"name"`
	Order         *float64      `json:"order,omitempty"`
	DefaultAction string        `json:"defaultAction"`
	Policies      []PolicyTrace `json:"policies"`
	// Result is Allow, Deny, Pass (a Pass rule or defaultAction Pass), or
	// "" when an earlier verdict stopped evaluation before this tier.
	Result string `json:"result,omitempty"`
	// EndOfTier is set when no policy decided and the tier's default
	// action did (Deny: the end-of-tier drop; Pass: fall through).
	EndOfTier bool `json:"endOfTier,omitempty"`
}

// PolicyTrace is one policy (or profile) and its rules for the direction.
type PolicyTrace struct {
	// Kind is GlobalNetworkPolicy, NetworkPolicy or Profile.
	Kind      string      `json:"kind"`
	Namespace string      `json:"namespace,omitempty"`
	Name      string      `json:"name"`
	Order     *float64    `json:"order,omitempty"`
	Rules     []RuleTrace `json:"rules"`
	// Result is Allow, Deny, Pass or NoMatch; "" when not reached.
	Result string `json:"result,omitempty"`
	// Rule is the index of the deciding rule (-1: none).
	Rule int `json:"rule"`
}

// ID is "kind namespace/name".
func (p PolicyTrace) ID() string {
	if p.Namespace != "" {
		return fmt.Sprintf("%s %s/%s", p.Kind, p.Namespace, p.Name)
	}
	return fmt.Sprintf("%s %s", p.Kind, p.Name)
}

// RuleTrace is one rule: whether it matched and, if not, why.
type RuleTrace struct {
	Index    int       `json:"index"`
	Action   string    `json:"action"`
	Matched  bool      `json:"matched"`
	Mismatch *Mismatch `json:"mismatch,omitempty"`
	// Note is a remark (a Log rule logged; an http match is not
	// enforced).
	Note string `json:"note,omitempty"`
}

// Evaluate explains what Felix's rules would do with one packet: the egress
// policy of its source (when the source is one of our workload or host
// endpoints) and the ingress policy of its destination, tier by tier,
// policy by policy, rule by rule, then profiles, and the verdict. It is a
// pure function of in; it never fails (unknown references are reported in
// Verdict.Notes and treated as addresses Calico does not know).
func Evaluate(in Input, p Packet) Verdict {
	ev := newEvaluator(&in)
	v := Verdict{Packet: p}
	src, srcEP := ev.resolve(p.Src, p.Dst.Addr, &v.Notes)
	dst, dstEP := ev.resolve(p.Dst, src.Addr, &v.Notes)
	if !dst.Addr.IsValid() && src.Addr.IsValid() {
		dst.Addr = ev.addrOf(dstEP, src.Addr)
	}
	if !src.Addr.IsValid() && dst.Addr.IsValid() {
		src.Addr = ev.addrOf(srcEP, dst.Addr)
	}
	v.Src, v.Dst = src.Entity, dst.Entity
	v.Src.Addr, v.Dst.Addr = src.Addr, dst.Addr

	f := &Flow{Protocol: p.Protocol, ICMPType: -1, ICMPCode: -1,
		Src: src.peer(p.SrcPort), Dst: dst.peer(p.DstPort)}
	if p.ICMPType != nil {
		f.ICMPType = *p.ICMPType
	}
	if p.ICMPCode != nil {
		f.ICMPCode = *p.ICMPCode
	}

	v.Egress = Direction{Direction: "egress", Action: Allow}
	v.Ingress = Direction{Direction: "ingress", Action: Allow}
	sameNode := src.Node != "" && src.Node == dst.Node
	switch {
	case src.Kind == "HostEndpoint" && dst.Kind == "WorkloadEndpoint" && sameNode:
		v.Egress.Reason = "host to a local workload: Felix's OUTPUT chain returns for cali* interfaces, no host endpoint policy"
		v.Ingress.Reason = "host to a local workload: not checked against the workload's ingress policy"
	default:
		switch src.Kind {
		case "WorkloadEndpoint", "HostEndpoint":
			v.Egress = ev.direction("egress", src, f)
		default:
			v.Egress.Reason = fmt.Sprintf("%s is not one of our endpoints: no egress policy", src.Entity)
		}
		switch {
		case dst.Kind == "HostEndpoint" && src.Kind == "WorkloadEndpoint" && sameNode:
			v.Ingress = ev.workloadToHost(dst)
		case dst.Kind == "WorkloadEndpoint" || dst.Kind == "HostEndpoint":
			v.Ingress = ev.direction("ingress", dst, f)
		default:
			v.Ingress.Reason = fmt.Sprintf("%s is not one of our endpoints: no ingress policy", dst.Entity)
		}
	}
	v.Action = Deny
	if v.Egress.Action == Allow && v.Ingress.Action == Allow {
		v.Action = Allow
	}
	return v
}

// resolved is an Entity with what matching needs.
type resolved struct {
	Entity
	members    []Member
	namedPorts []NamedPort
	ep         *state.Endpoint
	hep        *resources.HostEndpoint
}

func (r *resolved) peer(port uint16) Peer {
	return Peer{Addr: r.Addr, Port: port, Members: r.members, NamedPorts: r.namedPorts}
}

// workloadToHost is the ingress side of workload-to-local-host traffic:
// DefaultEndpointToHostAction, never the host endpoint's ingress policy.
func (ev *evaluator) workloadToHost(dst *resolved) Direction {
	d := Direction{Direction: "ingress", Endpoint: dst.Entity.String()}
	switch act := strings.ToLower(ev.in.Felix.DefaultEndpointToHostAction); act {
	case "accept":
		d.Action, d.Reason = Allow, "workload to its own host: DefaultEndpointToHostAction Accept"
	case "return":
		d.Action, d.Reason = Allow, "workload to its own host: DefaultEndpointToHostAction Return (handed back to INPUT; host endpoint ingress policy is not applied)"
	default:
		d.Action, d.Reason = Deny, "workload to its own host: DefaultEndpointToHostAction Drop (host endpoint ingress policy is not applied)"
	}
	return d
}

// direction evaluates the tiers and profiles of e for one direction.
func (ev *evaluator) direction(dir string, e *resolved, f *Flow) Direction {
	d := Direction{Direction: dir, Endpoint: e.Entity.String(), Policed: true}
	if e.hep != nil {
		if pp := ev.failsafe(dir, f); pp != "" {
			d.Action, d.Reason = Allow, "failsafe port "+pp+" (accepted before any host endpoint policy)"
			return d
		}
	}
	decided := false
	for _, t := range ev.tiers {
		pols := ev.applicable(t, dir, e)
		if len(pols) == 0 {
			continue
		}
		tt := TierTrace{Name: t.name, Order: t.order, DefaultAction: t.defaultAction}
		for _, pol := range pols {
			pt := pol.trace
			if decided || tt.Result != "" {
				tt.Policies = append(tt.Policies, pt)
				continue
			}
			ev.runRules(&pt, pol.rules(dir), pol.scope, f)
			tt.Policies = append(tt.Policies, pt)
			switch pt.Result {
			case Allow, Deny:
				tt.Result = pt.Result
				d.Action, d.Reason = pt.Result, fmt.Sprintf("tier %s: %s rule %d", t.name, pt.ID(), pt.Rule)
				decided = true
			case Pass:
				tt.Result = Pass
			}
		}
		if !decided && tt.Result == "" {
			tt.EndOfTier = true
			if t.defaultAction == Pass {
				tt.Result = Pass
			} else {
				tt.Result = Deny
				d.Action, d.Reason = Deny, fmt.Sprintf("tier %s: end of tier, no policy allowed, denied or passed (default action %s)", t.name, t.defaultAction)
				decided = true
			}
		}
		d.Tiers = append(d.Tiers, tt)
		if decided {
			return d
		}
	}
	// Profiles: reached when no tier applied or every one passed.
	for _, name := range e.Profiles {
		pr := ev.profiles[name]
		pt := PolicyTrace{Kind: "Profile", Name: name, Rule: -1}
		if pr == nil {
			pt.Result = NoMatch
			d.Profiles = append(d.Profiles, pt)
			continue
		}
		rules := pr.Spec.Ingress
		if dir == "egress" {
			rules = pr.Spec.Egress
		}
		ev.runRules(&pt, rules, Scope{}, f)
		d.Profiles = append(d.Profiles, pt)
		switch pt.Result {
		case Allow, Deny:
			d.Action, d.Reason = pt.Result, fmt.Sprintf("profile %s rule %d", name, pt.Rule)
			return d
		}
	}
	d.Action = Deny
	switch {
	case len(e.Profiles) == 0 && len(d.Tiers) == 0:
		d.Reason = "no policy applies and the endpoint has no profiles: dropped"
	case len(e.Profiles) == 0:
		d.Reason = "every tier passed and the endpoint has no profiles: dropped"
	default:
		d.Reason = "no profile allowed: dropped"
	}
	return d
}

// runRules evaluates rules in order into pt: the first Allow, Deny or Pass
// match decides; Log rules note and go on.
func (ev *evaluator) runRules(pt *PolicyTrace, rules []resources.Rule, sc Scope, f *Flow) {
	pt.Result, pt.Rule = NoMatch, -1
	for i := range rules {
		r := &rules[i]
		rt := RuleTrace{Index: i, Action: string(r.Action)}
		if mm := ev.m.Match(r, sc, f); mm != nil {
			rt.Mismatch = mm
			pt.Rules = append(pt.Rules, rt)
			continue
		}
		rt.Matched = true
		if r.HTTP != nil {
			rt.Note = "http match not enforced (no L7 proxy): only the L3/L4 part is"
		}
		switch r.Action {
		case resources.ActionLog:
			rt.Note = "logged; evaluation goes on"
			pt.Rules = append(pt.Rules, rt)
			continue
		case resources.ActionAllow, resources.ActionDeny, resources.ActionPass:
			pt.Rules = append(pt.Rules, rt)
			pt.Result, pt.Rule = string(r.Action), i
			return
		default:
			rt.Note = fmt.Sprintf("unknown action %q ignored", r.Action)
			pt.Rules = append(pt.Rules, rt)
		}
	}
}

// failsafe returns "proto:port" when the packet hits a failsafe port of a
// host endpoint (inbound for ingress, outbound for egress).
func (ev *evaluator) failsafe(dir string, f *Flow) string {
	ports := ev.in.Felix.FailsafeInboundHostPorts
	remote, port := f.Src.Addr, f.Dst.Port
	if dir == "egress" {
		ports = ev.in.Felix.FailsafeOutboundHostPorts
		remote = f.Dst.Addr
	}
	if ports == nil {
		ports = defaultFailsafe(dir)
	}
	for _, pp := range ports {
		proto := uint8(6)
		if pp.Protocol != "" {
			n, err := ParseProtocol(pp.Protocol)
			if err != nil {
				continue
			}
			proto = n
		}
		if proto != f.Protocol || pp.Port != port {
			continue
		}
		if pp.Net != "" {
			if n, err := resources.ParseCIDR(pp.Net); err != nil || !n.Contains(remote) {
				continue
			}
		}
		return fmt.Sprintf("%s:%d", ProtocolName(proto), pp.Port)
	}
	return ""
}

func defaultFailsafe(dir string) []resources.ProtoPort {
	tcp := func(p uint16) resources.ProtoPort { return resources.ProtoPort{Protocol: "tcp", Port: p} }
	udp := func(p uint16) resources.ProtoPort { return resources.ProtoPort{Protocol: "udp", Port: p} }
	common := []resources.ProtoPort{tcp(179), tcp(2379), tcp(2380), tcp(5473), tcp(6443), tcp(6666), tcp(6667)}
	if dir == "egress" {
		return append([]resources.ProtoPort{udp(53), udp(67)}, common...)
	}
	return append([]resources.ProtoPort{tcp(22), udp(68)}, common...)
}

// tier is a tier as evaluation orders it.
type evalTier struct {
	name          string
	order         *float64
	defaultAction string
	valid         bool
	policies      []*pol
}

// pol is one policy of a tier.
type pol struct {
	trace    PolicyTrace
	order    float64
	kind     string
	scope    Scope
	gnp      *resources.GlobalNetworkPolicy
	np       *resources.NetworkPolicy
	ingress  bool
	egress   bool
	selector string
}

func (p *pol) rules(dir string) []resources.Rule {
	switch {
	case p.gnp != nil && dir == "egress":
		return p.gnp.Spec.Egress
	case p.gnp != nil:
		return p.gnp.Spec.Ingress
	case dir == "egress":
		return p.np.Spec.Egress
	default:
		return p.np.Spec.Ingress
	}
}

// applicable lists t's policies that select e for dir.
func (ev *evaluator) applicable(t *evalTier, dir string, e *resolved) []*pol {
	var out []*pol
	for _, p := range t.policies {
		if dir == "egress" && !p.egress || dir == "ingress" && !p.ingress {
			continue
		}
		if ev.selects(p, e) {
			out = append(out, p)
		}
	}
	return out
}

// selects reports whether p's selector (scoped as upstream) picks e.
func (ev *evaluator) selects(p *pol, e *resolved) bool {
	if len(e.members) == 0 {
		return false
	}
	labels := e.members[0].Labels
	if p.np != nil {
		if e.Kind != "WorkloadEndpoint" || e.Namespace != p.np.Namespace {
			return false
		}
	}
	sel, err := ev.m.Selector(p.selector)
	if err != nil || !sel.Evaluate(labels) {
		return false
	}
	if p.gnp != nil {
		if s := p.gnp.Spec.NamespaceSelector; s != "" {
			ns, err := ev.m.Selector(s)
			if err != nil || !NamespaceSelectorMatches(ns, labels) {
				return false
			}
		}
		if s := p.gnp.Spec.ServiceAccountSelector; s != "" {
			sa, err := ev.m.Selector(s)
			if err != nil || !sa.EvaluateLabels(prefixView{labels, PrefixSvcAccount}) {
				return false
			}
		}
	} else if s := p.np.Spec.ServiceAccountSelector; s != "" {
		sa, err := ev.m.Selector(s)
		if err != nil || !sa.EvaluateLabels(prefixView{labels, PrefixSvcAccount}) {
			return false
		}
	}
	return true
}

// directions is which directions a policy governs: its types, or
// upstream's defaulting from its rules when it has none.
func directions(types []resources.PolicyType, ingress, egress []resources.Rule) (in, eg bool) {
	if len(types) == 0 {
		types = resources.DefaultPolicyTypes(ingress, egress)
	}
	return slices.Contains(types, resources.PolicyTypeIngress), slices.Contains(types, resources.PolicyTypeEgress)
}

// sortTiers orders tiers as Felix: by order (none last), then name; tiers
// named by policies but missing come after all valid ones, acting as Deny.
func sortTiers(ts []*evalTier) {
	slices.SortFunc(ts, func(a, b *evalTier) int {
		if a.valid != b.valid {
			if a.valid {
				return -1
			}
			return 1
		}
		ao, bo := math.Inf(1), math.Inf(1)
		if a.order != nil {
			ao = *a.order
		}
		if b.order != nil {
			bo = *b.order
		}
		return cmp.Or(cmp.Compare(ao, bo), cmp.Compare(a.name, b.name))
	})
}

// sortPolicies orders a tier's policies by order (none last), then
// name/namespace/kind.
func sortPolicies(ps []*pol) {
	slices.SortFunc(ps, func(a, b *pol) int {
		return cmp.Or(cmp.Compare(a.order, b.order),
			cmp.Compare(a.trace.Name+"/"+a.trace.Namespace+"/"+a.kind, b.trace.Name+"/"+b.trace.Namespace+"/"+b.kind))
	})
}
