package resources

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IPReservation is the projectcalico.org/v3 IPReservation resource: addresses
// that Calico IPAM must not hand out.
type IPReservation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              IPReservationSpec `json:"spec,omitempty"`
}

// IPReservationSpec is the spec of an IPReservation.
type IPReservationSpec struct {
	// ReservedCIDRs are excluded from new allocations. Each entry is in CIDR
	// form; a single address is written as a /32 or /128.
	ReservedCIDRs []string `json:"reservedCIDRs,omitempty"`
}

// Default does nothing: upstream writes no defaults for IPReservation.
func (r *IPReservation) Default() {}

// Validate checks that every reserved entry is a CIDR. As upstream does, a
// bare address is rejected.
func (r *IPReservation) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	for i, c := range r.Spec.ReservedCIDRs {
		ValidateCIDR(&v, fmt.Sprintf("spec.reservedCIDRs[%d]", i), c, false)
	}
	return v.Err()
}
