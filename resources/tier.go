package resources

import (
	"cmp"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Tier is the projectcalico.org/v3 Tier resource: an ordered group of
// policies. Tiers apply in order; a tier's defaultAction applies to an
// endpoint that one of its policies selected but no rule matched.
type Tier struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              TierSpec   `json:"spec,omitempty"`
	Status            TierStatus `json:"status,omitempty"`
}

// TierSpec is the spec of a Tier.
type TierSpec struct {
	// Order places the tier; nil sorts last.
	Order *float64 `json:"order,omitempty"`
	// DefaultAction is Deny (the default) or Pass.
	DefaultAction *Action `json:"defaultAction,omitempty"`
}

// TierStatus is the status of a Tier. It is always written (as `{}` when
// empty), as upstream does.
type TierStatus struct {
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// The built-in tiers and their fixed orders.
const (
	KubeAdminTierName     = "kube-admin"
	KubeBaselineTierName  = "kube-baseline"
	DefaultTierOrder      = float64(1_000_000)
	KubeAdminTierOrder    = float64(1_000)
	KubeBaselineTierOrder = float64(10_000_000)
)

// Default sets defaultAction Deny when unset.
func (r *Tier) Default() {
	if r.Spec.DefaultAction == nil {
		a := ActionDeny
		r.Spec.DefaultAction = &a
	}
}

// Validate checks the object: a single DNS label name, a finite order,
// defaultAction Deny or Pass, and the fixed order and action of the
// built-in tiers.
func (r *Tier) Validate() error {
	var v Validator
	ValidateMeta(&v, r, IsDNS1123Label)
	validateOrder(&v, "spec.order", r.Spec.Order)
	if a := r.Spec.DefaultAction; a != nil && *a != ActionDeny && *a != ActionPass {
		v.Add("spec.defaultAction", *a, "defaultAction must be Deny or Pass")
	}
	builtin := map[string]struct {
		order  float64
		action Action
	}{
		DefaultTierName:      {DefaultTierOrder, ActionDeny},
		KubeAdminTierName:    {KubeAdminTierOrder, ActionPass},
		KubeBaselineTierName: {KubeBaselineTierOrder, ActionPass},
	}
	if b, ok := builtin[r.Name]; ok {
		if r.Spec.Order == nil || *r.Spec.Order != b.order {
			v.Add("spec.order", orderValue(r.Spec.Order), "the "+r.Name+" tier order must be "+FormatOrder(b.order))
		}
		if a := r.Spec.DefaultAction; a == nil || *a != b.action {
			v.Add("spec.defaultAction", actionValue(a), "the "+r.Name+" tier must have default action '"+string(b.action)+"'")
		}
	}
	return v.Err()
}

func orderValue(o *float64) any {
	if o == nil {
		return "<unset>"
	}
	return FormatOrder(*o)
}

func actionValue(a *Action) any {
	if a == nil {
		return "<unset>"
	}
	return *a
}

// CompareTiers orders tiers as upstream lists them: by order ascending, an
// unset order last, ties by name. Objects of other kinds count as unset.
func CompareTiers(a, b Resource) int {
	var oa, ob *float64
	if t, ok := a.(*Tier); ok {
		oa = t.Spec.Order
	}
	if t, ok := b.(*Tier); ok {
		ob = t.Spec.Order
	}
	switch {
	case oa == nil && ob != nil:
		return 1
	case oa != nil && ob == nil:
		return -1
	case oa != nil && ob != nil && *oa != *ob:
		return cmp.Compare(*oa, *ob)
	}
	return cmp.Compare(a.GetName(), b.GetName())
}
