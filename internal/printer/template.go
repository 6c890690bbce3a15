package printer

import (
	"bufio"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/template"
)

// templatePrinter writes -o go-template=... and go-template-file=...: the
// template runs once on the <Kind>List of a list query, or once per object
// of a named query. Fields are the Go ones (.Items, .Name, .Spec.CIDR).
type templatePrinter struct {
	tmpl *template.Template
}

func newTemplatePrinter(text string, opts Options) (*templatePrinter, error) {
	t, err := template.New("get").Funcs(templateFuncs(opts)).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("invalid template: %w", err)
	}
	return &templatePrinter{tmpl: t}, nil
}

func (p *templatePrinter) Print(w io.Writer, res Result) error {
	bw := bufio.NewWriterSize(w, outputBufferSize)
	var data []any
	if res.IsList {
		data = append(data, NewList(res))
	} else {
		for _, it := range res.Items {
			data = append(data, it)
		}
	}
	for _, d := range data {
		if err := execTemplate(p.tmpl, bw, d); err != nil {
			_ = bw.Flush()
			return err
		}
	}
	return bw.Flush()
}

// execTemplate runs t, turning a panic anywhere below into an error.
func execTemplate(t *template.Template, w io.Writer, data any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("template %s failed: %v", t.Name(), r)
		}
	}()
	if err := t.Execute(w, data); err != nil {
		return fmt.Errorf("failed to execute template: %w", err)
	}
	return nil
}

// templateFuncs are the functions templates may call besides the builtins.
func templateFuncs(opts Options) template.FuncMap {
	return template.FuncMap{
		"join": func(items any, sep string) (string, error) {
			parts, err := stringsOf(items)
			return strings.Join(parts, sep), err
		},
		"joinAndTruncate": func(items any, sep string, maxLen int) (string, error) {
			parts, err := stringsOf(items)
			return truncate(strings.Join(parts, sep), maxLen), err
		},
		"config": func(key string) (string, error) {
			switch strings.ToLower(key) {
			case "asnumber":
				return opts.GlobalASNumber(), nil
			}
			return "", fmt.Errorf("unknown config key %q", key)
		},
	}
}

// stringsOf renders each element of a slice or array with fmt.Sprint; nil
// gives no elements.
func stringsOf(items any) ([]string, error) {
	if items == nil {
		return nil, nil
	}
	if s, ok := items.([]string); ok {
		return s, nil
	}
	v := reflect.ValueOf(items)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil, nil
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Slice, reflect.Array:
	default:
		return nil, fmt.Errorf("cannot join a %T", items)
	}
	out := make([]string, v.Len())
	for i := range out {
		out[i] = fmt.Sprint(v.Index(i).Interface())
	}
	return out, nil
}

// truncate shortens s to at most maxLen bytes, ending it with "..." when cut.
// maxLen <= 0 means no limit.
func truncate(s string, maxLen int) string {
	if maxLen <= 0 || len(s) <= maxLen {
		return s
	}
	if maxLen <= 3 {
		return s[:maxLen]
	}
	return s[:maxLen-3] + "..."
}
