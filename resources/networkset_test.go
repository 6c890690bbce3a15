package resources

import "testing"

func TestNetworkSetManifest(t *testing.T) {
	var n NetworkSet
	decodeStrictYAML(t, `
apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata:
  name: partners
  namespace: prod
  labels:
    role: partner
spec:
  nets: [198.51.100.0/24, 203.0.113.7, "2001:db8::/32"]
`, &n)
	n.Default()
	if err := n.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	assertJSONRoundTrip(t, &n)
}

func TestNetworkSetValidate(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		nets   []string
		want   string
	}{
		{"cidrs", nil, []string{"10.0.0.0/8", "fd00::/8"}, ""},
		{"bare address accepted", nil, []string{"10.1.2.3"}, ""},
		{"host bits accepted", nil, []string{"10.1.2.3/8"}, ""},
		{"not a CIDR", nil, []string{"10.0.0.0/8", "10.0.0.0/40"}, "spec.nets[1] = '10.0.0.0/40' (invalid CIDR)"},
		{"reserved label", map[string]string{LabelNamespace: "prod"}, nil, "projectcalico.org/namespace is not a valid label name"},
		{"bad label", map[string]string{"k": "-v"}, nil, "metadata.labels.k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := NetworkSet{ObjectMeta: metaWithLabels("set", "prod", tt.labels), Spec: NetworkSetSpec{Nets: tt.nets}}
			assertValidation(t, n.Validate(), tt.want)
		})
	}
}
