package resources

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// GlobalNetworkPolicy is the projectcalico.org/v3 GlobalNetworkPolicy resource.
type GlobalNetworkPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              GlobalNetworkPolicySpec `json:"spec,omitempty"`
}

// GlobalNetworkPolicySpec is the spec of a GlobalNetworkPolicy. (stub: to be completed)
type GlobalNetworkPolicySpec struct{}

// Default fills upstream's defaults.
func (r *GlobalNetworkPolicy) Default() {}

// Validate checks the object.
func (r *GlobalNetworkPolicy) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	return v.Err()
}
