package selector

import (
	"slices"
	"strings"
)

// op is the kind of a syntax-tree node.
type op uint8

const (
	opAll op = iota
	opGlobal
	opHas
	opEq
	opNe
	opIn
	opNotIn
	opContains
	opStartsWith
	opEndsWith
	opNot
	opAnd
	opOr
)

// operator spells the binary label operators in canonical form.
var operator = [...]string{
	opEq:         " == ",
	opNe:         " != ",
	opIn:         " in ",
	opNotIn:      " not in ",
	opContains:   " contains ",
	opStartsWith: " starts with ",
	opEndsWith:   " ends with ",
}

// node is one term or connective of a parsed selector. Label terms use label
// and value (or set); opNot has one kid; opAnd and opOr have two or more.
type node struct {
	op    op
	label string
	value string
	set   valueSet
	kids  []*node
}

// valueSetMapMin is the set size from which membership uses a map rather than
// a linear scan of the sorted values.
const valueSetMapMin = 8

// valueSet is the right-hand side of `in` / `not in`: sorted, without
// duplicates, with a map for the larger sets.
type valueSet struct {
	values []string
	index  map[string]struct{}
}

func newValueSet(values []string) valueSet {
	slices.Sort(values)
	values = slices.Compact(values)
	vs := valueSet{values: values}
	if len(values) >= valueSetMapMin {
		vs.index = make(map[string]struct{}, len(values))
		for _, v := range values {
			vs.index[v] = struct{}{}
		}
	}
	return vs
}

func (vs *valueSet) has(v string) bool {
	if vs.index != nil {
		_, ok := vs.index[v]
		return ok
	}
	for _, x := range vs.values {
		if x == v {
			return true
		}
	}
	return false
}

// negate returns !n, cancelling a double negation so that String() is stable
// under re-parsing.
func negate(n *node) *node {
	if n.op == opNot {
		return n.kids[0]
	}
	return &node{op: opNot, kids: []*node{n}}
}

// match applies a label term to the label's value v and presence ok.
func (n *node) match(v string, ok bool) bool {
	switch n.op {
	case opHas:
		return ok
	case opEq:
		return ok && v == n.value
	case opNe:
		return !ok || v != n.value
	case opIn:
		return ok && n.set.has(v)
	case opNotIn:
		return !ok || !n.set.has(v)
	case opContains:
		return ok && strings.Contains(v, n.value)
	case opStartsWith:
		return ok && strings.HasPrefix(v, n.value)
	case opEndsWith:
		return ok && strings.HasSuffix(v, n.value)
	}
	return false
}

// evalMap evaluates n against a plain map; it is evalLabels without the
// interface call per label lookup.
func (n *node) evalMap(m map[string]string) bool {
	switch n.op {
	case opAll, opGlobal:
		return true
	case opNot:
		return !n.kids[0].evalMap(m)
	case opAnd:
		for _, k := range n.kids {
			if !k.evalMap(m) {
				return false
			}
		}
		return true
	case opOr:
		for _, k := range n.kids {
			if k.evalMap(m) {
				return true
			}
		}
		return false
	}
	v, ok := m[n.label]
	return n.match(v, ok)
}

func (n *node) evalLabels(l Labels) bool {
	switch n.op {
	case opAll, opGlobal:
		return true
	case opNot:
		return !n.kids[0].evalLabels(l)
	case opAnd:
		for _, k := range n.kids {
			if !k.evalLabels(l) {
				return false
			}
		}
		return true
	case opOr:
		for _, k := range n.kids {
			if k.evalLabels(l) {
				return true
			}
		}
		return false
	}
	v, ok := l.Get(n.label)
	return n.match(v, ok)
}

func (n *node) usesGlobal() bool {
	if n.op == opGlobal {
		return true
	}
	for _, k := range n.kids {
		if k.usesGlobal() {
			return true
		}
	}
	return false
}

// String renders n canonically: upstream's spacing, every && / || group in
// parentheses, values in double quotes unless they contain one.
func (n *node) String() string {
	var b strings.Builder
	n.write(&b)
	return b.String()
}

func (n *node) write(b *strings.Builder) {
	switch n.op {
	case opAll:
		b.WriteString("all()")
	case opGlobal:
		b.WriteString("global()")
	case opHas:
		b.WriteString("has(")
		b.WriteString(n.label)
		b.WriteByte(')')
	case opNot:
		b.WriteByte('!')
		n.kids[0].write(b)
	case opAnd, opOr:
		sep := " && "
		if n.op == opOr {
			sep = " || "
		}
		b.WriteByte('(')
		for i, k := range n.kids {
			if i > 0 {
				b.WriteString(sep)
			}
			k.write(b)
		}
		b.WriteByte(')')
	case opIn, opNotIn:
		b.WriteString(n.label)
		b.WriteString(operator[n.op])
		b.WriteByte('{')
		for i, v := range n.set.values {
			if i > 0 {
				b.WriteString(", ")
			}
			writeQuoted(b, v)
		}
		b.WriteByte('}')
	default:
		b.WriteString(n.label)
		b.WriteString(operator[n.op])
		writeQuoted(b, n.value)
	}
}

// writeQuoted quotes s with double quotes, or single quotes when s contains a
// double quote (the language has no escapes, so s never holds both).
func writeQuoted(b *strings.Builder, s string) {
	q := byte('"')
	if strings.IndexByte(s, '"') >= 0 {
		q = '\''
	}
	b.WriteByte(q)
	b.WriteString(s)
	b.WriteByte(q)
}
