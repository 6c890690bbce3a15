package policy

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/opencalico/calicoctl/internal/prefixes"

	"github.com/opencalico/calicoctl/resources"
	"github.com/opencalico/calicoctl/resources/selector"
)

// maxNameLen is nft's limit on chain names (NFT_CHAIN_MAXNAMELEN 256
// including the NUL).
const maxNameLen = 255

// chainName is prefix+id, or, when that is too long for nft, upstream's
// hashed form prefix_<base64url(sha256(id))>.
func chainName(prefix, id string) string {
	if len(prefix)+len(id) <= maxNameLen {
		return prefix + id
	}
	sum := sha256.Sum256([]byte(id))
	return prefix + "_" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// setName is upstream's set naming: "cali40"/"cali60" + the ID
// (prefix + base64url(SHA-224(prefix+key))), truncated to 31 characters,
// with ':' replaced by '-'.
func setName(v6 bool, prefix, key string) string {
	sum := sha256.Sum224([]byte(prefix + key))
	fam := "cali40"
	if v6 {
		fam = "cali60"
	}
	n := fam + prefix + base64.RawURLEncoding.EncodeToString(sum[:])
	if len(n) > 31 {
		n = n[:31]
	}
	return strings.ReplaceAll(n, ":", "-")
}

type ruleCtx struct {
	owner   string // policy id or pro/<profile>
	dir     string // ingress | egress
	index   int
	scopeNS string // NP/KNP: the namespace positive selectors are scoped to
	layer   string // "", layerMangle or layerRaw
}

type compileFamily struct {
	v6              bool
	ip, icmp, proto string // "ip"/"ip6", "icmp"/"icmpv6", "ipv4"/"ipv6"
}

var compileFamilies = []compileFamily{
	{v6: false, ip: "ip", icmp: "icmp", proto: "ipv4"},
	{v6: true, ip: "ip6", icmp: "icmpv6", proto: "ipv6"},
}

// compileSideMatch is the positive selector of one side of a rule, with
// its scoping: selector && namespaceSelector (or own namespace) &&
// serviceAccounts.
type compileSideMatch struct {
	sel, nsSel, saSel *selector.Selector
	hasNS, hasSA      bool
	saNames           []string
	scopeNS           string
	key               string // canonical text, the set's identity
}

func (m *compileSideMatch) matches(c *compiler, s compileSubject) bool {
	return m.nsMatches(c, s.ns) && m.matchesInNS(c, s)
}

// nsMatches is the namespace part of m for a subject of namespace ns.
func (m *compileSideMatch) nsMatches(c *compiler, ns string) bool {
	if m.scopeNS != "" && ns != m.scopeNS {
		return false
	}
	return !m.hasNS || c.nsMatch(m.nsSel, ns)
}

// matchesInNS is the rest of m, for a subject whose namespace matches.
func (m *compileSideMatch) matchesInNS(c *compiler, s compileSubject) bool {
	if !m.sel.Evaluate(s.labels) {
		return false
	}
	if m.hasSA {
		if s.ep == nil || s.sa == "" {
			return false
		}
		if len(m.saNames) > 0 && !slices.Contains(m.saNames, s.sa) {
			return false
		}
		if !m.saSel.Evaluate(c.saLabels[s.ns+"/"+s.sa]) {
			return false
		}
	}
	return true
}

// sideMatch returns the positive match of one side (nil when the side has
// none), following upstream's scoping of NetworkPolicy rule selectors.
func sideMatch(e resources.EntityRule, scopeNS string) (*compileSideMatch, error) {
	hasSA := e.ServiceAccounts != nil && (len(e.ServiceAccounts.Names) > 0 || e.ServiceAccounts.Selector != "")
	hasNS := e.NamespaceSelector != ""
	if e.Selector == "" && !hasNS && !hasSA && !(scopeNS != "" && e.NotSelector != "") {
		return nil, nil
	}
	m := &compileSideMatch{hasNS: hasNS, hasSA: hasSA}
	var err error
	if m.sel, err = selector.Parse(e.Selector); err != nil {
		return nil, err
	}
	if m.nsSel, err = selector.Parse(e.NamespaceSelector); err != nil {
		return nil, err
	}
	if hasSA {
		m.saNames = slices.Sorted(slices.Values(e.ServiceAccounts.Names))
		if m.saSel, err = selector.Parse(e.ServiceAccounts.Selector); err != nil {
			return nil, err
		}
	}
	if !hasNS {
		m.scopeNS = scopeNS
	}
	var b strings.Builder
	if m.scopeNS != "" {
		fmt.Fprintf(&b, "projectcalico.org/namespace == %q && ", m.scopeNS)
	}
	b.WriteString(m.sel.String())
	if hasNS {
		b.WriteString(" && ns(" + m.nsSel.String() + ")")
	}
	if hasSA {
		b.WriteString(" && sa(" + strings.Join(m.saNames, ",") + ";" + m.saSel.String() + ")")
	}
	m.key = b.String()
	return m, nil
}

// selectorSet makes sure the set of the addresses matching m exists for
// one family and returns its name.
func (c *compiler) selectorSet(m *compileSideMatch, v6 bool) string {
	if c.rec != nil {
		c.rec.sets = append(c.rec.sets, setCall{m: m, v6: v6})
	}
	name := setName(v6, "s:", m.key)
	if _, ok := c.sets[name]; ok {
		return name
	}
	typ := "ipv4_addr"
	if v6 {
		typ = "ipv6_addr"
	}
	c.sets[name] = c.buildSet(Set{Name: name, Type: typ, Interval: true, Comment: truncate(m.key, 128)}, m, func(members []compileSubject) []string {
		var nets []string
		for _, s := range members {
			nets = append(nets, s.nets...)
		}
		return compilePrefixes(nets, v6)
	})
	return name
}

// buildSet returns def with the elements build makes of the subjects m
// matches (remembered by a Compiler's memo).
func (c *compiler) buildSet(def Set, m *compileSideMatch, build func([]compileSubject) []string) Set {
	if c.memo != nil {
		return c.memo.set(c, def.Name, m, build, def)
	}
	var members []compileSubject
	c.eachMatch(m, func(s compileSubject) { members = append(members, s) })
	def.Elements = build(members)
	return def
}

// eachMatch calls fn for every subject m matches (every subject when m is
// nil), namespace by namespace: the namespace part of m is evaluated once
// per namespace, the rest only for the subjects of those that match. The
// order is not c.subjects' (set contents are sorted by their callers).
func (c *compiler) eachMatch(m *compileSideMatch, fn func(compileSubject)) {
	if m == nil {
		for _, s := range c.subjects {
			fn(s)
		}
		return
	}
	if m.scopeNS != "" {
		if m.nsMatches(c, m.scopeNS) {
			for _, s := range c.subjectsByNS[m.scopeNS] {
				if m.matchesInNS(c, s) {
					fn(s)
				}
			}
		}
		return
	}
	for _, ns := range c.namespaces {
		if !m.nsMatches(c, ns) {
			continue
		}
		for _, s := range c.subjectsByNS[ns] {
			if m.matchesInNS(c, s) {
				fn(s)
			}
		}
	}
}

// namedPortSet makes sure the named-port set (addr . proto . port of every
// subject with a port of that name, filtered by the side's positive
// selector) exists and returns its name.
func (c *compiler) namedPortSet(m *compileSideMatch, port string, proto *resources.Protocol, v6 bool) string {
	if proto != nil { // build and a chain's record may use it again, on a later Input
		p := *proto
		proto = &p
	}
	if c.rec != nil {
		c.rec.sets = append(c.rec.sets, setCall{m: m, named: true, port: port, proto: proto, v6: v6})
	}
	protoKey := "any"
	if proto != nil {
		protoKey = strings.ToLower(proto.String())
	}
	selKey := "all()"
	if m != nil {
		selKey = m.key
	}
	key := port + "/" + protoKey + " " + selKey
	name := setName(v6, "n:", key)
	if _, ok := c.sets[name]; ok {
		return name
	}
	typ := "ipv4_addr . inet_proto . inet_service"
	if v6 {
		typ = "ipv6_addr . inet_proto . inet_service"
	}
	c.sets[name] = c.buildSet(Set{Name: name, Type: typ, Comment: truncate("named port "+key, 128)}, m, func(members []compileSubject) []string {
		return namedPortElements(members, port, proto, v6)
	})
	return name
}

// namedPortElements are the addr . proto . port of every member with a
// port of that name (and protocol), sorted.
func namedPortElements(members []compileSubject, port string, proto *resources.Protocol, v6 bool) []string {
	seen := map[string]bool{}
	var elems []string
	for _, s := range members {
		for _, p := range s.namedPorts {
			if p.Name != port {
				continue
			}
			pn, ok := p.Protocol.Number()
			if !ok {
				continue
			}
			if proto != nil {
				if rn, ok := proto.Number(); !ok || rn != pn {
					continue
				}
			}
			for _, a := range s.nets {
				addr, ok := compileAddr(a)
				if !ok || addr.Is6() != v6 {
					continue
				}
				e := fmt.Sprintf("%s . %s . %d", addr, protoName(pn), p.Port)
				if !seen[e] {
					seen[e] = true
					elems = append(elems, e)
				}
			}
		}
	}
	slices.Sort(elems)
	return elems
}

// compileAddr returns the address of a host prefix or bare address.
func compileAddr(s string) (netip.Addr, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Bits() != p.Addr().BitLen() {
			return netip.Addr{}, false
		}
		return p.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(s)
	return a.Unmap(), err == nil
}

// compilePrefixes parses CIDRs/addresses of one family and returns them
// masked, sorted, with those covered by another removed (interval sets
// reject overlaps).
func compilePrefixes(in []string, v6 bool) []string {
	var ps []netip.Prefix
	for _, s := range in {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, err := netip.ParseAddr(s)
			if err != nil {
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		ps = append(ps, p)
	}
	kept := prefixes.Outermost(ps, v6)
	out := make([]string, 0, len(kept))
	for _, p := range kept {
		if p.Bits() == p.Addr().BitLen() {
			out = append(out, p.Addr().String())
		} else {
			out = append(out, p.String())
		}
	}
	return out
}

func protoName(n uint8) string {
	switch n {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	}
	return strconv.Itoa(int(n))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// compileRule renders one API rule to nft rules: one per address family
// when the rule matches addresses, one per OR-ed alternative (numeric ports
// vs each named port, a negated ICMP type+code pair). A rule that cannot
// match in a family is left out of it.
func (c *compiler) compileRule(r resources.Rule, rc ruleCtx) []Rule {
	comment := fmt.Sprintf("%s %s rule %d", rc.owner, rc.dir, rc.index)
	var verdict string
	switch r.Action {
	case resources.ActionAllow:
		verdict = fmt.Sprintf("meta mark set meta mark | 0x%08x return", markAccept)
		if rc.layer == layerRaw {
			// doNotTrack: the flow bypasses conntrack altogether.
			verdict = fmt.Sprintf("meta mark set meta mark | 0x%08x notrack return", markAccept)
		}
	case resources.ActionPass:
		verdict = fmt.Sprintf("meta mark set meta mark | 0x%08x return", markPass)
	case resources.ActionDeny:
		verdict = "drop"
		if strings.EqualFold(c.in.Felix.FilterDenyAction, "reject") && rc.layer == "" {
			verdict = "reject"
		}
	case resources.ActionLog:
		prefix := truncate(fmt.Sprintf("calico %s %s %d: ", rc.owner, rc.dir, rc.index), 100)
		verdict = fmt.Sprintf("log prefix %q level info", prefix)
	default:
		c.note("%s: unknown action %q, rule left out", comment, r.Action)
		return nil
	}
	if r.Source.Services != nil || r.Destination.Services != nil {
		c.note("%s: services match not compiled yet (TODO: service endpoint sets), rule left out", comment)
		return nil
	}
	if r.HTTP != nil {
		c.note("%s: http match not enforced (no L7 proxy); only its L3/L4 part is", comment)
	}
	src, err1 := sideMatch(r.Source, rc.scopeNS)
	dst, err2 := sideMatch(r.Destination, rc.scopeNS)
	var srcNot, dstNot *compileSideMatch
	var err3, err4 error
	if r.Source.NotSelector != "" {
		srcNot, err3 = sideMatch(resources.EntityRule{Selector: r.Source.NotSelector}, "")
	}
	if r.Destination.NotSelector != "" {
		dstNot, err4 = sideMatch(resources.EntityRule{Selector: r.Destination.NotSelector}, "")
	}
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			c.note("%s: bad selector, rule left out: %v", comment, err)
			return nil
		}
	}

	// Which families the rule is rendered in.
	fams := compileFamilies
	perFamily := src != nil || dst != nil || srcNot != nil || dstNot != nil ||
		len(r.Source.Nets)+len(r.Source.NotNets)+len(r.Destination.Nets)+len(r.Destination.NotNets) > 0 ||
		r.ICMP != nil || r.NotICMP != nil || r.IPVersion != nil ||
		hasNamed(r.Source.Ports) || hasNamed(r.Destination.Ports) || hasNamed(r.Source.NotPorts) || hasNamed(r.Destination.NotPorts)
	version := 0
	if r.IPVersion != nil {
		version = *r.IPVersion
	} else if r.Protocol != nil && r.Protocol.Is(resources.ProtocolICMP) {
		version = 4
	} else if r.Protocol != nil && r.Protocol.Is(resources.ProtocolICMPv6) {
		version = 6
	}
	if version != 0 {
		perFamily = true
	}

	var out []Rule
	if !perFamily {
		for _, alt := range c.ruleAlternatives(r, rc, compileFamily{}, nil, nil, nil, nil, false) {
			out = append(out, Rule{Rule: alt + "counter " + verdict, Comment: comment})
		}
		return out
	}
	for _, f := range fams {
		if (version == 4 && f.v6) || (version == 6 && !f.v6) {
			continue
		}
		alts := c.ruleAlternatives(r, rc, f, src, dst, srcNot, dstNot, true)
		for _, alt := range alts {
			out = append(out, Rule{Rule: alt + "counter " + verdict, Comment: comment})
		}
	}
	return out
}

func hasNamed(ps []resources.Port) bool { return slices.ContainsFunc(ps, resources.Port.IsNamed) }

// ruleAlternatives returns the match parts (each ending in a space) of the
// nft rules that together match r in family f; none when r cannot match
// in f.
func (c *compiler) ruleAlternatives(r resources.Rule, rc ruleCtx, f compileFamily, src, dst, srcNot, dstNot *compileSideMatch, perFamily bool) []string {
	var b strings.Builder
	if perFamily {
		b.WriteString("meta nfproto " + f.proto + " ")
	}
	if r.Protocol != nil {
		b.WriteString("meta l4proto " + protoText(*r.Protocol) + " ")
	}
	if r.NotProtocol != nil {
		b.WriteString("meta l4proto != " + protoText(*r.NotProtocol) + " ")
	}
	type side struct {
		e          resources.EntityRule
		pos, neg   *compileSideMatch
		addr, port string
	}
	sides := []side{
		{e: r.Source, pos: src, neg: srcNot, addr: "saddr", port: "sport"},
		{e: r.Destination, pos: dst, neg: dstNot, addr: "daddr", port: "dport"},
	}
	for _, s := range sides {
		if len(s.e.Nets) > 0 {
			nets := compilePrefixes(s.e.Nets, f.v6)
			if len(nets) == 0 {
				return nil // only nets of the other family
			}
			fmt.Fprintf(&b, "%s %s { %s } ", f.ip, s.addr, strings.Join(nets, ", "))
		}
		if len(s.e.NotNets) > 0 {
			nets := compilePrefixes(s.e.NotNets, f.v6)
			for _, n := range nets {
				if strings.HasSuffix(n, "/0") {
					return nil // notNets: everything of this family
				}
			}
			if len(nets) > 0 {
				fmt.Fprintf(&b, "%s %s != { %s } ", f.ip, s.addr, strings.Join(nets, ", "))
			}
		}
		if s.pos != nil {
			fmt.Fprintf(&b, "%s %s @%s ", f.ip, s.addr, c.selectorSet(s.pos, f.v6))
		}
		if s.neg != nil {
			fmt.Fprintf(&b, "%s %s != @%s ", f.ip, s.addr, c.selectorSet(s.neg, f.v6))
		}
		if nums := numericPorts(s.e.NotPorts); nums != "" {
			fmt.Fprintf(&b, "th %s != { %s } ", s.port, nums)
		}
		for _, p := range s.e.NotPorts {
			if p.IsNamed() {
				fmt.Fprintf(&b, "%s %s . meta l4proto . th %s != @%s ", f.ip, s.addr, s.port, c.namedPortSet(s.pos, p.PortName, r.Protocol, f.v6))
			}
		}
	}
	if r.ICMP != nil && r.ICMP.Type != nil {
		fmt.Fprintf(&b, "%s type %d ", f.icmp, *r.ICMP.Type)
		if r.ICMP.Code != nil {
			fmt.Fprintf(&b, "%s code %d ", f.icmp, *r.ICMP.Code)
		}
	}
	base := []string{b.String()}
	// Positive ports: numeric ones OR each named port, per side.
	for _, s := range sides {
		if len(s.e.Ports) == 0 {
			continue
		}
		var alts []string
		if nums := numericPorts(s.e.Ports); nums != "" {
			alts = append(alts, fmt.Sprintf("th %s { %s } ", s.port, nums))
		}
		for _, p := range s.e.Ports {
			if p.IsNamed() {
				if !perFamily {
					continue // unreachable: named ports make the rule per family
				}
				alts = append(alts, fmt.Sprintf("%s %s . meta l4proto . th %s @%s ", f.ip, s.addr, s.port, c.namedPortSet(s.pos, p.PortName, r.Protocol, f.v6)))
			}
		}
		base = cross(base, alts)
	}
	// notICMP negates type and code as a pair (as iptables does): the
	// packet matches if its type differs, or its code does.
	if r.NotICMP != nil && r.NotICMP.Type != nil {
		alts := []string{fmt.Sprintf("%s type != %d ", f.icmp, *r.NotICMP.Type)}
		if r.NotICMP.Code != nil {
			alts = append(alts, fmt.Sprintf("%s type %d %s code != %d ", f.icmp, *r.NotICMP.Type, f.icmp, *r.NotICMP.Code))
		}
		base = cross(base, alts)
	}
	return base
}

func cross(base, alts []string) []string {
	var out []string
	for _, b := range base {
		for _, a := range alts {
			out = append(out, b+a)
		}
	}
	return out
}

// numericPorts renders the numeric ports and ranges of ps as nft set
// elements ("80, 1000-2000"), or "" when there are none.
func numericPorts(ps []resources.Port) string {
	var parts []string
	for _, p := range ps {
		if p.IsNamed() {
			continue
		}
		if p.MinPort == p.MaxPort {
			parts = append(parts, strconv.Itoa(int(p.MinPort)))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", p.MinPort, p.MaxPort))
		}
	}
	return strings.Join(parts, ", ")
}

func protoText(p resources.Protocol) string {
	if n, ok := p.Number(); ok {
		return protoName(n)
	}
	return strings.ToLower(p.String())
}
