package crds

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// These types mirror the parts of apiextensions.k8s.io/v1 that we write. The
// JSON names are the API's, so the objects can be marshalled straight into a
// manifest or an apply patch; keeping our own copy avoids depending on
// k8s.io/apiextensions-apiserver for a handful of structs.

// CustomResourceDefinition is an apiextensions.k8s.io/v1 CustomResourceDefinition.
type CustomResourceDefinition struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              CRDSpec `json:"spec"`
}

// CRDSpec is the spec of a CustomResourceDefinition.
type CRDSpec struct {
	Group    string       `json:"group"`
	Names    CRDNames     `json:"names"`
	Scope    string       `json:"scope"`
	Versions []CRDVersion `json:"versions"`
}

// CRDNames are the names a custom resource is served under.
type CRDNames struct {
	Plural     string   `json:"plural"`
	Singular   string   `json:"singular,omitempty"`
	Kind       string   `json:"kind"`
	ListKind   string   `json:"listKind,omitempty"`
	ShortNames []string `json:"shortNames,omitempty"`
}

// CRDVersion is one served version of a custom resource.
type CRDVersion struct {
	Name    string      `json:"name"`
	Served  bool        `json:"served"`
	Storage bool        `json:"storage"`
	Schema  *Validation `json:"schema,omitempty"`
}

// Validation holds a version's structural schema.
type Validation struct {
	OpenAPIV3Schema *Schema `json:"openAPIV3Schema"`
}

// Schema is the subset of an OpenAPI v3 JSON schema (apiextensions
// JSONSchemaProps) that the generator emits.
type Schema struct {
	Description          string             `json:"description,omitempty"`
	Type                 string             `json:"type,omitempty"`
	Format               string             `json:"format,omitempty"`
	Nullable             bool               `json:"nullable,omitempty"`
	Properties           map[string]*Schema `json:"properties,omitempty"`
	Required             []string           `json:"required,omitempty"`
	Items                *Schema            `json:"items,omitempty"`
	AdditionalProperties *Schema            `json:"additionalProperties,omitempty"`
	AnyOf                []*Schema          `json:"anyOf,omitempty"`

	// XIntOrString marks a value that may be an integer or a string.
	XIntOrString bool `json:"x-kubernetes-int-or-string,omitempty"`
	// XPreserveUnknownFields keeps fields the schema does not list instead of
	// pruning them.
	XPreserveUnknownFields *bool `json:"x-kubernetes-preserve-unknown-fields,omitempty"`
}

// Scope values.
const (
	ScopeCluster    = "Cluster"
	ScopeNamespaced = "Namespaced"
)
