package resources

import (
	"encoding/base64"
	"fmt"
	"net"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Node is the projectcalico.org/v3 Node resource: Calico's view of one host,
// its BGP identity and tunnel addresses.
type Node struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              NodeSpec   `json:"spec,omitempty"`
	Status            NodeStatus `json:"status,omitempty"`
}

// Node address types.
const (
	NodeAddressCalicoNodeIP = "CalicoNodeIP"
	NodeAddressInternalIP   = "InternalIP"
	NodeAddressExternalIP   = "ExternalIP"
)

// NodeSpec is the spec of a Node.
type NodeSpec struct {
	// BGP is the node's BGP identity; nil when the node does not run BGP.
	BGP *NodeBGPSpec `json:"bgp,omitempty"`
	// IPv4VXLANTunnelAddr is the address of the IPv4 VXLAN device.
	IPv4VXLANTunnelAddr string `json:"ipv4VXLANTunnelAddr,omitempty"`
	// VXLANTunnelMACAddr is the MAC of the IPv4 VXLAN device.
	VXLANTunnelMACAddr string `json:"vxlanTunnelMACAddr,omitempty"`
	// IPv6VXLANTunnelAddr is the address of the IPv6 VXLAN device.
	IPv6VXLANTunnelAddr string `json:"ipv6VXLANTunnelAddr,omitempty"`
	// VXLANTunnelMACAddrV6 is the MAC of the IPv6 VXLAN device.
	VXLANTunnelMACAddrV6 string `json:"vxlanTunnelMACAddrV6,omitempty"`
	// OrchRefs tie this node to orchestrator node objects.
	OrchRefs []OrchRef `json:"orchRefs,omitempty"`
	// Wireguard holds the node's WireGuard device addresses.
	Wireguard *NodeWireguardSpec `json:"wireguard,omitempty"`
	// Addresses are addresses at which the node can be reached.
	Addresses []NodeAddress `json:"addresses,omitempty"`
	// Interfaces lists the node's interfaces and their addresses.
	Interfaces []NodeInterface `json:"interfaces,omitempty"`
}

// NodeBGPSpec is a node's BGP identity.
type NodeBGPSpec struct {
	// ASNumber overrides the global AS for this node.
	ASNumber *ASNumber `json:"asNumber,omitempty"`
	// IPv4Address is the node's IPv4 address and subnet, e.g. 10.0.0.5/24.
	IPv4Address string `json:"ipv4Address,omitempty"`
	// IPv6Address is the node's IPv6 address and subnet.
	IPv6Address string `json:"ipv6Address,omitempty"`
	// IPv4IPIPTunnelAddr is the address of the IPIP device.
	IPv4IPIPTunnelAddr string `json:"ipv4IPIPTunnelAddr,omitempty"`
	// RouteReflectorClusterID, in IPv4 form, makes the node a route
	// reflector for that cluster.
	RouteReflectorClusterID string `json:"routeReflectorClusterID,omitempty"`
}

// NodeWireguardSpec holds WireGuard device addresses.
type NodeWireguardSpec struct {
	InterfaceIPv4Address string `json:"interfaceIPv4Address,omitempty"`
	InterfaceIPv6Address string `json:"interfaceIPv6Address,omitempty"`
}

// OrchRef names the node in an orchestrator ("k8s").
type OrchRef struct {
	NodeName     string `json:"nodeName,omitempty"`
	Orchestrator string `json:"orchestrator"`
}

// NodeAddress is one address of the node and where it came from.
type NodeAddress struct {
	Address string `json:"address"`
	Type    string `json:"type,omitempty"`
}

// NodeInterface is one host interface and its addresses.
type NodeInterface struct {
	Name      string   `json:"name,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
}

// NodeStatus is what the node reports about itself.
type NodeStatus struct {
	// WireguardPublicKey is the base64 IPv4 WireGuard public key.
	WireguardPublicKey string `json:"wireguardPublicKey,omitempty"`
	// WireguardPublicKeyV6 is the base64 IPv6 WireGuard public key.
	WireguardPublicKeyV6 string `json:"wireguardPublicKeyV6,omitempty"`
	// PodCIDRs mirrors the Kubernetes node's spec.podCIDRs.
	PodCIDRs []string `json:"podCIDRs,omitempty"`
}

// Default does nothing: the only upstream default, an empty status, is what
// the zero NodeStatus already encodes as ("status": {}).
func (r *Node) Default() {}

// Validate checks addresses (CIDR or IP of the right family), tunnel
// addresses, MACs, the route reflector cluster ID and WireGuard keys.
func (r *Node) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	s := &r.Spec
	if b := s.BGP; b != nil {
		nodeCIDRField(&v, "spec.bgp.ipv4Address", b.IPv4Address, 4)
		nodeCIDRField(&v, "spec.bgp.ipv6Address", b.IPv6Address, 6)
		ipFamilyField(&v, "spec.bgp.ipv4IPIPTunnelAddr", b.IPv4IPIPTunnelAddr, 4)
		if b.RouteReflectorClusterID != "" {
			ipFamilyField(&v, "spec.bgp.routeReflectorClusterID", b.RouteReflectorClusterID, 4)
		}
	}
	ipFamilyField(&v, "spec.ipv4VXLANTunnelAddr", s.IPv4VXLANTunnelAddr, 4)
	ipFamilyField(&v, "spec.ipv6VXLANTunnelAddr", s.IPv6VXLANTunnelAddr, 6)
	macField(&v, "spec.vxlanTunnelMACAddr", s.VXLANTunnelMACAddr)
	macField(&v, "spec.vxlanTunnelMACAddrV6", s.VXLANTunnelMACAddrV6)
	if w := s.Wireguard; w != nil {
		ipFamilyField(&v, "spec.wireguard.interfaceIPv4Address", w.InterfaceIPv4Address, 4)
		ipFamilyField(&v, "spec.wireguard.interfaceIPv6Address", w.InterfaceIPv6Address, 6)
	}
	for i, o := range s.OrchRefs {
		if o.Orchestrator == "" {
			v.Add(fmt.Sprintf("spec.orchRefs[%d].orchestrator", i), "", "orchestrator is required")
		}
	}
	for i, a := range s.Addresses {
		nodeCIDRField(&v, fmt.Sprintf("spec.addresses[%d].address", i), a.Address, 0)
	}
	for i, ifc := range s.Interfaces {
		f := fmt.Sprintf("spec.interfaces[%d]", i)
		if ifc.Name != "" && !IsInterfaceName(ifc.Name) {
			v.Add(f+".name", ifc.Name, "invalid interface name")
		}
		for j, a := range ifc.Addresses {
			nodeCIDRField(&v, fmt.Sprintf("%s.addresses[%d]", f, j), a, 0)
		}
	}
	wireguardKeyField(&v, "status.wireguardPublicKey", r.Status.WireguardPublicKey)
	wireguardKeyField(&v, "status.wireguardPublicKeyV6", r.Status.WireguardPublicKeyV6)
	for i, c := range r.Status.PodCIDRs {
		ValidateCIDR(&v, fmt.Sprintf("status.podCIDRs[%d]", i), c, false)
	}
	return v.Err()
}

// nodeCIDRField checks a non-empty "address/len" or bare address of the given
// family (0 for either).
func nodeCIDRField(v *Validator, field, value string, family int) {
	if value == "" {
		return
	}
	p, ok := ValidateCIDR(v, field, value, true)
	if !ok {
		return
	}
	a := p.Addr().Unmap()
	if (family == 4 && !a.Is4()) || (family == 6 && a.Is4()) {
		v.Add(field, value, fmt.Sprintf("must be an IPv%d address or CIDR", family))
	}
}

func macField(v *Validator, field, value string) {
	if value == "" {
		return
	}
	if _, err := net.ParseMAC(value); err != nil {
		v.Add(field, value, "invalid MAC address")
	}
}

func wireguardKeyField(v *Validator, field, value string) {
	if value == "" {
		return
	}
	if b, err := base64.StdEncoding.DecodeString(value); err != nil || len(b) != 32 {
		v.Add(field, value, "must be a base64-encoded 32-byte WireGuard key")
	}
}
