package resources

import (
	"strings"
	"testing"
)

func TestTierDefault(t *testing.T) {
	var tr Tier
	tr.Default()
	if tr.Spec.DefaultAction == nil || *tr.Spec.DefaultAction != ActionDeny {
		t.Fatalf("defaultAction = %v, want Deny", tr.Spec.DefaultAction)
	}
	pass := ActionPass
	tr = Tier{Spec: TierSpec{DefaultAction: &pass}}
	tr.Default()
	if *tr.Spec.DefaultAction != ActionPass {
		t.Fatalf("Default overwrote defaultAction: %v", *tr.Spec.DefaultAction)
	}
}

func TestTierJSON(t *testing.T) {
	var tr Tier
	decodeStrictYAML(t, "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: security\nspec:\n  order: 100\n", &tr)
	tr.Default()
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	out := string(assertJSONRoundTrip(t, &tr))
	want := `"spec":{"order":100,"defaultAction":"Deny"},"status":{}`
	if !strings.Contains(out, want) {
		t.Fatalf("JSON %s lacks %s", out, want)
	}
	var withStatus Tier
	decodeStrictYAML(t, `{"apiVersion":"projectcalico.org/v3","kind":"Tier","metadata":{"name":"x"},"status":{"conditions":[{"type":"Ready","status":"True","reason":"Ready","message":"","lastTransitionTime":"2025-01-01T00:00:00Z"}]}}`, &withStatus)
	if len(withStatus.Status.Conditions) != 1 || withStatus.Status.Conditions[0].Type != "Ready" {
		t.Fatalf("status = %+v", withStatus.Status)
	}
	assertJSONRoundTrip(t, &withStatus)
}

func TestTierValidate(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	a := func(v Action) *Action { return &v }
	tests := []struct {
		name   string
		tier   string
		order  *float64
		action *Action
		want   string
	}{
		{"plain", "security", f(100), a(ActionDeny), ""},
		{"no order", "security", nil, a(ActionPass), ""},
		{"dot", "sec.ops", nil, a(ActionDeny), "metadata.name = 'sec.ops'"},
		{"too long", strings.Repeat("t", 64), nil, a(ActionDeny), "metadata.name"},
		{"63 is fine", strings.Repeat("t", 63), nil, a(ActionDeny), ""},
		{"bad action", "security", nil, a(ActionAllow), "spec.defaultAction = 'Allow' (defaultAction must be Deny or Pass)"},
		{"default tier", "default", f(1e6), a(ActionDeny), ""},
		{"default tier order", "default", f(1000), a(ActionDeny), "spec.order = '1000' (the default tier order must be 1000000)"},
		{"default tier no order", "default", nil, a(ActionDeny), "spec.order = '<unset>'"},
		{"default tier pass", "default", f(1e6), a(ActionPass), "the default tier must have default action 'Deny'"},
		{"kube-admin", "kube-admin", f(1000), a(ActionPass), ""},
		{"kube-admin deny", "kube-admin", f(1000), a(ActionDeny), "the kube-admin tier must have default action 'Pass'"},
		{"kube-baseline", "kube-baseline", f(1e7), a(ActionPass), ""},
		{"kube-baseline order", "kube-baseline", f(1e6), a(ActionPass), "the kube-baseline tier order must be 10000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := Tier{ObjectMeta: metaNamed(tt.tier, ""), Spec: TierSpec{Order: tt.order, DefaultAction: tt.action}}
			assertValidation(t, tr.Validate(), tt.want)
		})
	}
}
