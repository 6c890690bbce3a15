package printer

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// scalarAnalysis says which YAML scalar styles can carry a string intact,
// following the YAML 1.1 rules go-yaml's emitter applies in block context.
type scalarAnalysis struct {
	multiline   bool // contains a line break
	otherBreaks bool // contains NEL, LS or PS
	blockPlain  bool // may be written unquoted
	single      bool // may be written in single quotes
	block       bool // may be written as a literal block
}

func yamlPrintable(r rune) bool {
	return r == 0x0A ||
		r >= 0x20 && r <= 0x7E ||
		r >= 0xA0 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD && r != 0xFEFF
}

func isYAMLBreak(r rune) bool {
	return r == '\r' || r == '\n' || r == 0x85 || r == 0x2028 || r == 0x2029
}

func isYAMLBlank(r rune) bool { return r == ' ' || r == '\t' }

// Bytes that never make a scalar need quotes, anywhere in it
// (plainFirst), or anywhere but first (plainInner; ':' also not last).
var plainFirst, plainInner [256]bool

func init() {
	for c := 0; c < 256; c++ {
		b := byte(c)
		plainFirst[c] = b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
			strings.IndexByte("./_=()+;$^~<", b) >= 0
		plainInner[c] = plainFirst[c] || strings.IndexByte("-:#?,[]{}!&*|>'\"%@`", b) >= 0
	}
}

func analyzeScalar(s []byte) scalarAnalysis {
	if len(s) == 0 {
		return scalarAnalysis{blockPlain: true, single: true}
	}
	if plainASCII(s) {
		return scalarAnalysis{blockPlain: true, single: true, block: true}
	}
	return analyzeSlow(s)
}

// plainASCII is the fast path of analyzeScalar: printable ASCII without
// blanks, indicators only where they cannot start a YAML token.
func plainASCII(s []byte) bool {
	if !plainFirst[s[0]] || s[len(s)-1] == ':' {
		return false
	}
	for _, c := range s[1:] {
		if !plainInner[c] {
			return false
		}
	}
	return !(len(s) >= 3 && s[0] == '.' && s[1] == '.' && s[2] == '.')
}

func analyzeSlow(s []byte) scalarAnalysis {
	var (
		blockIndicators, specialChars, lineBreaks        bool
		leadingSpace, leadingBreak, trailingSpace        bool
		trailingBreak, breakSpace, spaceBreak, otherBrks bool
		prevSpace, prevBreak                             bool
	)
	if len(s) >= 3 && (s[0] == '-' && s[1] == '-' && s[2] == '-' || s[0] == '.' && s[1] == '.' && s[2] == '.') {
		blockIndicators = true
	}
	precededByWS := true
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRune(s[i:])
		var next rune = -1
		if i+w < len(s) {
			next, _ = utf8.DecodeRune(s[i+w:])
		}
		followedByWS := next == -1 || isYAMLBlank(next)
		if i == 0 {
			switch r {
			case '#', ',', '[', ']', '{', '}', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`':
				blockIndicators = true
			case '?', ':', '-':
				if followedByWS {
					blockIndicators = true
				}
			}
		} else {
			switch r {
			case ':':
				if followedByWS {
					blockIndicators = true
				}
			case '#':
				if precededByWS {
					blockIndicators = true
				}
			}
		}
		if (r == utf8.RuneError && w == 1) || !yamlPrintable(r) {
			specialChars = true
		}
		switch {
		case r == ' ':
			if i == 0 {
				leadingSpace = true
			}
			if i+w == len(s) {
				trailingSpace = true
			}
			if prevBreak {
				breakSpace = true
			}
			prevSpace, prevBreak = true, false
		case isYAMLBreak(r):
			lineBreaks = true
			if r != '\n' && r != '\r' {
				otherBrks = true
			}
			if i == 0 {
				leadingBreak = true
			}
			if i+w == len(s) {
				trailingBreak = true
			}
			if prevSpace {
				spaceBreak = true
			}
			prevSpace, prevBreak = false, true
		default:
			prevSpace, prevBreak = false, false
		}
		precededByWS = isYAMLBlank(r) || isYAMLBreak(r) || r == 0
		i += w
	}
	a := scalarAnalysis{multiline: lineBreaks, otherBreaks: otherBrks, blockPlain: true, single: true, block: true}
	if leadingSpace || leadingBreak || trailingSpace || trailingBreak {
		a.blockPlain = false
	}
	if trailingSpace {
		a.block = false
	}
	if breakSpace {
		a.blockPlain, a.single = false, false
	}
	if spaceBreak || specialChars {
		a.blockPlain, a.single, a.block = false, false, false
	}
	if lineBreaks || blockIndicators {
		a.blockPlain = false
	}
	return a
}

// plainIsString reports whether s, written unquoted, would be read back by a
// YAML 1.1 reader (go-yaml v2) as the same string rather than as a null,
// bool, number, timestamp or sexagesimal float.
func plainIsString(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	switch string(s) {
	case "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON",
		"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF",
		"~", "null", "Null", "NULL", ".nan", ".NaN", ".NAN",
		".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF":
		return false
	}
	switch c := s[0]; {
	case c == '.':
		_, err := strconv.ParseFloat(string(s), 64)
		return err != nil
	case c == '+' || c == '-' || c >= '0' && c <= '9':
		if !numberLike(s) {
			return true
		}
		str := string(s)
		if isYAMLTimestamp(str) || isBase60Float(str) {
			return false
		}
		plain := strings.ReplaceAll(str, "_", "")
		if _, err := strconv.ParseInt(plain, 0, 64); err == nil {
			return false
		}
		if _, err := strconv.ParseUint(plain, 0, 64); err == nil {
			return false
		}
		if isYAMLFloat(plain) {
			if _, err := strconv.ParseFloat(plain, 64); err == nil {
				return false
			}
		}
		if b, ok := strings.CutPrefix(plain, "0b"); ok {
			if _, err := strconv.ParseUint(b, 2, 64); err == nil {
				return false
			}
		} else if b, ok := strings.CutPrefix(plain, "-0b"); ok {
			if _, err := strconv.ParseInt("-"+b, 2, 64); err == nil {
				return false
			}
		}
	}
	return true
}

// numberLike is a quick filter for plainIsString: only strings made of
// these bytes can read as an int (any base), float, timestamp or
// sexagesimal number.
func numberLike(s []byte) bool {
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			switch c {
			case '+', '-', '.', '_', ':', ' ', 'x', 'X', 'o', 'O', 't', 'T', 'z', 'Z':
			default:
				return false
			}
		}
	}
	return true
}

// isYAMLFloat matches [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
func isYAMLFloat(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	} else {
		if digits() == 0 {
			return false
		}
		if i < len(s) && s[i] == '.' {
			i++
			digits()
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// isBase60Float matches [-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?
// (YAML 1.1 sexagesimal numbers such as 1:20, which readers may still parse).
func isBase60Float(s string) bool {
	if !strings.Contains(s, ":") {
		return false
	}
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	if i >= len(s) || s[i] < '0' || s[i] > '9' {
		return false
	}
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '_') {
		i++
	}
	groups := 0
	for i < len(s) && s[i] == ':' {
		i++
		n := 0
		for n < 2 && i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		// [0-5]?[0-9]: one digit, or two with the first at most 5. A group
		// such as "69" leaves a digit nothing else can consume.
		if n == 0 || n == 2 && s[i-2] > '5' {
			return false
		}
		groups++
	}
	if groups == 0 {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '_') {
			i++
		}
	}
	return i == len(s)
}

var yamlTimestampLayouts = []string{
	"2006-1-2T15:4:5.999999999Z07:00",
	"2006-1-2t15:4:5.999999999Z07:00",
	"2006-1-2 15:4:5.999999999",
	"2006-1-2",
}

// isYAMLTimestamp reports whether a YAML 1.1 reader takes s for a timestamp.
func isYAMLTimestamp(s string) bool {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i != 4 || i == len(s) || s[i] != '-' {
		return false
	}
	for _, layout := range yamlTimestampLayouts {
		if _, err := time.Parse(layout, s); err == nil {
			return true
		}
	}
	return false
}

// yamlKeyLess orders mapping keys as go-yaml v2 does: rune by rune, with
// runs of digits compared by value and non-letters before letters.
func yamlKeyLess(a, b []byte) bool {
	i, j := 0, 0 // byte offsets into a and b; the prefixes before them are equal
	for i < len(a) && j < len(b) {
		ra, wa := utf8.DecodeRune(a[i:])
		rb, wb := utf8.DecodeRune(b[j:])
		if ra == rb {
			i += wa
			j += wb
			continue
		}
		al, bl := unicode.IsLetter(ra), unicode.IsLetter(rb)
		if al && bl {
			return ra < rb
		}
		if al || bl {
			return bl
		}
		var an, bn int64
		if ra == '0' || rb == '0' {
			// A zero that continues a number with a non-zero digit
			// before it is significant.
			for k := i; k > 0; {
				r, w := utf8.DecodeLastRune(a[:k])
				if !unicode.IsDigit(r) {
					break
				}
				if r != '0' {
					an, bn = 1, 1
					break
				}
				k -= w
			}
		}
		na, nb := 0, 0
		for k := i; k < len(a); {
			r, w := utf8.DecodeRune(a[k:])
			if !unicode.IsDigit(r) {
				break
			}
			an = an*10 + int64(r-'0')
			na++
			k += w
		}
		for k := j; k < len(b); {
			r, w := utf8.DecodeRune(b[k:])
			if !unicode.IsDigit(r) {
				break
			}
			bn = bn*10 + int64(r-'0')
			nb++
			k += w
		}
		if an != bn {
			return an < bn
		}
		if na != nb {
			return na < nb
		}
		return ra < rb
	}
	return len(a)-i < len(b)-j
}
