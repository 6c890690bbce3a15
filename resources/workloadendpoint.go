package resources

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// WorkloadEndpoint is the projectcalico.org/v3 WorkloadEndpoint resource.
type WorkloadEndpoint struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              WorkloadEndpointSpec `json:"spec,omitempty"`
}

// WorkloadEndpointSpec is the spec of a WorkloadEndpoint. (stub: to be completed)
type WorkloadEndpointSpec struct{}

// Default fills upstream's defaults.
func (r *WorkloadEndpoint) Default() {}

// Validate checks the object.
func (r *WorkloadEndpoint) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	return v.Err()
}
