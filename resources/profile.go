package resources

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Profile is the projectcalico.org/v3 Profile resource.
type Profile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ProfileSpec `json:"spec,omitempty"`
}

// ProfileSpec is the spec of a Profile. (stub: to be completed)
type ProfileSpec struct{}

// Default fills upstream's defaults.
func (r *Profile) Default() {}

// Validate checks the object.
func (r *Profile) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	return v.Err()
}
