package resources

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Node is the projectcalico.org/v3 Node resource.
type Node struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              NodeSpec `json:"spec,omitempty"`
}

// NodeSpec is the spec of a Node. (stub: to be completed)
type NodeSpec struct{}

// Default fills upstream's defaults.
func (r *Node) Default() {}

// Validate checks the object.
func (r *Node) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	return v.Err()
}
