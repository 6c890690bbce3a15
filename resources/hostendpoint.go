package resources

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// HostEndpoint is the projectcalico.org/v3 HostEndpoint resource.
type HostEndpoint struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              HostEndpointSpec `json:"spec,omitempty"`
}

// HostEndpointSpec is the spec of a HostEndpoint. (stub: to be completed)
type HostEndpointSpec struct{}

// Default fills upstream's defaults.
func (r *HostEndpoint) Default() {}

// Validate checks the object.
func (r *HostEndpoint) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	return v.Err()
}
