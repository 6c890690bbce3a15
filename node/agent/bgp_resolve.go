package agent

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/opencalico/calicoctl/internal/netlinksafe"
	"github.com/opencalico/calicoctl/node/bgp"
)

// NextHopResolver says which gateway to program for a next hop that is not
// on a connected subnet (a node on another rack, reached through the
// fabric). ok false: no route to it.
type NextHopResolver func(nh netip.Addr) (gw netip.Addr, ok bool)

// kernelResolver snapshots the kernel's main table once and resolves next
// hops through it, as BIRD's "gateway recursive" does through its IGP
// table: routes made from BGP paths (ours, protocol bgp.RouteProtocol) are
// never used, so a learned prefix that happens to cover a next hop (a
// service range over the node subnets, a learned default route) cannot
// make the resolution depend on BGP itself and stick after that route has
// gone. A failed dump resolves nothing (those routes wait for the next try).
func kernelResolver() NextHopResolver {
	rs, err := netlinksafe.Dump(func() ([]netlink.Route, error) {
		return netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		slog.Warn("bgp: listing kernel routes to resolve next hops", "error", err)
		return func(netip.Addr) (netip.Addr, bool) { return netip.Addr{}, false }
	}
	return func(nh netip.Addr) (netip.Addr, bool) { return resolveThrough(rs, nh) }
}

// resolveThrough is the longest-prefix match for nh among the unicast
// routes not made from BGP paths: their gateway (the first of a multipath
// route), or nh itself when the match is a link route.
func resolveThrough(rs []netlink.Route, nh netip.Addr) (netip.Addr, bool) {
	best, bestBits := -1, -1
	for i, r := range rs {
		if r.Protocol == bgp.RouteProtocol || (r.Type != 0 && r.Type != unix.RTN_UNICAST) {
			continue
		}
		dst := routeDst(r, nh.Is4())
		if !dst.IsValid() || !dst.Contains(nh) || dst.Bits() <= bestBits {
			continue
		}
		best, bestBits = i, dst.Bits()
	}
	if best < 0 {
		return netip.Addr{}, false
	}
	r := rs[best]
	gw := r.Gw
	if gw == nil && len(r.MultiPath) > 0 {
		gw = r.MultiPath[0].Gw
	}
	if a, ok := netip.AddrFromSlice(gw); ok && gw != nil {
		return a.Unmap(), true
	}
	return nh, true
}

// routeDst is a route's destination; nil is the default route of the
// family asked for.
func routeDst(r netlink.Route, v4 bool) netip.Prefix {
	if r.Dst == nil {
		if routeIs4(r) != v4 {
			return netip.Prefix{}
		}
		if v4 {
			return netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		}
		return netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	a, ok := netip.AddrFromSlice(r.Dst.IP)
	if !ok {
		return netip.Prefix{}
	}
	a = a.Unmap()
	if a.Is4() != v4 {
		return netip.Prefix{}
	}
	ones, _ := r.Dst.Mask.Size()
	return netip.PrefixFrom(a, ones)
}

// kernelRouteChanges signals every change to the kernel's routes that is
// not one of ours from BGP (a new default route, a static route to another
// rack, an interface going down), so that resolved next hops follow them.
// Nothing is sent when the subscription cannot be made.
func kernelRouteChanges(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	updates := make(chan netlink.RouteUpdate, 64)
	if err := netlink.RouteSubscribeWithOptions(updates, ctx.Done(), netlink.RouteSubscribeOptions{
		ErrorCallback: func(err error) { slog.Debug("bgp: route subscription", "error", err) },
	}); err != nil {
		slog.Warn("bgp: cannot follow kernel route changes; next hops are resolved when BGP routes change", "error", err)
		return out
	}
	go func() {
		for u := range updates {
			if u.Protocol == bgp.RouteProtocol || (u.Table != 0 && u.Table != unix.RT_TABLE_MAIN) {
				continue
			}
			select {
			case out <- struct{}{}:
			default:
			}
		}
	}()
	return out
}

// routeIs4 says whether a default route (no destination) is IPv4: from the
// family the kernel reported, else from its gateway.
func routeIs4(r netlink.Route) bool {
	switch r.Family {
	case netlink.FAMILY_V4:
		return true
	case netlink.FAMILY_V6:
		return false
	}
	gw := r.Gw
	if gw == nil && len(r.MultiPath) > 0 {
		gw = r.MultiPath[0].Gw
	}
	return gw == nil || gw.To4() != nil
}
