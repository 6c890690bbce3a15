package resources

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ASNumber is a 32-bit BGP autonomous system number.
//
// In JSON and YAML it is accepted as a number (64512), a numeric string
// ("64512") or in asdot notation ("1.10", meaning 1*65536+10). It is always
// written back as a plain number.
type ASNumber uint32

// ParseASNumber parses the plain ("64512") or asdot ("1.10") form.
func ParseASNumber(s string) (ASNumber, error) {
	s = strings.TrimSpace(s)
	if hi, lo, dotted := strings.Cut(s, "."); dotted {
		h, err1 := strconv.ParseUint(hi, 10, 16)
		l, err2 := strconv.ParseUint(lo, 10, 16)
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("invalid AS number %q: asdot parts must be 0-65535", s)
		}
		return ASNumber(h<<16 | l), nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid AS number %q: must be 0-4294967295 or asdot form", s)
	}
	return ASNumber(n), nil
}

// String renders the AS number as a plain decimal number.
func (a ASNumber) String() string { return strconv.FormatUint(uint64(a), 10) }

// MarshalJSON writes the AS number as a JSON number.
func (a ASNumber) MarshalJSON() ([]byte, error) {
	return []byte(a.String()), nil
}

// UnmarshalJSON accepts a JSON number or a string in plain or asdot form.
//
// An unquoted YAML value such as 1.10 reaches us as the float 1.1, which has
// lost its trailing zero; like upstream we reject it, so asdot values must be
// quoted ("1.10").
func (a *ASNumber) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := ParseASNumber(s)
		if err != nil {
			return err
		}
		*a = v
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("invalid AS number %s: %w", b, err)
	}
	v, err := strconv.ParseUint(n.String(), 10, 64)
	if err != nil || v > math.MaxUint32 {
		return fmt.Errorf("invalid AS number %s: must be 0-4294967295, or a quoted asdot string such as \"1.10\"", b)
	}
	*a = ASNumber(v)
	return nil
}
