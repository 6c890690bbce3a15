package resources

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// NetworkPolicy is the projectcalico.org/v3 NetworkPolicy resource.
type NetworkPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              NetworkPolicySpec `json:"spec,omitempty"`
}

// NetworkPolicySpec is the spec of a NetworkPolicy. (stub: to be completed)
type NetworkPolicySpec struct{}

// Default fills upstream's defaults.
func (r *NetworkPolicy) Default() {}

// Validate checks the object.
func (r *NetworkPolicy) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	return v.Err()
}
