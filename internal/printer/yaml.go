package printer

import (
	"bufio"
	"bytes"
	"slices"
	"strconv"
	"unicode/utf8"
)

// yamlEmitter converts JSON documents (as encoding/json writes them) into
// block-style YAML on a bufio.Writer without building a tree of values.
//
// The output is what sigs.k8s.io/yaml prints for the same object (it
// converts JSON to YAML through go-yaml v2): mapping keys in go-yaml's
// natural order, block sequences inside mappings not indented, empty
// collections as {} and [], strings left plain unless YAML would read them
// as something else or could not read them back, long scalars folded at 80
// columns, multi-line strings as literal blocks. The emitter keeps the same
// cursor state go-yaml's emitter does (column, "only whitespace so far",
// "only indentation so far") so line breaks land in the same places.
type yamlEmitter struct {
	w *bufio.Writer

	col        int
	whitespace bool
	indention  bool

	members [][]member // scratch member lists, one per nesting depth
	depth   int
	strBuf  []byte
}

// member is one key of a JSON object with its raw value.
type member struct {
	key []byte
	val []byte
}

const (
	yamlBestWidth  = 80
	yamlBestIndent = 2
	// yamlMaxSimpleKey is the longest key written as "key: value"; longer
	// keys are written as "? key" / ": value" pairs.
	yamlMaxSimpleKey = 128
)

func newYAMLEmitter(w *bufio.Writer) *yamlEmitter {
	return &yamlEmitter{w: w}
}

// beginDocument resets the cursor for a new document.
func (e *yamlEmitter) beginDocument() {
	e.col = 0
	e.whitespace = true
	e.indention = true
}

// endDocument finishes the current line.
func (e *yamlEmitter) endDocument() {
	e.writeIndent(-1)
}

// document writes one JSON document as a YAML document.
func (e *yamlEmitter) document(js []byte) error {
	e.beginDocument()
	if err := e.node(js, -1, false); err != nil {
		return err
	}
	e.endDocument()
	return nil
}

// --- structure ---

func increaseIndent(indent int, flow, indentless bool) int {
	switch {
	case indent < 0 && flow:
		return yamlBestIndent
	case indent < 0:
		return 0
	case indentless:
		return indent
	default:
		return indent + yamlBestIndent
	}
}

// node writes the JSON value d. indent is the indentation of the enclosing
// collection (-1 at the root); mappingCtx reports that d is a mapping value.
func (e *yamlEmitter) node(d []byte, indent int, mappingCtx bool) error {
	i := skipWS(d, 0)
	if i >= len(d) {
		return badJSON(i)
	}
	d = d[i:]
	switch d[0] {
	case '{':
		return e.mapping(d, indent)
	case '[':
		return e.sequence(d, indent, mappingCtx)
	case '"':
		end, esc, err := scanString(d, 0)
		if err != nil {
			return err
		}
		s, err := decodeString(d[:end], esc, e.strBuf)
		if err != nil {
			return err
		}
		if esc {
			e.strBuf = s[:0]
		}
		e.stringScalar(s, increaseIndent(indent, true, false), false)
		return nil
	default:
		end, err := skipValue(d, 0)
		if err != nil {
			return err
		}
		lit := d[:end]
		switch lit[0] {
		case 't', 'f', 'n':
		default:
			lit = yamlNumber(lit)
		}
		e.writePlain(lit, 0, false)
		return nil
	}
}

// mapKey writes "key:" of a mapping at indent (for callers that stream a
// mapping whose keys they know to be simple).
func (e *yamlEmitter) mapKey(indent int, key string) {
	e.writeIndent(indent)
	e.stringScalar([]byte(key), indent+yamlBestIndent, true)
	e.indicator(":", false, false, false)
}

// seqItem writes the "-" that starts an item of a block sequence at indent.
func (e *yamlEmitter) seqItem(indent int) {
	e.writeIndent(indent)
	e.indicator("-", true, false, true)
}

func (e *yamlEmitter) emptyFlow(open, close string) {
	e.indicator(open, true, true, false)
	e.indicator(close, false, false, false)
}

func (e *yamlEmitter) mapping(d []byte, parent int) error {
	if e.depth == len(e.members) {
		e.members = append(e.members, nil)
	}
	ms, err := parseMembers(d, e.members[e.depth][:0])
	if err != nil {
		return err
	}
	e.members[e.depth] = ms
	if len(ms) == 0 {
		e.emptyFlow("{", "}")
		return nil
	}
	slices.SortFunc(ms, func(a, b member) int {
		switch {
		case bytes.Equal(a.key, b.key):
			return 0
		case yamlKeyLess(a.key, b.key):
			return -1
		}
		return 1
	})
	indent := increaseIndent(parent, false, false)
	e.depth++
	defer func() { e.depth-- }()
	for _, m := range ms {
		e.writeIndent(indent)
		an := analyzeScalar(m.key)
		switch {
		case string(m.key) == "<<":
			// Unquoted, a YAML 1.1 reader takes this key for a merge.
			e.writeDouble(m.key, indent+yamlBestIndent, false)
			e.indicator(":", false, false, false)
		case len(m.key) <= yamlMaxSimpleKey && !an.multiline:
			e.stringScalarAnalyzed(m.key, an, indent+yamlBestIndent, true)
			e.indicator(":", false, false, false)
		default:
			e.indicator("?", true, false, true)
			e.stringScalarAnalyzed(m.key, an, increaseIndent(indent, true, false), false)
			e.writeIndent(indent)
			e.indicator(":", true, false, true)
		}
		if err := e.node(m.val, indent, true); err != nil {
			return err
		}
	}
	return nil
}

// parseMembers splits the JSON object d into members, appending to ms.
func parseMembers(d []byte, ms []member) ([]member, error) {
	i := skipWS(d, 1)
	if i < len(d) && d[i] == '}' {
		return ms, nil
	}
	for {
		i = skipWS(d, i)
		end, esc, err := scanString(d, i)
		if err != nil {
			return nil, err
		}
		var key []byte
		if esc {
			key, err = decodeString(d[i:end], true, nil)
			if err != nil {
				return nil, err
			}
		} else {
			key = d[i+1 : end-1]
		}
		i = skipWS(d, end)
		if i >= len(d) || d[i] != ':' {
			return nil, badJSON(i)
		}
		vs := skipWS(d, i+1)
		ve, err := skipValue(d, vs)
		if err != nil {
			return nil, err
		}
		ms = append(ms, member{key: key, val: d[vs:ve]})
		i = skipWS(d, ve)
		if i >= len(d) {
			return nil, badJSON(i)
		}
		switch d[i] {
		case ',':
			i++
		case '}':
			return ms, nil
		default:
			return nil, badJSON(i)
		}
	}
}

func (e *yamlEmitter) sequence(d []byte, parent int, mappingCtx bool) error {
	i := skipWS(d, 1)
	if i < len(d) && d[i] == ']' {
		e.emptyFlow("[", "]")
		return nil
	}
	indent := increaseIndent(parent, false, mappingCtx && !e.indention)
	for {
		i = skipWS(d, i)
		end, err := skipValue(d, i)
		if err != nil {
			return err
		}
		e.seqItem(indent)
		if err := e.node(d[i:end], indent, false); err != nil {
			return err
		}
		i = skipWS(d, end)
		if i >= len(d) {
			return badJSON(i)
		}
		switch d[i] {
		case ',':
			i++
		case ']':
			return nil
		default:
			return badJSON(i)
		}
	}
}

// yamlNumber renders a JSON number the way go-yaml prints the int or float
// it reads from it.
func yamlNumber(lit []byte) []byte {
	simple := len(lit) > 0 && len(lit) <= 18 && (lit[0] != '0' || len(lit) == 1)
	for _, c := range lit {
		if c < '0' || c > '9' {
			simple = false
			break
		}
	}
	if simple {
		return lit
	}
	s := string(lit)
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return strconv.AppendInt(nil, v, 10)
	}
	if v, err := strconv.ParseUint(s, 10, 64); err == nil {
		return strconv.AppendUint(nil, v, 10)
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return strconv.AppendFloat(nil, f, 'g', -1, 64)
	}
	return lit
}

// --- scalars ---

type scalarStyle int

const (
	stylePlain scalarStyle = iota
	styleSingle
	styleDouble
	styleLiteral
)

func (e *yamlEmitter) stringScalar(s []byte, indent int, simpleKey bool) {
	e.stringScalarAnalyzed(s, analyzeScalar(s), indent, simpleKey)
}

func (e *yamlEmitter) stringScalarAnalyzed(s []byte, an scalarAnalysis, indent int, simpleKey bool) {
	switch chooseStyle(s, an, simpleKey) {
	case stylePlain:
		e.writePlain(s, indent, !simpleKey)
	case styleSingle:
		e.writeSingle(s, indent, !simpleKey)
	case styleLiteral:
		e.writeLiteral(s, indent)
	default:
		e.writeDouble(s, indent, !simpleKey)
	}
}

func chooseStyle(s []byte, an scalarAnalysis, simpleKey bool) scalarStyle {
	var style scalarStyle
	switch {
	case an.otherBreaks:
		// NEL, LS and PS are line breaks to a YAML reader; only the escapes
		// of a double-quoted scalar keep them intact.
		return styleDouble
	case slices.Contains(s, '\n'):
		style = styleLiteral
	case plainIsString(s):
		style = stylePlain
	default:
		style = styleDouble
	}
	if simpleKey && an.multiline {
		style = styleDouble
	}
	if style == stylePlain && (!an.blockPlain || len(s) == 0 && simpleKey) {
		style = styleSingle
	}
	if style == styleSingle && !an.single {
		style = styleDouble
	}
	if style == styleLiteral && (!an.block || simpleKey) {
		style = styleDouble
	}
	return style
}

// --- low-level writing, mirroring go-yaml's emitter cursor ---

func (e *yamlEmitter) put(c byte) {
	_ = e.w.WriteByte(c)
	e.col++
}

func (e *yamlEmitter) putBreak() {
	_ = e.w.WriteByte('\n')
	e.col = 0
}

// writeRune copies the UTF-8 sequence at s[i:] and returns its width.
func (e *yamlEmitter) writeRune(s []byte, i int) int {
	w := 1
	if s[i] >= utf8.RuneSelf {
		_, w = utf8.DecodeRune(s[i:])
	}
	_, _ = e.w.Write(s[i : i+w])
	e.col++
	return w
}

func (e *yamlEmitter) indicator(ind string, needWS, isWS, isIndention bool) {
	if needWS && !e.whitespace {
		e.put(' ')
	}
	_, _ = e.w.WriteString(ind)
	e.col += len(ind)
	e.whitespace = isWS
	e.indention = e.indention && isIndention
}

func (e *yamlEmitter) writeIndent(indent int) {
	if indent < 0 {
		indent = 0
	}
	if !e.indention || e.col > indent || (e.col == indent && !e.whitespace) {
		e.putBreak()
	}
	for e.col < indent {
		e.put(' ')
	}
	e.whitespace = true
	e.indention = true
}

// writeChunk copies s, which holds no line breaks, advancing the column by
// its rune count.
func (e *yamlEmitter) writeChunk(s []byte) {
	_, _ = e.w.Write(s)
	e.col += utf8.RuneCount(s)
}

func (e *yamlEmitter) writePlain(s []byte, indent int, allowBreaks bool) {
	if !e.whitespace {
		e.put(' ')
	}
	spaces := false
	for i := 0; i < len(s); {
		if s[i] != ' ' {
			// Copy up to the next space in one go: lines only break at spaces.
			n := bytes.IndexByte(s[i:], ' ')
			if n < 0 {
				n = len(s) - i
			}
			e.writeChunk(s[i : i+n])
			i += n
			e.indention = false
			spaces = false
			continue
		}
		if s[i] == ' ' {
			if allowBreaks && !spaces && e.col > yamlBestWidth && (i+1 >= len(s) || s[i+1] != ' ') {
				e.writeIndent(indent)
			} else {
				e.put(' ')
			}
			i++
			spaces = true
			continue
		}
		i += e.writeRune(s, i)
		e.indention = false
		spaces = false
	}
	e.whitespace = false
	e.indention = false
}

func (e *yamlEmitter) writeSingle(s []byte, indent int, allowBreaks bool) {
	e.indicator("'", true, false, false)
	spaces := false
	for i := 0; i < len(s); {
		if s[i] == ' ' {
			if allowBreaks && !spaces && e.col > yamlBestWidth && i > 0 && i < len(s)-1 && s[i+1] != ' ' {
				e.writeIndent(indent)
			} else {
				e.put(' ')
			}
			i++
			spaces = true
			continue
		}
		if s[i] == '\'' {
			e.put('\'')
		}
		i += e.writeRune(s, i)
		e.indention = false
		spaces = false
	}
	e.indicator("'", false, false, false)
	e.whitespace = false
	e.indention = false
}

func (e *yamlEmitter) writeDouble(s []byte, indent int, allowBreaks bool) {
	e.indicator(`"`, true, false, false)
	spaces := false
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRune(s[i:])
		invalid := r == utf8.RuneError && w == 1
		if invalid || !yamlPrintable(r) || r == 0xFEFF || isYAMLBreak(r) || r == '"' || r == '\\' {
			if invalid {
				r = rune(s[i])
			}
			e.writeEscape(r)
			i += w
			spaces = false
			continue
		}
		if r == ' ' {
			if allowBreaks && !spaces && e.col > yamlBestWidth && i > 0 && i < len(s)-1 {
				e.writeIndent(indent)
				if s[i+1] == ' ' {
					e.put('\\')
				}
			} else {
				e.put(' ')
			}
			i++
			spaces = true
			continue
		}
		i += e.writeRune(s, i)
		spaces = false
	}
	e.indicator(`"`, false, false, false)
	e.whitespace = false
	e.indention = false
}

func (e *yamlEmitter) writeEscape(r rune) {
	e.put('\\')
	var c byte
	switch r {
	case 0x00:
		c = '0'
	case 0x07:
		c = 'a'
	case 0x08:
		c = 'b'
	case 0x09:
		c = 't'
	case 0x0A:
		c = 'n'
	case 0x0B:
		c = 'v'
	case 0x0C:
		c = 'f'
	case 0x0D:
		c = 'r'
	case 0x1B:
		c = 'e'
	case '"':
		c = '"'
	case '\\':
		c = '\\'
	case 0x85:
		c = 'N'
	case 0xA0:
		c = '_'
	case 0x2028:
		c = 'L'
	case 0x2029:
		c = 'P'
	}
	if c != 0 {
		e.put(c)
		return
	}
	digits := 8
	switch {
	case r <= 0xFF:
		e.put('x')
		digits = 2
	case r <= 0xFFFF:
		e.put('u')
		digits = 4
	default:
		e.put('U')
	}
	const hexdigits = "0123456789ABCDEF"
	for k := (digits - 1) * 4; k >= 0; k -= 4 {
		e.put(hexdigits[(r>>uint(k))&0x0F])
	}
}

func (e *yamlEmitter) writeLiteral(s []byte, indent int) {
	e.indicator("|", true, false, false)
	if s[0] == ' ' || s[0] == '\n' {
		e.indicator(strconv.Itoa(yamlBestIndent), false, false, false)
	}
	n := len(s)
	switch {
	case s[n-1] != '\n':
		e.indicator("-", false, false, false)
	case n == 1 || s[n-2] == '\n':
		e.indicator("+", false, false, false)
	}
	e.putBreak()
	e.indention = true
	e.whitespace = true
	breaks := true
	for i := 0; i < len(s); {
		if s[i] == '\n' {
			e.putBreak()
			i++
			e.indention = true
			breaks = true
			continue
		}
		if breaks {
			e.writeIndent(indent)
		}
		i += e.writeRune(s, i)
		e.indention = false
		breaks = false
	}
}
