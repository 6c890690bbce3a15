package selector

import "fmt"

// maxDepth bounds parenthesis nesting so hostile input cannot exhaust the
// stack; real selectors nest a handful of levels.
const maxDepth = 256

// parser is a recursive-descent parser working directly on the input bytes:
//
//	or      = and { "||" and }
//	and     = unary { "&&" unary }
//	unary   = { "!" } primary
//	primary = "(" or ")" | "all" "(" ")" | "global" "(" ")"
//	        | "has" "(" label ")" | label operator operand
type parser struct {
	in    string
	pos   int
	depth int
}

func parse(s string) (*node, error) {
	p := &parser{in: s}
	p.skipSpace()
	if p.eof() {
		return &node{op: opAll}, nil
	}
	n, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if !p.eof() {
		return nil, p.errorf(p.pos, "expected '&&', '||' or end of selector, found %s", p.found())
	}
	return n, nil
}

func (p *parser) errorf(pos int, format string, args ...any) error {
	return &ParseError{Input: p.in, Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) eof() bool { return p.pos >= len(p.in) }

func (p *parser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.in[p.pos]
}

// found describes the input at the current position for error messages.
func (p *parser) found() string {
	if p.eof() {
		return "end of selector"
	}
	if c := p.in[p.pos]; c < 0x80 {
		return fmt.Sprintf("%q", rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", p.in[p.pos])
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isLabelChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == '/' || c == '-'
}

func (p *parser) skipSpace() {
	for p.pos < len(p.in) && isSpace(p.in[p.pos]) {
		p.pos++
	}
}

// word consumes and returns a run of label characters (possibly empty).
func (p *parser) word() string {
	start := p.pos
	for p.pos < len(p.in) && isLabelChar(p.in[p.pos]) {
		p.pos++
	}
	return p.in[start:p.pos]
}

// consume skips whitespace and then tok if it is next.
func (p *parser) consume(tok string) bool {
	p.skipSpace()
	if len(p.in)-p.pos >= len(tok) && p.in[p.pos:p.pos+len(tok)] == tok {
		p.pos += len(tok)
		return true
	}
	return false
}

func (p *parser) parseOr() (*node, error) {
	return p.parseChain(opOr, "||", p.parseAnd)
}

func (p *parser) parseAnd() (*node, error) {
	return p.parseChain(opAnd, "&&", p.parseUnary)
}

// parseChain parses operands separated by sep into one n-ary node.
func (p *parser) parseChain(o op, sep string, operand func() (*node, error)) (*node, error) {
	first, err := operand()
	if err != nil {
		return nil, err
	}
	kids := []*node{first}
	for {
		if !p.consume(sep) {
			if p.peek() == sep[0] {
				return nil, p.errorf(p.pos, "expected '%s', found %s", sep, p.found())
			}
			break
		}
		k, err := operand()
		if err != nil {
			return nil, err
		}
		kids = append(kids, k)
	}
	if len(kids) == 1 {
		return first, nil
	}
	return &node{op: o, kids: kids}, nil
}

func (p *parser) parseUnary() (*node, error) {
	negated := false
	for {
		p.skipSpace()
		if p.peek() != '!' {
			break
		}
		if p.pos+1 < len(p.in) && p.in[p.pos+1] == '=' {
			return nil, p.errorf(p.pos, "expected a label before '!='")
		}
		negated = !negated
		p.pos++
	}
	n, err := p.parsePrimary()
	if err != nil {
		return nil, err
	}
	if negated {
		n = negate(n)
	}
	return n, nil
}

const expectedTerm = "expected a label, has(...), all(), global(), '!' or '('"

func (p *parser) parsePrimary() (*node, error) {
	p.skipSpace()
	start := p.pos
	if p.peek() == '(' {
		if p.depth >= maxDepth {
			return nil, p.errorf(start, "parentheses nested more than %d deep", maxDepth)
		}
		p.pos++
		p.depth++
		n, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		p.depth--
		if !p.consume(")") {
			return nil, p.errorf(p.pos, "expected '&&', '||' or ')' to close '(' at position %d, found %s",
				start, p.found())
		}
		return n, nil
	}
	w := p.word()
	if w == "" {
		return nil, p.errorf(start, "%s, found %s", expectedTerm, p.found())
	}
	switch w {
	case "all", "global", "has":
		afterWord := p.pos
		if p.consume("(") {
			return p.parseFunction(w)
		}
		p.pos = afterWord // a label that happens to be spelled like a function
	}
	return p.parseOperator(w)
}

// parseFunction parses the rest of all(), global() or has(label) after "(".
func (p *parser) parseFunction(name string) (*node, error) {
	n := &node{op: opAll}
	switch name {
	case "global":
		n.op = opGlobal
	case "has":
		p.skipSpace()
		label := p.word()
		if label == "" {
			return nil, p.errorf(p.pos, "expected a label name after 'has(', found %s", p.found())
		}
		n.op, n.label = opHas, label
	}
	if !p.consume(")") {
		return nil, p.errorf(p.pos, "expected ')' to close '%s(', found %s", name, p.found())
	}
	return n, nil
}

const expectedOperator = "expected an operator (==, !=, in, not in, contains, starts with, ends with)"

// parseOperator parses the operator and operand following a label.
func (p *parser) parseOperator(label string) (*node, error) {
	p.skipSpace()
	opPos := p.pos
	switch {
	case p.consume("=="):
		return p.parseValue(opEq, label, "==")
	case p.consume("!="):
		return p.parseValue(opNe, label, "!=")
	case p.peek() == '=':
		return nil, p.errorf(opPos, "expected '==' after label %q, found a single '='", label)
	}
	switch w := p.word(); w {
	case "in":
		return p.parseSet(opIn, label, "in")
	case "notin":
		return p.parseSet(opNotIn, label, "notin")
	case "contains":
		return p.parseValue(opContains, label, "contains")
	case "startswith":
		return p.parseValue(opStartsWith, label, "starts with")
	case "endswith":
		return p.parseValue(opEndsWith, label, "ends with")
	case "not", "starts", "ends":
		next, o, spelled := "in", opNotIn, "not in"
		switch w {
		case "starts":
			next, o, spelled = "with", opStartsWith, "starts with"
		case "ends":
			next, o, spelled = "with", opEndsWith, "ends with"
		}
		p.skipSpace()
		wordPos := p.pos
		if p.word() != next {
			return nil, p.errorf(wordPos, "expected '%s' after '%s'", next, w)
		}
		if o == opNotIn {
			return p.parseSet(o, label, spelled)
		}
		return p.parseValue(o, label, spelled)
	}
	p.pos = opPos
	return nil, p.errorf(opPos, "%s after label %q, found %s", expectedOperator, label, p.found())
}

func (p *parser) parseValue(o op, label, after string) (*node, error) {
	v, err := p.parseString(after)
	if err != nil {
		return nil, err
	}
	return &node{op: o, label: label, value: v}, nil
}

// parseString parses a '…' or "…" literal; there are no escapes.
func (p *parser) parseString(after string) (string, error) {
	p.skipSpace()
	q := p.peek()
	if q != '"' && q != '\'' {
		return "", p.errorf(p.pos, "expected a quoted string after '%s', found %s", after, p.found())
	}
	start := p.pos
	for i := start + 1; i < len(p.in); i++ {
		if p.in[i] == q {
			p.pos = i + 1
			return p.in[start+1 : i], nil
		}
	}
	return "", p.errorf(start, "unterminated string")
}

// parseSet parses `{ "a", "b" }`; the set may be empty and may end in a comma
// after at least one value.
func (p *parser) parseSet(o op, label, after string) (*node, error) {
	p.skipSpace()
	if p.peek() != '{' {
		return nil, p.errorf(p.pos, "expected '{' after '%s', found %s", after, p.found())
	}
	p.pos++
	var values []string
	for {
		p.skipSpace()
		if p.peek() == '}' {
			break
		}
		if c := p.peek(); c != '"' && c != '\'' {
			return nil, p.errorf(p.pos, "expected a quoted string or '}' in set, found %s", p.found())
		}
		v, err := p.parseString("{")
		if err != nil {
			return nil, err
		}
		values = append(values, v)
		if p.consume(",") {
			continue
		}
		if p.peek() != '}' {
			return nil, p.errorf(p.pos, "expected ',' or '}' in set, found %s", p.found())
		}
	}
	p.pos++ // '}'
	return &node{op: o, label: label, set: newValueSet(values)}, nil
}
