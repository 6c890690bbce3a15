// Package plan computes everything the node's dataplane should be (routes,
// VXLAN device and peers, the IPIP device, MTUs, NAT sets) from a snapshot of
// the datastore and a few facts about the host. Plan is a pure function and
// the only place dataplane intent is computed: the kernel writers in
// node/agent take their slice of its Desired and only converge on it.
package plan

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/opencalico/calicoctl/node/nat"
	"github.com/opencalico/calicoctl/node/routes"
	"github.com/opencalico/calicoctl/node/tunnel"
)

// Snapshot is the datastore state the plan is computed from (node/agent
// builds it from its watch-driven model).
type Snapshot struct {
	Routes routes.State
	NAT    nat.Desired
	// Local is this node's NodeInfo (zero if the node is missing).
	Local routes.NodeInfo
	// Encaps in use by enabled pools: IPIP, VXLAN (v4), VXLANv6.
	IPIP, VXLAN, VXLANv6 bool
	// Felix holds the FelixConfiguration parameters the dataplane uses.
	Felix FelixSettings
}

// FelixSettings are the FelixConfiguration parameters the dataplane uses.
// Zero means "derive / default".
type FelixSettings struct {
	VXLANMTU, IPIPMTU   int
	VXLANPort, VXLANVNI int
}

// DefaultHostMTU is assumed when the host MTU is unknown.
const DefaultHostMTU = 1500

// HostFacts are what the plan needs to know about the host.
type HostFacts struct {
	// NodeIP is the node's IPv4 address: the VXLAN parent and source.
	NodeIP netip.Addr
	// HostMTU is the MTU of the interface carrying NodeIP (0: unknown,
	// DefaultHostMTU is assumed).
	HostMTU int
	// IPIP says whether the kernel can make IPIP tunnels. Only consulted
	// when an enabled pool uses IPIP.
	IPIP bool
}

// Probe learns host facts from the kernel; node/agent implements it with
// netlink, tests with a fake.
type Probe interface {
	// HostMTU is the MTU of the interface carrying nodeIP.
	HostMTU(nodeIP netip.Addr) (int, error)
	// IPIPSupported reports whether the kernel offers IPIP tunnels and, if
	// not, why.
	IPIPSupported() (bool, string)
}

// Desired is the whole dataplane intent of a node, one slice per writer.
type Desired struct {
	Routes  RouteSet
	VXLAN   VXLANSet
	Tunnels TunnelSet
	NAT     nat.Desired
}

// RouteSet is the route writer's slice.
type RouteSet struct {
	Routes []routes.Route
	// Owned are the pool CIDRs inside which routes with our protocols are
	// ours (adopted after a restart, removed when not desired).
	Owned []netip.Prefix
	// Links are the local workload devices routes go through (the writer
	// rewrites their routes when a device is recreated).
	Links []string
}

// VXLANSet is the VXLAN writer's slice: the device (nil: leave it alone) and
// the remote VTEPs.
type VXLANSet struct {
	Device    *tunnel.VXLANConfig
	FDB       []routes.FDBEntry
	Neighbors []routes.NeighEntry
}

// TunnelSet is the tunnel writer's slice: the IPIP device (nil: leave it
// alone) and the MTUs, whose Pod value goes to the CNI plugin.
type TunnelSet struct {
	IPIP *tunnel.IPIPConfig
	MTUs tunnel.TunnelMTUs
	// IPIPUnavailable is true when enabled pools use IPIP but the kernel
	// cannot make IPIP tunnels: routes through tunl0 are left out.
	IPIPUnavailable bool
}

// Input is what the dataplane computes its plan from: a Snapshot, or an
// Incremental that keeps the plan up to date one change at a time.
type Input interface {
	// UsesIPIP says whether an enabled pool uses IPIP (the dataplane asks
	// the kernel whether it can only then).
	UsesIPIP() bool
	// Plan is the node's dataplane intent given the host facts.
	Plan(facts HostFacts) Desired
	// Snapshot is the whole state the plan is computed from (for tests
	// and diagnostics: an Incremental builds it on each call).
	Snapshot() *Snapshot
}

// UsesIPIP says whether an enabled pool uses IPIP.
func (s *Snapshot) UsesIPIP() bool { return s.IPIP }

// Snapshot returns s.
func (s *Snapshot) Snapshot() *Snapshot { return s }

// Plan is Plan(s, facts).
func (s *Snapshot) Plan(facts HostFacts) Desired { return Plan(s, facts) }

var _ Input = (*Snapshot)(nil)

// Plan computes the node's dataplane intent. It does no I/O.
func Plan(s *Snapshot, facts HostFacts) Desired {
	return planWith(s, facts, routes.Compute(s.Routes, routes.Options{}))
}

// planWith is Plan given the route intent rd of s.Routes.
func planWith(s *Snapshot, facts HostFacts, rd routes.Desired) Desired {
	ipip := s.IPIP && facts.IPIP
	mtus := MTUs(s, facts)
	d := Desired{NAT: s.NAT}
	d.Tunnels = TunnelSet{MTUs: mtus, IPIPUnavailable: s.IPIP && !facts.IPIP}

	d.Routes.Routes = rd.Routes
	if d.Tunnels.IPIPUnavailable {
		// No tunl0 on this kernel: routes through it cannot be written and
		// would fail every round; leave them out.
		// (On a copy: rd's slice may be shared.)
		d.Routes.Routes = slices.DeleteFunc(slices.Clone(d.Routes.Routes), func(r routes.Route) bool { return r.Dev == tunnel.IPIPDevice })
	}
	for _, p := range s.Routes.Pools {
		d.Routes.Owned = append(d.Routes.Owned, p.CIDR)
	}
	for _, w := range s.Routes.Workloads {
		if w.Iface != "" && !slices.Contains(d.Routes.Links, w.Iface) {
			d.Routes.Links = append(d.Routes.Links, w.Iface)
		}
	}
	slices.Sort(d.Routes.Links)

	d.VXLAN = VXLANSet{FDB: rd.FDB, Neighbors: rd.Neighbors}
	if s.VXLAN && s.Local.IPv4VXLANTunnelAddr.IsValid() {
		// An unused device is left alone (routes through it are withdrawn).
		d.VXLAN.Device = &tunnel.VXLANConfig{
			ParentAddr: facts.NodeIP, MTU: mtus.VXLAN, MAC: s.Local.VXLANTunnelMACAddr,
			VNI: s.Felix.VXLANVNI, Port: s.Felix.VXLANPort,
			Addr: netip.PrefixFrom(s.Local.IPv4VXLANTunnelAddr, 32),
		}
	}
	if ipip {
		cfg := tunnel.IPIPConfig{MTU: mtus.IPIP}
		if s.Local.IPv4IPIPTunnelAddr.IsValid() {
			cfg.Addr = netip.PrefixFrom(s.Local.IPv4IPIPTunnelAddr, 32)
		}
		d.Tunnels.IPIP = &cfg
	}
	return d
}

// MTUs derives the tunnel and pod MTUs from the host MTU, the encapsulations
// in use and the configured overrides (FelixConfiguration vxlanMTU/ipipMTU,
// FELIX_*), which win over the derived values; the pod MTU follows them.
func MTUs(s *Snapshot, facts HostFacts) tunnel.TunnelMTUs {
	host := facts.HostMTU
	if host <= 0 {
		host = DefaultHostMTU
	}
	ipip := s.IPIP && facts.IPIP
	m := tunnel.MTUsFor(host, tunnel.Encaps{IPIP: ipip, VXLAN: s.VXLAN})
	if s.Felix.VXLANMTU > 0 {
		m.VXLAN = s.Felix.VXLANMTU
	}
	if s.Felix.IPIPMTU > 0 {
		m.IPIP = s.Felix.IPIPMTU
	}
	m.Pod = m.Host
	if s.VXLAN && m.VXLAN < m.Pod {
		m.Pod = m.VXLAN
	}
	if ipip && m.IPIP < m.Pod {
		m.Pod = m.IPIP
	}
	return m
}

// EncapsInUse reports which encapsulations the enabled pools use: IPIP,
// VXLAN over IPv4 and VXLAN over IPv6 (Always or CrossSubnet).
func EncapsInUse(pools []routes.PoolInfo) (ipip, vxlan, vxlanV6 bool) {
	for _, p := range pools {
		if p.Disabled || !p.CIDR.IsValid() {
			continue
		}
		ipip = ipip || p.IPIPMode.On()
		if p.CIDR.Addr().Is4() {
			vxlan = vxlan || p.VXLANMode.On()
		} else {
			vxlanV6 = vxlanV6 || p.VXLANMode.On()
		}
	}
	return ipip, vxlan, vxlanV6
}

// SortSnapshot orders the slices of s built from maps (workloads, borrowed
// addresses, floating IPs), so equal states give equal snapshots.
func SortSnapshot(s *Snapshot) {
	slices.SortFunc(s.Routes.Workloads, func(a, b routes.WorkloadRoute) int {
		return cmp.Or(routes.ComparePrefix(a.Addr, b.Addr), cmp.Compare(a.Iface, b.Iface))
	})
	slices.SortFunc(s.Routes.Borrowed, func(a, b routes.BlockInfo) int {
		return cmp.Or(routes.ComparePrefix(a.CIDR, b.CIDR), cmp.Compare(a.Node, b.Node))
	})
	slices.SortFunc(s.NAT.FloatingIPs, func(a, b nat.FloatingNAT) int {
		return cmp.Or(a.Ext.Compare(b.Ext), a.Int.Compare(b.Int))
	})
}
