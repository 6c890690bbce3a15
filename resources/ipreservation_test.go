package resources

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestIPReservationValidate(t *testing.T) {
	cases := []struct {
		name      string
		cidrs     []string
		wantField string
	}{
		{name: "empty"},
		{name: "v4 and v6", cidrs: []string{"10.0.2.3/32", "cafe:f00d::/123", "192.168.0.0/24"}},
		{name: "bare address", cidrs: []string{"10.0.2.3/32", "192.168.2.3"}, wantField: "spec.reservedCIDRs[1]"},
		{name: "garbage", cidrs: []string{"ten"}, wantField: "spec.reservedCIDRs[0]"},
		{name: "prefix too long", cidrs: []string{"10.0.0.0/33"}, wantField: "spec.reservedCIDRs[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &IPReservation{ObjectMeta: metav1.ObjectMeta{Name: "my-ipreservation-1"}, Spec: IPReservationSpec{ReservedCIDRs: tc.cidrs}}
			expectDefaultIdempotent(t, r)
			expectValidation(t, r, tc.wantField)
		})
	}
}

func TestIPReservationStrictDecode(t *testing.T) {
	r := expectStrictRoundTrip[IPReservation](t, `
apiVersion: projectcalico.org/v3
kind: IPReservation
metadata:
  name: my-ipreservation-1
spec:
  reservedCIDRs:
    - 192.168.2.3/32
    - 10.0.2.3/32
    - cafe:f00d::/123
`)
	if len(r.Spec.ReservedCIDRs) != 3 {
		t.Fatalf("reservedCIDRs = %v", r.Spec.ReservedCIDRs)
	}
}
