package resources

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Document is one object read from user input, with where it came from.
type Document struct {
	// Resource is the object; nil in a document from DecodeCompact until
	// Object is called.
	Resource Resource
	// Source names the file and document, e.g. "pools.yaml, document 2".
	Source string

	kind *Kind
	js   []byte // DecodeCompact: the object's JSON, already checked
}

// Object returns the document's object, decoding it from its compact form
// (DecodeCompact) on first use.
func (d *Document) Object() (Resource, error) {
	if d.Resource == nil && d.js != nil {
		r, err := strictDecode(d.kind, d.js)
		if err != nil {
			return nil, &DecodeError{Source: d.Source, Err: strictError(err)}
		}
		d.Resource, d.js = r, nil
	}
	return d.Resource, nil
}

// Key names the document's object, also while it is still in compact form.
func (d *Document) Key() Key {
	if d.Resource != nil {
		return KeyOf(d.Resource)
	}
	if d.kind == nil {
		return Key{}
	}
	var m struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	_ = json.Unmarshal(d.js, &m) // the JSON was checked when it was read
	return Key{Kind: d.kind.Kind, Namespace: m.Metadata.Namespace, Name: m.Metadata.Name}
}

// decoder holds how Decode keeps what it read.
type decoder struct {
	// compact keeps each object as its (checked) JSON instead of a decoded
	// object: about half the memory for a file of thousands of objects.
	compact bool
}

// DecodeError reports input that could not be turned into resources. Its text
// names the source (file and document) and, where known, the line.
type DecodeError struct {
	Source string
	Err    error
}

func (e *DecodeError) Error() string { return e.Source + ": " + e.Err.Error() }
func (e *DecodeError) Unwrap() error { return e.Err }

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?\r?$`)

type typeHeader struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Items      []json.RawMessage `json:"items"`
}

// Decode reads every object from YAML or JSON input: several documents split
// by `---`, `*List` kinds, `List`, and top-level arrays. Decoding is strict: an
// unknown field is an error naming the field. name labels errors (a file name
// or "stdin").
func Decode(data []byte, name string) ([]Document, error) {
	return decoder{}.decode(data, name)
}

// DecodeCompact is Decode for bulk writes: every object is checked as Decode
// checks it, but kept as JSON; Document.Object decodes it when it is needed.
func DecodeCompact(data []byte, name string) ([]Document, error) {
	return decoder{compact: true}.decode(data, name)
}

func (dc decoder) decode(data []byte, name string) ([]Document, error) {
	var out []Document
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		// A JSON stream: one or more values, each an object or an array.
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		for i := 1; ; i++ {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err == io.EOF {
				break
			} else if err != nil {
				// Upstream reads JSON with its YAML decoder, which also takes
				// what JSON does not (trailing commas): a single value that
				// strict YAML can read is accepted.
				if i == 1 {
					if js, yerr := yaml.YAMLToJSONStrict(trimmed); yerr == nil {
						return dc.decodeJSONValue(js, docName(name, 1))
					}
				}
				return nil, &DecodeError{Source: docName(name, i), Err: jsonSyntaxError(trimmed, err)}
			}
			if err := duplicateKey(raw, 1+bytes.Count(trimmed[:dec.InputOffset()-int64(len(raw))], []byte("\n"))); err != nil {
				return nil, &DecodeError{Source: docName(name, i), Err: err}
			}
			docs, err := dc.decodeJSONValue(raw, docName(name, i))
			if err != nil {
				return nil, err
			}
			out = append(out, docs...)
		}
		return out, nil
	}
	locs := docSeparator.FindAllIndex(data, -1)
	start, line := 0, 1
	docNum := 0
	emit := func(chunk []byte, firstLine int) error {
		if len(bytes.TrimSpace(stripComments(chunk))) == 0 {
			return nil
		}
		docNum++
		src := docName(name, docNum)
		// Strict: a key given twice in one mapping is an error naming the
		// key and line, as upstream's decoder reports it.
		js, err := yaml.YAMLToJSONStrict(chunk)
		if err != nil {
			return &DecodeError{Source: src, Err: yamlError(err, firstLine)}
		}
		docs, err := dc.decodeJSONValue(js, src)
		if err != nil {
			return err
		}
		out = append(out, docs...)
		return nil
	}
	for _, loc := range locs {
		chunk := data[start:loc[0]]
		if err := emit(chunk, line); err != nil {
			return nil, err
		}
		line += bytes.Count(data[start:loc[1]], []byte("\n"))
		start = loc[1]
	}
	if err := emit(data[start:], line); err != nil {
		return nil, err
	}
	return out, nil
}

func docName(name string, i int) string { return fmt.Sprintf("%s, document %d", name, i) }

func stripComments(b []byte) []byte {
	var buf bytes.Buffer
	for _, l := range bytes.Split(b, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			buf.Write(l)
			buf.WriteByte('\n')
		}
	}
	return buf.Bytes()
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// yamlError rewrites the YAML library's document-relative line into a file line.
func yamlError(err error, firstLine int) error {
	msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
	msg = strings.Join(strings.Fields(strings.ReplaceAll(msg, "unmarshal errors:\n", "")), " ")
	msg = yamlLine.ReplaceAllStringFunc(msg, func(m string) string {
		n, _ := strconv.Atoi(strings.TrimPrefix(m, "line "))
		return fmt.Sprintf("line %d", n+firstLine-1)
	})
	return fmt.Errorf("malformed YAML: %s", msg)
}

func jsonSyntaxError(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
		return fmt.Errorf("malformed JSON at line %d: %v", line, err)
	}
	return fmt.Errorf("malformed JSON: %v", err)
}

func (dc decoder) decodeJSONValue(js []byte, src string) ([]Document, error) {
	js = bytes.TrimSpace(js)
	if len(js) == 0 || bytes.Equal(js, []byte("null")) {
		return nil, nil
	}
	if js[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(js, &items); err != nil {
			return nil, &DecodeError{Source: src, Err: err}
		}
		var out []Document
		for i, it := range items {
			docs, err := dc.decodeJSONValue(it, fmt.Sprintf("%s, item %d", src, i+1))
			if err != nil {
				return nil, err
			}
			out = append(out, docs...)
		}
		return out, nil
	}
	if js[0] != '{' {
		return nil, &DecodeError{Source: src, Err: errors.New("expected an object with apiVersion and kind")}
	}
	var h typeHeader
	if err := json.Unmarshal(js, &h); err != nil {
		return nil, &DecodeError{Source: src, Err: fmt.Errorf("cannot read apiVersion/kind: %w", err)}
	}
	if h.Kind == "" {
		return nil, &DecodeError{Source: src, Err: errors.New("missing field 'kind'")}
	}
	k, isList := LookupKind(h.Kind)
	if h.Kind == "List" {
		isList = true
	}
	if isList {
		var out []Document
		for i, it := range h.Items {
			itemSrc := fmt.Sprintf("%s, item %d", src, i+1)
			if k != nil {
				it = withDefaultKind(it, k.Kind)
			}
			docs, err := dc.decodeJSONValue(it, itemSrc)
			if err != nil {
				return nil, err
			}
			out = append(out, docs...)
		}
		return out, nil
	}
	if k == nil {
		return nil, &DecodeError{Source: src, Err: fmt.Errorf("resource type '%s' is not supported", h.Kind)}
	}
	if h.APIVersion != APIVersion {
		return nil, &DecodeError{Source: src, Err: fmt.Errorf("apiVersion '%s' is not supported for %s: use '%s'", h.APIVersion, h.Kind, APIVersion)}
	}
	r, err := strictDecode(k, js)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		// A boolean or number where text is expected (`rr: true` as a
		// label): upstream takes it as text.
		if fixed, ok := coerceScalars(js, reflect.TypeOf(k.New())); ok {
			if r2, err2 := strictDecode(k, fixed); err2 == nil {
				r, js, err = r2, fixed, nil
			}
		}
	}
	if err != nil {
		return nil, &DecodeError{Source: describe(src, k, js), Err: strictError(err)}
	}
	if dc.compact {
		return []Document{{Source: src, kind: k, js: bytes.Clone(js)}}, nil
	}
	return []Document{{Resource: r, Source: src}}, nil
}

// strictDecode reads one object of kind k, refusing unknown fields.
func strictDecode(k *Kind, js []byte) (Resource, error) {
	r := k.New()
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(r); err != nil {
		return nil, err
	}
	return r, nil
}

// withDefaultKind sets "kind" on a list item that lacks one.
func withDefaultKind(item json.RawMessage, kind string) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(item, &m) != nil {
		return item
	}
	changed := false
	if _, ok := m["kind"]; !ok {
		m["kind"], _ = json.Marshal(kind)
		changed = true
	}
	if _, ok := m["apiVersion"]; !ok {
		m["apiVersion"], _ = json.Marshal(APIVersion)
		changed = true
	}
	if !changed {
		return item
	}
	b, err := json.Marshal(m)
	if err != nil {
		return item
	}
	return b
}

// describe adds the object's kind and name to a source label when they can be read.
func describe(src string, k *Kind, js []byte) string {
	var m struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if json.Unmarshal(js, &m) != nil || m.Metadata.Name == "" {
		return src
	}
	return fmt.Sprintf("%s (%s)", src, Key{Kind: k.Kind, Namespace: m.Metadata.Namespace, Name: m.Metadata.Name})
}

var unknownField = regexp.MustCompile(`json: unknown field "([^"]+)"`)

func strictError(err error) error {
	if m := unknownField.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("field in document is not recognized or is in the wrong location: %s", m[1])
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "(document)"
		}
		return fmt.Errorf("field %s: cannot use %s value where %s is expected", field, te.Value, te.Type)
	}
	return err
}
