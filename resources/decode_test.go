package resources

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestDecodeLeniencyAndStrictness: what upstream's YAML-based decoder
// accepts (trailing commas in JSON, numeric keys) decodes; a key given twice
// is an error naming the key and the file line.
func TestDecodeLeniencyAndStrictness(t *testing.T) {
	const gns = `apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata:
  name: a
`
	tests := []struct {
		name    string
		in      string
		wantErr string // "" = decodes to one object
		labels  string // fmt of the labels when decoded
	}{
		{name: "duplicate key", in: gns + "  name: b\n", wantErr: `x, document 1: malformed YAML: yaml: line 5: key "name" already set in map`},
		{name: "duplicate key in a later document", in: gns + "---\n" + gns + "  labels: {a: x, a: y}\n", wantErr: `x, document 2: malformed YAML: yaml: line 10: key "a" already set in map`},
		{name: "numeric label keys", in: gns + "  labels: {1: a, \"123\": x}\n", labels: "map[1:a 123:x]"},
		{name: "trailing comma in JSON", in: `{"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkSet", "metadata": {"name": "a", "labels": {"123": "x",},},}`, labels: "map[123:x]"},
		{name: "boolean and number label values, as the seed writes them", in: gns + "  labels: {i-am-a-route-reflector: true, rack: 12, ratio: 1.5, s: \"x\"}\n", labels: "map[i-am-a-route-reflector:true rack:12 ratio:1.5 s:x]"},
		{name: "boolean label value in JSON", in: `{"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkSet", "metadata": {"name": "a", "labels": {"rr": true}}}`, labels: "map[rr:true]"},
		{name: "a list where text is expected stays an error", in: gns + "  labels: {a: [1]}\n", wantErr: "field metadata.labels"},
		{name: "text where a number is expected stays an error", in: "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: p\nspec:\n  keepaliveTime: true\n", wantErr: "spec.keepaliveTime"},
		{name: "duplicate key in JSON", in: "{\"apiVersion\": \"projectcalico.org/v3\", \"kind\": \"GlobalNetworkSet\",\n \"metadata\": {\"name\": \"p1\",\n \"name\": \"p2\"}}", wantErr: `x, document 1: malformed JSON: line 3: key "name" already set in object`},
		{name: "duplicate key in a later JSON value", in: "{\"apiVersion\": \"projectcalico.org/v3\", \"kind\": \"GlobalNetworkSet\", \"metadata\": {\"name\": \"a\"}}\n{\"apiVersion\": \"projectcalico.org/v3\", \"kind\": \"GlobalNetworkSet\", \"metadata\": {\"name\": \"b\", \"labels\": {\"x\": \"1\", \"x\": \"2\"}}}", wantErr: `x, document 2: malformed JSON: line 2: key "x" already set in object`},
		{name: "same key in sibling JSON objects is fine", in: `[{"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkSet", "metadata": {"name": "a", "labels": {"k": "v"}}, "spec": {"nets": ["10.0.0.0/8"]}}]`, labels: "map[k:v]"},
		{name: "broken JSON stays an error", in: `{"apiVersion": "projectcalico.org/v3", "kind": "IPPool"`, wantErr: "malformed JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := Decode([]byte(tt.in), "x")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(docs) != 1 {
				t.Fatalf("%d docs, err %v", len(docs), err)
			}
			if got := fmtLabels(docs[0].Resource.GetLabels()); got != tt.labels {
				t.Errorf("labels %s, want %s", got, tt.labels)
			}
		})
	}
}

func fmtLabels(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+":"+m[k])
	}
	return "map[" + strings.Join(parts, " ") + "]"
}

func TestParsePrefixLeadingZeros(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.0/016": "10.0.0.0/16", "fd00::/064": "fd00::/64", "10.0.0.0/00": "10.0.0.0/0", "10.0.0.0/16": "10.0.0.0/16",
		"10.0.0.0/0033": "error", "10.0.0.0/+16": "error", "10.0.0.0/": "error", "10.0.0.0/0x10": "error",
	} {
		p, err := ParsePrefix(in)
		got := p.String()
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("ParsePrefix(%q) = %s, want %s", in, got, want)
		}
	}
	var v Validator
	ValidateCIDR(&v, "spec.cidr", "10.0.0.0/016", false)
	if v.Err() != nil {
		t.Errorf("ValidateCIDR: %v", v.Err())
	}
}

// TestDecodeCompact: a compact document checks its object as Decode does,
// names it before it is decoded, and decodes to the same object.
func TestDecodeCompact(t *testing.T) {
	in := `apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata:
  name: a
  namespace: ns1
  labels: {rr: true}
spec:
  nets: [10.0.0.0/24]
---
{"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkSetList", "items": [{"metadata": {"name": "b"}}, {"metadata": {"name": "c"}}]}
`
	full, err := Decode([]byte(in), "x")
	if err != nil {
		t.Fatal(err)
	}
	compact, err := DecodeCompact([]byte(in), "x")
	if err != nil {
		t.Fatal(err)
	}
	if len(full) != 3 || len(compact) != 3 {
		t.Fatalf("%d full, %d compact documents; want 3", len(full), len(compact))
	}
	for i := range full {
		d := compact[i]
		if d.Resource != nil {
			t.Fatalf("document %d decoded before Object was called", i)
		}
		if got, want := d.Key(), KeyOf(full[i].Resource); got != want {
			t.Errorf("document %d: key %v before decoding, want %v", i, got, want)
		}
		r, err := d.Object()
		if err != nil {
			t.Fatal(err)
		}
		if d.Source != full[i].Source || fmtLabels(r.GetLabels()) != fmtLabels(full[i].Resource.GetLabels()) || KeyOf(r) != KeyOf(full[i].Resource) {
			t.Errorf("document %d: compact %v %v, full %v %v", i, KeyOf(r), r.GetLabels(), KeyOf(full[i].Resource), full[i].Resource.GetLabels())
		}
	}
	if _, err := DecodeCompact([]byte("apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata: {name: a}\nspec: {bogus: 1}\n"), "x"); err == nil ||
		!strings.Contains(err.Error(), "not recognized") {
		t.Errorf("an unknown field must fail at decode time, not when the object is used: %v", err)
	}
}
