package resources

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// NetworkPolicy is the projectcalico.org/v3 NetworkPolicy resource: an
// ordered set of rules applied to the endpoints of its namespace that its
// selector picks.
type NetworkPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              NetworkPolicySpec `json:"spec,omitempty"`
}

// NetworkPolicySpec is the spec of a NetworkPolicy.
type NetworkPolicySpec struct {
	// Tier is the tier the policy belongs to ("default" when unset).
	Tier string `json:"tier,omitempty"`
	// Order places the policy within its tier; nil sorts last.
	Order   *float64 `json:"order,omitempty"`
	Ingress []Rule   `json:"ingress,omitempty"`
	Egress  []Rule   `json:"egress,omitempty"`
	// Selector picks the endpoints (of the policy's namespace) it applies to.
	Selector string `json:"selector,omitempty"`
	// Types lists the directions the policy applies to; derived from the
	// rules when empty.
	Types                  []PolicyType            `json:"types,omitempty"`
	ServiceAccountSelector string                  `json:"serviceAccountSelector,omitempty"`
	PerformanceHints       []PolicyPerformanceHint `json:"performanceHints,omitempty"`
}

// Default sets the tier ("default"), the tier label and the types, as
// upstream's client does on create and update.
func (r *NetworkPolicy) Default() {
	defaultPolicy(&r.ObjectMeta, &r.Spec.Tier, &r.Spec.Types, r.Spec.Ingress, r.Spec.Egress)
}

// Validate checks the object.
func (r *NetworkPolicy) Validate() error {
	var v Validator
	ValidateMeta(&v, r, isNetworkPolicyName)
	s := &r.Spec
	validatePolicy(&v, policyParts{
		tier: s.Tier, order: s.Order, selector: s.Selector,
		serviceAccountSelector: s.ServiceAccountSelector, types: s.Types,
		ingress: s.Ingress, egress: s.Egress, hints: s.PerformanceHints,
	})
	return v.Err()
}
