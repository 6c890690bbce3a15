// Package clitest holds what the end-to-end suites share when they drive the
// built calicoctl binary: building it, running it with a minimal environment
// (failing on any sign of a Go crash), and checking its output and the
// objects it prints. It is imported only by tests.
package clitest

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// Object is a decoded YAML/JSON resource.
type Object map[string]any

// ParseObject decodes YAML (or JSON) output into an object.
func ParseObject(t testing.TB, text string) Object {
	t.Helper()
	var o Object
	if err := yaml.Unmarshal([]byte(text), &o); err != nil {
		t.Fatalf("output is not a YAML/JSON object: %v\n%s", err, text)
	}
	return o
}

// Lookup follows a dotted path ("spec.ports.0.hostIP"); numeric segments
// index lists. Map keys containing dots cannot be addressed: compare the
// whole map instead ("metadata.labels").
func (o Object) Lookup(path string) (any, bool) {
	var cur any = map[string]any(o)
	for _, seg := range strings.Split(path, ".") {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[seg]
			if !ok {
				return nil, false
			}
			cur = next
		case Object:
			next, ok := v[seg]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// Str returns the JSON form of the value at path, or "<absent>".
func (o Object) Str(path string) string {
	v, ok := o.Lookup(path)
	if !ok {
		return "<absent>"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "<unencodable>"
	}
	return string(b)
}

// Set assigns value at a dotted path, creating maps on the way; numeric
// segments index existing lists.
func (o Object) Set(t testing.TB, path string, value any) {
	t.Helper()
	segs := strings.Split(path, ".")
	var cur any = map[string]any(o)
	for i, seg := range segs {
		last := i == len(segs)-1
		switch v := cur.(type) {
		case map[string]any:
			if last {
				v[seg] = value
				return
			}
			next, ok := v[seg]
			if !ok {
				next = map[string]any{}
				v[seg] = next
			}
			cur = next
		case []any:
			n, err := strconv.Atoi(seg)
			if err != nil || n < 0 || n >= len(v) {
				t.Fatalf("set %s: no list element %q", path, seg)
			}
			if last {
				v[n] = value
				return
			}
			cur = v[n]
		default:
			t.Fatalf("set %s: %q is not inside a map or list", path, seg)
		}
	}
}

// YAML renders the object back to YAML.
func (o Object) YAML(t testing.TB) string {
	t.Helper()
	b, err := yaml.Marshal(map[string]any(o))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// WantFields checks path -> JSON-encoded value expectations.
func WantFields(t testing.TB, what string, o Object, want map[string]string) {
	t.Helper()
	for path, w := range want {
		if got := o.Str(path); got != w {
			t.Errorf("%s: %s = %s, want %s", what, path, got, w)
		}
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// WantServerMeta checks the metadata the datastore and client fill in
// (resourceVersion: a positive integer, on etcd and Kubernetes alike).
func WantServerMeta(t testing.TB, what string, o Object) (rv, uid, created string) {
	t.Helper()
	rv, _ = MustString(o, "metadata.resourceVersion")
	uid, _ = MustString(o, "metadata.uid")
	created, _ = MustString(o, "metadata.creationTimestamp")
	if n, err := strconv.ParseInt(rv, 10, 64); err != nil || n <= 0 {
		t.Errorf("%s: resourceVersion %q is not a positive revision", what, rv)
	}
	if !uuidRE.MatchString(uid) {
		t.Errorf("%s: uid %q is not a UUID", what, uid)
	}
	if ts, err := time.Parse(time.RFC3339, created); err != nil || ts.Year() < 2000 {
		t.Errorf("%s: creationTimestamp %q is not a plausible RFC 3339 time", what, created)
	}
	return rv, uid, created
}

// MustString is the string at path; false when it is absent or not a string.
func MustString(o Object, path string) (string, bool) {
	v, ok := o.Lookup(path)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}
