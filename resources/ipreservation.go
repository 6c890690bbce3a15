package resources

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// IPReservation is the projectcalico.org/v3 IPReservation resource.
type IPReservation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              IPReservationSpec `json:"spec,omitempty"`
}

// IPReservationSpec is the spec of a IPReservation. (stub: to be completed)
type IPReservationSpec struct{}

// Default fills upstream's defaults.
func (r *IPReservation) Default() {}

// Validate checks the object.
func (r *IPReservation) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	return v.Err()
}
