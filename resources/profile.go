package resources

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Profile is the projectcalico.org/v3 Profile resource: rules (applied after
// all tiers) and labels that endpoints naming the profile inherit.
type Profile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ProfileSpec `json:"spec,omitempty"`
}

// ProfileSpec is the spec of a Profile.
type ProfileSpec struct {
	Ingress []Rule `json:"ingress,omitempty"`
	Egress  []Rule `json:"egress,omitempty"`
	// LabelsToApply are added to each endpoint that names this profile;
	// the endpoint's own labels win on conflict.
	LabelsToApply map[string]string `json:"labelsToApply,omitempty"`
}

// Default does nothing: upstream fills no Profile fields.
func (r *Profile) Default() {}

// Validate checks the object.
func (r *Profile) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	validateRules(&v, "spec.ingress", r.Spec.Ingress)
	validateRules(&v, "spec.egress", r.Spec.Egress)
	ValidateLabels(&v, "spec.labelsToApply", r.Spec.LabelsToApply)
	return v.Err()
}

// DefaultAllowProfileName names the built-in profile that allows all
// traffic. Upstream serves it on every datastore without storing it, and
// refuses to change it.
const DefaultAllowProfileName = "projectcalico-default-allow"

// DefaultAllowProfile returns the built-in projectcalico-default-allow
// profile: ingress and egress [{action: Allow}], resourceVersion "1".
func DefaultAllowProfile() *Profile {
	p := &Profile{}
	p.Name = DefaultAllowProfileName
	p.ResourceVersion = "1"
	p.Spec.Ingress = []Rule{{Action: ActionAllow}}
	p.Spec.Egress = []Rule{{Action: ActionAllow}}
	SetTypeMeta(p)
	return p
}
