package resources

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// BGPFilter is the projectcalico.org/v3 BGPFilter resource.
type BGPFilter struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BGPFilterSpec `json:"spec,omitempty"`
}

// BGPFilterSpec is the spec of a BGPFilter. (stub: to be completed)
type BGPFilterSpec struct{}

// Default fills upstream's defaults.
func (r *BGPFilter) Default() {}

// Validate checks the object.
func (r *BGPFilter) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	return v.Err()
}
