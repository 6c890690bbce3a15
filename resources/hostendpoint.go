package resources

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// HostEndpoint is the projectcalico.org/v3 HostEndpoint resource: one of a
// node's own interfaces (or all of them, "*") placed under policy.
type HostEndpoint struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              HostEndpointSpec `json:"spec,omitempty"`
}

// HostEndpointSpec is the spec of a HostEndpoint.
type HostEndpointSpec struct {
	// Node is the name of the Calico node the endpoint is on.
	Node string `json:"node,omitempty"`
	// InterfaceName is a Linux interface, "*" for all of the host's
	// interfaces, or empty to find the interface by ExpectedIPs.
	InterfaceName string `json:"interfaceName,omitempty"`
	// ExpectedIPs are the endpoint's addresses (used to match selectors).
	ExpectedIPs []string       `json:"expectedIPs,omitempty"`
	Profiles    []string       `json:"profiles,omitempty"`
	Ports       []EndpointPort `json:"ports,omitempty"`
}

// EndpointPort is a named port of a host endpoint.
type EndpointPort struct {
	Name     string   `json:"name"`
	Protocol Protocol `json:"protocol"`
	Port     uint16   `json:"port"`
}

// Default does nothing: upstream fills no HostEndpoint fields.
func (r *HostEndpoint) Default() {}

// Validate checks the object.
func (r *HostEndpoint) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	s := &r.Spec
	if s.Node == "" {
		v.Add("spec.node", "", "no node has been specified")
	} else if !IsDNS1123Subdomain(s.Node) {
		v.Add("spec.node", s.Node, "invalid node name")
	}
	if s.InterfaceName == "" && len(s.ExpectedIPs) == 0 {
		v.Add("spec.interfaceName", "", "no interface or expected IPs have been specified")
	}
	if s.InterfaceName != "" && s.InterfaceName != "*" && !IsInterfaceName(s.InterfaceName) {
		v.Add("spec.interfaceName", s.InterfaceName, "invalid interface name")
	}
	for i, ip := range s.ExpectedIPs {
		ValidateIP(&v, fmt.Sprintf("spec.expectedIPs[%d]", i), ip)
	}
	validateProfileNames(&v, "spec.profiles", s.Profiles)
	for i, p := range s.Ports {
		f := fmt.Sprintf("spec.ports[%d]", i)
		if !IsPortName(p.Name) {
			v.Add(f+".name", p.Name, "invalid port name")
		}
		validateEndpointPortProtocol(&v, f+".protocol", p.Protocol)
		if p.Port == 0 {
			v.Add(f+".port", p.Port, "port must be between 1 and 65535")
		}
	}
	return v.Err()
}

func validateProfileNames(v *Validator, f string, names []string) {
	for i, n := range names {
		if !IsDNS1123Subdomain(n) {
			v.Add(fmt.Sprintf("%s[%d]", f, i), n, "invalid profile name")
		}
	}
}

func validateEndpointPortProtocol(v *Validator, f string, p Protocol) {
	if err := p.Validate(); err != nil {
		v.Add(f, p.String(), err.Error())
	} else if !p.SupportsPorts() {
		v.Add(f, p.String(), "protocol does not support ports: must be TCP, UDP or SCTP")
	}
}
