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
	// Action is Accept or Reject.
	Action string `json:"action"`
}

// BGPFilterRuleV6 matches IPv6 routes; see BGPFilterRuleV4.
type BGPFilterRuleV6 struct {
	CIDR          string                 `json:"cidr,omitempty"`
	MatchOperator string                 `json:"matchOperator,omitempty"`
	PrefixLength  *BGPFilterPrefixLength `json:"prefixLength,omitempty"`
	Source        string                 `json:"source,omitempty"`
	Interface     string                 `json:"interface,omitempty"`
	Action        string                 `json:"action"`
}

// BGPFilterPrefixLength bounds the prefix length of matched routes.
type BGPFilterPrefixLength struct {
	Min *int32 `json:"min,omitempty"`
	Max *int32 `json:"max,omitempty"`
}

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
