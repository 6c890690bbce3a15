package resources

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// FelixConfiguration is the projectcalico.org/v3 FelixConfiguration resource.
type FelixConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              FelixConfigurationSpec `json:"spec,omitempty"`
}

// FelixConfigurationSpec is the spec of a FelixConfiguration. (stub: to be completed)
type FelixConfigurationSpec struct{}

// Default fills upstream's defaults.
func (r *FelixConfiguration) Default() {}

// Validate checks the object.
func (r *FelixConfiguration) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	return v.Err()
}
