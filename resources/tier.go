package resources

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Tier is the projectcalico.org/v3 Tier resource.
type Tier struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              TierSpec `json:"spec,omitempty"`
}

// TierSpec is the spec of a Tier. (stub: to be completed)
type TierSpec struct{}

// Default fills upstream's defaults.
func (r *Tier) Default() {}

// Validate checks the object.
func (r *Tier) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	return v.Err()
}
