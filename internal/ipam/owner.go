package ipam

import (
	"fmt"
	"strings"
)

// This file says who an allocation belongs to, and so whether `ipam check`
// may call it leaked when nothing uses its address. Only owners whose use can
// be observed are ever leaks: a container (a workload endpoint should carry
// the address) and a node's tunnel device (the Node should record it). An
// address assigned on purpose (by `ipam assign`, or under any handle that is
// not a container's) is used by something IPAM cannot see, so it never is.

// AttrOwner records who assigned an address on purpose; `ipam assign` sets
// it to OwnerIPAMAssign. An allocation with this attribute is never a leak.
const (
	AttrOwner       = "owner"
	OwnerIPAMAssign = "calicoctl ipam assign"
)

// Leak rules: why an allocation nothing uses is a leak. A release from an
// `ipam check` report frees an address only if the same rule still holds.
const (
	// LeakWorkloadGone: a container's (pod's) address that no workload
	// endpoint uses.
	LeakWorkloadGone = "workload-gone"
	// LeakTunnelGone: a node tunnel address that no node records.
	LeakTunnelGone = "tunnel-gone"
	// LeakNoOwner: an allocation with neither handle nor owner attributes.
	LeakNoOwner = "no-owner"
)

// tunnelTypes are the `type` attributes of tunnel addresses, and
// tunnelHandlePrefixes the handles the node agent gives them.
var (
	tunnelTypes = map[string]bool{
		TypeIPIPTunnel: true, TypeVXLANTunnel: true, TypeVXLANV6Tunnel: true,
		TypeWireguardTunnel: true, "wireguardV6TunnelAddress": true,
	}
	tunnelHandlePrefixes = []string{"ipip-tunnel-addr-", "vxlan-tunnel-addr-", "vxlan-v6-tunnel-addr-",
		"wireguard-tunnel-addr-", "wireguard-v6-tunnel-addr-"}
)

// IsTunnelHandle reports whether a handle is one the node agent gives a
// tunnel address (IPIP, VXLAN, WireGuard).
func IsTunnelHandle(h string) bool { return hasAnyPrefix(h, tunnelHandlePrefixes) }

// IsContainerHandle reports whether a handle is one the CNI plugin makes for
// a container: "<network>.<containerID>", the container ID being the
// runtime's hex ID (12 or more hex digits), or any ID under upstream's
// default network name "k8s-pod-network".
func IsContainerHandle(h string) bool {
	if strings.HasPrefix(h, "k8s-pod-network.") && len(h) > len("k8s-pod-network.") {
		return true
	}
	i := strings.LastIndexByte(h, '.')
	if i <= 0 {
		return false
	}
	id := h[i+1:]
	if len(id) < 12 {
		return false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// UnusedVerdict says what an allocation that nothing uses is: rule is the
// leak rule it breaks ("" when it is not a leak, because it was assigned on
// purpose), and reason a sentence for the operator.
func UnusedVerdict(handle string, attrs map[string]string) (rule, reason string) {
	ctx := ""
	if handle != "" {
		ctx = fmt.Sprintf("handle %q", handle)
	}
	switch {
	case attrs[AttrOwner] != "":
		return "", fmt.Sprintf("assigned on purpose by %s; never a leak", attrs[AttrOwner])
	case tunnelTypes[attrs[AttrType]] || hasAnyPrefix(handle, tunnelHandlePrefixes):
		typ := attrs[AttrType]
		if typ == "" {
			typ = "tunnel address"
		}
		return LeakTunnelGone, fmt.Sprintf("leaked: node %q does not use it as its %s (%s)", attrs[AttrNode], typ, ctx)
	case attrs[AttrPod] != "" || attrs[AttrVMIName] != "":
		name := attrs[AttrPod]
		if name == "" {
			name = attrs[AttrVMIName]
		}
		return LeakWorkloadGone, fmt.Sprintf("leaked: no workload endpoint uses it (pod %s/%s, %s)", attrs[AttrNamespace], name, ctx)
	case handle == "":
		return LeakNoOwner, "leaked: it has no handle and no owner attributes, and no workload or node uses it"
	case IsContainerHandle(handle):
		return LeakWorkloadGone, fmt.Sprintf("leaked: no workload endpoint uses it (container %s)", ctx)
	}
	return "", fmt.Sprintf("assigned on purpose: %s is not a container's; never a leak", ctx)
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
