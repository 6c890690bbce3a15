package kdd

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// object is a decoded YAML/JSON resource.
type object map[string]any

// parseObject decodes YAML (or JSON) output into an object.
func parseObject(t testing.TB, text string) object {
	t.Helper()
	var o object
	if err := yaml.Unmarshal([]byte(text), &o); err != nil {
		t.Fatalf("output is not a YAML/JSON object: %v\n%s", err, text)
	}
	return o
}

// getYAML reads one object with `get ... -o yaml`.
func (u *user) getYAML(t testing.TB, args ...string) (object, string) {
	t.Helper()
	out := u.mustRun(t, append(append([]string{"get"}, args...), "-o", "yaml")...)
	return parseObject(t, out), out
}

// lookup follows a dotted path ("spec.ports.0.hostIP"); numeric segments
// index lists. Map keys containing dots cannot be addressed: compare the
// whole map instead ("metadata.labels").
func (o object) lookup(path string) (any, bool) {
	var cur any = map[string]any(o)
	for _, seg := range strings.Split(path, ".") {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[seg]
			if !ok {
				return nil, false
			}
			cur = next
		case object:
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

// str returns the JSON form of the value at path, or "<absent>".
func (o object) str(path string) string {
	v, ok := o.lookup(path)
	if !ok {
		return "<absent>"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "<unencodable>"
	}
	return string(b)
}

// set assigns value at a dotted path, creating maps on the way; numeric
// segments index existing lists.
func (o object) set(t testing.TB, path string, value any) {
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

// yaml renders the object back to YAML.
func (o object) yaml(t testing.TB) string {
	t.Helper()
	b, err := yaml.Marshal(map[string]any(o))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wantFields checks path -> JSON-encoded value expectations.
func wantFields(t testing.TB, what string, o object, want map[string]string) {
	t.Helper()
	for path, w := range want {
		if got := o.str(path); got != w {
			t.Errorf("%s: %s = %s, want %s", what, path, got, w)
		}
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// wantServerMeta checks the metadata the datastore and client fill in
// (resourceVersion is the Kubernetes one: a positive integer too).
func wantServerMeta(t testing.TB, what string, o object) (rv, uid, created string) {
	t.Helper()
	rv, _ = mustString(o, "metadata.resourceVersion")
	uid, _ = mustString(o, "metadata.uid")
	created, _ = mustString(o, "metadata.creationTimestamp")
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

func mustString(o object, path string) (string, bool) {
	v, ok := o.lookup(path)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}
