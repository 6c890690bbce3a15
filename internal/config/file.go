package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// File format constants of a CalicoAPIConfig file.
const (
	APIVersion = "projectcalico.org/v3"
	Kind       = "CalicoAPIConfig"
)

// FileError reports a config file that could not be read or parsed. Line is
// 1-based, 0 when unknown. A missing file unwraps to fs.ErrNotExist.
type FileError struct {
	Path string
	Line int
	Msg  string
	Err  error
}

func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString("Error reading config file: ")
	b.WriteString(e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ": line %d", e.Line)
	}
	if e.Msg != "" {
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	return b.String()
}

func (e *FileError) Unwrap() error { return e.Err }

// fileValue is one spec value as written in the file: the scalar text and
// the line it is on.
type fileValue struct {
	text string
	line int
}

// fileLayer is the spec of a parsed config file, keyed by field name. Fields
// that are absent or null are not present.
type fileLayer map[string]fileValue

// readFile reads and strictly parses a CalicoAPIConfig file.
func readFile(path string) (fileLayer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &FileError{Path: path, Err: err}
		}
		return nil, &FileError{Path: path, Msg: rootCause(err), Err: err}
	}
	return parseFile(path, data)
}

func rootCause(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// parseFile parses YAML or JSON (JSON is read as YAML) and rejects anything
// that is not a well-formed CalicoAPIConfig.
func parseFile(path string, data []byte) (fileLayer, error) {
	fail := func(line int, format string, args ...any) error {
		return &FileError{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, msg := splitYAMLError(err)
		return nil, fail(line, "%s", msg)
	}
	if len(bytes.TrimSpace(data)) == 0 || len(doc.Content) == 0 {
		return nil, fail(0, "file is empty")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fail(root.Line, "expected a %s object", Kind)
	}
	var apiVersion, kind string
	var spec *yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if seen[k.Value] {
			return nil, fail(k.Line, "duplicate field %q", k.Value)
		}
		seen[k.Value] = true
		switch k.Value {
		case "apiVersion", "kind":
			if v.Kind != yaml.ScalarNode {
				return nil, fail(v.Line, "field %q must be a string", k.Value)
			}
			if k.Value == "kind" {
				kind = v.Value
			} else {
				apiVersion = v.Value
			}
		case "metadata":
			// ObjectMeta is accepted as written; nothing in it affects the client.
			if v.Kind != yaml.MappingNode && !isNull(v) {
				return nil, fail(v.Line, "field \"metadata\" must be an object")
			}
		case "spec":
			if v.Kind != yaml.MappingNode && !isNull(v) {
				return nil, fail(v.Line, "field \"spec\" must be an object")
			}
			spec = v
		default:
			return nil, fail(k.Line, "unknown field %q", k.Value)
		}
	}
	if apiVersion != APIVersion {
		return nil, fail(root.Line, "apiVersion must be %q, got %q", APIVersion, apiVersion)
	}
	if kind != Kind {
		return nil, fail(root.Line, "kind must be %q, got %q", Kind, kind)
	}
	layer := fileLayer{}
	seen = map[string]bool{}
	if spec == nil || spec.Kind != yaml.MappingNode {
		return layer, nil
	}
	for i := 0; i+1 < len(spec.Content); i += 2 {
		k, v := spec.Content[i], spec.Content[i+1]
		f, ok := fieldByName(k.Value)
		if !ok {
			if hint := closestField(k.Value); hint != "" {
				return nil, fail(k.Line, "unknown field \"spec.%s\" (did you mean %q?)", k.Value, hint)
			}
			return nil, fail(k.Line, "unknown field \"spec.%s\"", k.Value)
		}
		if seen[f.name] {
			return nil, fail(k.Line, "duplicate field \"spec.%s\"", k.Value)
		}
		seen[f.name] = true
		if v.Kind != yaml.ScalarNode {
			return nil, fail(v.Line, "field \"spec.%s\" must be a single value", k.Value)
		}
		if isNull(v) || strings.TrimSpace(v.Value) == "" {
			continue // null and "" mean unset, as for flags and the environment
		}
		layer[f.name] = fileValue{text: v.Value, line: v.Line}
	}
	return layer, nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// closestField suggests the spec field whose name differs only in case.
func closestField(name string) string {
	for _, f := range fields {
		if strings.EqualFold(f.name, name) {
			return f.name
		}
	}
	return ""
}

// splitYAMLError turns "yaml: line 3: did not find ..." into (3, "did not find ...").
func splitYAMLError(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
		if i := strings.Index(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
	}
	// Keep the error on one line.
	msg = strings.Join(strings.Fields(msg), " ")
	return line, msg
}
