package crds

import (
	"encoding"
	"encoding/json"
	"fmt"
	"path"
	"reflect"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/opencalico/calicoctl/resources"
)

// Well-known types with a JSON form that reflection cannot see.
var (
	durationType   = reflect.TypeFor[metav1.Duration]()
	metaTimeType   = reflect.TypeFor[metav1.Time]()
	stdTimeType    = reflect.TypeFor[time.Time]()
	objectMetaType = reflect.TypeFor[metav1.ObjectMeta]()
	typeMetaType   = reflect.TypeFor[metav1.TypeMeta]()
	jsonMarshaler  = reflect.TypeFor[json.Marshaler]()
	textMarshaler  = reflect.TypeFor[encoding.TextMarshaler]()

	// intOrString are the types whose JSON value is a number or a string
	// (numorstring in upstream's API).
	intOrString = map[reflect.Type]bool{
		reflect.TypeFor[intstr.IntOrString](): true,
		reflect.TypeFor[resources.ASNumber](): true,
		reflect.TypeFor[resources.Port]():     true,
		reflect.TypeFor[resources.Protocol](): true,
		reflect.TypeFor[resources.DSCP]():     true,
	}
)

// notRequired lists fields that our Go types write without omitempty (so
// they are always present in what we write) but that upstream's schema does
// not require. Keys are "<package>.<GoType>.<jsonName>".
var notRequired = map[string]bool{
	"resources.FelixConfigurationSpec.bpfLogLevel": true,
}

// generator derives structural OpenAPI v3 schemas from Go types by
// reflection, following encoding/json's rules for field names, embedding and
// omitempty.
type generator struct {
	// docs maps "<package>.<GoType>.<GoField>" and "<package>.<GoType>" to
	// descriptions (see ParseDocs); nil means no descriptions.
	docs map[string]string
	// fallbacks records Go types that implement json.Marshaler but are not
	// known here; they get a permissive schema.
	fallbacks map[string]bool
	// visiting guards against recursive types.
	visiting map[reflect.Type]bool
}

func newGenerator(docs map[string]string) *generator {
	return &generator{docs: docs, fallbacks: map[string]bool{}, visiting: map[reflect.Type]bool{}}
}

func yes() *bool { b := true; return &b }

// permissive accepts any JSON value and keeps it as written.
func permissive() *Schema { return &Schema{XPreserveUnknownFields: yes()} }

// openObject is an object with no listed fields whose content is kept.
func openObject() *Schema { return &Schema{Type: "object", XPreserveUnknownFields: yes()} }

func intOrStringSchema() *Schema {
	return &Schema{
		XIntOrString: true,
		AnyOf:        []*Schema{{Type: "integer"}, {Type: "string"}},
	}
}

// typeName is "<package>.<GoType>", the key prefix used for docs.
func typeName(t reflect.Type) string {
	if t.Name() == "" || t.PkgPath() == "" {
		return ""
	}
	return path.Base(t.PkgPath()) + "." + t.Name()
}

// rootSchema is the schema of a whole object of Go type t (a struct that
// embeds TypeMeta and ObjectMeta). Unlike nested objects the root does not
// keep unknown fields: the API server owns the top level.
func (g *generator) rootSchema(t reflect.Type) *Schema {
	s := g.structSchema(t)
	s.XPreserveUnknownFields = nil
	s.Description = ""
	s.Required = nil
	if s.Properties == nil {
		s.Properties = map[string]*Schema{}
	}
	s.Properties["apiVersion"] = &Schema{Type: "string", Description: "APIVersion is the versioned schema of this object: crd.projectcalico.org/v1."}
	s.Properties["kind"] = &Schema{Type: "string", Description: "Kind is the REST resource this object represents."}
	s.Properties["metadata"] = &Schema{Type: "object"}
	return s
}

// schemaOf returns the schema of a value of Go type t.
func (g *generator) schemaOf(t reflect.Type) *Schema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case intOrString[t]:
		return intOrStringSchema()
	case t == durationType:
		return &Schema{Type: "string", Description: "A duration such as 30s, 1m30s or 2h45m."}
	case t == metaTimeType || t == stdTimeType:
		return &Schema{Type: "string", Format: "date-time", Nullable: true}
	case t == objectMetaType:
		return &Schema{Type: "object"}
	case implements(t, jsonMarshaler):
		g.fallbacks[t.String()] = true
		return permissive()
	case implements(t, textMarshaler):
		return &Schema{Type: "string"}
	}
	switch t.Kind() {
	case reflect.Bool:
		return &Schema{Type: "boolean"}
	case reflect.Int32:
		return &Schema{Type: "integer", Format: "int32"}
	case reflect.Int64:
		return &Schema{Type: "integer", Format: "int64"}
	case reflect.Int8, reflect.Int16, reflect.Int, reflect.Uint8, reflect.Uint16, reflect.Uint32,
		reflect.Uint, reflect.Uint64, reflect.Uintptr:
		// No format for unsigned values: a mark mask such as 0xffff0000 is
		// beyond int32.
		return &Schema{Type: "integer"}
	case reflect.Float32, reflect.Float64:
		return &Schema{Type: "number"}
	case reflect.String:
		return &Schema{Type: "string"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return &Schema{Type: "string", Format: "byte"}
		}
		return &Schema{Type: "array", Items: g.elemSchema(t.Elem())}
	case reflect.Map:
		k := t.Key()
		if k.Kind() != reflect.String && !implements(k, textMarshaler) {
			g.fallbacks[t.String()] = true
			return openObject()
		}
		return &Schema{Type: "object", AdditionalProperties: g.elemSchema(t.Elem())}
	case reflect.Struct:
		return g.structSchema(t)
	default: // interfaces, and anything else encoding/json can carry
		return permissive()
	}
}

// elemSchema is the schema of a slice or map element; a pointer element may
// be null (e.g. IPAMBlock allocations).
func (g *generator) elemSchema(t reflect.Type) *Schema {
	s := g.schemaOf(t)
	if t.Kind() == reflect.Pointer {
		s.Nullable = true
	}
	return s
}

func implements(t, iface reflect.Type) bool {
	return t.Implements(iface) || reflect.PointerTo(t).Implements(iface)
}

// structSchema lists the JSON fields of struct t. Objects keep fields they do
// not list, so data written by a newer Calico survives a round trip through
// the API server.
func (g *generator) structSchema(t reflect.Type) *Schema {
	if g.visiting[t] {
		return openObject()
	}
	g.visiting[t] = true
	defer delete(g.visiting, t)

	s := &Schema{Type: "object", Properties: map[string]*Schema{}, XPreserveUnknownFields: yes()}
	g.addFields(s, t)
	if len(s.Properties) == 0 {
		s.Properties = nil
	}
	sort.Strings(s.Required)
	return s
}

// addFields adds the JSON fields of struct t to s, flattening embedded
// structs the way encoding/json does.
func (g *generator) addFields(s *Schema, t reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct && !intOrString[ft] && !implements(ft, jsonMarshaler) {
			if ft == typeMetaType {
				continue // apiVersion and kind are added by rootSchema
			}
			g.addFields(s, ft)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, dup := s.Properties[name]; dup {
			continue // the shallower field wins, as in encoding/json
		}
		fs := g.schemaOf(f.Type)
		if d := g.fieldDoc(t, f); d != "" {
			fs.Description = d
		}
		s.Properties[name] = fs
		if g.required(t, name, opts, f.Type) {
			s.Required = append(s.Required, name)
		}
	}
}

// required reports whether a field must be present: it is written without
// omitempty/omitzero and is not a pointer, as upstream's generator decides.
func (g *generator) required(owner reflect.Type, name, opts string, ft reflect.Type) bool {
	if ft.Kind() == reflect.Pointer {
		return false
	}
	for _, o := range strings.Split(opts, ",") {
		if o == "omitempty" || o == "omitzero" || o == "inline" {
			return false
		}
	}
	return !notRequired[typeName(owner)+"."+name]
}

// fieldDoc is the field's doc comment, else the doc comment of its type.
func (g *generator) fieldDoc(owner reflect.Type, f reflect.StructField) string {
	if g.docs == nil {
		return ""
	}
	if d := g.docs[typeName(owner)+"."+f.Name]; d != "" {
		return d
	}
	ft := f.Type
	for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
		ft = ft.Elem()
	}
	if ft.Kind() == reflect.Struct {
		return g.docs[typeName(ft)]
	}
	return ""
}

// Fallbacks lists the Go types that got a permissive schema only because the
// generator does not know their JSON form; it should be empty.
func (g *generator) Fallbacks() []string {
	out := make([]string, 0, len(g.fallbacks))
	for t := range g.fallbacks {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// String is for debugging.
func (s *Schema) String() string {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Sprintf("<schema: %v>", err)
	}
	return string(b)
}
