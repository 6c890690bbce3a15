package config

import (
	"bytes"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func viewFixture(t *testing.T) *Resolved {
	t.Helper()
	p := writeCfg(t, cfgYAML("  etcdEndpoints: http://127.0.0.1:2379\n  etcdPassword: hunter2\n"+
		"  etcdKey: |\n    -----BEGIN KEY-----\n    abc\n  etcdCert: |\n    -----BEGIN CERT-----\n    def\n"))
	r, err := Load(Options{ConfigFile: p, ConfigFileSet: true, Env: envOf(map[string]string{
		"CALICO_K8S_API_TOKEN": "tok", "ETCD_USERNAME": "admin"})})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestViewTable(t *testing.T) {
	r := viewFixture(t)
	var buf bytes.Buffer
	if err := r.View(&buf, "table"); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(FieldNames())+1 {
		t.Fatalf("got %d lines, want header + %d fields:\n%s", len(lines), len(FieldNames()), out)
	}
	valueCol := strings.Index(lines[0], "VALUE")
	sourceCol := strings.Index(lines[0], "SOURCE")
	if !strings.HasPrefix(lines[0], "FIELD ") || valueCol < 0 || sourceCol < 0 {
		t.Fatalf("bad header %q", lines[0])
	}
	rows := map[string]string{}
	for _, l := range lines[1:] {
		name := strings.Fields(l)[0]
		rows[name] = l
	}
	tests := []struct {
		field, value, source string
	}{
		{"datastoreType", "etcdv3", "default"},
		{"etcdEndpoints", "http://127.0.0.1:2379", "file " + r.File + ":5"},
		{"etcdUsername", "admin", "env ETCD_USERNAME"},
		{"etcdPassword", "********", "file " + r.File + ":6"},
		{"k8sAPIToken", "********", "env CALICO_K8S_API_TOKEN"},
		{"etcdKey", "********", "file " + r.File + ":7"},
		{"etcdCert", "<inline, 25 bytes>", "file " + r.File + ":10"},
		{"kubeconfigInline", "", "default"}, // unset secrets show nothing
		{"usePodCIDR", "false", "default"},
		{"k8sClientQPS", "0", "default"},
	}
	for _, tt := range tests {
		l, ok := rows[tt.field]
		if !ok {
			t.Errorf("no row for %s", tt.field)
			continue
		}
		if got := strings.TrimSpace(l[valueCol:sourceCol]); got != tt.value {
			t.Errorf("%s value cell = %q, want %q (row %q)", tt.field, got, tt.value, l)
		}
		if got := l[sourceCol:]; got != tt.source {
			t.Errorf("%s source cell = %q, want %q", tt.field, got, tt.source)
		}
	}
	for _, secret := range []string{"hunter2", "tok", "abc"} {
		if strings.Contains(out, secret) {
			t.Errorf("table leaks secret %q:\n%s", secret, out)
		}
	}
}

func TestViewStructured(t *testing.T) {
	r := viewFixture(t)
	for _, format := range []string{"yaml", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := r.View(&buf, format); err != nil {
				t.Fatal(err)
			}
			var doc ViewDoc
			if err := yaml.Unmarshal(buf.Bytes(), &doc); err != nil {
				t.Fatalf("output does not parse: %v\n%s", err, buf.String())
			}
			if doc.File != r.File || len(doc.Fields) != len(FieldNames()) {
				t.Fatalf("file %q with %d fields, want %q with %d", doc.File, len(doc.Fields), r.File, len(FieldNames()))
			}
			byName := map[string]ViewEntry{}
			for _, e := range doc.Fields {
				byName[e.Field] = e
			}
			if e := byName["etcdPassword"]; e.Value != "********" {
				t.Errorf("etcdPassword = %v, want masked", e.Value)
			}
			if e := byName["etcdCert"]; e.Value != "-----BEGIN CERT-----\ndef\n" {
				t.Errorf("etcdCert = %q, want the PEM text", e.Value)
			}
			if e := byName["k8sDisableNodePoll"]; e.Value != false {
				t.Errorf("k8sDisableNodePoll = %#v, want false", e.Value)
			}
			if e := byName["etcdUsername"]; e.Source != "env ETCD_USERNAME" {
				t.Errorf("etcdUsername source = %q", e.Source)
			}
			for _, secret := range []string{"hunter2", "tok\n", "abc"} {
				if strings.Contains(buf.String(), secret) {
					t.Errorf("%s leaks secret %q", format, secret)
				}
			}
		})
	}
}

func TestViewUnknownFormat(t *testing.T) {
	r := viewFixture(t)
	var buf bytes.Buffer
	err := r.View(&buf, "xml")
	if err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Errorf("View(xml) error = %v, want unknown format", err)
	}
	if buf.Len() != 0 {
		t.Errorf("View(xml) wrote %q", buf.String())
	}
}
