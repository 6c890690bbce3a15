package resources

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSizeLimits: the size limits upstream enforces are errors naming the
// field (JSON path) and the limit; values at the limit pass.
func TestSizeLimits(t *testing.T) {
	longSel := "a == '" + strings.Repeat("x", MaxSelectorLen) + "'"
	atLimitSel := "a == '" + strings.Repeat("x", MaxSelectorLen-8) + "'"
	rules := func(n int) []Rule {
		rs := make([]Rule, n)
		for i := range rs {
			rs[i] = Rule{Action: ActionAllow}
		}
		return rs
	}
	gnp := func(edit func(*GlobalNetworkPolicy)) Resource {
		p := &GlobalNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p"}}
		edit(p)
		return p
	}
	tests := []struct {
		name string
		r    Resource
		want string // "" = valid
	}{
		{"selector at the limit", gnp(func(p *GlobalNetworkPolicy) { p.Spec.Selector = atLimitSel }), ""},
		{"selector too long", gnp(func(p *GlobalNetworkPolicy) { p.Spec.Selector = longSel }), "spec.selector = 'a == 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' (selector is 1031 bytes long, the limit is 1024)"},
		{"rule selector too long", gnp(func(p *GlobalNetworkPolicy) {
			p.Spec.Ingress = []Rule{{Action: ActionAllow, Source: EntityRule{Selector: longSel}}}
		}), "spec.ingress[0].source.selector"},
		{"1024 rules", gnp(func(p *GlobalNetworkPolicy) { p.Spec.Ingress, p.Spec.Egress = rules(1024), rules(1024) }), ""},
		{"1025 ingress rules", gnp(func(p *GlobalNetworkPolicy) { p.Spec.Ingress = rules(1025) }), "spec.ingress = '1025' (1025 rules, the limit is 1024)"},
		{"1025 egress rules", gnp(func(p *GlobalNetworkPolicy) { p.Spec.Egress = rules(1025) }), "spec.egress = '1025'"},
		{"profile rules", &Profile{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: ProfileSpec{Egress: rules(1025)}}, "spec.egress = '1025'"},
		{"pool node selector", &IPPool{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: IPPoolSpec{CIDR: "10.0.0.0/16", NodeSelector: longSel}}, "spec.nodeSelector"},
		{"annotations too large", gnp(func(p *GlobalNetworkPolicy) {
			p.Annotations = map[string]string{"a": strings.Repeat("x", MaxAnnotationsSize)}
		}), "metadata.annotations = '' (total size of annotations is 262145 bytes, the limit is 262144)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.r.Default()
			err := tt.r.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
}
