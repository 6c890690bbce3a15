package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"

	"github.com/opencalico/calicoctl/resources"
)

// communityValue is a standard (aa:nn) or large (aa:nn:mm) community.
var communityValue = regexp.MustCompile(`^\d+:\d+(:\d+)?$`)

// peerFilters compiles the BGPFilter chain of every session that has one.
func (p *planner) peerFilters(peers []Peer) []PeerFilter {
	compiled := map[string]Filter{}
	var out []PeerFilter
	for _, pr := range peers {
		if len(pr.Filters) == 0 {
			continue
		}
		pf := PeerFilter{Peer: pr.Address}
		for _, name := range pr.Filters {
			f, ok := compiled[name]
			if !ok {
				f = p.compileFilter(p.in.Filters[name])
				compiled[name] = f
			}
			pf.Filters = append(pf.Filters, f)
		}
		out = append(out, pf)
	}
	return out
}

// compileFilter parses a BGPFilter's four rule lists. A rule that cannot
// be used is left out with a warning (validation keeps such rules out of
// the datastore; this guards against objects written around it).
func (p *planner) compileFilter(r *resources.BGPFilter) Filter {
	f := Filter{Name: r.Name}
	lists := []struct {
		field string
		rules []resources.BGPFilterRuleV4
		v4    bool
		dst   *[]FilterRule
	}{
		{"exportV4", r.Spec.ExportV4, true, &f.ExportV4},
		{"importV4", r.Spec.ImportV4, true, &f.ImportV4},
		{"exportV6", v6Rules(r.Spec.ExportV6), false, &f.ExportV6},
		{"importV6", v6Rules(r.Spec.ImportV6), false, &f.ImportV6},
	}
	for _, l := range lists {
		for i, rule := range l.rules {
			fr, err := CompileRule(rule, l.v4)
			if err != nil {
				p.warn("BGPFilter %s: spec.%s[%d]: %v; rule skipped", r.Name, l.field, i, err)
				continue
			}
			*l.dst = append(*l.dst, fr)
		}
	}
	return f
}

func v6Rules(rs []resources.BGPFilterRuleV6) []resources.BGPFilterRuleV4 {
	out := make([]resources.BGPFilterRuleV4, len(rs))
	for i, r := range rs {
		out[i] = resources.BGPFilterRuleV4(r)
	}
	return out
}

// CompileRule turns one BGPFilter rule of a family (v4 false: IPv6) into a
// FilterRule: the CIDR parsed, the prefix-length range defaulted to the
// CIDR's length up to the family's maximum and clamped into it (just the
// CIDR's length for Equal and NotEqual), AS numbers as integers.
func CompileRule(r resources.BGPFilterRuleV4, v4 bool) (FilterRule, error) {
	fr := FilterRule{Action: r.Action, MatchOperator: r.MatchOperator, Source: r.Source,
		Interface: r.Interface, PeerType: r.PeerType}
	if r.Action != "Accept" && r.Action != "Reject" {
		return FilterRule{}, fmt.Errorf("action %q is neither Accept nor Reject", r.Action)
	}
	if r.CIDR != "" {
		c, err := netip.ParsePrefix(r.CIDR)
		if err != nil || c.Addr().Unmap().Is4() != v4 {
			return FilterRule{}, fmt.Errorf("cidr %q is not an IPv%d CIDR", r.CIDR, family(v4))
		}
		fr.CIDR = c.Masked()
		if !slices.Contains([]string{"Equal", "NotEqual", "In", "NotIn"}, r.MatchOperator) {
			return FilterRule{}, fmt.Errorf("matchOperator %q is not Equal, NotEqual, In or NotIn", r.MatchOperator)
		}
		maxLen := 128
		if v4 {
			maxLen = 32
		}
		fr.PrefixLenMin, fr.PrefixLenMax = c.Bits(), maxLen
		if pl := r.PrefixLength; pl != nil {
			if pl.Min != nil {
				fr.PrefixLenMin = min(max(int(*pl.Min), c.Bits()), maxLen)
			}
			if pl.Max != nil {
				fr.PrefixLenMax = min(max(int(*pl.Max), c.Bits()), maxLen)
			}
		}
		if fr.PrefixLenMin > fr.PrefixLenMax {
			return FilterRule{}, fmt.Errorf("prefixLength min %d is above max %d", fr.PrefixLenMin, fr.PrefixLenMax)
		}
		if r.MatchOperator == "Equal" || r.MatchOperator == "NotEqual" {
			// An exact match has one length: the cidr's.
			fr.PrefixLenMin, fr.PrefixLenMax = c.Bits(), c.Bits()
		}
	} else if r.MatchOperator != "" || r.PrefixLength != nil {
		return FilterRule{}, errors.New("matchOperator and prefixLength need a cidr")
	}
	if c := r.Communities; c != nil {
		if len(c.Values) != 1 || !communityValue.MatchString(c.Values[0]) {
			return FilterRule{}, fmt.Errorf("communities.values %q is not exactly one community", c.Values)
		}
		fr.Community = c.Values[0]
	}
	for _, as := range r.ASPathPrefix {
		fr.ASPathPrefix = append(fr.ASPathPrefix, uint32(as))
	}
	if r.Priority != nil {
		fr.Priority = *r.Priority
	}
	if len(r.Operations) > 0 && r.Action != "Accept" {
		return FilterRule{}, errors.New("operations need action Accept")
	}
	for i, o := range r.Operations {
		op, err := compileOperation(o)
		if err != nil {
			return FilterRule{}, fmt.Errorf("operations[%d]: %w", i, err)
		}
		fr.Operations = append(fr.Operations, op)
	}
	return fr, nil
}

func compileOperation(o resources.BGPFilterOperation) (FilterOperation, error) {
	var op FilterOperation
	n := 0
	if a := o.AddCommunity; a != nil {
		n++
		if !communityValue.MatchString(a.Value) {
			return op, fmt.Errorf("addCommunity %q is not a community", a.Value)
		}
		op.AddCommunity = a.Value
	}
	if pp := o.PrependASPath; pp != nil {
		n++
		if len(pp.Prefix) == 0 {
			return op, errors.New("prependASPath has no AS number")
		}
		for _, as := range pp.Prefix {
			op.PrependASPath = append(op.PrependASPath, uint32(as))
		}
	}
	if sp := o.SetPriority; sp != nil {
		n++
		op.SetPriority = sp.Value
	}
	if n != 1 {
		return op, fmt.Errorf("%d operations in one entry, want exactly one", n)
	}
	return op, nil
}
