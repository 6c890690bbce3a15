package startup

import (
	"net/netip"

	"github.com/opencalico/calicoctl/resources"
)

// TunnelsSettled says, from datastore state already in memory, whether
// EnsureTunnelAddresses would find nothing to do for node: every tunnel a
// pool needs has an address in such a pool that handleOf says is allocated
// to the node's tunnel handle (handleOf: the handle of an address's
// allocation, "" when unallocated or unknown), no tunnel is recorded that no pool needs, and the
// VXLAN MAC is set exactly when a VXLAN address is. The agent calls
// EnsureTunnelAddresses (which reads and writes the datastore) only when
// this is false, so an idle agent sends nothing.
func TunnelsSettled(node *resources.Node, pools []*resources.IPPool, handleOf func(netip.Addr) string) bool {
	if node == nil {
		return false
	}
	vxlan := false
	for _, t := range tunnels {
		var wanted []netip.Prefix
		for _, p := range pools {
			cidr, err := netip.ParsePrefix(p.Spec.CIDR)
			if err != nil || !cidr.Addr().Is4() || p.Spec.Disabled || !t.used(p) || !selects(p, node) || !allowsTunnel(p) {
				continue
			}
			wanted = append(wanted, cidr)
		}
		raw := t.get(node)
		if len(wanted) == 0 {
			if raw != "" {
				return false
			}
			continue
		}
		cur, err := netip.ParseAddr(raw)
		if err != nil || !inAny(wanted, cur) || handleOf(cur) != TunnelHandle(t.typ, node.Name) {
			return false
		}
		if t.typ == TypeVXLAN {
			vxlan = true
		}
	}
	return vxlan == (node.Spec.VXLANTunnelMACAddr != "")
}
