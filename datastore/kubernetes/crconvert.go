package kubernetes

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opencalico/calicoctl/resources"
)

// CRD storage (spec §2.3): a v3 object becomes a crd.projectcalico.org/v1
// custom resource with the same kind, spec and status. The CR's metadata
// keeps the name, namespace, resourceVersion, the converted uid and the
// labels/annotations Calico owns; every other piece of v3 metadata travels
// as JSON in the MetadataAnnotation.

const (
	// CRDGroup is the API group of the CRDs Calico stores its kinds in.
	CRDGroup = "crd.projectcalico.org"
	// CRDVersion is the version inside CRDGroup.
	CRDVersion = "v1"
	// CRDAPIVersion is the apiVersion of every stored CR.
	CRDAPIVersion = CRDGroup + "/" + CRDVersion
	// MetadataAnnotation holds the JSON of the v3 metadata a CR cannot keep.
	MetadataAnnotation = "projectcalico.org/metadata"

	legacyDefaultTierPrefix = "default."
)

// policyKinds store their v3 name in the metadata annotation.
var policyKinds = map[string]bool{
	"NetworkPolicy":             true,
	"GlobalNetworkPolicy":       true,
	"StagedNetworkPolicy":       true,
	"StagedGlobalNetworkPolicy": true,
}

// ownedKey reports whether a label or annotation key belongs to Calico and so
// stays on the CR itself.
func ownedKey(k string) bool {
	return strings.Contains(k, "projectcalico.org/") || strings.Contains(k, "operator.tigera.io/")
}

// v3Object is the JSON shape shared by every v3 kind and its CR.
type v3Object struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       json.RawMessage   `json:"spec,omitempty"`
	Status     json.RawMessage   `json:"status,omitempty"`
}

// ToCR converts a v3 object of kind k into the content of the CR that
// stores it (an unstructured object's map). r is not modified.
func ToCR(k *resources.Kind, r resources.Resource) (map[string]any, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode %s(%s): %w", k.Kind, r.GetName(), err)
	}
	var in v3Object
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("encode %s(%s): %w", k.Kind, r.GetName(), err)
	}
	rom := in.Metadata

	// The annotation gets everything the CR's own metadata does not carry.
	extra := *rom.DeepCopy()
	extra.Namespace, extra.ResourceVersion, extra.UID = "", "", ""
	extra.SelfLink = ""
	if !policyKinds[k.Kind] {
		extra.Name = ""
	}
	refs, err := convertOwnerRefs(extra.OwnerReferences, CRDAPIVersion, resources.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("encode %s(%s): %w", k.Kind, r.GetName(), err)
	}
	extra.OwnerReferences = refs
	metaJSON, err := json.Marshal(extra)
	if err != nil {
		return nil, fmt.Errorf("encode %s(%s): %w", k.Kind, r.GetName(), err)
	}

	out := metav1.ObjectMeta{
		Name:            rom.Name,
		ResourceVersion: rom.ResourceVersion,
		Annotations:     map[string]string{MetadataAnnotation: string(metaJSON)},
	}
	if k.Namespaced {
		out.Namespace = rom.Namespace
	}
	for key, v := range rom.Labels {
		if ownedKey(key) {
			if out.Labels == nil {
				out.Labels = map[string]string{}
			}
			out.Labels[key] = v
		}
	}
	for key, v := range rom.Annotations {
		if ownedKey(key) && key != MetadataAnnotation {
			out.Annotations[key] = v
		}
	}
	if out.UID, err = ConvertUID(rom.UID); err != nil {
		return nil, fmt.Errorf("encode %s(%s): %w", k.Kind, r.GetName(), err)
	}
	cr := v3Object{APIVersion: CRDAPIVersion, Kind: k.Kind, Metadata: out, Spec: in.Spec, Status: in.Status}
	return toMap(cr)
}

// FromCR converts the content of a stored CR back into a v3 object of kind
// k, merging the metadata annotation back in. Objects written by older
// releases (labels on the CR, "default."-prefixed policy names) read the
// same way upstream reads them.
func FromCR(k *resources.Kind, content map[string]any) (resources.Resource, error) {
	data, err := json.Marshal(content)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", k.Kind, err)
	}
	var cr v3Object
	if err := json.Unmarshal(data, &cr); err != nil {
		return nil, fmt.Errorf("decode %s: %w", k.Kind, err)
	}
	rom := cr.Metadata
	key := resources.Key{Kind: k.Kind, Namespace: rom.Namespace, Name: rom.Name}
	uid, err := ConvertUID(rom.UID)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", key, err)
	}
	meta := metav1.ObjectMeta{}
	annotations := copyMap(rom.Annotations)
	if raw, ok := annotations[MetadataAnnotation]; ok {
		if err := json.Unmarshal([]byte(raw), &meta); err != nil {
			return nil, fmt.Errorf("decode %s: annotation %s: %w", key, MetadataAnnotation, err)
		}
		delete(annotations, MetadataAnnotation)
		// Refs written before the uid fix still say projectcalico.org/v3:
		// they are converted too.
		refs, err := convertOwnerRefs(meta.OwnerReferences, resources.APIVersion, CRDAPIVersion, resources.APIVersion)
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w", key, err)
		}
		meta.OwnerReferences = refs
	}
	labels := copyMap(rom.Labels)
	for lk, v := range meta.Labels {
		if labels == nil {
			labels = map[string]string{}
		}
		labels[lk] = v
	}
	for ak, v := range meta.Annotations {
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[ak] = v
	}
	if len(annotations) == 0 {
		annotations = nil
	}
	if meta.Name == "" {
		meta.Name = rom.Name
		if policyKinds[k.Kind] {
			meta.Name = v3PolicyName(rom.Name, cr.Spec)
		}
	}
	if k.Namespaced {
		meta.Namespace = rom.Namespace
	} else {
		meta.Namespace = ""
	}
	meta.ResourceVersion = rom.ResourceVersion
	meta.UID = uid
	meta.Labels = labels
	meta.Annotations = annotations
	if meta.CreationTimestamp.IsZero() {
		meta.CreationTimestamp = rom.CreationTimestamp
	}
	meta.SelfLink = ""

	out := v3Object{APIVersion: resources.APIVersion, Kind: k.Kind, Metadata: meta, Spec: cr.Spec, Status: cr.Status}
	data, err = json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", key, err)
	}
	r := k.New()
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("decode %s: %w", key, err)
	}
	resources.SetTypeMeta(r)
	return r, nil
}

// v3PolicyName is the v3 name of a policy CR that has no name in its
// metadata annotation: releases before the current naming stored
// default-tier policies as "default.<name>".
func v3PolicyName(crName string, spec json.RawMessage) string {
	var s struct {
		Tier string `json:"tier"`
	}
	if len(spec) > 0 {
		_ = json.Unmarshal(spec, &s) // a spec that is not an object has no tier
	}
	if s.Tier == "" || s.Tier == "default" {
		return strings.TrimPrefix(crName, legacyDefaultTierPrefix)
	}
	return crName
}

// legacyPolicyCRName returns the name an older release would have given the
// CR of a default-tier policy, or "" when there is none to try.
func legacyPolicyCRName(kind, name string) string {
	if !policyKinds[kind] || strings.Contains(name, ".") {
		return ""
	}
	return legacyDefaultTierPrefix + name
}

// convertOwnerRefs gives owner references whose apiVersion is one of from
// the apiVersion to and the converted uid; other references are kept.
func convertOwnerRefs(refs []metav1.OwnerReference, to string, from ...string) ([]metav1.OwnerReference, error) {
	if len(refs) == 0 {
		return refs, nil
	}
	out := make([]metav1.OwnerReference, 0, len(refs))
	for _, ref := range refs {
		if slices.Contains(from, ref.APIVersion) {
			uid, err := ConvertUID(ref.UID)
			if err != nil {
				return nil, fmt.Errorf("owner reference %s/%s: %w", ref.Kind, ref.Name, err)
			}
			ref.UID, ref.APIVersion = uid, to
		}
		out = append(out, ref)
	}
	return out, nil
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func toMap(v any) (map[string]any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	return m, nil
}
