package resources

import "testing"

func TestGlobalNetworkSetManifest(t *testing.T) {
	var n GlobalNetworkSet
	decodeStrictYAML(t, `
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata:
  name: threat-feed
  labels:
    feed: blocklist
spec:
  nets: [192.0.2.0/24, 198.51.100.9/32, "2001:db8:1::1"]
`, &n)
	n.Default()
	if err := n.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	assertJSONRoundTrip(t, &n)
}

func TestGlobalNetworkSetValidate(t *testing.T) {
	tests := []struct {
		name   string
		meta   string
		labels map[string]string
		nets   []string
		want   string
	}{
		{"cidrs", "gns", nil, []string{"10.0.0.0/8", "10.0.0.1"}, ""},
		{"empty", "gns", nil, nil, ""},
		{"not a CIDR", "gns", nil, []string{"example.com"}, "spec.nets[0] = 'example.com'"},
		{"reserved label", "gns", map[string]string{LabelNamespace: "x"}, nil, "metadata.labels = 'projectcalico.org/namespace'"},
		{"bad name", "GNS", nil, nil, "metadata.name = 'GNS'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := GlobalNetworkSet{ObjectMeta: metaWithLabels(tt.meta, "", tt.labels), Spec: GlobalNetworkSetSpec{Nets: tt.nets}}
			assertValidation(t, n.Validate(), tt.want)
		})
	}
}
