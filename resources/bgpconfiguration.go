package resources

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// BGPConfiguration is the projectcalico.org/v3 BGPConfiguration resource.
type BGPConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BGPConfigurationSpec `json:"spec,omitempty"`
}

// BGPConfigurationSpec is the spec of a BGPConfiguration. (stub: to be completed)
type BGPConfigurationSpec struct{}

// Default fills upstream's defaults.
func (r *BGPConfiguration) Default() {}

// Validate checks the object.
func (r *BGPConfiguration) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	return v.Err()
}
