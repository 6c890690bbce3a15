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

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/node/nat"
	"github.com/opencalico/calicoctl/node/plan"
	"github.com/opencalico/calicoctl/node/routes"
	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

// Snapshot is the datastore state the dataplane is computed from (the input
// of plan.Plan). Its Felix settings come without environment overrides: the
// agent applies those.
type Snapshot = plan.Snapshot

// ReadSnapshot lists nodes, pools, blocks and workload endpoints and builds
// the intent inputs for node. Any read error fails the whole snapshot: the
// caller keeps the last good state rather than act on half a picture. The
// agent itself follows the datastore through node/state and builds the same
// snapshot with BuildSnapshot.
func ReadSnapshot(ctx context.Context, ds datastore.Interface, store ipam.Store, node string) (*Snapshot, error) {
	m := state.NewModel()
	nodes, err := listAll(ctx, ds, "Node", "")
	if err != nil {
		return nil, err
	}
	for _, r := range nodes {
		m.SetNode(r.(*resources.Node))
	}
	pools, err := listAll(ctx, ds, "IPPool", "")
	if err != nil {
		return nil, err
	}
	for _, r := range pools {
		m.SetPool(r.(*resources.IPPool))
	}
	blocks, err := store.ListBlocks(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing IPAM blocks: %w", err)
	}
	for _, b := range blocks {
		m.SetBlock(b)
	}
	fcs, err := listAll(ctx, ds, "FelixConfiguration", "")
	if err != nil {
		return nil, err
	}
	for _, r := range fcs {
		m.SetFelixConfiguration(r.(*resources.FelixConfiguration))
	}
	weps, err := listAll(ctx, ds, "WorkloadEndpoint", "")
	if err != nil {
		return nil, err
	}
	for _, r := range weps {
		m.SetWorkloadEndpoint(r.(*resources.WorkloadEndpoint))
	}
	return BuildSnapshot(m, node), nil
}

// BuildSnapshot computes the intent inputs for node from the datastore
// state in m (a pure function of it). The agent keeps the same inputs up to
// date one change at a time (planInput, incremental.go); BuildSnapshot is
// what that must always equal.
func BuildSnapshot(m *state.Model, node string) *Snapshot {
	g := globalsOf(m, node)
	s := &Snapshot{Routes: routes.State{LocalNode: node, Nodes: make(map[string]routes.NodeInfo, len(m.Nodes())), Pools: g.Pools},
		NAT: nat.Desired{MasqPools: g.MasqPools, AllPools: g.AllPools}, Felix: g.Felix}
	for name, n := range m.Nodes() {
		s.Routes.Nodes[name] = nodeInfo(n)
	}
	s.Local = s.Routes.Nodes[node]
	s.IPIP, s.VXLAN, s.VXLANv6 = plan.EncapsInUse(s.Routes.Pools)
	for _, b := range m.Blocks() {
		s.Routes.Blocks = append(s.Routes.Blocks, routes.BlockInfo{CIDR: b.CIDR, Node: b.Host()})
	}
	for _, w := range m.WorkloadEndpoints() {
		e := endpointOf(m, w, node)
		s.Routes.Workloads = append(s.Routes.Workloads, e.Workloads...)
		s.Routes.Borrowed = append(s.Routes.Borrowed, e.Borrowed...)
		s.NAT.FloatingIPs = append(s.NAT.FloatingIPs, e.FloatingIPs...)
	}
	plan.SortSnapshot(s)
	return s
}

// globalsOf is what every route of node depends on: the pools (in name
// order), the NAT pool sets and the Felix settings from the datastore.
func globalsOf(m *state.Model, node string) plan.Globals {
	var g plan.Globals
	for _, p := range m.Pools() {
		cidr, err := netip.ParsePrefix(p.Spec.CIDR)
		if err != nil {
			continue // validation keeps these out; never act on garbage
		}
		cidr = cidr.Masked()
		g.Pools = append(g.Pools, routes.PoolInfo{CIDR: cidr, IPIPMode: p.Spec.IPIPMode, VXLANMode: p.Spec.VXLANMode, Disabled: p.Spec.Disabled})
		g.AllPools = append(g.AllPools, cidr)
		if p.Spec.NATOutgoing && !p.Spec.Disabled {
			g.MasqPools = append(g.MasqPools, cidr)
		}
	}
	var global, local *resources.FelixConfigurationSpec
	if fc := m.FelixConfiguration("default"); fc != nil {
		global = &fc.Spec
	}
	if fc := m.FelixConfiguration("node." + node); fc != nil {
		local = &fc.Spec
	}
	g.Felix, _ = EffectiveFelix(nil, global, local)
	return g
}

// endpointOf is what workload endpoint w contributes to node's plan: its
// routes and floating IPs when local, its borrowed addresses (in a block
// affine to another node, or to none) when remote.
func endpointOf(m *state.Model, w *state.Endpoint, node string) plan.Endpoint {
	var e plan.Endpoint
	local := w.Node == node
	for _, p := range w.Networks {
		host := hostPrefix(p.Addr())
		if local {
			if w.InterfaceName != "" {
				e.Workloads = append(e.Workloads, routes.WorkloadRoute{Addr: host, Iface: w.InterfaceName})
			}
		} else if blockOwner(m, p.Addr()) != w.Node {
			e.Borrowed = append(e.Borrowed, routes.BlockInfo{CIDR: host, Node: w.Node})
		}
	}
	if local {
		for _, nt := range w.NATs {
			e.FloatingIPs = append(e.FloatingIPs, nat.FloatingNAT{Ext: nt.External, Int: nt.Internal})
		}
	}
	return e
}

func hostPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

// blockOwner is the node the block containing a is affine to ("" for none).
func blockOwner(m *state.Model, a netip.Addr) string {
	if b := m.BlockContaining(a); b != nil {
		return b.Host()
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
