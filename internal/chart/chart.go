// Package chart renders the Helm chart under charts/calico without Helm:
// its templates use only Go templates, .Values and a handful of Helm's
// functions (quote, default, ternary, toYaml, nindent, indent), so the
// committed manifest (manifests/calico-node.yaml) and the chart come from
// one source. cmd/manifestgen writes the manifest with the chart's defaults.
package chart

import (
	"bytes"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"reflect"
	"slices"
	"strings"
	"text/template"

	"sigs.k8s.io/yaml"
)

// Values are a chart's values: values.yaml merged with overrides.
type Values = map[string]any

// Render executes every templates/*.yaml of the chart in fsys (rooted at
// the chart's directory) with values.yaml overridden by overrides, and
// joins the documents as `helm template` does, each headed by its source.
func Render(fsys fs.FS, overrides Values) ([]byte, error) {
	var meta struct {
		Name string `json:"name"`
	}
	raw, err := fs.ReadFile(fsys, "Chart.yaml")
	if err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("Chart.yaml: %w", err)
	}
	values := Values{}
	raw, err = fs.ReadFile(fsys, "values.yaml")
	if err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal(raw, &values); err != nil {
		return nil, fmt.Errorf("values.yaml: %w", err)
	}
	values = Merge(values, overrides)

	names, err := fs.Glob(fsys, "templates/*.yaml")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var out bytes.Buffer
	for _, name := range names {
		src, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		t, err := template.New(path.Base(name)).Option("missingkey=error").Funcs(funcs).Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		var doc bytes.Buffer
		if err := t.Execute(&doc, map[string]any{"Values": values}); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for _, part := range strings.Split(doc.String(), "\n---\n") {
			part = strings.Trim(part, "\n")
			if strings.TrimSpace(stripComments(part)) == "" {
				continue
			}
			fmt.Fprintf(&out, "---\n# Source: %s/%s\n%s\n", meta.Name, name, part)
		}
	}
	return out.Bytes(), nil
}

// stripComments drops comment-only lines (a document of comments is empty).
func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// Merge returns base with overrides applied; nested maps merge key by key.
func Merge(base, overrides Values) Values {
	out := maps.Clone(base)
	if out == nil {
		out = Values{}
	}
	for k, v := range overrides {
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				out[k] = Merge(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// funcs are the Helm (sprig) functions the chart uses, with their semantics.
var funcs = template.FuncMap{
	"quote": func(v ...any) string {
		parts := make([]string, 0, len(v))
		for _, x := range v {
			if x != nil {
				parts = append(parts, fmt.Sprintf("%q", fmt.Sprint(x)))
			}
		}
		return strings.Join(parts, " ")
	},
	"default": func(d any, given ...any) any {
		if len(given) == 0 || empty(given[0]) {
			return d
		}
		return given[0]
	},
	"ternary": func(t, f any, cond bool) any {
		if cond {
			return t
		}
		return f
	},
	"toYaml": func(v any) (string, error) {
		b, err := yaml.Marshal(v)
		return strings.TrimSuffix(string(b), "\n"), err
	},
	"indent": func(n int, s string) string {
		pad := strings.Repeat(" ", n)
		return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
	},
	"nindent": func(n int, s string) string {
		pad := strings.Repeat(" ", n)
		return "\n" + pad + strings.ReplaceAll(s, "\n", "\n"+pad)
	},
}

// empty is sprig's notion of an empty value.
func empty(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String, reflect.Map, reflect.Slice, reflect.Array:
		return rv.Len() == 0
	case reflect.Bool:
		return !rv.Bool()
	case reflect.Int, reflect.Int64, reflect.Int32:
		return rv.Int() == 0
	case reflect.Float64, reflect.Float32:
		return rv.Float() == 0
	}
	return false
}
