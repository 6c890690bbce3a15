package resources

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// NetworkSet is the projectcalico.org/v3 NetworkSet resource.
type NetworkSet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              NetworkSetSpec `json:"spec,omitempty"`
}

// NetworkSetSpec is the spec of a NetworkSet. (stub: to be completed)
type NetworkSetSpec struct{}

// Default fills upstream's defaults.
func (r *NetworkSet) Default() {}

// Validate checks the object.
func (r *NetworkSet) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	return v.Err()
}
