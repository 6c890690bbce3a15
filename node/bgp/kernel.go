package bgp

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/opencalico/calicoctl/node/routes"
)

// RouteInput is what KernelRoutes needs besides the learned paths.
type RouteInput struct {
	// NodeIPv4 and NodeIPv6 are this node's BGP addresses with their
	// subnets (IPIP CrossSubnet compares next hops with the IPv4 subnet).
	NodeIPv4, NodeIPv6 netip.Prefix
	Pools              []routes.PoolInfo
	// LocalBlocks are the blocks affine to this node.
	LocalBlocks []netip.Prefix
	// Reject is Desired.Reject: no learned route inside these.
	Reject []netip.Prefix
	// Peers are Desired.Peers: a peer with ReachableBy gets a host route
	// through that gateway.
	Peers []Peer
	// Protocol marks the routes (0 = RouteProtocol).
	Protocol int
}

// RouteInputFor builds KernelRoutes' input from the planner's input and
// its result.
func RouteInputFor(in Input, d Desired) RouteInput {
	p := newPlanner(in)
	ri := RouteInput{LocalBlocks: p.ownBlocks(), Reject: d.Reject, Peers: d.Peers}
	if p.local != nil {
		ri.NodeIPv4, ri.NodeIPv6 = p.local.v4, p.local.v6
	}
	for _, pl := range p.pools {
		ri.Pools = append(ri.Pools, routes.PoolInfo{CIDR: pl.cidr, IPIPMode: pl.ipip, VXLANMode: pl.vxlan, Disabled: pl.disabled})
	}
	return ri
}

// KernelRoutes turns the speaker's learned best paths into kernel routes
// as upstream's BIRD kernel export does (spec §3): nothing inside Reject,
// none for our own blocks or via ourselves, none inside a VXLAN pool (the
// plan programs those), through tunl0 inside an IPIP pool (CrossSubnet:
// only when the next hop is outside our subnet), plain via the next hop
// elsewhere, outside every pool included (a ToR's default route). For a
// prefix learned with several next hops the lowest one is used. Peers'
// reachableBy host routes come first and win. The result is sorted by
// destination.
func KernelRoutes(learned []Learned, in RouteInput) []routes.Route {
	proto := cmp.Or(in.Protocol, RouteProtocol)
	byDst := map[netip.Prefix]routes.Route{}
	for _, pr := range in.Peers {
		if !pr.ReachableBy.IsValid() || !pr.Address.IsValid() || pr.ReachableBy.Is4() != pr.Address.Is4() {
			continue
		}
		dst := netip.PrefixFrom(pr.Address, pr.Address.BitLen())
		if _, dup := byDst[dst]; !dup {
			byDst[dst] = routes.Route{Dst: dst, Gw: pr.ReachableBy, Protocol: proto}
		}
	}
	sorted := slices.Clone(learned)
	slices.SortFunc(sorted, func(a, b Learned) int {
		return cmp.Or(routes.ComparePrefix(a.Prefix.Masked(), b.Prefix.Masked()), a.NextHop.Compare(b.NextHop))
	})
	for _, l := range sorted {
		r, ok := kernelRoute(l, in, proto)
		if !ok {
			continue
		}
		if _, dup := byDst[r.Dst]; !dup {
			byDst[r.Dst] = r
		}
	}
	out := make([]routes.Route, 0, len(byDst))
	for _, r := range byDst {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b routes.Route) int { return routes.ComparePrefix(a.Dst, b.Dst) })
	return out
}

// kernelRoute is the route for one learned path; false when none belongs
// in the kernel.
func kernelRoute(l Learned, in RouteInput, proto int) (routes.Route, bool) {
	dst, nh := l.Prefix.Masked(), l.NextHop.Unmap()
	if !dst.IsValid() || !nh.IsValid() || nh.IsUnspecified() || nh.Is4() != dst.Addr().Is4() {
		return routes.Route{}, false
	}
	if nh == in.NodeIPv4.Addr() || nh == in.NodeIPv6.Addr() {
		return routes.Route{}, false
	}
	if slices.Contains(in.LocalBlocks, dst) || slices.ContainsFunc(in.Reject, func(r netip.Prefix) bool { return contains(r, dst) }) {
		return routes.Route{}, false
	}
	direct := routes.Route{Dst: dst, Gw: nh, Protocol: proto}
	pool, ok := routes.PoolFor(in.Pools, dst)
	if !ok {
		return direct, true
	}
	if pool.VXLANMode.On() {
		return routes.Route{}, false
	}
	sameSubnet := in.NodeIPv4.IsValid() && in.NodeIPv4.Masked().Contains(nh)
	if dst.Addr().Is4() && pool.IPIPMode.Encaps(sameSubnet) {
		return routes.Route{Dst: dst, Dev: routes.DeviceIPIP, Gw: nh, OnLink: true, Protocol: proto}, true
	}
	return direct, true
}
