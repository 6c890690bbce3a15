package startup

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/resources"
	"github.com/opencalico/calicoctl/resources/selector"
)

// Tunnel address types, as upstream records them in the allocation's
// "type" attribute (so `ipam show --ip` names them).
const (
	TypeIPIP  = ipam.TypeIPIPTunnel
	TypeVXLAN = ipam.TypeVXLANTunnel
)

// TunnelHandle is upstream's IPAM handle for a node's tunnel address.
func TunnelHandle(typ, node string) string {
	if typ == TypeIPIP {
		return "ipip-tunnel-addr-" + node
	}
	return "vxlan-tunnel-addr-" + node
}

// Tunnels is what EnsureTunnelAddresses settled on (invalid = none).
type Tunnels struct {
	IPIP, VXLAN netip.Addr
	VXLANMAC    string
}

// tunnel describes one tunnel kind's place on the Node.
type tunnel struct {
	typ  string
	get  func(*resources.Node) string
	set  func(*resources.Node, string)
	used func(*resources.IPPool) bool
}

var tunnels = []tunnel{
	{
		typ: TypeIPIP,
		get: func(n *resources.Node) string {
			if n.Spec.BGP == nil {
				return ""
			}
			return n.Spec.BGP.IPv4IPIPTunnelAddr
		},
		set: func(n *resources.Node, v string) {
			if n.Spec.BGP == nil {
				if v == "" {
					return
				}
				n.Spec.BGP = &resources.NodeBGPSpec{}
			}
			n.Spec.BGP.IPv4IPIPTunnelAddr = v
		},
		used: func(p *resources.IPPool) bool {
			return p.Spec.IPIPMode.On()
		},
	},
	{
		typ: TypeVXLAN,
		get: func(n *resources.Node) string { return n.Spec.IPv4VXLANTunnelAddr },
		set: func(n *resources.Node, v string) { n.Spec.IPv4VXLANTunnelAddr = v },
		used: func(p *resources.IPPool) bool {
			return p.Spec.VXLANMode.On()
		},
	},
}

// EnsureTunnelAddresses gives the node an IPIP and/or VXLAN tunnel address
// from the IPv4 pools that use that encapsulation and select the node,
// keeps an address that is still allocated to the node's handle, releases
// addresses no pool needs any more, and records the result on the Node
// (compare-and-swap, retried on conflict). ipipUsable=false (a kernel
// without IPIP) still allocates the IPIP address, so other nodes can route
// to this one once it moves to a kernel that has it; the dataplane decides.
func EnsureTunnelAddresses(ctx context.Context, c *client.Client, alloc *ipam.Allocator, nodeName string, log *slog.Logger) (Tunnels, error) {
	if log == nil {
		log = slog.Default()
	}
	var out Tunnels
	for attempt := 0; ; attempt++ {
		r, err := c.Get(ctx, nodeKey(nodeName))
		if err != nil {
			return out, fmt.Errorf("reading Node %q: %w", nodeName, err)
		}
		node := r.(*resources.Node)
		before := resources.DeepCopy(node)
		pools, err := c.List(ctx, datastore.ListOptions{Kind: "IPPool"})
		if err != nil {
			return out, fmt.Errorf("listing IP pools: %w", err)
		}
		for _, t := range tunnels {
			addr, err := ensureTunnel(ctx, alloc, node, pools.Items, t, log)
			if err != nil {
				return out, err
			}
			if t.typ == TypeIPIP {
				out.IPIP = addr
			} else {
				out.VXLAN = addr
			}
		}
		if out.VXLAN.IsValid() && node.Spec.VXLANTunnelMACAddr == "" {
			node.Spec.VXLANTunnelMACAddr = randomMAC()
		}
		if !out.VXLAN.IsValid() {
			node.Spec.VXLANTunnelMACAddr = ""
		}
		out.VXLANMAC = node.Spec.VXLANTunnelMACAddr
		if equalObjects(before, node) {
			return out, nil
		}
		if _, err := c.Update(ctx, node); err != nil {
			if errors.Is(err, datastore.ErrConflict) && attempt < maxConflictRetries {
				continue
			}
			return out, fmt.Errorf("recording tunnel addresses on Node %q: %w", nodeName, err)
		}
		log.Info("tunnel addresses", "node", nodeName, "ipip", out.IPIP, "vxlan", out.VXLAN, "vxlanMAC", out.VXLANMAC)
		return out, nil
	}
}

// ensureTunnel handles one tunnel kind and updates node in memory.
func ensureTunnel(ctx context.Context, alloc *ipam.Allocator, node *resources.Node, pools []resources.Resource, t tunnel, log *slog.Logger) (netip.Addr, error) {
	handle := TunnelHandle(t.typ, node.Name)
	var wanted []netip.Prefix
	for _, r := range pools {
		p := r.(*resources.IPPool)
		cidr, err := netip.ParsePrefix(p.Spec.CIDR)
		if err != nil || !cidr.Addr().Is4() || p.Spec.Disabled || !t.used(p) || !selects(p, node) || !allowsTunnel(p) {
			continue
		}
		wanted = append(wanted, cidr)
	}
	cur, _ := netip.ParseAddr(t.get(node))
	if len(wanted) == 0 {
		if err := alloc.ReleaseByHandle(ctx, handle); err != nil && !errors.Is(err, datastore.ErrNotFound) {
			return netip.Addr{}, fmt.Errorf("releasing the %s of %s: %w", t.typ, node.Name, err)
		}
		if cur.IsValid() {
			log.Info("released tunnel address: no pool needs it", "type", t.typ, "address", cur)
		}
		t.set(node, "")
		return netip.Addr{}, nil
	}
	if cur.IsValid() && inAny(wanted, cur) {
		_, h, err := alloc.GetAssignmentAttributes(ctx, cur)
		if err == nil && h != nil && *h == handle {
			return cur, nil
		}
		var outside *ipam.NotInPoolError
		if err != nil && !errors.Is(err, datastore.ErrNotFound) && !errors.As(err, &outside) {
			// A datastore blink must not move the node's tunnel address.
			return netip.Addr{}, fmt.Errorf("checking the %s %s of %s: %w", t.typ, cur, node.Name, err)
		}
	}
	// Stale, foreign or missing: start from a clean handle.
	if err := alloc.ReleaseByHandle(ctx, handle); err != nil && !errors.Is(err, datastore.ErrNotFound) {
		return netip.Addr{}, fmt.Errorf("releasing the old %s of %s: %w", t.typ, node.Name, err)
	}
	res, err := alloc.AutoAssign(ctx, ipam.AutoAssignArgs{
		Num4: 1, HandleID: handle, Hostname: node.Name, IPv4Pools: wanted, IntendedUse: ipam.UseTunnel,
		Attrs: map[string]string{ipam.AttrNode: node.Name, ipam.AttrType: t.typ},
	})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("allocating the %s of %s: %w", t.typ, node.Name, err)
	}
	if len(res.IPv4) == 0 {
		return netip.Addr{}, fmt.Errorf("allocating the %s of %s: no address returned", t.typ, node.Name)
	}
	a := res.IPv4[0].Addr()
	t.set(node, a.String())
	log.Info("allocated tunnel address", "type", t.typ, "address", a)
	return a, nil
}

func selects(p *resources.IPPool, n *resources.Node) bool {
	s := p.Spec.NodeSelector
	if s == "" {
		return true
	}
	sel, err := selector.Parse(s)
	if err != nil {
		return false
	}
	return sel.Evaluate(n.Labels)
}

func allowsTunnel(p *resources.IPPool) bool {
	if len(p.Spec.AllowedUses) == 0 {
		return true
	}
	for _, u := range p.Spec.AllowedUses {
		if string(u) == ipam.UseTunnel {
			return true
		}
	}
	return false
}

func inAny(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// randomMAC is a random locally administered unicast MAC.
func randomMAC() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	b[0] = (b[0] | 0x02) &^ 0x01
	return net.HardwareAddr(b).String()
}
