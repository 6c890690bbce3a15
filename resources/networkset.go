package resources

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NetworkSet is the projectcalico.org/v3 NetworkSet resource: a namespaced,
// labelled set of networks that policy selectors can match.
type NetworkSet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              NetworkSetSpec `json:"spec,omitempty"`
}

// NetworkSetSpec is the spec of a NetworkSet.
type NetworkSetSpec struct {
	// Nets are CIDRs; as upstream, a bare address and a CIDR with host bits
	// set are accepted.
	Nets []string `json:"nets,omitempty"`
}

// LabelNamespace is the label upstream reserves for an object's namespace.
const LabelNamespace = "projectcalico.org/namespace"

// Default does nothing: upstream fills no NetworkSet fields.
func (r *NetworkSet) Default() {}

// Validate checks the object.
func (r *NetworkSet) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	validateNetworkSet(&v, r.Labels, r.Spec.Nets)
	return v.Err()
}

// validateNetworkSet holds the checks NetworkSet and GlobalNetworkSet share.
func validateNetworkSet(v *Validator, labels map[string]string, nets []string) {
	if _, ok := labels[LabelNamespace]; ok {
		v.Add("metadata.labels", LabelNamespace, LabelNamespace+" is not a valid label name")
	}
	for i, n := range nets {
		ValidateCIDR(v, fmt.Sprintf("spec.nets[%d]", i), n, true)
	}
}
