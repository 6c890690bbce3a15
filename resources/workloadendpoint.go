package resources

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WorkloadEndpoint is the projectcalico.org/v3 WorkloadEndpoint resource: a
// pod's (or other workload's) interface on a node. Its name is derived from
// its spec (see WEPIdentifiers).
type WorkloadEndpoint struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              WorkloadEndpointSpec `json:"spec,omitempty"`
}

// WorkloadEndpointSpec is the spec of a WorkloadEndpoint.
type WorkloadEndpointSpec struct {
	Orchestrator       string `json:"orchestrator,omitempty"`
	Workload           string `json:"workload,omitempty"`
	Node               string `json:"node,omitempty"`
	ContainerID        string `json:"containerID,omitempty"`
	Pod                string `json:"pod,omitempty"`
	Endpoint           string `json:"endpoint,omitempty"`
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// IPNetworks are the endpoint's addresses, each a /32 or /128.
	IPNetworks []string `json:"ipNetworks,omitempty"`
	// IPNATs are 1:1 NATs (floating IPs) onto addresses in IPNetworks.
	IPNATs      []IPNAT  `json:"ipNATs,omitempty"`
	IPv4Gateway string   `json:"ipv4Gateway,omitempty"`
	IPv6Gateway string   `json:"ipv6Gateway,omitempty"`
	Profiles    []string `json:"profiles,omitempty"`
	// InterfaceName is the host side of the endpoint's interface (e.g. caliXXXX).
	InterfaceName string                 `json:"interfaceName,omitempty"`
	MAC           string                 `json:"mac,omitempty"`
	Ports         []WorkloadEndpointPort `json:"ports,omitempty"`
	// AllowSpoofedSourcePrefixes are CIDRs the endpoint may send from.
	AllowSpoofedSourcePrefixes []string     `json:"allowSpoofedSourcePrefixes,omitempty"`
	QoSControls                *QoSControls `json:"qosControls,omitempty"`
}

// WorkloadEndpointPort is a named or host-mapped port of a workload. HostPort
// and HostIP are always written, even when zero, as upstream does.
type WorkloadEndpointPort struct {
	Name     string   `json:"name"`
	Protocol Protocol `json:"protocol"`
	Port     uint16   `json:"port"`
	HostPort uint16   `json:"hostPort"`
	HostIP   string   `json:"hostIP"`
}

// IPNAT maps an external (floating) IP onto one of the endpoint's own.
type IPNAT struct {
	InternalIP string `json:"internalIP"`
	ExternalIP string `json:"externalIP"`
}

// QoSControls limits a workload's bandwidth, packet rate and connections.
// Bandwidths are in bits per second, bursts in bits, minbursts in bytes.
type QoSControls struct {
	IngressBandwidth      int64 `json:"ingressBandwidth,omitempty"`
	IngressBurst          int64 `json:"ingressBurst,omitempty"`
	IngressPeakrate       int64 `json:"ingressPeakrate,omitempty"`
	IngressMinburst       int64 `json:"ingressMinburst,omitempty"`
	EgressBandwidth       int64 `json:"egressBandwidth,omitempty"`
	EgressBurst           int64 `json:"egressBurst,omitempty"`
	EgressPeakrate        int64 `json:"egressPeakrate,omitempty"`
	EgressMinburst        int64 `json:"egressMinburst,omitempty"`
	IngressPacketRate     int64 `json:"ingressPacketRate,omitempty"`
	IngressPacketBurst    int64 `json:"ingressPacketBurst,omitempty"`
	EgressPacketRate      int64 `json:"egressPacketRate,omitempty"`
	EgressPacketBurst     int64 `json:"egressPacketBurst,omitempty"`
	IngressMaxConnections int64 `json:"ingressMaxConnections,omitempty"`
	EgressMaxConnections  int64 `json:"egressMaxConnections,omitempty"`
	DSCP                  *DSCP `json:"dscp,omitempty"`
}

// DSCP is a DiffServ code point: a number 0-63 or a name such as "EF",
// "AF11" or "CS1". It is written back as it was given.
type DSCP uint8OrString

var dscpValues = map[string]uint8{
	"DF": 0, "EF": 46,
	"AF11": 10, "AF12": 12, "AF13": 14, "AF21": 18, "AF22": 20, "AF23": 22,
	"AF31": 26, "AF32": 28, "AF33": 30, "AF41": 34, "AF42": 36, "AF43": 38,
	"CS0": 0, "CS1": 8, "CS2": 16, "CS3": 24, "CS4": 32, "CS5": 40, "CS6": 48,
}

// DSCPFromInt returns the code point n.
func DSCPFromInt(n uint8) DSCP { return DSCP(uint8OrString{num: n}) }

// DSCPFromString returns the named code point (or a numeric string's value).
func DSCPFromString(s string) DSCP { return DSCP(uint8OrStringFrom(s)) }

// String returns the name, or the number in decimal.
func (d DSCP) String() string { return uint8OrString(d).String() }

// Value returns the numeric code point; ok is false for an unknown name.
func (d DSCP) Value() (n uint8, ok bool) {
	if !d.isStr {
		return d.num, true
	}
	n, ok = dscpValues[strings.ToUpper(strings.TrimSpace(d.str))]
	return n, ok
}

// Validate checks that d is 0-63 or a known name.
func (d DSCP) Validate() error {
	n, ok := d.Value()
	switch {
	case !ok:
		return fmt.Errorf("%s is not a valid DSCP value", d.str)
	case n > 63:
		return fmt.Errorf("DSCP must be between 0 and 63")
	}
	return nil
}

// MarshalJSON writes a number or a string, as d was given.
func (d DSCP) MarshalJSON() ([]byte, error) { return uint8OrString(d).marshal() }

// UnmarshalJSON reads a number or a string.
func (d *DSCP) UnmarshalJSON(b []byte) error { return (*uint8OrString)(d).unmarshal(b, "DSCP") }

// LabelOrchestrator is the label upstream stamps on every WorkloadEndpoint
// with its orchestrator (LabelNamespace carries its namespace).
const LabelOrchestrator = "projectcalico.org/orchestrator"

var containerIDExpr = regexp.MustCompile(`^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$`)

// Default sets the namespace and orchestrator labels, and the name from the
// spec when the name is empty, as upstream's client does. Each port's
// hostPort and hostIP are always serialised, so they need no default.
func (r *WorkloadEndpoint) Default() {
	if r.Name == "" {
		if name, err := WEPIdentifiersOf(&r.Spec).Name(); err == nil {
			r.Name = name
		}
	}
	if r.Labels == nil {
		r.Labels = map[string]string{}
	}
	r.Labels[LabelNamespace] = r.Namespace
	r.Labels[LabelOrchestrator] = r.Spec.Orchestrator
}

// Validate checks the object, including that its name is the one derived
// from its spec.
func (r *WorkloadEndpoint) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	s := &r.Spec
	if want, err := WEPIdentifiersOf(s).Name(); err != nil {
		if fe, ok := err.(*FieldError); ok {
			v.Add(fe.Field, fe.Value, fe.Reason)
		} else {
			v.Add("metadata.name", r.Name, err.Error())
		}
	} else if r.Name != "" && r.Name != want {
		v.Addf("metadata.name", r.Name, "the WorkloadEndpoint name does not match the primary identifiers assigned in the Spec: expected name %s", want)
	}
	for _, nf := range []struct{ field, value string }{
		{"spec.orchestrator", s.Orchestrator}, {"spec.workload", s.Workload},
		{"spec.node", s.Node}, {"spec.pod", s.Pod}, {"spec.endpoint", s.Endpoint},
		{"spec.serviceAccountName", s.ServiceAccountName},
	} {
		if nf.value != "" && !IsDNS1123Subdomain(nf.value) {
			v.Add(nf.field, nf.value, "invalid name")
		}
	}
	if s.ContainerID != "" && !containerIDExpr.MatchString(s.ContainerID) {
		v.Add("spec.containerID", s.ContainerID, "invalid container ID")
	}
	var networks []netip.Prefix
	for i, n := range s.IPNetworks {
		f := fmt.Sprintf("spec.ipNetworks[%d]", i)
		p, ok := ValidateCIDR(&v, f, n, true)
		if !ok {
			continue
		}
		if !p.IsSingleIP() {
			v.Add(f, n, "IP network contains multiple addresses")
		}
		networks = append(networks, p)
	}
	validateIPNATs(&v, s.IPNATs, networks)
	if s.IPv4Gateway != "" {
		if a, err := netip.ParseAddr(s.IPv4Gateway); err != nil || !a.Is4() {
			v.Add("spec.ipv4Gateway", s.IPv4Gateway, "invalid IPv4 gateway address specified")
		}
	}
	if s.IPv6Gateway != "" {
		if a, err := netip.ParseAddr(s.IPv6Gateway); err != nil || !a.Is6() || a.Is4In6() {
			v.Add("spec.ipv6Gateway", s.IPv6Gateway, "invalid IPv6 gateway address specified")
		}
	}
	validateProfileNames(&v, "spec.profiles", s.Profiles)
	if s.InterfaceName != "*" && !IsInterfaceName(s.InterfaceName) {
		v.Add("spec.interfaceName", s.InterfaceName, "invalid interface name")
	}
	if s.MAC != "" {
		if _, err := net.ParseMAC(s.MAC); err != nil {
			v.Add("spec.mac", s.MAC, "invalid MAC address")
		}
	}
	for i, p := range s.Ports {
		validateWEPPort(&v, fmt.Sprintf("spec.ports[%d]", i), p)
	}
	for i, c := range s.AllowSpoofedSourcePrefixes {
		ValidateCIDR(&v, fmt.Sprintf("spec.allowSpoofedSourcePrefixes[%d]", i), c, true)
	}
	if q := s.QoSControls; q != nil && q.DSCP != nil {
		if err := q.DSCP.Validate(); err != nil {
			v.Add("spec.qosControls.dscp", q.DSCP.String(), err.Error())
		}
	}
	return v.Err()
}

func validateWEPPort(v *Validator, f string, p WorkloadEndpointPort) {
	if p.Name != "" && !IsPortName(p.Name) {
		v.Add(f+".name", p.Name, "invalid port name")
	}
	if p.Name == "" && p.HostPort == 0 {
		v.Add(f+".name", "", "port name must not be empty if no hostPort is specified")
	}
	validateEndpointPortProtocol(v, f+".protocol", p.Protocol)
	if p.Port == 0 {
		v.Add(f+".port", p.Port, "port must be between 1 and 65535")
	}
	if p.HostIP != "" {
		if pf, err := ParseCIDR(p.HostIP); err != nil || pf.Masked() != pf {
			v.Add(f+".hostIP", p.HostIP, "invalid host IP")
		}
	}
}

// validateIPNATs checks each NAT: two addresses of one family, the internal
// one among the endpoint's networks.
func validateIPNATs(v *Validator, nats []IPNAT, networks []netip.Prefix) {
	for i, nat := range nats {
		f := fmt.Sprintf("spec.ipNATs[%d]", i)
		in, okIn := ValidateIP(v, f+".internalIP", nat.InternalIP)
		ex, okEx := ValidateIP(v, f+".externalIP", nat.ExternalIP)
		if okIn && okEx && in.Is4() != ex.Is4() {
			v.Add(f+".externalIP", nat.ExternalIP, "mismatched IP versions")
		}
		if !okIn {
			continue
		}
		inside := false
		for _, n := range networks {
			if n.Contains(in) {
				inside = true
				break
			}
		}
		if !inside {
			v.Add(f+".internalIP", nat.InternalIP, "NAT is not in the endpoint networks")
		}
	}
}
