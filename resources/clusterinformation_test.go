package resources

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestClusterInformationValidate(t *testing.T) {
	cases := []struct {
		name      string
		objName   string
		wantField string
	}{
		{name: "default", objName: "default"},
		{name: "other name", objName: "cluster", wantField: "metadata.name"},
		{name: "no name", objName: "", wantField: "metadata.name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &ClusterInformation{ObjectMeta: metav1.ObjectMeta{Name: tc.objName},
				Spec: ClusterInformationSpec{ClusterGUID: "0123", ClusterType: "k8s,bgp", DatastoreReady: ptr(true)}}
			expectDefaultIdempotent(t, c)
			expectValidation(t, c, tc.wantField)
		})
	}
}

func TestClusterInformationStrictDecode(t *testing.T) {
	c := expectStrictRoundTrip[ClusterInformation](t, `
apiVersion: projectcalico.org/v3
kind: ClusterInformation
metadata:
  name: default
spec:
  calicoVersion: v3.31.0
  clusterGUID: 2c5ec0b7a6c14b1e9e3b4a7f8d2c1e0f
  clusterType: k8s,bgp,kubeadm,kdd
  datastoreReady: true
  variant: Calico
`)
	if c.Spec.DatastoreReady == nil || !*c.Spec.DatastoreReady {
		t.Fatal("datastoreReady lost")
	}
}
