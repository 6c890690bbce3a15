package resources

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Policy defaults and validation shared by NetworkPolicy, GlobalNetworkPolicy
// and Profile (which has rules but no selector or tier).

const (
	// DefaultTierName is the tier a policy belongs to when spec.tier is unset.
	DefaultTierName = "default"
	// LabelTier is the label upstream stamps on every policy with its tier.
	LabelTier = "projectcalico.org/tier"

	globalSelectorTerm = "global()"
)

var (
	// A NetworkPolicy name is a DNS label, label.label, or a mirrored
	// Kubernetes policy name knp.default.<subdomain> / ossg.default.<subdomain>.
	networkPolicyName = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)?|(knp|ossg)\.default\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$`)
	// A GlobalNetworkPolicy name is a DNS label, optionally preceded by "label.".
	globalNetworkPolicyName = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// k8s port names: lower-case alphanumerics and '-', at least one letter.
	k8sPortName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
)

// isNetworkPolicyName reports whether s is a valid NetworkPolicy name.
func isNetworkPolicyName(s string) bool { return len(s) <= 253 && networkPolicyName.MatchString(s) }

// isGlobalNetworkPolicyName reports whether s is a valid GlobalNetworkPolicy name.
func isGlobalNetworkPolicyName(s string) bool {
	return len(s) <= 253 && globalNetworkPolicyName.MatchString(s)
}

// IsPortName reports whether s is a valid Kubernetes (IANA service) port name.
func IsPortName(s string) bool {
	return len(s) <= 15 && k8sPortName.MatchString(s) && !strings.Contains(s, "--") &&
		strings.ContainsFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' })
}

// DefaultPolicyTypes returns the types upstream assigns to a policy that has
// none: Ingress when there are no egress rules, Egress when there are only
// egress rules, both otherwise.
func DefaultPolicyTypes(ingress, egress []Rule) []PolicyType {
	switch {
	case len(egress) == 0:
		return []PolicyType{PolicyTypeIngress}
	case len(ingress) == 0:
		return []PolicyType{PolicyTypeEgress}
	default:
		return []PolicyType{PolicyTypeIngress, PolicyTypeEgress}
	}
}

// defaultPolicy applies the defaults shared by both policy kinds.
func defaultPolicy(meta *metav1.ObjectMeta, tier *string, types *[]PolicyType, ingress, egress []Rule) {
	if *tier == "" {
		*tier = DefaultTierName
	}
	if meta.Labels == nil {
		meta.Labels = map[string]string{}
	}
	meta.Labels[LabelTier] = *tier
	if len(*types) == 0 {
		*types = DefaultPolicyTypes(ingress, egress)
	}
}

// policyParts is the view of a policy spec the shared checks need.
type policyParts struct {
	tier                   string
	order                  *float64
	selector               string
	serviceAccountSelector string
	types                  []PolicyType
	ingress, egress        []Rule
	hints                  []PolicyPerformanceHint
	global                 bool
}

func validatePolicy(v *Validator, p policyParts) {
	if p.tier != "" && !IsDNS1123Subdomain(p.tier) {
		v.Add("spec.tier", p.tier, "invalid tier name")
	}
	validateOrder(v, "spec.order", p.order)
	validateTopSelector(v, "spec.selector", p.selector)
	validateTopSelector(v, "spec.serviceAccountSelector", p.serviceAccountSelector)
	seen := map[PolicyType]bool{}
	for i, t := range p.types {
		f := fmt.Sprintf("spec.types[%d]", i)
		switch {
		case t != PolicyTypeIngress && t != PolicyTypeEgress:
			v.Add(f, t, "type must be Ingress or Egress")
		case seen[t]:
			v.Addf(f, t, "'%s' type specified more than once", t)
		}
		seen[t] = true
	}
	seenHint := map[PolicyPerformanceHint]bool{}
	for i, h := range p.hints {
		f := fmt.Sprintf("spec.performanceHints[%d]", i)
		if h != PerfHintAssumeNeededOnEveryNode {
			v.Add(f, h, "unknown performance hint")
		} else if seenHint[h] {
			v.Add(f, h, "hint specified more than once")
		}
		seenHint[h] = true
	}
	checkRuleCount(v, "spec.ingress", len(p.ingress))
	checkRuleCount(v, "spec.egress", len(p.egress))
	for i, r := range p.ingress {
		f := fmt.Sprintf("spec.ingress[%d]", i)
		validateRule(v, f, r)
		if r.Destination.Services != nil {
			v.Add(f+".destination.services", r.Destination.Services.Name, "not allowed in ingress rule destination")
		}
		if p.global && r.Source.Services != nil && r.Source.Services.Namespace == "" {
			v.Add(f+".source.services.namespace", "", "must specify a namespace")
		}
	}
	for i, r := range p.egress {
		f := fmt.Sprintf("spec.egress[%d]", i)
		validateRule(v, f, r)
		if r.Source.Services != nil {
			v.Add(f+".source.services", r.Source.Services.Name, "not allowed in egress rule source")
		}
		if r.HTTP != nil {
			v.Add(f+".http", "", "not allowed in egress rules")
		}
		if p.global && r.Destination.Services != nil && r.Destination.Services.Namespace == "" {
			v.Add(f+".destination.services.namespace", "", "must specify a namespace")
		}
	}
}

// validateOrder rejects NaN and infinities (JSON cannot carry them back).
func validateOrder(v *Validator, field string, order *float64) {
	if order != nil && (math.IsNaN(*order) || math.IsInf(*order, 0)) {
		v.Add(field, *order, "order must be a finite number")
	}
}

// validateTopSelector checks a policy-level selector: valid syntax and no
// global(), which only an EntityRule namespaceSelector may use.
func validateTopSelector(v *Validator, field, s string) {
	ValidateSelector(v, field, s)
	if strings.Contains(s, globalSelectorTerm) {
		v.Add(field, s, "global() can only be used in an EntityRule namespaceSelector")
	}
}

// checkRuleCount records an error when one direction holds more than MaxRules.
func checkRuleCount(v *Validator, field string, n int) {
	if n > MaxRules {
		v.Addf(field, n, "%d rules, the limit is %d", n, MaxRules)
	}
}

// validateRules checks a list of rules (used by Profile).
func validateRules(v *Validator, field string, rules []Rule) {
	checkRuleCount(v, field, len(rules))
	for i, r := range rules {
		validateRule(v, fmt.Sprintf("%s[%d]", field, i), r)
	}
}

// validateRule checks one rule the way upstream's validator and CRD rules do.
func validateRule(v *Validator, f string, r Rule) {
	switch r.Action {
	case ActionAllow, ActionDeny, ActionLog, ActionPass:
	default:
		v.Add(f+".action", r.Action, "action must be one of Allow, Deny, Log, Pass")
	}
	if r.IPVersion != nil && *r.IPVersion != 4 && *r.IPVersion != 6 {
		v.Add(f+".ipVersion", *r.IPVersion, "ipVersion must be 4 or 6")
	}
	for _, pf := range []struct {
		name string
		p    *Protocol
	}{{"protocol", r.Protocol}, {"notProtocol", r.NotProtocol}} {
		if pf.p == nil {
			continue
		}
		if err := pf.p.Validate(); err != nil {
			v.Add(f+"."+pf.name, pf.p.String(), err.Error())
			continue
		}
		if r.IPVersion != nil && pf.p.Is(ProtocolICMP) && *r.IPVersion != 4 {
			v.Add(f+".ipVersion", *r.IPVersion, "must set ipversion to '4' with protocol icmp")
		}
		if r.IPVersion != nil && pf.p.Is(ProtocolICMPv6) && *r.IPVersion != 6 {
			v.Add(f+".ipVersion", *r.IPVersion, "must set ipversion to '6' with protocol icmpv6")
		}
	}
	validateICMP(v, f+".icmp", r.ICMP)
	validateICMP(v, f+".notICMP", r.NotICMP)
	if r.ICMP != nil && (r.Protocol == nil || !(r.Protocol.Is(ProtocolICMP) || r.Protocol.Is(ProtocolICMPv6))) {
		v.Add(f+".icmp", "", "rules that specify ICMP fields must set protocol to ICMP or ICMPv6")
	}

	// Ports: a numeric port needs a protocol with ports; a named port may go
	// without a protocol, but not with one that has no ports.
	for _, e := range []struct {
		name string
		er   *EntityRule
	}{{"source", &r.Source}, {"destination", &r.Destination}} {
		for _, pl := range []struct {
			name  string
			ports []Port
		}{{"ports", e.er.Ports}, {"notPorts", e.er.NotPorts}} {
			for i, p := range pl.ports {
				pf := fmt.Sprintf("%s.%s.%s[%d]", f, e.name, pl.name, i)
				validatePort(v, pf, p)
				switch {
				case r.Protocol != nil && !r.Protocol.SupportsPorts(),
					r.Protocol == nil && !p.IsNamed():
					v.Add(pf, p.String(), "rules that specify ports must set protocol to TCP or UDP or SCTP")
				}
			}
		}
		validateEntityRule(v, f+"."+e.name, e.er)
	}
	validateRuleNets(v, f, r)

	if r.HTTP != nil {
		if r.Action != ActionAllow {
			v.Add(f+".http", "", "HTTP match is only valid on Allow rules")
		}
		if r.Protocol != nil && !r.Protocol.Is(ProtocolTCP) {
			v.Add(f+".protocol", r.Protocol.String(), "rules that specify HTTP fields must set protocol to TCP or empty")
		}
		validateHTTP(v, f+".http", r.HTTP)
	}
	if r.Destination.Services != nil && (len(r.Destination.Ports) > 0 || len(r.Destination.NotPorts) > 0) {
		v.Add(f+".destination.ports", "", "cannot specify ports with a service selector")
	}
	if r.Metadata != nil {
		validateAnnotations(v, f+".metadata.annotations", r.Metadata.Annotations)
	}
}

func validateICMP(v *Validator, f string, icmp *ICMPFields) {
	if icmp == nil {
		return
	}
	if icmp.Type != nil && (*icmp.Type < 0 || *icmp.Type > 254) {
		v.Add(f+".type", *icmp.Type, "ICMP type must be between 0 and 254")
	}
	if icmp.Code != nil {
		if *icmp.Code < 0 || *icmp.Code > 255 {
			v.Add(f+".code", *icmp.Code, "ICMP code must be between 0 and 255")
		}
		if icmp.Type == nil {
			v.Add(f+".code", *icmp.Code, "ICMP code specified without an ICMP type")
		}
	}
}

func validatePort(v *Validator, f string, p Port) {
	switch {
	case p.PortName != "":
		if p.MinPort != 0 || p.MaxPort != 0 {
			v.Add(f, p.PortName, "named port invalid, if name is specified, min and max should be 0")
		} else if !IsPortName(p.PortName) {
			v.Add(f, p.PortName, "invalid port name")
		}
	case p.MinPort > p.MaxPort:
		v.Add(f, p.String(), "port range invalid")
	case p.MinPort < 1:
		v.Add(f, p.String(), "port range invalid, port number must be between 1 and 65535")
	}
}

func validateEntityRule(v *Validator, f string, e *EntityRule) {
	ValidateSelector(v, f+".selector", e.Selector)
	ValidateSelector(v, f+".notSelector", e.NotSelector)
	ValidateSelector(v, f+".namespaceSelector", e.NamespaceSelector)
	if strings.Contains(e.Selector, "global(") {
		v.Add(f+".selector", e.Selector, "global() can only be used in an EntityRule namespaceSelector")
	}
	if strings.Contains(e.NotSelector, "global(") {
		v.Add(f+".notSelector", e.NotSelector, "global() can only be used in an EntityRule namespaceSelector")
	}
	if ns := strings.TrimSpace(e.NamespaceSelector); strings.Contains(ns, "global(") && ns != globalSelectorTerm {
		v.Add(f+".namespaceSelector", e.NamespaceSelector, "global() cannot be combined with other selectors")
	}
	if sa := e.ServiceAccounts; sa != nil {
		ValidateSelector(v, f+".serviceAccounts.selector", sa.Selector)
	}
	if s := e.Services; s != nil {
		sf := f + ".services"
		if s.Name == "" {
			v.Add(sf+".name", "", "must specify a service name")
		} else if !IsDNS1123Subdomain(s.Name) {
			v.Add(sf+".name", s.Name, "invalid service name")
		}
		if s.Namespace != "" && !IsDNS1123Subdomain(s.Namespace) {
			v.Add(sf+".namespace", s.Namespace, "invalid namespace")
		}
		if e.NamespaceSelector != "" {
			v.Add(sf, s.Name, "cannot specify NamespaceSelector and Services on the same rule")
		}
		if e.Selector != "" || e.NotSelector != "" {
			v.Add(sf, s.Name, "cannot specify Selector/NotSelector and Services on the same rule")
		}
		if e.ServiceAccounts != nil {
			v.Add(sf, s.Name, "cannot specify ServiceAccounts and Services on the same rule")
		}
		if len(e.Nets) > 0 || len(e.NotNets) > 0 {
			v.Add(sf, s.Name, "cannot specify Nets/NotNets and Services on the same rule")
		}
	}
}

// validateRuleNets checks every nets/notNets entry: a strictly masked CIDR,
// one address family across the whole rule, matching ipVersion, and no
// notNets that would exclude everything.
func validateRuleNets(v *Validator, f string, r Rule) {
	var seenV4, seenV6 bool
	for _, l := range []struct {
		field string
		nets  []string
		not   bool
	}{
		{f + ".source.nets", r.Source.Nets, false},
		{f + ".source.notNets", r.Source.NotNets, true},
		{f + ".destination.nets", r.Destination.Nets, false},
		{f + ".destination.notNets", r.Destination.NotNets, true},
	} {
		var v4, v6 bool
		for i, n := range l.nets {
			nf := fmt.Sprintf("%s[%d]", l.field, i)
			p, err := ParsePrefix(n)
			if err != nil {
				v.Add(nf, n, "invalid CIDR")
				continue
			}
			if p.Masked() != p {
				v.Add(nf, n, "CIDR is not strictly masked")
			}
			if l.not && p.Bits() == 0 {
				v.Add(nf, n, "notNets must not match all addresses")
			}
			v4 = v4 || p.Addr().Is4()
			v6 = v6 || p.Addr().Is6()
		}
		if r.IPVersion != nil && ((v4 && *r.IPVersion != 4) || (v6 && *r.IPVersion != 6)) {
			v.Add(l.field, strings.Join(l.nets, ","), "rule IP version doesn't match CIDR version")
		}
		if (v4 && seenV6) || (v6 && seenV4) || (v4 && v6) {
			v.Add(l.field, strings.Join(l.nets, ","), "rule contains both IPv4 and IPv6 CIDRs")
		}
		seenV4, seenV6 = seenV4 || v4, seenV6 || v6
	}
}

func validateHTTP(v *Validator, f string, h *HTTPMatch) {
	seen := map[string]bool{}
	for i, m := range h.Methods {
		if seen[m] {
			v.Add(fmt.Sprintf("%s.methods[%d]", f, i), m, "invalid methods (duplicates)")
		}
		seen[m] = true
	}
	for i, p := range h.Paths {
		pf := fmt.Sprintf("%s.paths[%d]", f, i)
		val := p.Exact
		switch {
		case p.Exact != "" && p.Prefix != "":
			v.Add(pf, p.Exact, "invalid path match: both 'exact' and 'prefix' are set")
			continue
		case p.Exact == "" && p.Prefix == "":
			v.Add(pf, "", "invalid path match: either 'exact' or 'prefix' must be set")
			continue
		case val == "":
			val = p.Prefix
		}
		if !strings.HasPrefix(val, "/") || strings.ContainsAny(val, "? #") {
			v.Add(pf, val, "invalid path: must start with '/' and not contain '?', '#' or spaces")
		}
	}
}

// validateAnnotations checks annotation keys and the total size (256 kB).
func validateAnnotations(v *Validator, f string, annotations map[string]string) {
	total := 0
	for _, k := range slices.Sorted(maps.Keys(annotations)) {
		if !IsLabelKey(strings.ToLower(k)) {
			v.Add(f, k, "invalid annotation key")
		}
		total += len(k) + len(annotations[k])
	}
	if total > MaxAnnotationsSize {
		v.Addf(f, "", "total size of annotations is %d bytes, the limit is %d", total, MaxAnnotationsSize)
	}
}

// FormatOrder renders a policy or tier order readably: 1000000, not 1e+06.
func FormatOrder(o float64) string { return strconv.FormatFloat(o, 'f', -1, 64) }
