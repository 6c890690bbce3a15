package resources

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// IPPool is the projectcalico.org/v3 IPPool resource.
type IPPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              IPPoolSpec `json:"spec,omitempty"`
}

// IPPoolSpec is the spec of a IPPool. (stub: to be completed)
type IPPoolSpec struct{}

// Default fills upstream's defaults.
func (r *IPPool) Default() {}

// Validate checks the object.
func (r *IPPool) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	return v.Err()
}
