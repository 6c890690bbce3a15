package resources

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// KubeControllersConfiguration is the projectcalico.org/v3 KubeControllersConfiguration resource.
type KubeControllersConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              KubeControllersConfigurationSpec `json:"spec,omitempty"`
}

// KubeControllersConfigurationSpec is the spec of a KubeControllersConfiguration. (stub: to be completed)
type KubeControllersConfigurationSpec struct{}

// Default fills upstream's defaults.
func (r *KubeControllersConfiguration) Default() {}

// Validate checks the object.
func (r *KubeControllersConfiguration) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	return v.Err()
}
