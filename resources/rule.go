package resources

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Action is what a rule does with the traffic it matches.
type Action string

// The rule actions.
const (
	ActionAllow Action = "Allow"
	ActionDeny  Action = "Deny"
	ActionLog   Action = "Log"
	ActionPass  Action = "Pass"
)

// PolicyType says which direction of traffic a policy applies to.
type PolicyType string

// The policy types.
const (
	PolicyTypeIngress PolicyType = "Ingress"
	PolicyTypeEgress  PolicyType = "Egress"
)

// PolicyPerformanceHint is a hint to the policy engine that never changes
// what a policy enforces.
type PolicyPerformanceHint string

// PerfHintAssumeNeededOnEveryNode preloads a policy on every node.
const PerfHintAssumeNeededOnEveryNode PolicyPerformanceHint = "AssumeNeededOnEveryNode"

// Rule is one ingress or egress rule of a policy or profile: match criteria
// and an action. Every match criterion has a negated "not" form; all present
// criteria must match.
type Rule struct {
	Action      Action        `json:"action"`
	IPVersion   *int          `json:"ipVersion,omitempty"`
	Protocol    *Protocol     `json:"protocol,omitempty"`
	ICMP        *ICMPFields   `json:"icmp,omitempty"`
	NotProtocol *Protocol     `json:"notProtocol,omitempty"`
	NotICMP     *ICMPFields   `json:"notICMP,omitempty"`
	Source      EntityRule    `json:"source,omitzero"`
	Destination EntityRule    `json:"destination,omitzero"`
	HTTP        *HTTPMatch    `json:"http,omitempty"`
	Metadata    *RuleMetadata `json:"metadata,omitempty"`
}

// EntityRule holds the criteria a rule applies to one end (source or
// destination) of the traffic.
type EntityRule struct {
	Nets              []string             `json:"nets,omitempty"`
	Selector          string               `json:"selector,omitempty"`
	NamespaceSelector string               `json:"namespaceSelector,omitempty"`
	Services          *ServiceMatch        `json:"services,omitempty"`
	Ports             []Port               `json:"ports,omitempty"`
	NotNets           []string             `json:"notNets,omitempty"`
	NotSelector       string               `json:"notSelector,omitempty"`
	NotPorts          []Port               `json:"notPorts,omitempty"`
	ServiceAccounts   *ServiceAccountMatch `json:"serviceAccounts,omitempty"`
}

// ICMPFields matches an ICMP type and, optionally, code.
type ICMPFields struct {
	Type *int `json:"type,omitempty"`
	Code *int `json:"code,omitempty"`
}

// HTTPMatch matches HTTP requests by method and path; the two are ANDed.
type HTTPMatch struct {
	Methods []string   `json:"methods,omitempty"`
	Paths   []HTTPPath `json:"paths,omitempty"`
}

// HTTPPath matches a path exactly or by prefix (exactly one of the two).
type HTTPPath struct {
	Exact  string `json:"exact,omitempty"`
	Prefix string `json:"prefix,omitempty"`
}

// ServiceAccountMatch matches pods by service account name and/or by a
// selector over the service account's labels.
type ServiceAccountMatch struct {
	Names    []string `json:"names,omitempty"`
	Selector string   `json:"selector,omitempty"`
}

// ServiceMatch matches the endpoints of a Kubernetes Service.
type ServiceMatch struct {
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// RuleMetadata carries free-form information about a rule.
type RuleMetadata struct {
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ---------------------------------------------------------------------------
// Port

// Port is a single port, an inclusive range of ports or a named port. In JSON
// a single port is a number; a range is the string "min:max"; a named port is
// its name. A numeric string such as "80" is read as a single port.
type Port struct {
	MinPort  uint16
	MaxPort  uint16
	PortName string
}

// SinglePort returns the port p.
func SinglePort(p uint16) Port { return Port{MinPort: p, MaxPort: p} }

// NamedPort returns the named port name.
func NamedPort(name string) Port { return Port{PortName: name} }

// PortRange returns the range min..max (inclusive).
func PortRange(minPort, maxPort uint16) (Port, error) {
	if minPort > maxPort {
		return Port{}, fmt.Errorf("minimum port number (%d) is greater than maximum port number (%d) in port range", minPort, maxPort)
	}
	return Port{MinPort: minPort, MaxPort: maxPort}, nil
}

var (
	portDigits    = regexp.MustCompile(`^\d+$`)
	portRangeExpr = regexp.MustCompile(`^(\d+):(\d+)$`)
	portNameChars = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)
)

// ParsePort reads a port from its string form: "80", "8000:8080" or "http".
func ParsePort(s string) (Port, error) {
	if portDigits.MatchString(s) {
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil {
			return Port{}, fmt.Errorf("invalid port format (%s)", s)
		}
		return SinglePort(uint16(n)), nil
	}
	if m := portRangeExpr.FindStringSubmatch(s); m != nil {
		lo, err := strconv.ParseUint(m[1], 10, 16)
		if err != nil {
			return Port{}, fmt.Errorf("invalid minimum port number in range (%s)", s)
		}
		hi, err := strconv.ParseUint(m[2], 10, 16)
		if err != nil {
			return Port{}, fmt.Errorf("invalid maximum port number in range (%s)", s)
		}
		return PortRange(uint16(lo), uint16(hi))
	}
	if !portNameChars.MatchString(s) {
		return Port{}, fmt.Errorf("invalid name for named port (%s)", s)
	}
	return NamedPort(s), nil
}

// IsNamed reports whether p is a named port.
func (p Port) IsNamed() bool { return p.PortName != "" }

// String renders p as "80", "8000:8080" or the port's name.
func (p Port) String() string {
	switch {
	case p.PortName != "":
		return p.PortName
	case p.MinPort == p.MaxPort:
		return strconv.FormatUint(uint64(p.MinPort), 10)
	default:
		return fmt.Sprintf("%d:%d", p.MinPort, p.MaxPort)
	}
}

// MarshalJSON writes a number for a single port and a string otherwise.
func (p Port) MarshalJSON() ([]byte, error) {
	if p.PortName == "" && p.MinPort == p.MaxPort {
		return json.Marshal(p.MinPort)
	}
	return json.Marshal(p.String())
}

// UnmarshalJSON reads a number or a string (see ParsePort).
func (p *Port) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := ParsePort(s)
		if err != nil {
			return err
		}
		*p = v
		return nil
	}
	n, err := strconv.ParseUint(string(b), 10, 16)
	if err != nil {
		return fmt.Errorf("invalid port %s: must be a number 0-65535 or a string", b)
	}
	*p = SinglePort(uint16(n))
	return nil
}

// ---------------------------------------------------------------------------
// Protocol

// The protocol names upstream accepts (case-insensitively).
const (
	ProtocolTCP     = "TCP"
	ProtocolUDP     = "UDP"
	ProtocolICMP    = "ICMP"
	ProtocolICMPv6  = "ICMPv6"
	ProtocolSCTP    = "SCTP"
	ProtocolUDPLite = "UDPLite"
)

var protocolNumbers = map[string]uint8{
	ProtocolICMP: 1, ProtocolTCP: 6, ProtocolUDP: 17, ProtocolICMPv6: 58,
	ProtocolSCTP: 132, ProtocolUDPLite: 136,
}

// uint8OrString is the shape shared by Protocol and DSCP: a number 0-255 or
// a string. A numeric string is read as the number. The zero value is the
// number 0.
type uint8OrString struct {
	num   uint8
	str   string
	isStr bool
}

func uint8OrStringFrom(s string) uint8OrString {
	if n, err := strconv.ParseUint(s, 10, 8); err == nil {
		return uint8OrString{num: uint8(n)}
	}
	return uint8OrString{str: s, isStr: true}
}

func (u uint8OrString) String() string {
	if u.isStr {
		return u.str
	}
	return strconv.FormatUint(uint64(u.num), 10)
}

func (u uint8OrString) marshal() ([]byte, error) {
	if u.isStr {
		return json.Marshal(u.str)
	}
	return json.Marshal(u.num)
}

func (u *uint8OrString) unmarshal(b []byte, what string) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*u = uint8OrStringFrom(s)
		return nil
	}
	n, err := strconv.ParseUint(string(b), 10, 8)
	if err != nil {
		return fmt.Errorf("invalid %s %s: must be a number 0-255 or a string", what, b)
	}
	*u = uint8OrString{num: uint8(n)}
	return nil
}

// Protocol is an IP protocol given by name (TCP, UDP, ICMP, ICMPv6, SCTP,
// UDPLite; any case) or by number 1-255. It is written back the way it was
// given: a number as a number, a name as a string.
type Protocol uint8OrString

// ProtocolFromString returns the protocol named s; a numeric string gives a
// numbered protocol.
func ProtocolFromString(s string) Protocol { return Protocol(uint8OrStringFrom(s)) }

// ProtocolFromInt returns the protocol numbered n.
func ProtocolFromInt(n uint8) Protocol { return Protocol(uint8OrString{num: n}) }

// String returns the name, or the number in decimal.
func (p Protocol) String() string { return uint8OrString(p).String() }

// IsNumeric reports whether p was given as a number.
func (p Protocol) IsNumeric() bool { return !p.isStr }

// Number returns the IP protocol number of p, resolving known names; ok is
// false for an unknown name.
func (p Protocol) Number() (n uint8, ok bool) {
	if !p.isStr {
		return p.num, true
	}
	if name, known := p.canonicalName(); known {
		return protocolNumbers[name], true
	}
	return 0, false
}

// canonicalName returns the upstream spelling of a known protocol name.
func (p Protocol) canonicalName() (string, bool) {
	if !p.isStr {
		return "", false
	}
	for name := range protocolNumbers {
		if strings.EqualFold(name, p.str) {
			return name, true
		}
	}
	return "", false
}

// Is reports whether p denotes the protocol with the given name, by name or
// by number.
func (p Protocol) Is(name string) bool {
	n, ok := p.Number()
	return ok && n == protocolNumbers[name]
}

// SupportsPorts reports whether the protocol has ports (TCP, UDP or SCTP).
func (p Protocol) SupportsPorts() bool {
	return p.Is(ProtocolTCP) || p.Is(ProtocolUDP) || p.Is(ProtocolSCTP)
}

// Validate checks that p is a known name or a number 1-255.
func (p Protocol) Validate() error {
	if !p.isStr {
		if p.num == 0 {
			return fmt.Errorf("protocol number invalid")
		}
		return nil
	}
	if _, ok := p.canonicalName(); !ok {
		return fmt.Errorf("protocol name invalid")
	}
	return nil
}

// MarshalJSON writes a number or a string, as p was given.
func (p Protocol) MarshalJSON() ([]byte, error) { return uint8OrString(p).marshal() }

// UnmarshalJSON reads a number or a string.
func (p *Protocol) UnmarshalJSON(b []byte) error {
	return (*uint8OrString)(p).unmarshal(b, "protocol")
}
