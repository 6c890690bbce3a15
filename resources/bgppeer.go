package resources

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// BGPPeer is the projectcalico.org/v3 BGPPeer resource.
type BGPPeer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BGPPeerSpec `json:"spec,omitempty"`
}

// BGPPeerSpec is the spec of a BGPPeer. (stub: to be completed)
type BGPPeerSpec struct{}

// Default fills upstream's defaults.
func (r *BGPPeer) Default() {}

// Validate checks the object.
func (r *BGPPeer) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	return v.Err()
}
