package resources

import (
	"fmt"
	"regexp"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BGPFilter is the projectcalico.org/v3 BGPFilter resource: ordered
// accept/reject rules for routes imported from and exported to BGP peers.
type BGPFilter struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BGPFilterSpec `json:"spec,omitempty"`
}

// BGPFilterSpec is the spec of a BGPFilter.
type BGPFilterSpec struct {
	ExportV4 []BGPFilterRuleV4 `json:"exportV4,omitempty"`
	ImportV4 []BGPFilterRuleV4 `json:"importV4,omitempty"`
	ExportV6 []BGPFilterRuleV6 `json:"exportV6,omitempty"`
	ImportV6 []BGPFilterRuleV6 `json:"importV6,omitempty"`
}

// BGPFilterRuleV4 matches IPv4 routes. All set match fields must match.
type BGPFilterRuleV4 struct {
	// CIDR and MatchOperator (Equal, NotEqual, In, NotIn) are set together.
	CIDR          string `json:"cidr,omitempty"`
	MatchOperator string `json:"matchOperator,omitempty"`
	// PrefixLength narrows an In/NotIn match to these prefix lengths.
	PrefixLength *BGPFilterPrefixLength `json:"prefixLength,omitempty"`
	// Source is RemotePeers to match only routes learned from peers.
	Source string `json:"source,omitempty"`
	// Interface matches routes through interfaces matching this glob.
	Interface string `json:"interface,omitempty"`
	// PeerType is eBGP or iBGP to match only sessions of that kind.
	PeerType string `json:"peerType,omitempty"`
	// Communities matches routes carrying this (single) community.
	Communities *BGPFilterCommunityMatch `json:"communities,omitempty"`
	// ASPathPrefix matches routes whose AS path starts with these ASes.
	ASPathPrefix []ASNumber `json:"asPathPrefix,omitempty"`
	// Priority matches routes of this priority (FelixConfiguration units).
	Priority *int `json:"priority,omitempty"`
	// Action is Accept or Reject.
	Action string `json:"action"`
	// Operations modify an accepted route, in order (Accept only).
	Operations []BGPFilterOperation `json:"operations,omitempty"`
}

// BGPFilterRuleV6 matches IPv6 routes; see BGPFilterRuleV4.
type BGPFilterRuleV6 struct {
	CIDR          string                   `json:"cidr,omitempty"`
	MatchOperator string                   `json:"matchOperator,omitempty"`
	PrefixLength  *BGPFilterPrefixLength   `json:"prefixLength,omitempty"`
	Source        string                   `json:"source,omitempty"`
	Interface     string                   `json:"interface,omitempty"`
	PeerType      string                   `json:"peerType,omitempty"`
	Communities   *BGPFilterCommunityMatch `json:"communities,omitempty"`
	ASPathPrefix  []ASNumber               `json:"asPathPrefix,omitempty"`
	Priority      *int                     `json:"priority,omitempty"`
	Action        string                   `json:"action"`
	Operations    []BGPFilterOperation     `json:"operations,omitempty"`
}

// BGPFilterPrefixLength bounds the prefix length of matched routes.
type BGPFilterPrefixLength struct {
	Min *int32 `json:"min,omitempty"`
	Max *int32 `json:"max,omitempty"`
}

// BGPFilterCommunityMatch is the community a rule matches (exactly one
// value, standard aa:nn or large aa:nn:mm).
type BGPFilterCommunityMatch struct {
	Values []string `json:"values"`
}

// BGPFilterOperation is one modification of an accepted route; exactly one
// field is set.
type BGPFilterOperation struct {
	AddCommunity  *BGPFilterAddCommunity  `json:"addCommunity,omitempty"`
	PrependASPath *BGPFilterPrependASPath `json:"prependASPath,omitempty"`
	SetPriority   *BGPFilterSetPriority   `json:"setPriority,omitempty"`
}

// BGPFilterAddCommunity adds one community.
type BGPFilterAddCommunity struct {
	Value string `json:"value"`
}

// BGPFilterPrependASPath prepends ASes to the AS path (in the given order).
type BGPFilterPrependASPath struct {
	Prefix []ASNumber `json:"prefix"`
}

// BGPFilterSetPriority sets the route's priority.
type BGPFilterSetPriority struct {
	Value int `json:"value"`
}

// Bounds of a rule's priority match and setPriority operation.
const (
	minFilterPriority = 1
	maxFilterPriority = 2147483646
)

var filterIface = regexp.MustCompile(`^[a-zA-Z0-9_.\-*]{1,15}$`)

// Default does nothing: upstream writes no defaults for BGPFilter.
func (r *BGPFilter) Default() {}

// Validate checks every rule: action and operator enums, cidr of the list's
// family set together with matchOperator, and prefix lengths in range.
func (r *BGPFilter) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	for i, x := range r.Spec.ExportV4 {
		validateFilterRule(&v, fmt.Sprintf("spec.exportV4[%d]", i), 4, x)
	}
	for i, x := range r.Spec.ImportV4 {
		validateFilterRule(&v, fmt.Sprintf("spec.importV4[%d]", i), 4, x)
	}
	for i, x := range r.Spec.ExportV6 {
		validateFilterRule(&v, fmt.Sprintf("spec.exportV6[%d]", i), 6, BGPFilterRuleV4(x))
	}
	for i, x := range r.Spec.ImportV6 {
		validateFilterRule(&v, fmt.Sprintf("spec.importV6[%d]", i), 6, BGPFilterRuleV4(x))
	}
	return v.Err()
}

func validateFilterRule(v *Validator, f string, family int, rule BGPFilterRuleV4) {
	cidr, op, pl, action := rule.CIDR, rule.MatchOperator, rule.PrefixLength, rule.Action
	if action == "" {
		v.Add(f+".action", action, "action is required (Accept or Reject)")
	} else {
		enumField(v, f+".action", action, "Accept", "Reject")
	}
	enumField(v, f+".matchOperator", op, "Equal", "NotEqual", "In", "NotIn")
	enumField(v, f+".source", rule.Source, "RemotePeers")
	patternField(v, f+".interface", rule.Interface, filterIface, "an interface name or glob of at most 15 characters")
	enumField(v, f+".peerType", rule.PeerType, "eBGP", "iBGP")
	if c := rule.Communities; c != nil {
		if len(c.Values) != 1 {
			v.Add(f+".communities.values", c.Values, "exactly one community value is supported")
		}
		for i, val := range c.Values {
			validateCommunityValue(v, fmt.Sprintf("%s.communities.values[%d]", f, i), val)
		}
	}
	rangeField(v, f+".priority", rule.Priority, minFilterPriority, maxFilterPriority)
	validateFilterOperations(v, f, rule)
	if (cidr == "") != (op == "") {
		v.Add(f+".cidr", cidr, "cidr and matchOperator must both be set or both be empty")
	}
	maxLen := int32(32)
	if family == 6 {
		maxLen = 128
	}
	minLen := int32(0)
	if cidr != "" {
		if p, ok := ValidateCIDR(v, f+".cidr", cidr, false); ok {
			if (family == 4) != p.Addr().Is4() {
				v.Add(f+".cidr", cidr, fmt.Sprintf("must be an IPv%d CIDR", family))
			} else {
				minLen = int32(p.Bits())
			}
		}
	}
	if pl == nil {
		return
	}
	if cidr == "" {
		v.Add(f+".prefixLength", "set", "prefixLength requires cidr")
	}
	for _, b := range []struct {
		name string
		val  *int32
	}{{"min", pl.Min}, {"max", pl.Max}} {
		if b.val != nil && (*b.val < minLen || *b.val > maxLen) {
			v.Add(f+".prefixLength."+b.name, *b.val, fmt.Sprintf("must be between %d (the cidr's length) and %d", minLen, maxLen))
		}
	}
	if pl.Min != nil && pl.Max != nil && *pl.Min > *pl.Max {
		v.Add(f+".prefixLength.min", *pl.Min, "min must not be greater than max")
	}
}

// validateFilterOperations checks a rule's operations: Accept only, 1-10
// entries, exactly one operation per entry.
func validateFilterOperations(v *Validator, f string, rule BGPFilterRuleV4) {
	if len(rule.Operations) == 0 {
		return
	}
	if rule.Action != "Accept" {
		v.Add(f+".operations", len(rule.Operations), "operations may only be used with action Accept")
	}
	if len(rule.Operations) > 10 {
		v.Add(f+".operations", len(rule.Operations), "at most 10 operations")
	}
	for i, o := range rule.Operations {
		of := fmt.Sprintf("%s.operations[%d]", f, i)
		n := 0
		if o.AddCommunity != nil {
			n++
			validateCommunityValue(v, of+".addCommunity.value", o.AddCommunity.Value)
		}
		if o.PrependASPath != nil {
			n++
			if len(o.PrependASPath.Prefix) == 0 {
				v.Add(of+".prependASPath.prefix", "", "at least one AS number is required")
			}
		}
		if o.SetPriority != nil {
			n++
			p := o.SetPriority.Value
			rangeField(v, of+".setPriority.value", &p, minFilterPriority, maxFilterPriority)
		}
		if n != 1 {
			v.Add(of, n, "exactly one of addCommunity, prependASPath, setPriority must be set")
		}
	}
}
