package resources

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
)

var jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// coerceScalars returns js with every boolean or number that lands in a
// string field of t (a label value written `rr: true`, an annotation
// `rack: 12`) turned into its text, as upstream's YAML decoder does: it
// converts a scalar to the type of the Go field it fills. ok is false when
// nothing changed (the original decode error then stands).
func coerceScalars(js []byte, t reflect.Type) (out []byte, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil, false
	}
	changed := false
	v = coerceValue(v, t, &changed)
	if !changed {
		return nil, false
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	return out, true
}

func coerceValue(v any, t reflect.Type, changed *bool) any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshalerType) {
		return v // the type reads its own JSON (numbers or strings)
	}
	switch t.Kind() {
	case reflect.String:
		switch s := v.(type) {
		case bool:
			*changed = true
			return strconv.FormatBool(s)
		case json.Number:
			*changed = true
			return s.String()
		}
	case reflect.Map:
		if m, ok := v.(map[string]any); ok {
			for k, e := range m {
				m[k] = coerceValue(e, t.Elem(), changed)
			}
		}
	case reflect.Slice, reflect.Array:
		if l, ok := v.([]any); ok {
			for i, e := range l {
				l[i] = coerceValue(e, t.Elem(), changed)
			}
		}
	case reflect.Struct:
		if m, ok := v.(map[string]any); ok {
			fields := jsonFields(t)
			for k, e := range m {
				ft, ok := fields[k]
				if !ok {
					ft, ok = fields[strings.ToLower(k)]
				}
				if ok {
					m[k] = coerceValue(e, ft, changed)
				}
			}
		}
	}
	return v
}

// jsonFields maps the JSON names of t's fields (embedded structs without a
// name inlined, as encoding/json does) to their types; lower-cased names are
// added too, for encoding/json's case-insensitive match.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			ft := f.Type
			if f.Anonymous && name == "" {
				for ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					walk(ft)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if _, ok := out[name]; !ok {
				out[name] = f.Type
			}
			if _, ok := out[strings.ToLower(name)]; !ok {
				out[strings.ToLower(name)] = f.Type
			}
		}
	}
	walk(t)
	return out
}
