package resources

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Small field checks shared by the configuration kinds (IPPool, BGP*, Node,
// FelixConfiguration, KubeControllersConfiguration). Each records at most one
// FieldError and reports whether the value was acceptable.

// enumField checks that a non-empty value is exactly one of allowed.
func enumField(v *Validator, field, value string, allowed ...string) bool {
	if value == "" || slices.Contains(allowed, value) {
		return true
	}
	v.Add(field, value, "must be one of "+strings.Join(allowed, ", "))
	return false
}

// enumFieldFold is enumField ignoring case, as upstream's (?i) patterns do.
func enumFieldFold(v *Validator, field, value string, allowed ...string) bool {
	if value == "" {
		return true
	}
	for _, a := range allowed {
		if strings.EqualFold(a, value) {
			return true
		}
	}
	v.Add(field, value, "must be one of "+strings.Join(allowed, ", ")+" (case-insensitive)")
	return false
}

// enumPtr is enumField for an optional string-typed value.
func enumPtr[T ~string](v *Validator, field string, value *T, allowed ...string) bool {
	if value == nil {
		return true
	}
	if *value == "" {
		v.Add(field, "", "must be one of "+strings.Join(allowed, ", "))
		return false
	}
	return enumField(v, field, string(*value), allowed...)
}

// rangeField checks lo <= *value <= hi for an optional integer.
func rangeField[T ~int | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32](v *Validator, field string, value *T, lo, hi int64) bool {
	if value == nil {
		return true
	}
	n := int64(*value)
	if n < lo || n > hi {
		v.Add(field, n, fmt.Sprintf("must be between %d and %d", lo, hi))
		return false
	}
	return true
}

// portField checks an optional port number is 0-65535 (or 1-65535 with
// nonZero).
func portField(v *Validator, field string, value *int, nonZero bool) bool {
	lo := int64(0)
	if nonZero {
		lo = 1
	}
	return rangeField(v, field, value, lo, 65535)
}

// regexpField checks that a non-empty value compiles as a regular expression.
func regexpField(v *Validator, field, value string) bool {
	if value == "" {
		return true
	}
	if _, err := regexp.Compile(value); err != nil {
		v.Add(field, value, "invalid regular expression: "+err.Error())
		return false
	}
	return true
}

// patternField checks that a non-empty value matches re.
func patternField(v *Validator, field, value string, re *regexp.Regexp, what string) bool {
	if value == "" || re.MatchString(value) {
		return true
	}
	v.Add(field, value, "must be "+what)
	return false
}

// ipFamilyField checks that a non-empty value is an IP address of the given
// family (4 or 6; 0 for either).
func ipFamilyField(v *Validator, field, value string, family int) bool {
	if value == "" {
		return true
	}
	a, ok := ValidateIP(v, field, value)
	if !ok {
		return false
	}
	if (family == 4 && !a.Unmap().Is4()) || (family == 6 && (a.Is4() || a.Is4In6())) {
		v.Add(field, value, fmt.Sprintf("must be an IPv%d address", family))
		return false
	}
	return true
}

// cidrListField checks every entry of a list is a CIDR.
func cidrListField(v *Validator, field string, values []string) {
	for i, c := range values {
		ValidateCIDR(v, fmt.Sprintf("%s[%d]", field, i), c, false)
	}
}

// SecretKeySelector names one key of a Kubernetes Secret in calico-node's
// namespace.
type SecretKeySelector struct {
	Name     string `json:"name,omitempty"`
	Key      string `json:"key"`
	Optional *bool  `json:"optional,omitempty"`
}

// BGPPassword is where a BGP session password comes from.
type BGPPassword struct {
	// SecretKeyRef reads the password from a Secret.
	SecretKeyRef *SecretKeySelector `json:"secretKeyRef,omitempty"`
}

func validateBGPPassword(v *Validator, field string, p *BGPPassword) {
	if p == nil || p.SecretKeyRef == nil {
		return
	}
	ref := p.SecretKeyRef
	if ref.Name == "" || !IsDNS1123Subdomain(ref.Name) {
		v.Add(field+".secretKeyRef.name", ref.Name, "must be the name of a Secret (a DNS-1123 subdomain)")
	}
	if ref.Key == "" || !secretKey.MatchString(ref.Key) || len(ref.Key) > 253 {
		v.Add(field+".secretKeyRef.key", ref.Key, "must be a valid Secret key ([-._a-zA-Z0-9]+)")
	}
}

var secretKey = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
