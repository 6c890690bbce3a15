package crds

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/opencalico/calicoctl/resources"
)

func crdByKind(t *testing.T, kind string) *CustomResourceDefinition {
	t.Helper()
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range all {
		if c.Spec.Names.Kind == kind {
			return c
		}
	}
	t.Fatalf("no CRD for kind %s", kind)
	return nil
}

// at walks a dotted path through a kind's schema; "[]" steps into array
// items and "{}" into map values.
func at(t *testing.T, kind, path string) *Schema {
	t.Helper()
	s := crdByKind(t, kind).Spec.Versions[0].Schema.OpenAPIV3Schema
	for _, p := range strings.Split(path, ".") {
		switch {
		case p == "[]":
			s = s.Items
		case p == "{}":
			s = s.AdditionalProperties
		default:
			s = s.Properties[p]
		}
		if s == nil {
			t.Fatalf("%s: no schema at %q (stopped at %q)", kind, path, p)
		}
	}
	return s
}

func TestSchemaTypes(t *testing.T) {
	tests := []struct {
		kind, path   string
		typ, format  string
		intOrString  bool
		nullable     bool
		keepsUnknown bool
	}{
		{kind: "IPPool", path: "metadata", typ: "object"},
		{kind: "IPPool", path: "spec", typ: "object", keepsUnknown: true},
		{kind: "IPPool", path: "spec.cidr", typ: "string"},
		{kind: "IPPool", path: "spec.blockSize", typ: "integer"},
		{kind: "IPPool", path: "spec.natOutgoing", typ: "boolean"},
		{kind: "IPPool", path: "spec.nat-outgoing", typ: "boolean"},
		{kind: "IPPool", path: "spec.allowedUses.[]", typ: "string"},
		{kind: "IPPool", path: "spec.assignmentMode", typ: "string"},
		{kind: "IPPool", path: "spec.ipip", typ: "object", keepsUnknown: true},
		{kind: "BGPPeer", path: "spec.asNumber", intOrString: true},
		{kind: "BGPPeer", path: "spec.keepaliveTime", typ: "string"},
		{kind: "BGPConfiguration", path: "spec.asNumber", intOrString: true},
		{kind: "GlobalNetworkPolicy", path: "spec.order", typ: "number"},
		{kind: "GlobalNetworkPolicy", path: "spec.ingress.[].protocol", intOrString: true},
		{kind: "GlobalNetworkPolicy", path: "spec.egress.[].notProtocol", intOrString: true},
		{kind: "GlobalNetworkPolicy", path: "spec.ingress.[].source.ports.[]", intOrString: true},
		{kind: "GlobalNetworkPolicy", path: "spec.ingress.[].destination.notPorts.[]", intOrString: true},
		{kind: "GlobalNetworkPolicy", path: "spec.ingress.[].icmp.type", typ: "integer"},
		{kind: "NetworkPolicy", path: "spec.egress.[].destination.ports.[]", intOrString: true},
		{kind: "HostEndpoint", path: "spec.ports.[].protocol", intOrString: true},
		{kind: "HostEndpoint", path: "spec.ports.[].port", typ: "integer"},
		{kind: "FelixConfiguration", path: "spec.istioDSCPMark", intOrString: true},
		{kind: "FelixConfiguration", path: "spec.routeRefreshInterval", typ: "string"},
		{kind: "KubeControllersConfiguration", path: "status.environmentVars.{}", typ: "string"},
		{kind: "Tier", path: "status.conditions.[].lastTransitionTime", typ: "string", format: "date-time", nullable: true},
		{kind: "IPAMBlock", path: "spec.allocations.[]", typ: "integer", nullable: true},
		{kind: "IPAMBlock", path: "spec.sequenceNumber", typ: "integer"},
		{kind: "IPAMBlock", path: "spec.sequenceNumberForAllocation.{}", typ: "integer"},
		{kind: "FelixConfiguration", path: "spec.iptablesMarkMask", typ: "integer"},
		{kind: "BGPFilter", path: "spec.exportV4.[].prefixLength.min", typ: "integer", format: "int32"},
		{kind: "IPAMBlock", path: "spec.attributes.[].secondary.{}", typ: "string"},
		{kind: "BlockAffinity", path: "spec.deleted", typ: "string"},
		{kind: "IPAMHandle", path: "spec.block.{}", typ: "integer"},
		{kind: "CalicoNodeStatus", path: "status", typ: "object", keepsUnknown: true},
		{kind: "StagedGlobalNetworkPolicy", path: "spec.stagedAction", typ: "string"},
		{kind: "StagedGlobalNetworkPolicy", path: "spec.ingress.[].destination.ports.[]", intOrString: true},
		{kind: "StagedNetworkPolicy", path: "spec.selector", typ: "string"},
		{kind: "StagedKubernetesNetworkPolicy", path: "spec.ingress.[].ports.[].port", intOrString: true},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"."+tt.path, func(t *testing.T) {
			s := at(t, tt.kind, tt.path)
			if s.Type != tt.typ || s.Format != tt.format || s.XIntOrString != tt.intOrString || s.Nullable != tt.nullable {
				t.Errorf("got type=%q format=%q int-or-string=%v nullable=%v, want %q %q %v %v",
					s.Type, s.Format, s.XIntOrString, s.Nullable, tt.typ, tt.format, tt.intOrString, tt.nullable)
			}
			if keeps := s.XPreserveUnknownFields != nil && *s.XPreserveUnknownFields; keeps != tt.keepsUnknown {
				t.Errorf("preserve-unknown-fields = %v, want %v", keeps, tt.keepsUnknown)
			}
		})
	}
}

func TestSchemaRequired(t *testing.T) {
	tests := []struct {
		kind, path string
		want       []string
	}{
		{"IPPool", "spec", []string{"cidr"}},
		{"GlobalNetworkPolicy", "spec.ingress.[]", []string{"action"}},
		{"NetworkPolicy", "spec.egress.[]", []string{"action"}},
		{"BGPFilter", "spec.exportV4.[]", []string{"action"}},
		{"HostEndpoint", "spec.ports.[]", []string{"name", "port", "protocol"}},
		{"KubeControllersConfiguration", "spec", []string{"controllers"}},
		{"FelixConfiguration", "spec", nil}, // bpfLogLevel is always written but not required
		{"FelixConfiguration", "spec.failsafeInboundHostPorts.[]", []string{"port"}},
		{"BGPPeer", "spec", nil},
		{"IPAMBlock", "spec", []string{"cidr"}},
		{"IPAMHandle", "spec", []string{"handleID"}},
		{"IPPool", "", nil}, // nothing at the top level: spec is optional
	}
	for _, tt := range tests {
		t.Run(tt.kind+"."+tt.path, func(t *testing.T) {
			var s *Schema
			if tt.path == "" {
				s = crdByKind(t, tt.kind).Spec.Versions[0].Schema.OpenAPIV3Schema
			} else {
				s = at(t, tt.kind, tt.path)
			}
			if !slices.Equal(s.Required, tt.want) {
				t.Errorf("required = %v, want %v", s.Required, tt.want)
			}
		})
	}
}

func TestNamesAndScope(t *testing.T) {
	tests := []struct {
		kind, name, plural, scope string
	}{
		{"IPPool", "ippools.crd.projectcalico.org", "ippools", ScopeCluster},
		{"NetworkPolicy", "networkpolicies.crd.projectcalico.org", "networkpolicies", ScopeNamespaced},
		{"NetworkSet", "networksets.crd.projectcalico.org", "networksets", ScopeNamespaced},
		{"ClusterInformation", "clusterinformations.crd.projectcalico.org", "clusterinformations", ScopeCluster},
		{"IPAMConfig", "ipamconfigs.crd.projectcalico.org", "ipamconfigs", ScopeCluster},
		{"BlockAffinity", "blockaffinities.crd.projectcalico.org", "blockaffinities", ScopeCluster},
		{"CalicoNodeStatus", "caliconodestatuses.crd.projectcalico.org", "caliconodestatuses", ScopeCluster},
		{"StagedKubernetesNetworkPolicy", "stagedkubernetesnetworkpolicies.crd.projectcalico.org", "stagedkubernetesnetworkpolicies", ScopeNamespaced},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			c := crdByKind(t, tt.kind)
			n := c.Spec.Names
			if c.Name != tt.name || n.Plural != tt.plural || c.Spec.Scope != tt.scope ||
				n.Singular != strings.ToLower(tt.kind) || n.ListKind != tt.kind+"List" || c.Spec.Group != Group {
				t.Errorf("got name=%s plural=%s singular=%s listKind=%s scope=%s group=%s",
					c.Name, n.Plural, n.Singular, n.ListKind, c.Spec.Scope, c.Spec.Group)
			}
			v := c.Spec.Versions
			if len(v) != 1 || v[0].Name != "v1" || !v[0].Served || !v[0].Storage {
				t.Errorf("versions = %+v, want one served, stored v1", v)
			}
		})
	}
}

// The kinds upstream ships in crd.projectcalico.org (§2.2), and no others.
func TestKindSet(t *testing.T) {
	want := []string{
		"BGPConfiguration", "BGPFilter", "BGPPeer", "BlockAffinity", "CalicoNodeStatus",
		"ClusterInformation", "FelixConfiguration", "GlobalNetworkPolicy", "GlobalNetworkSet",
		"HostEndpoint", "IPAMBlock", "IPAMConfig", "IPAMHandle", "IPPool", "IPReservation",
		"KubeControllersConfiguration", "NetworkPolicy", "NetworkSet", "StagedGlobalNetworkPolicy",
		"StagedKubernetesNetworkPolicy", "StagedNetworkPolicy", "Tier",
	}
	var got []string
	for _, d := range Defs() {
		got = append(got, d.Kind)
	}
	if !slices.Equal(got, want) {
		t.Errorf("kinds = %v\nwant    %v", got, want)
	}
}

// Every schema must be structural, or the API server rejects the CRD.
func TestSchemasAreStructural(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range all {
		checkStructural(t, c.Name, c.Spec.Versions[0].Schema.OpenAPIV3Schema, true)
	}
}

func checkStructural(t *testing.T, path string, s *Schema, root bool) {
	t.Helper()
	keeps := s.XPreserveUnknownFields != nil && *s.XPreserveUnknownFields
	switch {
	case s.XIntOrString:
		if s.Type != "" {
			t.Errorf("%s: int-or-string with type %q", path, s.Type)
		}
	case s.Type == "" && !keeps:
		t.Errorf("%s: no type", path)
	case root && s.Type != "object":
		t.Errorf("%s: root type %q", path, s.Type)
	}
	if (s.Properties != nil || s.AdditionalProperties != nil) && s.Type != "object" {
		t.Errorf("%s: properties on type %q", path, s.Type)
	}
	if s.Properties != nil && s.AdditionalProperties != nil {
		t.Errorf("%s: both properties and additionalProperties", path)
	}
	if (s.Items != nil) != (s.Type == "array") {
		t.Errorf("%s: type %q with items %v", path, s.Type, s.Items != nil)
	}
	for _, r := range s.Required {
		if s.Properties[r] == nil {
			t.Errorf("%s: required %q is not a property", path, r)
		}
	}
	for name, p := range s.Properties {
		checkStructural(t, path+"."+name, p, false)
	}
	if s.Items != nil {
		checkStructural(t, path+"[]", s.Items, false)
	}
	if s.AdditionalProperties != nil {
		checkStructural(t, path+"{}", s.AdditionalProperties, false)
	}
	for i, a := range s.AnyOf {
		if a.Properties != nil || a.Items != nil {
			t.Errorf("%s: anyOf[%d] declares structure", path, i)
		}
	}
}

type mysteryValue struct{}

func (mysteryValue) MarshalJSON() ([]byte, error) { return []byte(`"?"`), nil }

// A type whose JSON form the generator cannot know is reported, not guessed.
func TestUnknownMarshalerIsReported(t *testing.T) {
	type spec struct {
		Known   string        `json:"known"`
		Mystery *mysteryValue `json:"mystery,omitempty"`
	}
	g := newGenerator(nil)
	s := g.schemaOf(reflect.TypeFor[spec]())
	if s.Properties["known"].Type != "string" {
		t.Errorf("known = %v", s.Properties["known"])
	}
	if m := s.Properties["mystery"]; m.Type != "" || m.XPreserveUnknownFields == nil {
		t.Errorf("mystery = %v, want a permissive schema", m)
	}
	if fb := g.Fallbacks(); !slices.Equal(fb, []string{"crds.mysteryValue"}) {
		t.Errorf("Fallbacks() = %v", fb)
	}
	// The real types have none: Generate would fail otherwise.
	if _, err := Generate(Options{Docs: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
}

func TestManifestUpToDate(t *testing.T) {
	var dirs []string
	for _, d := range DocSources {
		dirs = append(dirs, filepath.Join("../..", d))
	}
	docs, err := ParseDocs(dirs...)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(docs, fieldDocs) {
		t.Errorf("internal/crds/zz_generated_docs.go is out of date with the doc comments: run `make manifests`")
	}
	want, err := YAML()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../manifests/crds.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("manifests/crds.yaml is out of date with the Go types: run `make manifests`")
	}
}

func TestManifestParsesBack(t *testing.T) {
	data, err := YAML()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	if len(parsed) != len(all) {
		t.Fatalf("parsed %d CRDs, want %d", len(parsed), len(all))
	}
	for i := range all {
		a, b := mustMarshal(t, all[i]), mustMarshal(t, parsed[i])
		if !bytes.Equal(a, b) {
			t.Errorf("%s does not survive YAML:\n%s\n%s", all[i].Name, a, b)
		}
	}
	// Strict: a misspelt field in a CRD document is an error.
	if _, err := Parse([]byte("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec: {grop: x}\n")); err == nil {
		t.Error("Parse accepted an unknown field")
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDocsFromComments(t *testing.T) {
	docs, err := ParseDocs("../../resources")
	if err != nil {
		t.Fatal(err)
	}
	if d := docs["resources.IPPoolSpec.CIDR"]; d == "" || strings.Contains(d, "//") {
		t.Errorf("IPPoolSpec.CIDR doc = %q", d)
	}
	// Descriptions reach the schema (what kubectl explain shows).
	s := at(t, "IPPool", "spec.cidr")
	if s.Description != fieldDocs["resources.IPPoolSpec.CIDR"] || s.Description == "" {
		t.Errorf("spec.cidr description = %q", s.Description)
	}
	// With no docs there are no descriptions below the top level.
	all, err := Generate(Options{Docs: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range all {
		if c.Spec.Names.Kind == "IPPool" {
			if d := c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["cidr"].Description; d != "" {
				t.Errorf("description without docs = %q", d)
			}
		}
	}
}

func TestRegistryKindsCovered(t *testing.T) {
	have := map[string]bool{}
	for _, d := range Defs() {
		have[d.Kind] = true
	}
	for _, k := range resources.Kinds() {
		if have[k.Kind] == notCRD[k.Kind] {
			t.Errorf("%s: CRD generated = %v, but backed by a native object = %v", k.Kind, have[k.Kind], notCRD[k.Kind])
		}
	}
}

// manifests/calicoctl.yaml must grant rights on exactly the CRDs we install
// and run the pod the way the docs describe.
func TestCalicoctlManifest(t *testing.T) {
	data, err := os.ReadFile("../../manifests/calicoctl.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var plurals []string
	for _, d := range Defs() {
		plurals = append(plurals, d.Plural)
	}
	kinds := map[string]bool{}
	for _, doc := range splitDocs(data) {
		var obj struct {
			Kind  string `json:"kind"`
			Rules []struct {
				APIGroups []string `json:"apiGroups"`
				Resources []string `json:"resources"`
				Verbs     []string `json:"verbs"`
			} `json:"rules"`
			Spec struct {
				ServiceAccountName string `json:"serviceAccountName"`
				Containers         []struct {
					Command []string `json:"command"`
					Env     []struct{ Name, Value string }
				} `json:"containers"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatal(err)
		}
		kinds[obj.Kind] = true
		switch obj.Kind {
		case "ClusterRole":
			found := false
			for _, r := range obj.Rules {
				if slices.Equal(r.APIGroups, []string{Group}) {
					found = true
					got := slices.Sorted(slices.Values(r.Resources))
					if !slices.Equal(got, plurals) {
						t.Errorf("ClusterRole %s resources = %v\nwant %v", Group, got, plurals)
					}
				}
				if slices.Contains(r.Verbs, "*") || slices.Contains(r.Resources, "*") {
					t.Errorf("ClusterRole rule %+v uses a wildcard", r)
				}
			}
			if !found {
				t.Errorf("ClusterRole has no rule for %s", Group)
			}
		case "Pod":
			c := obj.Spec.Containers
			if len(c) != 1 || !slices.Equal(c[0].Command, []string{"/calicoctl", "pause"}) || obj.Spec.ServiceAccountName != "calicoctl" {
				t.Errorf("Pod spec = %+v", obj.Spec)
			}
			if len(c) == 1 && !slices.Contains(c[0].Env, struct{ Name, Value string }{"DATASTORE_TYPE", "kubernetes"}) {
				t.Errorf("Pod env = %+v, want DATASTORE_TYPE=kubernetes", c[0].Env)
			}
		}
	}
	for _, k := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Pod"} {
		if !kinds[k] {
			t.Errorf("no %s in manifests/calicoctl.yaml", k)
		}
	}
}
