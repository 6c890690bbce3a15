package resources

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// duplicateKey returns an error naming the first key given twice in one JSON
// object of js, with its line (firstLine is the line js starts on), or nil.
// Upstream reads JSON with its strict YAML decoder, which refuses such keys;
// encoding/json silently keeps the last value.
func duplicateKey(js []byte, firstLine int) error {
	dec := json.NewDecoder(bytes.NewReader(js))
	// One frame per open object or array: the keys seen in an object, and
	// whether the next string token of the object is a key.
	type frame struct {
		keys   map[string]bool
		object bool
		atKey  bool
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // syntax errors are reported by the real decode
		}
		top := len(stack) - 1
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if top >= 0 && stack[top].object {
					stack[top].atKey = true // the object or array was a value
				}
				stack = append(stack, frame{object: t == '{', atKey: t == '{', keys: map[string]bool{}})
			default:
				stack = stack[:top]
				if len(stack) == 0 {
					return nil
				}
			}
		default:
			if top < 0 || !stack[top].object {
				continue
			}
			if !stack[top].atKey {
				stack[top].atKey = true // a scalar value; a key comes next
				continue
			}
			key, _ := tok.(string)
			if stack[top].keys[key] {
				line := firstLine + bytes.Count(js[:dec.InputOffset()], []byte("\n"))
				return fmt.Errorf("malformed JSON: line %d: key %q already set in object", line, key)
			}
			stack[top].keys[key] = true
			stack[top].atKey = false
		}
	}
}
