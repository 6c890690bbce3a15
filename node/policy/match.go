package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/opencalico/calicoctl/resources"
	"github.com/opencalico/calicoctl/resources/selector"
)

// Rule matching: one API rule against one flow, as Felix's rendered rule
// would match it (spec §2). The evaluator uses it directly; the compiler
// shares its helpers (selector scoping, named ports, the ipVersion and
// CIDR-family filtering).

// The labels the system adds and the prefixes of inherited labels.
const (
	LabelNamespace      = "projectcalico.org/namespace"
	LabelServiceAccount = "projectcalico.org/serviceaccount"
	LabelNamespaceName  = "projectcalico.org/name"
	PrefixNamespace     = "pcns."
	PrefixSvcAccount    = "pcsa."
)

// Member is one labelled thing an address belongs to, as a selector IP set
// would hold it: a workload or host endpoint, or a (global) network set.
type Member struct {
	// Name names the member in explanations ("WorkloadEndpoint ns/name").
	Name string
	// Labels are the effective labels: the object's own over those its
	// profiles apply, plus projectcalico.org/namespace (and
	// serviceaccount) for namespaced objects.
	Labels map[string]string
}

// Namespace is the member's namespace ("" for global objects).
func (m Member) Namespace() (string, bool) {
	ns, ok := m.Labels[LabelNamespace]
	return ns, ok
}

// Peer is one end of a flow as rule matching sees it.
type Peer struct {
	Addr netip.Addr
	// Port is the transport port (0 when the protocol has none).
	Port uint16
	// Members are the labelled objects the address belongs to (empty for
	// an address Calico knows nothing of). A selector matches the peer if
	// it matches any member.
	Members []Member
	// NamedPorts are the named ports of the endpoint the address belongs
	// to.
	NamedPorts []NamedPort
}

// NamedPort is one named port of an endpoint.
type NamedPort struct {
	Name     string
	Protocol uint8
	Port     uint16
}

// Flow is the packet a rule is matched against.
type Flow struct {
	// Protocol is the IP protocol number (6 tcp, 17 udp, 1 icmp, ...).
	Protocol uint8
	// ICMPType and ICMPCode are set for ICMP packets (-1: not given).
	ICMPType, ICMPCode int
	Src, Dst           Peer
}

// IPVersion is 4 or 6 (from the source address, else the destination).
func (f *Flow) IPVersion() int {
	a := f.Src.Addr
	if !a.IsValid() {
		a = f.Dst.Addr
	}
	if a.Is6() && !a.Is4In6() {
		return 6
	}
	return 4
}

// Scope is where a rule comes from: a NetworkPolicy's namespace scopes its
// rules' selectors; global policies and profiles have none.
type Scope struct{ Namespace string }

// Matcher matches rules, caching parsed selectors. The zero value is ready;
// it is not safe for concurrent use.
type Matcher struct {
	sels map[string]*selector.Selector
	errs map[string]error
}

// Selector parses s once.
func (m *Matcher) Selector(s string) (*selector.Selector, error) {
	if sel, ok := m.sels[s]; ok {
		return sel, nil
	}
	if err, ok := m.errs[s]; ok {
		return nil, err
	}
	if m.sels == nil {
		m.sels, m.errs = map[string]*selector.Selector{}, map[string]error{}
	}
	sel, err := selector.Parse(s)
	if err != nil {
		m.errs[s] = err
		return nil, err
	}
	m.sels[s] = sel
	return sel, nil
}

// Mismatch says which field of a rule failed to match, and why.
type Mismatch struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func (m *Mismatch) String() string {
	if m == nil {
		return ""
	}
	return m.Field + ": " + m.Reason
}

func mismatch(field, format string, args ...any) *Mismatch {
	return &Mismatch{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Match reports whether r matches f; when it does not, the Mismatch names
// the first failing field, in the order ipVersion, protocol, notProtocol,
// icmp, notICMP, then source and destination (nets, notNets, selector,
// namespaceSelector, serviceAccounts, notSelector, ports, notPorts).
func (m *Matcher) Match(r *resources.Rule, sc Scope, f *Flow) *Mismatch {
	v := f.IPVersion()
	if r.IPVersion != nil && *r.IPVersion != v {
		return mismatch("ipVersion", "rule is for IPv%d, packet is IPv%d", *r.IPVersion, v)
	}
	if r.Protocol != nil {
		n, ok := r.Protocol.Number()
		if !ok {
			return mismatch("protocol", "unknown protocol %q", r.Protocol.String())
		}
		if r.IPVersion == nil && (n == 1 && v == 6 || n == 58 && v == 4) {
			return mismatch("protocol", "%s implies IPv%d, packet is IPv%d", r.Protocol.String(), 10-v, v)
		}
		if n != f.Protocol {
			return mismatch("protocol", "packet is %s, rule wants %s", ProtocolName(f.Protocol), r.Protocol.String())
		}
	}
	if r.NotProtocol != nil {
		if n, ok := r.NotProtocol.Number(); ok && n == f.Protocol {
			return mismatch("notProtocol", "packet is %s", ProtocolName(f.Protocol))
		}
	}
	if r.ICMP != nil && !icmpMatches(r.ICMP, f) {
		return mismatch("icmp", "packet is %s, rule wants %s", icmpString(f.ICMPType, f.ICMPCode, f.Protocol), icmpFields(r.ICMP))
	}
	if r.NotICMP != nil && (f.Protocol == 1 || f.Protocol == 58) && icmpMatches(r.NotICMP, f) {
		// The pair is negated as a whole (iptables' semantics, spec §2).
		return mismatch("notICMP", "packet is %s", icmpFields(r.NotICMP))
	}
	if mm := m.matchEntity("source", &r.Source, sc, &f.Src, f, r.Protocol); mm != nil {
		return mm
	}
	return m.matchEntity("destination", &r.Destination, sc, &f.Dst, f, r.Protocol)
}

func icmpMatches(i *resources.ICMPFields, f *Flow) bool {
	if f.Protocol != 1 && f.Protocol != 58 {
		return false
	}
	if i.Type != nil && *i.Type != f.ICMPType {
		return false
	}
	return i.Code == nil || *i.Code == f.ICMPCode
}

func icmpFields(i *resources.ICMPFields) string {
	s := "any ICMP"
	if i.Type != nil {
		s = fmt.Sprintf("type %d", *i.Type)
		if i.Code != nil {
			s += fmt.Sprintf(" code %d", *i.Code)
		}
	}
	return s
}

func icmpString(t, c int, proto uint8) string {
	if proto != 1 && proto != 58 {
		return ProtocolName(proto)
	}
	if t < 0 {
		return "ICMP without a type"
	}
	if c < 0 {
		return fmt.Sprintf("type %d", t)
	}
	return fmt.Sprintf("type %d code %d", t, c)
}

func (m *Matcher) matchEntity(side string, e *resources.EntityRule, sc Scope, p *Peer, f *Flow, proto *resources.Protocol) *Mismatch {
	v := f.IPVersion()
	if len(e.Nets) > 0 {
		nets, other := netsOf(e.Nets, v)
		if len(nets) == 0 {
			return mismatch(side+".nets", "only IPv%d nets %v (the rule is left out of the IPv%d table)", 10-v, other, v)
		}
		if !slices.ContainsFunc(nets, func(n netip.Prefix) bool { return n.Contains(p.Addr) }) {
			return mismatch(side+".nets", "%s is not in %s", p.Addr, joinPrefixes(nets))
		}
	}
	if len(e.NotNets) > 0 {
		nets, _ := netsOf(e.NotNets, v)
		if i := slices.IndexFunc(nets, func(n netip.Prefix) bool { return n.Contains(p.Addr) }); i >= 0 {
			return mismatch(side+".notNets", "%s is in %s", p.Addr, nets[i])
		}
	}
	if mm := m.matchSelectors(side, e, sc, p); mm != nil {
		return mm
	}
	if e.Services != nil {
		return mismatch(side+".services", "service matches are not evaluated by explain (Kubernetes Services)")
	}
	if len(e.Ports) > 0 {
		if !PortsSupported(f.Protocol) {
			return mismatch(side+".ports", "protocol %s has no ports", ProtocolName(f.Protocol))
		}
		if !slices.ContainsFunc(e.Ports, func(pt resources.Port) bool { return portMatches(pt, p, f.Protocol, proto) }) {
			return mismatch(side+".ports", "port %d is not in %s", p.Port, joinPorts(e.Ports))
		}
	}
	if len(e.NotPorts) > 0 && PortsSupported(f.Protocol) {
		if i := slices.IndexFunc(e.NotPorts, func(pt resources.Port) bool { return portMatches(pt, p, f.Protocol, proto) }); i >= 0 {
			return mismatch(side+".notPorts", "port %d is in %s", p.Port, e.NotPorts[i])
		}
	}
	return nil
}

// matchSelectors checks selector, namespaceSelector, serviceAccounts (one
// positive selector over the same member, as upstream rewrites them into
// one IP set) and notSelector.
func (m *Matcher) matchSelectors(side string, e *resources.EntityRule, sc Scope, p *Peer) *Mismatch {
	scoped := sc.Namespace != "" && e.NamespaceSelector == "" &&
		(e.Selector != "" || e.NotSelector != "" || e.ServiceAccounts != nil)
	if e.Selector != "" || e.NamespaceSelector != "" || e.ServiceAccounts != nil || scoped {
		var sel, nsSel, saSel *selector.Selector
		var err error
		if e.Selector != "" {
			if sel, err = m.Selector(e.Selector); err != nil {
				return mismatch(side+".selector", "invalid selector: %v", err)
			}
		}
		if e.NamespaceSelector != "" {
			if nsSel, err = m.Selector(e.NamespaceSelector); err != nil {
				return mismatch(side+".namespaceSelector", "invalid selector: %v", err)
			}
		}
		if e.ServiceAccounts != nil && e.ServiceAccounts.Selector != "" {
			if saSel, err = m.Selector(e.ServiceAccounts.Selector); err != nil {
				return mismatch(side+".serviceAccounts", "invalid selector: %v", err)
			}
		}
		var first *Mismatch
		for _, mem := range p.Members {
			mm := m.memberMatches(side, e, sc, scoped, sel, nsSel, saSel, mem)
			if mm == nil {
				first = nil
				break
			}
			if first == nil {
				first = mm
			}
		}
		if len(p.Members) == 0 {
			field := side + ".selector"
			switch {
			case e.Selector == "" && e.NamespaceSelector != "":
				field = side + ".namespaceSelector"
			case e.Selector == "" && e.ServiceAccounts != nil:
				field = side + ".serviceAccounts"
			}
			return mismatch(field, "%s is not a Calico endpoint or network set", p.Addr)
		}
		if first != nil {
			return first
		}
	}
	if e.NotSelector != "" {
		sel, err := m.Selector(e.NotSelector)
		if err != nil {
			return mismatch(side+".notSelector", "invalid selector: %v", err)
		}
		for _, mem := range p.Members {
			if sel.Evaluate(mem.Labels) {
				return mismatch(side+".notSelector", "%s matches %s", memberName(mem), sel)
			}
		}
	}
	return nil
}

func memberName(m Member) string {
	if m.Name != "" {
		return m.Name
	}
	return "the peer"
}

func (m *Matcher) memberMatches(side string, e *resources.EntityRule, sc Scope, scoped bool, sel, nsSel, saSel *selector.Selector, mem Member) *Mismatch {
	ns, namespaced := mem.Namespace()
	if scoped && ns != sc.Namespace {
		if !namespaced {
			return mismatch(side+".selector", "%s is not namespaced; a NetworkPolicy's selectors only match namespace %q", memberName(mem), sc.Namespace)
		}
		return mismatch(side+".selector", "%s is in namespace %q; a NetworkPolicy's selectors only match namespace %q", memberName(mem), ns, sc.Namespace)
	}
	if sel != nil && !sel.Evaluate(mem.Labels) {
		return mismatch(side+".selector", "%s does not match %s", memberName(mem), sel)
	}
	if nsSel != nil && !NamespaceSelectorMatches(nsSel, mem.Labels) {
		return mismatch(side+".namespaceSelector", "%s's namespace does not match %s", memberName(mem), nsSel)
	}
	if sa := e.ServiceAccounts; sa != nil {
		name, ok := mem.Labels[LabelServiceAccount]
		if len(sa.Names) > 0 && (!ok || !slices.Contains(sa.Names, name)) {
			return mismatch(side+".serviceAccounts", "%s has service account %q, not one of %v", memberName(mem), name, sa.Names)
		}
		if saSel != nil && !saSel.EvaluateLabels(prefixView{mem.Labels, PrefixSvcAccount}) {
			return mismatch(side+".serviceAccounts", "%s's service account does not match %s", memberName(mem), saSel)
		}
	}
	return nil
}

// NamespaceSelectorMatches evaluates a namespaceSelector over an object's
// effective labels: its terms read the pcns.-prefixed labels; all() means
// "namespaced" and global() "not namespaced" (spec §2).
func NamespaceSelectorMatches(sel *selector.Selector, labels map[string]string) bool {
	_, namespaced := labels[LabelNamespace]
	switch s := sel.String(); {
	case s == "global()":
		return !namespaced
	case sel.IsAll():
		return namespaced
	case sel.UsesGlobal():
		// global() inside a larger expression: as upstream's rewrite,
		// which never matches namespaced objects' pcns labels for it.
		if !namespaced {
			return true
		}
	}
	if !namespaced {
		return false
	}
	return sel.EvaluateLabels(prefixView{labels, PrefixNamespace})
}

// prefixView reads label k as prefix+k.
type prefixView struct {
	labels map[string]string
	prefix string
}

func (v prefixView) Get(k string) (string, bool) {
	s, ok := v.labels[v.prefix+k]
	return s, ok
}

// PortsSupported reports whether the protocol has ports (tcp, udp, sctp).
func PortsSupported(proto uint8) bool { return proto == 6 || proto == 17 || proto == 132 }

func portMatches(pt resources.Port, p *Peer, proto uint8, ruleProto *resources.Protocol) bool {
	if !pt.IsNamed() {
		return p.Port >= pt.MinPort && p.Port <= pt.MaxPort
	}
	for _, np := range p.NamedPorts {
		if np.Name != pt.PortName || np.Port != p.Port || np.Protocol != proto {
			continue
		}
		if ruleProto != nil {
			if n, ok := ruleProto.Number(); ok && n != np.Protocol {
				continue
			}
		}
		return true
	}
	return false
}

// netsOf parses CIDRs, keeping those of IP version v; other are the ones of
// the other family.
func netsOf(cidrs []string, v int) (nets, other []netip.Prefix) {
	for _, c := range cidrs {
		p, err := resources.ParseCIDR(c)
		if err != nil {
			continue
		}
		if (p.Addr().Is4()) == (v == 4) {
			nets = append(nets, p.Masked())
		} else {
			other = append(other, p.Masked())
		}
	}
	return nets, other
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func joinPorts(ps []resources.Port) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return "[" + strings.Join(s, ", ") + "]"
}

var protocolNames = map[uint8]string{1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp", 136: "udplite"}

// ProtocolName is the lower-case name of an IP protocol number, or the
// number.
func ProtocolName(n uint8) string {
	if s, ok := protocolNames[n]; ok {
		return s
	}
	return fmt.Sprint(n)
}

// ParseProtocol reads a protocol name (any case) or number 1-255.
func ParseProtocol(s string) (uint8, error) {
	p := resources.ProtocolFromString(s)
	n, ok := p.Number()
	if !ok || n == 0 {
		return 0, fmt.Errorf("unknown protocol %q: use tcp, udp, icmp, icmpv6, sctp, udplite or a number 1-255", s)
	}
	return n, nil
}
