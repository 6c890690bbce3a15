package cni

import (
	"context"
	"net"
	"net/netip"
)

// HostMAC is the MAC of every host-side workload interface.
var HostMAC = net.HardwareAddr{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}

// Gateways the container routes through: the host answers ARP for the IPv4
// one by proxy ARP; the IPv6 one is the link-local address the kernel derives
// from HostMAC on the host side.
var (
	GatewayIPv4 = netip.MustParseAddr("169.254.1.1")
	GatewayIPv6 = netip.MustParseAddr("fe80::ecee:eeff:feee:eeee")
)

// RouteProtocolBoot is the protocol of workload routes (Felix's default
// deviceRouteProtocol, 3 = boot).
const RouteProtocolBoot = 3

// Endpoint is what the dataplane wires for one container.
type Endpoint struct {
	HostIf      string // host-side veth, e.g. cali1234567890a
	ContainerIf string // CNI_IFNAME
	Netns       string // CNI_NETNS path
	MTU         int
	NumQueues   int
	// ContainerMAC, when set, is the container side's MAC (hwAddr annotation).
	ContainerMAC net.HardwareAddr
	// IPs are the container's addresses as /32 or /128.
	IPs []netip.Prefix
}

// Dataplane creates and removes workload interfaces.
type Dataplane interface {
	// Add creates the veth pair, addresses, routes and sysctls, replacing a
	// leftover host interface of the same name. It returns the container
	// side's MAC.
	Add(ctx context.Context, ep Endpoint) (mac string, err error)
	// Del removes the pair; an interface or namespace already gone is success.
	Del(ctx context.Context, hostIf, netns, containerIf string) error
	// Check verifies that the pair and the addresses are in place.
	Check(ctx context.Context, ep Endpoint) error
}
