package resources

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// GlobalNetworkSet is the projectcalico.org/v3 GlobalNetworkSet resource: a
// cluster-wide, labelled set of networks that policy selectors can match.
type GlobalNetworkSet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              GlobalNetworkSetSpec `json:"spec,omitempty"`
}

// GlobalNetworkSetSpec is the spec of a GlobalNetworkSet.
type GlobalNetworkSetSpec struct {
	// Nets are CIDRs; as upstream, a bare address and a CIDR with host bits
	// set are accepted.
	Nets []string `json:"nets,omitempty"`
}

// Default does nothing: upstream fills no GlobalNetworkSet fields.
func (r *GlobalNetworkSet) Default() {}

// Validate checks the object.
func (r *GlobalNetworkSet) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	validateNetworkSet(&v, r.Labels, r.Spec.Nets)
	return v.Err()
}
