// Package routes computes the routes, VXLAN forwarding entries and neighbor
// entries a node needs from datastore state (a pure function), and keeps the
// kernel's main routing table in line with them (the Syncer).
package routes

import (
	"cmp"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/opencalico/calicoctl/resources"
)

// Device names and protocol numbers shared with upstream Felix (spec §6.2).
const (
	DeviceIPIP    = "tunl0"
	DeviceVXLAN   = "vxlan.calico"
	DeviceVXLANv6 = "vxlan-v6.calico"

	// ProtocolCluster marks blackhole and remote-block routes ("proto 80").
	ProtocolCluster = 80
	// ProtocolBoot is deviceRouteProtocol's default, used for workload routes.
	ProtocolBoot = 3
)

// RouteType says whether a route forwards or drops.
type RouteType int

const (
	// Unicast forwards via a device and/or gateway.
	Unicast RouteType = iota
	// Blackhole drops silently (the route for a local affine block).
	Blackhole
)

func (t RouteType) String() string {
	if t == Blackhole {
		return "blackhole"
	}
	return "unicast"
}

// Scope is a route scope as the kernel numbers it.
type Scope uint8

const (
	// ScopeUniverse is the scope of gateway and blackhole routes.
	ScopeUniverse Scope = 0
	// ScopeLink is the scope of a directly attached destination.
	ScopeLink Scope = 253
)

// NodeInfo is the part of a Node resource route intent needs.
type NodeInfo struct {
	Name string
	// IPv4 and IPv6 are the node addresses with their subnet (10.0.0.5/24).
	IPv4 netip.Prefix
	IPv6 netip.Prefix

	IPv4IPIPTunnelAddr  netip.Addr
	IPv4VXLANTunnelAddr netip.Addr
	IPv6VXLANTunnelAddr netip.Addr
	VXLANTunnelMACAddr  string
	// VXLANTunnelMACAddrV6 is the MAC of the node's vxlan-v6.calico device.
	VXLANTunnelMACAddrV6 string
}

// PoolInfo is the part of an IPPool route intent needs.
type PoolInfo struct {
	CIDR      netip.Prefix
	IPIPMode  resources.EncapMode
	VXLANMode resources.EncapMode
	Disabled  bool
}

// BlockInfo is an IPAM block (or a borrowed single address) and the node it
// routes to: the block's affinity host, or the node using a borrowed address.
// Node is "" for a block without affinity.
type BlockInfo struct {
	CIDR netip.Prefix
	Node string
}

// WorkloadRoute is a local workload address and its host-side interface.
type WorkloadRoute struct {
	Addr  netip.Prefix
	Iface string
}

// State is everything route intent is computed from.
type State struct {
	LocalNode string
	Nodes     map[string]NodeInfo
	Pools     []PoolInfo
	Blocks    []BlockInfo
	Workloads []WorkloadRoute
	// Borrowed are workload addresses (/32 or /128) in use on a node other
	// than their block's affinity host; Node is the node using them.
	Borrowed []BlockInfo
}

// Options tune Compute. The zero value gives upstream's defaults.
type Options struct {
	// ClusterProtocol is the protocol of blackhole and remote routes (80).
	ClusterProtocol int
	// WorkloadProtocol is the protocol of workload routes (3, boot).
	WorkloadProtocol int
	// Logger receives a debug line for every block left without a route.
	Logger *slog.Logger
}

// Route is one desired route in the main table.
type Route struct {
	Dst      netip.Prefix
	Type     RouteType
	Dev      string // "" lets the kernel pick the device for Gw
	Gw       netip.Addr
	OnLink   bool
	Protocol int
	Scope    Scope
}

func (r Route) String() string {
	var b strings.Builder
	if r.Type == Blackhole {
		b.WriteString("blackhole ")
	}
	b.WriteString(r.Dst.String())
	if r.Gw.IsValid() {
		b.WriteString(" via " + r.Gw.String())
	}
	if r.Dev != "" {
		b.WriteString(" dev " + r.Dev)
	}
	if r.Protocol != 0 {
		b.WriteString(" proto " + strconv.Itoa(r.Protocol))
	}
	if r.Scope == ScopeLink {
		b.WriteString(" scope link")
	}
	if r.OnLink {
		b.WriteString(" onlink")
	}
	return b.String()
}

// FDBEntry sends frames for a remote VTEP's MAC to the remote node's address.
type FDBEntry struct {
	MAC string // canonical lower-case form
	Dst netip.Addr
	Dev string
}

// NeighEntry resolves a remote tunnel address to the remote VTEP's MAC.
type NeighEntry struct {
	IP  netip.Addr
	MAC string
	Dev string
}

// Desired is the computed intent.
type Desired struct {
	Routes    []Route
	FDB       []FDBEntry
	Neighbors []NeighEntry
}

// Route precedence when two sources want the same destination.
const (
	rankRemote = iota
	rankBorrowed
	rankBlackhole
	rankWorkload
)

type computer struct {
	s      State
	opt    Options
	local  NodeInfo
	routes map[netip.Prefix]rankedRoute
	fdb    map[FDBEntry]struct{}
	neigh  map[NeighEntry]struct{}
}

type rankedRoute struct {
	r    Route
	rank int
}

// Compute derives the routes, FDB and neighbor entries for s.LocalNode.
func Compute(s State, opt Options) Desired {
	if opt.ClusterProtocol == 0 {
		opt.ClusterProtocol = ProtocolCluster
	}
	if opt.WorkloadProtocol == 0 {
		opt.WorkloadProtocol = ProtocolBoot
	}
	c := &computer{
		s:      s,
		opt:    opt,
		local:  s.Nodes[s.LocalNode],
		routes: map[netip.Prefix]rankedRoute{},
		fdb:    map[FDBEntry]struct{}{},
		neigh:  map[NeighEntry]struct{}{},
	}
	c.vteps()
	for _, b := range s.Blocks {
		c.block(b, rankRemote)
	}
	for _, b := range s.Borrowed {
		c.block(b, rankBorrowed)
	}
	for _, w := range s.Workloads {
		if !w.Addr.IsValid() || w.Iface == "" {
			continue
		}
		dst := hostPrefix(w.Addr)
		c.put(Route{Dst: dst, Dev: w.Iface, Protocol: opt.WorkloadProtocol, Scope: ScopeLink}, rankWorkload)
	}
	return c.result()
}

func (c *computer) debug(msg string, args ...any) {
	if c.opt.Logger != nil {
		c.opt.Logger.Debug(msg, args...)
	}
}

func (c *computer) put(r Route, rank int) {
	if old, ok := c.routes[r.Dst]; ok && old.rank > rank {
		return
	}
	c.routes[r.Dst] = rankedRoute{r: r, rank: rank}
}

func (c *computer) block(b BlockInfo, rank int) {
	if !b.CIDR.IsValid() || b.Node == "" {
		return
	}
	dst := b.CIDR.Masked()
	if b.Node == c.s.LocalNode {
		if rank == rankRemote {
			c.put(Route{Dst: dst, Type: Blackhole, Protocol: c.opt.ClusterProtocol}, rankBlackhole)
		}
		// A borrowed address used locally is routed by its workload route.
		return
	}
	remote, ok := c.s.Nodes[b.Node]
	if !ok {
		c.debug("no route: node unknown", "dst", dst, "node", b.Node)
		return
	}
	pool, ok := c.poolFor(dst)
	if !ok {
		c.debug("no route: block outside every pool", "dst", dst, "node", b.Node)
		return
	}
	r, ok := c.remoteRoute(dst, pool, remote)
	if !ok {
		return
	}
	c.put(r, rank)
}

// poolFor returns the most specific pool containing dst.
func (c *computer) poolFor(dst netip.Prefix) (PoolInfo, bool) { return PoolFor(c.s.Pools, dst) }

// PoolFor returns the most specific pool of pools containing dst (equal to
// it or larger); false when dst is outside every pool.
func PoolFor(pools []PoolInfo, dst netip.Prefix) (PoolInfo, bool) {
	var best PoolInfo
	found := false
	for _, p := range pools {
		if !p.CIDR.IsValid() || p.CIDR.Addr().Is4() != dst.Addr().Is4() {
			continue
		}
		pc := p.CIDR.Masked()
		if pc.Bits() > dst.Bits() || !pc.Contains(dst.Addr()) {
			continue
		}
		if !found || pc.Bits() > best.CIDR.Bits() {
			best, found = p, true
		}
	}
	return best, found
}

func (c *computer) remoteRoute(dst netip.Prefix, pool PoolInfo, remote NodeInfo) (Route, bool) {
	v4 := dst.Addr().Is4()
	remoteNet, localNet := remote.IPv6, c.local.IPv6
	if v4 {
		remoteNet, localNet = remote.IPv4, c.local.IPv4
	}
	if !remoteNet.IsValid() {
		c.debug("no route: remote node has no address", "dst", dst, "node", remote.Name)
		return Route{}, false
	}
	remoteIP := remoteNet.Addr()
	sameSubnet := localNet.IsValid() && localNet.Masked().Contains(remoteIP)
	encap := func(mode resources.EncapMode) bool { return mode.Encaps(sameSubnet) }
	direct := Route{Dst: dst, Gw: remoteIP, Protocol: c.opt.ClusterProtocol}
	switch {
	case encap(pool.VXLANMode):
		return c.vxlanRoute(dst, remote, v4)
	case v4 && encap(pool.IPIPMode):
		return Route{Dst: dst, Dev: DeviceIPIP, Gw: remoteIP, OnLink: true, Protocol: c.opt.ClusterProtocol}, true
	}
	// A plain route needs its gateway on a connected subnet: to a node on
	// another subnet the kernel would refuse it. BGP (the node's reflectors,
	// the ToR) provides that route, resolved through the fabric. A local
	// address without a real subnet (/32, /128) cannot tell: keep the route.
	if localNet.IsValid() && localNet.Bits() < localNet.Addr().BitLen() && !sameSubnet {
		c.debug("no route: plain next hop on another subnet, left to BGP", "dst", dst, "node", remote.Name)
		return Route{}, false
	}
	return direct, true
}

func (c *computer) vxlanRoute(dst netip.Prefix, remote NodeInfo, v4 bool) (Route, bool) {
	v, ok := vtepOf(remote, v4)
	if !ok {
		c.debug("no route: remote VTEP incomplete", "dst", dst, "node", remote.Name)
		return Route{}, false
	}
	return Route{Dst: dst, Dev: v.Dev, Gw: v.TunnelIP, OnLink: true, Protocol: c.opt.ClusterProtocol}, true
}

// vteps records FDB and neighbor entries for every remote node with a
// complete VTEP (node address, tunnel address, MAC), per family, when a pool
// of that family uses VXLAN (Always or CrossSubnet; disabled pools count).
func (c *computer) vteps() {
	for _, v4 := range []bool{true, false} {
		if !c.vxlanInUse(v4) {
			continue
		}
		for name, n := range c.s.Nodes {
			if name == c.s.LocalNode {
				continue
			}
			v, ok := vtepOf(n, v4)
			if !ok {
				continue
			}
			c.fdb[FDBEntry{MAC: v.MAC, Dst: v.NodeIP, Dev: v.Dev}] = struct{}{}
			c.neigh[NeighEntry{IP: v.TunnelIP, MAC: v.MAC, Dev: v.Dev}] = struct{}{}
		}
	}
}

func (c *computer) vxlanInUse(v4 bool) bool {
	for _, p := range c.s.Pools {
		if p.CIDR.IsValid() && p.CIDR.Addr().Is4() == v4 && p.VXLANMode.On() {
			return true
		}
	}
	return false
}

type vtep struct {
	NodeIP, TunnelIP netip.Addr
	MAC, Dev         string
}

// vtepOf returns a node's VTEP for a family; false when any part is missing.
func vtepOf(n NodeInfo, v4 bool) (vtep, bool) {
	v := vtep{NodeIP: n.IPv4.Addr(), TunnelIP: n.IPv4VXLANTunnelAddr, Dev: DeviceVXLAN}
	macStr := n.VXLANTunnelMACAddr
	if !v4 {
		v = vtep{NodeIP: n.IPv6.Addr(), TunnelIP: n.IPv6VXLANTunnelAddr, Dev: DeviceVXLANv6}
		macStr = n.VXLANTunnelMACAddrV6
	}
	mac, err := net.ParseMAC(macStr)
	if err != nil || len(mac) != 6 || !v.NodeIP.IsValid() || !v.TunnelIP.IsValid() {
		return vtep{}, false
	}
	v.MAC = mac.String()
	return v, true
}

func (c *computer) result() Desired {
	var d Desired
	for _, rr := range c.routes {
		d.Routes = append(d.Routes, rr.r)
	}
	slices.SortFunc(d.Routes, func(a, b Route) int { return ComparePrefix(a.Dst, b.Dst) })
	for f := range c.fdb {
		d.FDB = append(d.FDB, f)
	}
	slices.SortFunc(d.FDB, func(a, b FDBEntry) int {
		return cmp.Or(strings.Compare(a.Dev, b.Dev), strings.Compare(a.MAC, b.MAC), a.Dst.Compare(b.Dst))
	})
	for n := range c.neigh {
		d.Neighbors = append(d.Neighbors, n)
	}
	slices.SortFunc(d.Neighbors, func(a, b NeighEntry) int {
		return cmp.Or(strings.Compare(a.Dev, b.Dev), a.IP.Compare(b.IP), strings.Compare(a.MAC, b.MAC))
	})
	return d
}

// ComparePrefix orders prefixes by family, address, then length.
func ComparePrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

func hostPrefix(p netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(p.Addr(), p.Addr().BitLen())
}
