package resources

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// GlobalNetworkSet is the projectcalico.org/v3 GlobalNetworkSet resource.
type GlobalNetworkSet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              GlobalNetworkSetSpec `json:"spec,omitempty"`
}

// GlobalNetworkSetSpec is the spec of a GlobalNetworkSet. (stub: to be completed)
type GlobalNetworkSetSpec struct{}

// Default fills upstream's defaults.
func (r *GlobalNetworkSet) Default() {}

// Validate checks the object.
func (r *GlobalNetworkSet) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	return v.Err()
}
