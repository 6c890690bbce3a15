package resources

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"
)

// errorFields lists the field paths named by a Validate error.
func errorFields(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var one *FieldError
	if errors.As(err, &one) {
		return []string{one.Field}
	}
	var many FieldErrors
	if errors.As(err, &many) {
		out := make([]string, len(many))
		for i, e := range many {
			out[i] = e.Field
		}
		return out
	}
	t.Fatalf("Validate returned %T (%v), want *FieldError or FieldErrors", err, err)
	return nil
}

// expectValidation asserts r validates cleanly (wantField == "") or fails
// naming wantField.
func expectValidation(t *testing.T, r Resource, wantField string) {
	t.Helper()
	err := r.Validate()
	fields := errorFields(t, err)
	if wantField == "" {
		if err != nil {
			t.Fatalf("want valid, got %v", err)
		}
		return
	}
	if !slices.Contains(fields, wantField) {
		t.Fatalf("want an error naming %s, got %v", wantField, err)
	}
}

// expectStrictRoundTrip decodes manifest strictly into a new object of r's
// kind, checks it validates, then checks a JSON encode/decode cycle keeps
// every field. It returns the decoded object.
func expectStrictRoundTrip[T any, P interface {
	*T
	Resource
}](t *testing.T, manifest string) P {
	t.Helper()
	obj := P(new(T))
	if err := yaml.UnmarshalStrict([]byte(manifest), obj); err != nil {
		t.Fatalf("strict decode: %v", err)
	}
	if err := obj.Validate(); err != nil {
		t.Fatalf("decoded manifest does not validate: %v", err)
	}
	first, err := json.Marshal(obj)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	again := P(new(T))
	dec := json.NewDecoder(bytes.NewReader(first))
	dec.DisallowUnknownFields()
	if err := dec.Decode(again); err != nil {
		t.Fatalf("re-decode %s: %v", first, err)
	}
	if !reflect.DeepEqual(obj, again) {
		t.Fatalf("round trip changed the object:\n before %+v\n after  %+v", obj, again)
	}
	second, _ := json.Marshal(again)
	if !bytes.Equal(first, second) {
		t.Fatalf("re-encoding differs:\n %s\n %s", first, second)
	}
	return obj
}

// expectDefaultIdempotent applies Default twice and checks the second call
// changes nothing.
func expectDefaultIdempotent(t *testing.T, r Resource) {
	t.Helper()
	r.Default()
	once, _ := json.Marshal(r)
	r.Default()
	twice, _ := json.Marshal(r)
	if !bytes.Equal(once, twice) {
		t.Fatalf("Default is not idempotent:\n %s\n %s", once, twice)
	}
}

func ptr[T any](v T) *T { return &v }

func TestEnumHelpers(t *testing.T) {
	cases := []struct {
		name  string
		check func(*Validator) bool
		want  bool
	}{
		{"exact ok", func(v *Validator) bool { return enumField(v, "f", "Always", "Never", "Always") }, true},
		{"exact case differs", func(v *Validator) bool { return enumField(v, "f", "always", "Never", "Always") }, false},
		{"empty ok", func(v *Validator) bool { return enumField(v, "f", "", "Never") }, true},
		{"fold ok", func(v *Validator) bool { return enumFieldFold(v, "f", "iNfO", "Info") }, true},
		{"fold bad", func(v *Validator) bool { return enumFieldFold(v, "f", "Verbose", "Info") }, false},
		{"ptr nil ok", func(v *Validator) bool { return enumPtr[string](v, "f", nil, "A") }, true},
		{"ptr empty bad", func(v *Validator) bool { return enumPtr(v, "f", ptr(""), "A") }, false},
		{"range in", func(v *Validator) bool { return rangeField(v, "f", ptr(5), 1, 10) }, true},
		{"range out", func(v *Validator) bool { return rangeField(v, "f", ptr(11), 1, 10) }, false},
		{"port zero ok", func(v *Validator) bool { return portField(v, "f", ptr(0), false) }, true},
		{"port zero nonzero", func(v *Validator) bool { return portField(v, "f", ptr(0), true) }, false},
		{"port too big", func(v *Validator) bool { return portField(v, "f", ptr(65536), false) }, false},
		{"regexp bad", func(v *Validator) bool { return regexpField(v, "f", "(") }, false},
		{"ipv4 wants v4", func(v *Validator) bool { return ipFamilyField(v, "f", "fd00::1", 4) }, false},
		{"ipv6 wants v6", func(v *Validator) bool { return ipFamilyField(v, "f", "fd00::1", 6) }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var v Validator
			got := tc.check(&v)
			if got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if (v.Err() == nil) != tc.want {
				t.Fatalf("recorded error %v does not match result %v", v.Err(), got)
			}
		})
	}
}
