package resources

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// ClusterInformation is the projectcalico.org/v3 ClusterInformation resource.
type ClusterInformation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ClusterInformationSpec `json:"spec,omitempty"`
}

// ClusterInformationSpec is the spec of a ClusterInformation. (stub: to be completed)
type ClusterInformationSpec struct{}

// Default fills upstream's defaults.
func (r *ClusterInformation) Default() {}

// Validate checks the object.
func (r *ClusterInformation) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	return v.Err()
}
