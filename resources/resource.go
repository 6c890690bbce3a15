// Package resources holds the projectcalico.org/v3 resource model: one Go type
// per kind, their defaults and validation, and a typed registry mapping kind
// names and aliases to that information.
package resources

import (
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

const (
	// Group is the API group of every Calico v3 resource.
	Group = "projectcalico.org"
	// Version is the API version inside Group.
	Version = "v3"
	// APIVersion is the apiVersion string written into objects.
	APIVersion = Group + "/" + Version
)

// Resource is any projectcalico.org/v3 object.
//
// Every kind embeds metav1.TypeMeta and metav1.ObjectMeta, so the accessors of
// metav1.Object come for free. Default fills the fields upstream's client
// fills on create/update; Validate checks the object the way upstream's
// validator does and returns a *FieldError or FieldErrors.
type Resource interface {
	metav1.Object
	GetObjectKind() schema.ObjectKind
	Default()
	Validate() error
}

// KindOf returns the registered kind of r, or nil when r's Go type is not
// registered.
func KindOf(r Resource) *Kind {
	if r == nil {
		return nil
	}
	return byType[typeKey(r)]
}

// SetTypeMeta stamps the apiVersion and kind of r from the registry.
func SetTypeMeta(r Resource) {
	if k := KindOf(r); k != nil {
		r.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{Group: Group, Version: Version, Kind: k.Kind})
	}
}

// Key is the identity of a resource: its kind, namespace (namespaced kinds
// only) and name.
type Key struct {
	Kind      string
	Namespace string
	Name      string
}

// KeyOf returns the key of r.
func KeyOf(r Resource) Key {
	k := KindOf(r)
	key := Key{Name: r.GetName(), Namespace: r.GetNamespace()}
	if k != nil {
		key.Kind = k.Kind
		if !k.Namespaced {
			key.Namespace = ""
		}
	}
	return key
}

// String renders a key as upstream does: Kind(name) or Kind(namespace/name).
func (k Key) String() string {
	if k.Namespace != "" {
		return fmt.Sprintf("%s(%s/%s)", k.Kind, k.Namespace, k.Name)
	}
	return fmt.Sprintf("%s(%s)", k.Kind, k.Name)
}

// DeepCopy returns an independent copy of r made by a JSON round trip.
func DeepCopy(r Resource) Resource {
	k := KindOf(r)
	if k == nil {
		return r
	}
	data, err := json.Marshal(r)
	if err != nil {
		return r
	}
	out := k.New()
	if err := json.Unmarshal(data, out); err != nil {
		return r
	}
	return out
}
