// Package selector parses and evaluates Calico's label selector language.
//
// A selector is an expression over an object's labels, for example
//
//	role == "db" && (has(backup) || tier in {"gold", "silver"})
//
// Terms are `k == "v"`, `k != "v"`, `has(k)`, `k in {...}`, `k not in {...}`
// (also spelled `notin`), `k contains "s"`, `k starts with "s"`,
// `k ends with "s"`, `all()` and `global()`. Terms combine with `!`, `&&`,
// `||` and parentheses; `&&` binds tighter than `||`. Strings are quoted with
// '…' or "…" and have no escapes. The empty selector is `all()`.
//
// A parsed Selector is immutable and safe for concurrent use; evaluating it
// does not allocate.
package selector

import "fmt"

// Labels is a read-only view of an object's labels. Implement it to evaluate a
// selector over layered or computed labels without building a merged map.
type Labels interface {
	// Get returns the value of label k and whether it is present.
	Get(k string) (string, bool)
}

// Map adapts a plain label map to Labels.
type Map map[string]string

// Get implements Labels.
func (m Map) Get(k string) (string, bool) {
	v, ok := m[k]
	return v, ok
}

// Overlay is Labels where Top's labels shadow Base's, such as an endpoint's own
// labels over the labels it inherits from its profiles. A nil layer is empty.
type Overlay struct {
	Top, Base Labels
}

// Get implements Labels.
func (o Overlay) Get(k string) (string, bool) {
	if o.Top != nil {
		if v, ok := o.Top.Get(k); ok {
			return v, true
		}
	}
	if o.Base != nil {
		return o.Base.Get(k)
	}
	return "", false
}

var (
	_ Labels = Map(nil)
	_ Labels = Overlay{}
)

// ParseError reports where and why a selector failed to parse.
type ParseError struct {
	Input string // the selector as given
	Pos   int    // 0-based byte offset of the problem in Input
	Msg   string // what was expected or found
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("error parsing selector at position %d: %s", e.Pos, e.Msg)
}

// Selector is a parsed selector expression. The zero value and a nil
// *Selector both behave as all().
type Selector struct {
	root   *node
	str    string
	global bool
}

// Parse parses a selector expression. An empty (or all-whitespace) string
// parses as all(). Errors are *ParseError.
func Parse(s string) (*Selector, error) {
	root, err := parse(s)
	if err != nil {
		return nil, err
	}
	return &Selector{root: root, str: root.String(), global: root.usesGlobal()}, nil
}

// Validate reports whether s is a valid selector, returning the same error
// Parse would.
func Validate(s string) error {
	_, err := parse(s)
	return err
}

// Evaluate reports whether labels match the selector. A nil map has no labels.
func (s *Selector) Evaluate(labels map[string]string) bool {
	if s == nil || s.root == nil {
		return true
	}
	return s.root.evalMap(labels)
}

// EvaluateLabels reports whether labels match the selector. A nil Labels has
// no labels.
func (s *Selector) EvaluateLabels(l Labels) bool {
	if s == nil || s.root == nil {
		return true
	}
	if l == nil {
		return s.root.evalMap(nil)
	}
	return s.root.evalLabels(l)
}

// String returns the canonical form of the selector, which Parse accepts and
// which is equal for selectors that differ only in spacing, quoting, redundant
// parentheses, double negation or the order and repetition of set members.
// As upstream does, every && or || group is parenthesised, the outermost too:
// `(a == "b" && (has(c) || d in {"x", "y"}))`.
func (s *Selector) String() string {
	if s == nil || s.root == nil {
		return "all()"
	}
	return s.str
}

// UsesGlobal reports whether the selector contains the global() term anywhere.
func (s *Selector) UsesGlobal() bool {
	return s != nil && s.global
}

// IsAll reports whether the selector is exactly all() (or empty), so it
// matches everything without looking at labels.
func (s *Selector) IsAll() bool {
	return s == nil || s.root == nil || s.root.op == opAll
}
