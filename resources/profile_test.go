package resources

import (
	"strings"
	"testing"
)

// A v3 rendering of the profile examples in the shared seeds.
const profileManifest = `
apiVersion: projectcalico.org/v3
kind: Profile
metadata:
  name: profile-database
  labels:
    profile: profile-database
spec:
  labelsToApply:
    service: database
    example.com/tier: backend
  ingress:
  - action: Deny
    source:
      nets: [10.0.20.0/24]
  - action: Allow
    protocol: TCP
    source:
      selector: namespace == 'default' && service == 'frontend'
    destination:
      ports: [3306]
  egress:
  - action: Allow
`

func TestProfileManifest(t *testing.T) {
	var p Profile
	decodeStrictYAML(t, profileManifest, &p)
	p.Default()
	if err := p.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	out := string(assertJSONRoundTrip(t, &p))
	if !strings.Contains(out, `"labelsToApply":{"example.com/tier":"backend","service":"database"}`) {
		t.Errorf("JSON: %s", out)
	}
}

func TestProfileValidate(t *testing.T) {
	tests := []struct {
		name string
		meta string
		spec ProfileSpec
		want string
	}{
		{"namespace profile", "kns.default", ProfileSpec{Ingress: []Rule{{Action: ActionAllow}}, Egress: []Rule{{Action: ActionAllow}}}, ""},
		{"default allow", "projectcalico-default-allow", ProfileSpec{}, ""},
		{"bad name", "Bad_Name", ProfileSpec{}, "metadata.name"},
		{"bad ingress rule", "p", ProfileSpec{Ingress: []Rule{{Action: "allow"}}}, "spec.ingress[0].action = 'allow'"},
		{"bad egress rule", "p", ProfileSpec{Egress: []Rule{{Action: ActionAllow}, {Action: ActionAllow, Protocol: protoPtr("ICMP"), Destination: EntityRule{Ports: []Port{SinglePort(1)}}}}}, "spec.egress[1].destination.ports[0]"},
		{"bad label key", "p", ProfileSpec{LabelsToApply: map[string]string{"bad key": "v"}}, "spec.labelsToApply = 'bad key'"},
		{"bad label value", "p", ProfileSpec{LabelsToApply: map[string]string{"k": "bad value"}}, "spec.labelsToApply.k = 'bad value'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Profile{ObjectMeta: metaNamed(tt.meta, ""), Spec: tt.spec}
			assertValidation(t, p.Validate(), tt.want)
		})
	}
}
