// Package agent is `calicoctl node run`: the node agent in-process. It
// registers the node, allocates its tunnel addresses, then keeps the
// kernel (routes, VXLAN peers, NAT) converged on what the datastore says,
// through the pure intent packages (node/routes, node/nat) and their thin
// kernel writers.
package agent

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/node/nat"
	"github.com/opencalico/calicoctl/node/routes"
	"github.com/opencalico/calicoctl/resources"
)

// Snapshot is the datastore state the dataplane is computed from.
type Snapshot struct {
	Routes routes.State
	NAT    nat.Desired
	// Local is this node's NodeInfo (zero if the node is missing).
	Local routes.NodeInfo
	// Encaps in use by enabled pools: IPIP, VXLAN (v4), VXLANv6.
	IPIP, VXLAN, VXLANv6 bool
	// Felix holds the FelixConfiguration parameters the dataplane uses
	// (without environment overrides: the agent applies those).
	Felix FelixSettings
}

// ReadSnapshot lists nodes, pools, blocks and workload endpoints and builds
// the intent inputs for node. Any read error fails the whole snapshot: the
// caller keeps the last good state rather than act on half a picture.
func ReadSnapshot(ctx context.Context, ds datastore.Interface, store ipam.Store, node string) (*Snapshot, error) {
	s := &Snapshot{Routes: routes.State{LocalNode: node, Nodes: map[string]routes.NodeInfo{}}}
	nodes, err := listAll(ctx, ds, "Node", "")
	if err != nil {
		return nil, err
	}
	for _, r := range nodes {
		n := r.(*resources.Node)
		s.Routes.Nodes[n.Name] = nodeInfo(n)
	}
	s.Local = s.Routes.Nodes[node]

	pools, err := listAll(ctx, ds, "IPPool", "")
	if err != nil {
		return nil, err
	}
	var poolCIDRs []netip.Prefix
	for _, r := range pools {
		p := r.(*resources.IPPool)
		cidr, err := netip.ParsePrefix(p.Spec.CIDR)
		if err != nil {
			continue // validation keeps these out; never act on garbage
		}
		cidr = cidr.Masked()
		pi := routes.PoolInfo{CIDR: cidr, IPIPMode: string(p.Spec.IPIPMode), VXLANMode: string(p.Spec.VXLANMode), Disabled: p.Spec.Disabled}
		s.Routes.Pools = append(s.Routes.Pools, pi)
		poolCIDRs = append(poolCIDRs, cidr)
		if p.Spec.NATOutgoing && !p.Spec.Disabled {
			s.NAT.MasqPools = append(s.NAT.MasqPools, cidr)
		}
		if !p.Spec.Disabled {
			s.IPIP = s.IPIP || encapOn(pi.IPIPMode)
			if cidr.Addr().Is4() {
				s.VXLAN = s.VXLAN || encapOn(pi.VXLANMode)
			} else {
				s.VXLANv6 = s.VXLANv6 || encapOn(pi.VXLANMode)
			}
		}
	}
	s.NAT.AllPools = poolCIDRs

	blocks, err := store.ListBlocks(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing IPAM blocks: %w", err)
	}
	owner := map[netip.Prefix]string{}
	for _, b := range blocks {
		host := ""
		if h, ok := strings.CutPrefix(b.Affinity, "host:"); ok {
			host = h
		}
		owner[b.CIDR] = host
		s.Routes.Blocks = append(s.Routes.Blocks, routes.BlockInfo{CIDR: b.CIDR, Node: host})
	}

	fcs, err := listAll(ctx, ds, "FelixConfiguration", "")
	if err != nil {
		return nil, err
	}
	var global, local *resources.FelixConfigurationSpec
	for _, r := range fcs {
		fc := r.(*resources.FelixConfiguration)
		switch fc.Name {
		case "default":
			global = &fc.Spec
		case "node." + node:
			local = &fc.Spec
		}
	}
	s.Felix, _ = EffectiveFelix(nil, global, local)

	weps, err := listAll(ctx, ds, "WorkloadEndpoint", "")
	if err != nil {
		return nil, err
	}
	for _, r := range weps {
		w := r.(*resources.WorkloadEndpoint)
		for _, n := range w.Spec.IPNetworks {
			p, err := netip.ParsePrefix(n)
			if err != nil {
				continue
			}
			host := hostPrefix(p.Addr())
			if w.Spec.Node == node {
				if w.Spec.InterfaceName != "" {
					s.Routes.Workloads = append(s.Routes.Workloads, routes.WorkloadRoute{Addr: host, Iface: w.Spec.InterfaceName})
				}
			} else if blockOwner(owner, p.Addr()) != w.Spec.Node {
				// Borrowed: in a block affine to another node (or none).
				s.Routes.Borrowed = append(s.Routes.Borrowed, routes.BlockInfo{CIDR: host, Node: w.Spec.Node})
			}
		}
		if w.Spec.Node == node {
			for _, nt := range w.Spec.IPNATs {
				in, err1 := netip.ParseAddr(nt.InternalIP)
				ext, err2 := netip.ParseAddr(nt.ExternalIP)
				if err1 == nil && err2 == nil {
					s.NAT.FloatingIPs = append(s.NAT.FloatingIPs, nat.FloatingNAT{Ext: ext, Int: in})
				}
			}
		}
	}
	return s, nil
}

func encapOn(mode string) bool { return mode == "Always" || mode == "CrossSubnet" }

func hostPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

func blockOwner(owner map[netip.Prefix]string, a netip.Addr) string {
	for cidr, host := range owner {
		if cidr.Contains(a) {
			return host
		}
	}
	return ""
}

func nodeInfo(n *resources.Node) routes.NodeInfo {
	ni := routes.NodeInfo{Name: n.Name, VXLANTunnelMACAddr: n.Spec.VXLANTunnelMACAddr, VXLANTunnelMACAddrV6: n.Spec.VXLANTunnelMACAddrV6}
	if b := n.Spec.BGP; b != nil {
		ni.IPv4, _ = netip.ParsePrefix(b.IPv4Address)
		ni.IPv6, _ = netip.ParsePrefix(b.IPv6Address)
		ni.IPv4IPIPTunnelAddr, _ = netip.ParseAddr(b.IPv4IPIPTunnelAddr)
	}
	ni.IPv4VXLANTunnelAddr, _ = netip.ParseAddr(n.Spec.IPv4VXLANTunnelAddr)
	ni.IPv6VXLANTunnelAddr, _ = netip.ParseAddr(n.Spec.IPv6VXLANTunnelAddr)
	if !ni.IPv4.IsValid() {
		// VXLAN-only nodes (backend vxlan/none) still carry addresses.
		for _, a := range n.Spec.Addresses {
			if p, err := parseAddrOrPrefix(a.Address); err == nil && p.Addr().Is4() {
				ni.IPv4 = p
				break
			}
		}
	}
	return ni
}

func parseAddrOrPrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// listAll lists one kind; the backend pages internally (etcd in pages of
// 5,000 keys, Kubernetes with limit/continue) and returns everything.
func listAll(ctx context.Context, ds datastore.Interface, kind, ns string) ([]resources.Resource, error) {
	res, err := ds.List(ctx, datastore.ListOptions{Kind: kind, Namespace: ns})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", kind, err)
	}
	return res.Items, nil
}
