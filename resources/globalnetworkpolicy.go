package resources

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// GlobalNetworkPolicy is the projectcalico.org/v3 GlobalNetworkPolicy
// resource: an ordered set of rules applied to the endpoints, in any
// namespace or none, that its selector picks.
type GlobalNetworkPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              GlobalNetworkPolicySpec `json:"spec,omitempty"`
}

// GlobalNetworkPolicySpec is the spec of a GlobalNetworkPolicy.
type GlobalNetworkPolicySpec struct {
	// Tier is the tier the policy belongs to ("default" when unset).
	Tier string `json:"tier,omitempty"`
	// Order places the policy within its tier; nil sorts last.
	Order   *float64 `json:"order,omitempty"`
	Ingress []Rule   `json:"ingress,omitempty"`
	Egress  []Rule   `json:"egress,omitempty"`
	// Selector picks the endpoints the policy applies to.
	Selector string `json:"selector,omitempty"`
	// Types lists the directions the policy applies to; derived from the
	// rules when empty.
	Types []PolicyType `json:"types,omitempty"`
	// DoNotTrack applies the rules before connection tracking.
	DoNotTrack bool `json:"doNotTrack,omitempty"`
	// PreDNAT applies the rules before DNAT.
	PreDNAT bool `json:"preDNAT,omitempty"`
	// ApplyOnForward applies the rules to forwarded traffic too.
	ApplyOnForward         bool                    `json:"applyOnForward,omitempty"`
	ServiceAccountSelector string                  `json:"serviceAccountSelector,omitempty"`
	NamespaceSelector      string                  `json:"namespaceSelector,omitempty"`
	PerformanceHints       []PolicyPerformanceHint `json:"performanceHints,omitempty"`
}

// Default sets the tier ("default"), the tier label and the types, as
// upstream's client does on create and update.
func (r *GlobalNetworkPolicy) Default() {
	defaultPolicy(&r.ObjectMeta, &r.Spec.Tier, &r.Spec.Types, r.Spec.Ingress, r.Spec.Egress)
}

// Validate checks the object.
func (r *GlobalNetworkPolicy) Validate() error {
	var v Validator
	ValidateMeta(&v, r, isGlobalNetworkPolicyName)
	s := &r.Spec
	validatePolicy(&v, policyParts{
		tier: s.Tier, order: s.Order, selector: s.Selector,
		serviceAccountSelector: s.ServiceAccountSelector, types: s.Types,
		ingress: s.Ingress, egress: s.Egress, hints: s.PerformanceHints, global: true,
	})
	validateTopSelector(&v, "spec.namespaceSelector", s.NamespaceSelector)
	if s.DoNotTrack && s.PreDNAT {
		v.Add("spec.preDNAT", s.PreDNAT, "preDNAT and doNotTrack cannot both be true")
	}
	if s.PreDNAT && len(s.Egress) > 0 {
		v.Add("spec.egress", len(s.Egress), "preDNAT policy cannot have any egress rules")
	}
	if s.PreDNAT {
		for i, t := range s.Types {
			if t == PolicyTypeEgress {
				v.Addf("spec.types", t, "preDNAT policy cannot have 'Egress' type (types[%d])", i)
			}
		}
	}
	if !s.ApplyOnForward && (s.DoNotTrack || s.PreDNAT) {
		v.Add("spec.applyOnForward", s.ApplyOnForward, "applyOnForward must be true if either preDNAT or doNotTrack is true")
	}
	return v.Err()
}
