package config

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

// mask replaces secret values (passwords, tokens, inline keys) when shown.
const mask = "********"

// ViewEntry is one field as shown by View.
type ViewEntry struct {
	Field  string `json:"field"`
	Value  any    `json:"value"`
	Source string `json:"source"`
}

// ViewDoc is the document View prints for the yaml and json formats.
type ViewDoc struct {
	File   string      `json:"file,omitempty"`
	Fields []ViewEntry `json:"fields"`
}

// Entries lists every spec field with its display value (secrets masked
// when set) and source, in a fixed order.
func (r *Resolved) Entries() []ViewEntry {
	out := make([]ViewEntry, 0, len(fields))
	for _, f := range fields {
		val := f.get(&r.Spec)
		if s, ok := val.(string); ok && f.secret && s != "" {
			val = mask
		}
		out = append(out, ViewEntry{Field: f.name, Value: val, Source: r.Sources[f.name].String()})
	}
	return out
}

// View writes every field, its value and its source. format is "table" (or
// empty) for an aligned FIELD VALUE SOURCE table, "yaml" or "json".
func (r *Resolved) View(w io.Writer, format string) error {
	doc := ViewDoc{File: r.File, Fields: r.Entries()}
	switch format {
	case "", "table":
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "FIELD\tVALUE\tSOURCE")
		for _, e := range doc.Fields {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Field, cell(e.Value), e.Source)
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("writing config view: %w", err)
		}
		return nil
	case "yaml":
		b, err := yaml.Marshal(doc)
		if err != nil {
			return fmt.Errorf("encoding config view: %w", err)
		}
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("writing config view: %w", err)
		}
		return nil
	case "json":
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return fmt.Errorf("encoding config view: %w", err)
		}
		if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
			return fmt.Errorf("writing config view: %w", err)
		}
		return nil
	default:
		return fmt.Errorf("unknown output format %q (want table, yaml or json)", format)
	}
}

// cell renders a value for one table cell: multi-line values (inline PEM)
// are summarised so the table stays aligned.
func cell(v any) string {
	s := fmt.Sprint(v)
	if strings.ContainsAny(s, "\r\n") {
		return fmt.Sprintf("<inline, %d bytes>", len(s))
	}
	return s
}
