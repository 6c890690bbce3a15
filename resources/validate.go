package resources

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/opencalico/calicoctl/resources/selector"
)

// FieldError is one validation failure: the JSON path of the field, the value
// found there and why it is wrong. Its text follows upstream's wording.
type FieldError struct {
	Field  string // JSON path, e.g. "spec.cidr"
	Value  any
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("error with field %s = '%v' (%s)", e.Field, e.Value, e.Reason)
}

// FieldErrors collects several failures. Its text stays on one line so the CLI
// can print one line per object.
type FieldErrors []*FieldError

func (es FieldErrors) Error() string {
	if len(es) == 1 {
		return es[0].Error()
	}
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = fmt.Sprintf("%s = '%v' (%s)", e.Field, e.Value, e.Reason)
	}
	return "error with the following fields: " + strings.Join(parts, "; ")
}

// Validator accumulates field errors; the zero value is ready to use.
type Validator struct{ errs FieldErrors }

// Add records a failure.
func (v *Validator) Add(field string, value any, reason string) {
	v.errs = append(v.errs, &FieldError{Field: field, Value: value, Reason: reason})
}

// Addf records a failure with a formatted reason.
func (v *Validator) Addf(field string, value any, format string, args ...any) {
	v.Add(field, value, fmt.Sprintf(format, args...))
}

// Err returns nil, the single *FieldError, or FieldErrors.
func (v *Validator) Err() error {
	switch len(v.errs) {
	case 0:
		return nil
	case 1:
		return v.errs[0]
	default:
		return v.errs
	}
}

var (
	dns1123Label     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	labelKeyName     = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	labelValue       = regexp.MustCompile(`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`)
	interfaceName    = regexp.MustCompile(`^[a-zA-Z0-9_.\-]{1,15}$`)
)

// IsDNS1123Label reports whether s is a DNS-1123 label (max 63 chars).
func IsDNS1123Label(s string) bool { return len(s) <= 63 && dns1123Label.MatchString(s) }

// IsDNS1123Subdomain reports whether s is a DNS-1123 subdomain (max 253 chars).
func IsDNS1123Subdomain(s string) bool { return len(s) <= 253 && dns1123Subdomain.MatchString(s) }

// IsInterfaceName reports whether s is a valid Linux interface name.
func IsInterfaceName(s string) bool { return interfaceName.MatchString(s) }

// ValidateMeta checks the metadata every kind shares: a DNS-1123 subdomain name,
// namespace rules and label syntax. nameCheck may replace the default name rule.
func ValidateMeta(v *Validator, r Resource, nameCheck func(string) bool) {
	name := r.GetName()
	if name == "" {
		v.Add("metadata.name", name, "name is required")
	} else {
		if nameCheck == nil {
			nameCheck = IsDNS1123Subdomain
		}
		if !nameCheck(name) {
			v.Add("metadata.name", name, "invalid name: must be a lower-case DNS-1123 name")
		}
	}
	if k := KindOf(r); k != nil {
		if k.Singleton && name != "" && name != "default" {
			v.Add("metadata.name", name, "only 'default' is allowed for "+k.Kind)
		}
		if k.Namespaced && r.GetNamespace() != "" && !IsDNS1123Label(r.GetNamespace()) {
			v.Add("metadata.namespace", r.GetNamespace(), "invalid namespace")
		}
	}
	ValidateLabels(v, "metadata.labels", r.GetLabels())
	validateAnnotations(v, "metadata.annotations", r.GetAnnotations())
}

// ValidateLabels checks Kubernetes label syntax for every key and value.
func ValidateLabels(v *Validator, field string, labels map[string]string) {
	for k, val := range labels {
		if !IsLabelKey(k) {
			v.Add(field, k, "invalid label key")
		}
		if len(val) > 63 || !labelValue.MatchString(val) {
			v.Add(field+"."+k, val, "invalid label value")
		}
	}
}

// IsLabelKey reports whether k is a valid label key: [prefix/]name.
func IsLabelKey(k string) bool {
	prefix, name, found := strings.Cut(k, "/")
	if !found {
		name, prefix = prefix, ""
	} else if prefix == "" || !IsDNS1123Subdomain(prefix) {
		return false
	}
	return len(name) <= 63 && labelKeyName.MatchString(name)
}

// ParsePrefix parses a CIDR as upstream (Go's net.ParseCIDR) does: unlike
// netip.ParsePrefix, a prefix length with leading zeros ("10.0.0.0/016") is
// accepted. String() of the result is the canonical form.
func ParsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err == nil {
		return p, nil
	}
	addr, bits, found := strings.Cut(s, "/")
	if !found || len(bits) < 2 || bits[0] != '0' || strings.Trim(bits, "0123456789") != "" {
		return p, err
	}
	if bits = strings.TrimLeft(bits, "0"); bits == "" {
		bits = "0"
	}
	return netip.ParsePrefix(addr + "/" + bits)
}

// ParseCIDR parses a CIDR, also accepting a bare address as a host prefix.
func ParseCIDR(s string) (netip.Prefix, error) {
	if p, err := ParsePrefix(s); err == nil {
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ValidateCIDR records an error when s is not a CIDR (or bare address when
// allowAddr). It returns the prefix for further checks.
func ValidateCIDR(v *Validator, field, s string, allowAddr bool) (netip.Prefix, bool) {
	var p netip.Prefix
	var err error
	if allowAddr {
		p, err = ParseCIDR(s)
	} else {
		p, err = ParsePrefix(s)
	}
	if err != nil {
		v.Add(field, s, "invalid CIDR")
		return netip.Prefix{}, false
	}
	return p, true
}

// ValidateIP records an error when s is not an IP address.
func ValidateIP(v *Validator, field, s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		v.Add(field, s, "invalid IP address")
		return netip.Addr{}, false
	}
	return a, true
}

// Size limits upstream's validator and CRD schemas enforce.
const (
	// MaxSelectorLen is the longest selector accepted, in bytes.
	MaxSelectorLen = 1024
	// MaxRules is the most rules one direction (ingress or egress) may hold.
	MaxRules = 1024
	// MaxAnnotationsSize is the total size of an object's annotations
	// (keys and values), as in Kubernetes.
	MaxAnnotationsSize = 256 * 1024
)

// checkSelectorLen records an error when s is longer than MaxSelectorLen.
func checkSelectorLen(v *Validator, field, s string) bool {
	if len(s) <= MaxSelectorLen {
		return true
	}
	v.Addf(field, s[:40]+"...", "selector is %d bytes long, the limit is %d", len(s), MaxSelectorLen)
	return false
}

// ValidateSelector records an error when s is not a valid selector.
func ValidateSelector(v *Validator, field, s string) {
	if s == "" || !checkSelectorLen(v, field, s) {
		return
	}
	if _, err := selector.Parse(s); err != nil {
		v.Add(field, s, "invalid selector: "+err.Error())
	}
}
