package routes

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/opencalico/calicoctl/internal/netlinksafe"
)

// Netlink is the part of *netlink.Handle the Syncer uses.
type Netlink interface {
	RouteListFiltered(family int, filter *netlink.Route, filterMask uint64) ([]netlink.Route, error)
	RouteAdd(route *netlink.Route) error
	RouteReplace(route *netlink.Route) error
	RouteDel(route *netlink.Route) error
	LinkByName(name string) (netlink.Link, error)
	LinkList() ([]netlink.Link, error)
}

var _ Netlink = (*netlink.Handle)(nil)

// SyncerOptions configure a Syncer. The zero value manages Calico's routes in
// the main table of the current network namespace.
type SyncerOptions struct {
	// Netlink talks to the kernel; nil opens a handle in the current netns.
	Netlink Netlink
	// Table is the routing table (default main, 254).
	Table int
	// Protocols are the protocols our routes carry (default 80 and 3). A
	// route with one of them is ours if it also uses one of our devices, lies
	// in OwnedCIDRs, or was written by this Syncer.
	Protocols []int
	// ExclusiveProtocols mark routes as ours by protocol alone (default 80).
	ExclusiveProtocols []int
	// InterfacePrefixes name workload devices (default "cali").
	InterfacePrefixes []string
	// Devices are our tunnel devices (default tunl0, vxlan.calico, vxlan-v6.calico).
	Devices []string
	// OwnedCIDRs are the IP pools; see SetOwnedCIDRs.
	OwnedCIDRs []netip.Prefix
	Logger     *slog.Logger
}

// Stats counts the kernel writes of the last Apply or Resync.
type Stats struct {
	Adopted, Added, Replaced, Deleted int
	// Pending routes wait for their device; Conflicts collide with a route
	// that is not ours and are left alone.
	Pending, Conflicts int
	FullSync           bool
}

// Changes is the number of kernel writes.
func (s Stats) Changes() int { return s.Added + s.Replaced + s.Deleted }

// Syncer keeps the kernel routing table in line with the desired routes. It
// adopts matching routes on start, writes only differences, and never deletes
// a route it does not own.
type Syncer struct {
	mu     sync.Mutex
	nl     Netlink
	log    *slog.Logger
	table  int
	protos map[int]bool
	excl   map[int]bool
	prefix []string
	devs   map[string]bool
	owned  []netip.Prefix
	// held protocols: their kernel routes that are not desired are left
	// alone (a restarting BGP speaker has not relearned them yet).
	held map[int]bool

	needFull bool
	desired  map[netip.Prefix]Route
	applied  map[netip.Prefix]applied
	// conflicts are desired routes blocked by a route that is not ours;
	// only a full sync (Resync) looks at them again.
	conflicts map[netip.Prefix]Route
	ifindex   map[string]int
	stats     Stats
}

// applied is a route we know to be in the kernel, as the kernel keys it.
type applied struct {
	r  Route
	nl netlink.Route
}

// NewSyncer returns a Syncer; the first Apply reads the table once.
func NewSyncer(opts SyncerOptions) (*Syncer, error) {
	if opts.Netlink == nil {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return nil, fmt.Errorf("route syncer: netlink handle: %w", err)
		}
		opts.Netlink = h
	}
	if opts.Table == 0 {
		opts.Table = unix.RT_TABLE_MAIN
	}
	if opts.Protocols == nil {
		opts.Protocols = []int{ProtocolCluster, ProtocolBoot}
	}
	if opts.ExclusiveProtocols == nil {
		opts.ExclusiveProtocols = []int{ProtocolCluster}
	}
	if opts.InterfacePrefixes == nil {
		opts.InterfacePrefixes = []string{"cali"}
	}
	if opts.Devices == nil {
		opts.Devices = []string{DeviceIPIP, DeviceVXLAN, DeviceVXLANv6}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Syncer{
		nl:        opts.Netlink,
		log:       opts.Logger.With("component", "route-syncer", "table", opts.Table),
		table:     opts.Table,
		protos:    map[int]bool{},
		excl:      map[int]bool{},
		prefix:    opts.InterfacePrefixes,
		devs:      map[string]bool{},
		owned:     slices.Clone(opts.OwnedCIDRs),
		needFull:  true,
		applied:   map[netip.Prefix]applied{},
		conflicts: map[netip.Prefix]Route{},
		ifindex:   map[string]int{},
	}
	for _, p := range opts.Protocols {
		s.protos[p] = true
	}
	for _, p := range opts.ExclusiveProtocols {
		s.excl[p] = true
		s.protos[p] = true
	}
	for _, d := range opts.Devices {
		s.devs[d] = true
	}
	return s, nil
}

// SetOwnedCIDRs replaces the pool CIDRs inside which routes with one of our
// protocols count as ours.
func (s *Syncer) SetOwnedCIDRs(cidrs []netip.Prefix) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.owned = slices.Clone(cidrs)
}

// SetHeldProtocols makes kernel routes of these protocols that are not
// desired untouchable until the next call changes it: neither adopted nor
// deleted. A source that has not reported yet (BGP after a restart, inside
// its graceful-restart deferral) thereby withdraws nothing.
func (s *Syncer) SetHeldProtocols(protos []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	held := map[int]bool{}
	for _, p := range protos {
		held[p] = true
	}
	if len(held) < len(s.held) {
		s.needFull = true // released: the next sync removes what is still not desired
	}
	s.held = held
}

// LinkChanged tells the Syncer a device was created, deleted or recreated:
// routes through it are written again on the next Apply.
func (s *Syncer) LinkChanged(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.ifindex, name)
	for k, a := range s.applied {
		if a.r.Dev == name {
			delete(s.applied, k)
		}
	}
}

// LastStats reports the kernel writes of the last Apply or Resync.
func (s *Syncer) LastStats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Apply makes routes the desired set. After the first call only routes that
// differ from the previous call are written.
func (s *Syncer) Apply(routes []Route) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.desired = make(map[netip.Prefix]Route, len(routes))
	for _, r := range routes {
		r.Dst = r.Dst.Masked()
		if _, dup := s.desired[r.Dst]; dup {
			s.log.Warn("duplicate desired route; keeping the first", "route", r)
			continue
		}
		s.desired[r.Dst] = r
	}
	return s.sync()
}

// Update changes part of the desired set: routes in set are added or
// replaced, destinations in del removed. Its cost follows the size of the
// change, not of the table (Apply compares the whole set in memory).
func (s *Syncer) Update(set []Route, del []netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.desired == nil {
		s.desired = map[netip.Prefix]Route{}
	}
	keys := make([]netip.Prefix, 0, len(set)+len(del))
	for _, k := range del {
		k = k.Masked()
		delete(s.desired, k)
		keys = append(keys, k)
	}
	for _, r := range set {
		r.Dst = r.Dst.Masked()
		s.desired[r.Dst] = r
		keys = append(keys, r.Dst)
	}
	s.stats = Stats{}
	if s.needFull {
		return s.fullSync()
	}
	var errs []error
	exists := false
	for _, k := range keys {
		errs = append(errs, s.syncKey(k, &exists))
	}
	if exists {
		errs = append(errs, s.fullSync())
	}
	return errors.Join(errs...)
}

// Resync reads the table again and converges it on the last desired set
// (periodic refresh; repairs routes others removed or changed).
func (s *Syncer) Resync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.needFull = true
	return s.sync()
}

func (s *Syncer) sync() error {
	s.stats = Stats{}
	if s.needFull {
		return s.fullSync()
	}
	exists, err := s.incremental()
	if exists {
		// Someone else's route, or one we should adopt: read the table.
		return errors.Join(err, s.fullSync())
	}
	return err
}

func (s *Syncer) incremental() (bool, error) {
	var errs []error
	exists := false
	for k := range s.applied {
		if _, ok := s.desired[k]; !ok {
			errs = append(errs, s.syncKey(k, &exists))
		}
	}
	for k := range s.desired {
		errs = append(errs, s.syncKey(k, &exists))
	}
	return exists, errors.Join(errs...)
}

// syncKey makes the kernel route for one destination what is desired; it
// sets *exists when an add hits a route it did not know about.
func (s *Syncer) syncKey(k netip.Prefix, exists *bool) error {
	r, want := s.desired[k]
	a, have := s.applied[k]
	if !want {
		if !have {
			return nil
		}
		if err := s.nl.RouteDel(&a.nl); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("delete route %v: %w", a.r, err)
		}
		s.stats.Deleted++
		delete(s.applied, k)
		return nil
	}
	if have && a.r == r {
		return nil
	}
	if c, blocked := s.conflicts[k]; blocked && c == r {
		s.stats.Conflicts++
		return nil
	}
	nr, ok := s.toKernel(r)
	if !ok {
		return nil
	}
	var err error
	if have {
		err = s.nl.RouteReplace(nr)
	} else {
		err = s.nl.RouteAdd(nr)
	}
	switch {
	case errors.Is(err, unix.EEXIST):
		*exists = true
		return nil
	case err != nil:
		return fmt.Errorf("write route %v: %w", r, err)
	case have:
		s.stats.Replaced++
	default:
		s.stats.Added++
	}
	s.applied[k] = applied{r: r, nl: *nr}
	return nil
}

// fullSync dumps the table and converges it: adopt, add, replace, delete.
func (s *Syncer) fullSync() error {
	s.stats.FullSync = true
	links, err := s.nl.LinkList()
	if err != nil {
		return fmt.Errorf("route syncer: list links: %w", err)
	}
	names := make(map[int]string, len(links))
	s.ifindex = make(map[string]int, len(links))
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
		s.ifindex[l.Attrs().Name] = l.Attrs().Index
	}
	current, err := s.dump()
	if err != nil {
		return err
	}
	ours := map[netip.Prefix]netlink.Route{}
	foreign := map[netip.Prefix]bool{}
	var errs []error
	for _, nr := range current {
		k, ok := prefixOf(nr)
		if !ok {
			continue
		}
		if _, want := s.desired[k]; !want && s.held[int(nr.Protocol)] {
			continue
		}
		if !s.owns(nr, k, names) {
			foreign[k] = true
			continue
		}
		if _, dup := ours[k]; dup {
			// A second route of ours for one destination (other metric): drop it.
			errs = append(errs, s.del(nr, k))
			continue
		}
		ours[k] = nr
	}
	prev := s.applied
	s.applied = make(map[netip.Prefix]applied, len(s.desired))
	s.conflicts = map[netip.Prefix]Route{}
	for k, nr := range ours {
		r, want := s.desired[k]
		if want && s.matches(r, nr, names) {
			s.applied[k] = applied{r: r, nl: nr}
			if _, known := prev[k]; !known {
				s.stats.Adopted++
			}
			continue
		}
		if want && samePriority(nr) {
			continue // replaced below
		}
		errs = append(errs, s.del(nr, k))
		delete(ours, k)
	}
	for k, r := range s.desired {
		if _, done := s.applied[k]; done {
			continue
		}
		_, replace := ours[k]
		if !replace && foreign[k] {
			s.stats.Conflicts++
			s.conflicts[k] = r
			s.log.Warn("desired route collides with a route that is not ours; leaving it", "route", r)
			continue
		}
		nr, ok := s.toKernel(r)
		if !ok {
			continue
		}
		if replace {
			err = s.nl.RouteReplace(nr)
		} else {
			err = s.nl.RouteAdd(nr)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("write route %v: %w", r, err))
			continue
		}
		if replace {
			s.stats.Replaced++
		} else {
			s.stats.Added++
		}
		s.applied[k] = applied{r: r, nl: *nr}
	}
	s.needFull = false
	s.log.Debug("route table synced", "stats", s.stats)
	return errors.Join(errs...)
}

func (s *Syncer) del(nr netlink.Route, k netip.Prefix) error {
	if err := s.nl.RouteDel(&nr); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("delete route %v: %w", k, err)
	}
	s.stats.Deleted++
	return nil
}

// dump lists the table, retrying when the kernel reports an interrupted dump.
func (s *Syncer) dump() ([]netlink.Route, error) {
	filter := &netlink.Route{Table: s.table}
	rs, err := netlinksafe.Dump(func() ([]netlink.Route, error) {
		return s.nl.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, fmt.Errorf("route syncer: dump table %d: %w", s.table, err)
	}
	return rs, nil
}

// owns says whether a kernel route is ours to adopt, change or delete.
func (s *Syncer) owns(nr netlink.Route, k netip.Prefix, names map[int]string) bool {
	proto := int(nr.Protocol)
	if !s.protos[proto] || len(nr.MultiPath) > 0 {
		return false
	}
	if nr.Type != unix.RTN_UNICAST && nr.Type != unix.RTN_BLACKHOLE {
		return false
	}
	if s.excl[proto] {
		return true
	}
	if _, ok := s.applied[k]; ok {
		return true
	}
	if nr.Type == unix.RTN_UNICAST {
		dev := names[nr.LinkIndex]
		if s.devs[dev] {
			return true
		}
		for _, p := range s.prefix {
			if strings.HasPrefix(dev, p) {
				return true
			}
		}
	}
	for _, c := range s.owned {
		if c.Addr().Is4() == k.Addr().Is4() && c.Bits() <= k.Bits() && c.Masked().Contains(k.Addr()) {
			return true
		}
	}
	return false
}

// matches compares a desired route with the kernel's.
func (s *Syncer) matches(r Route, nr netlink.Route, names map[int]string) bool {
	got, ok := fromKernel(nr, names)
	if !ok || !samePriority(nr) {
		return false
	}
	if r.Dev == "" || r.Type == Blackhole {
		got.Dev = ""
	}
	if r.Type == Blackhole || !r.Dst.Addr().Is4() {
		got.Scope = r.Scope // IPv6 routes have no scope; blackholes only drop
	}
	if r.Type == Blackhole {
		got.Gw, got.OnLink = r.Gw, r.OnLink
	}
	return got == r
}

// samePriority: our routes use the kernel default metric (0 v4, 1024 v6).
func samePriority(nr netlink.Route) bool {
	return nr.Priority == 0 || (nr.Dst != nil && nr.Dst.IP.To4() == nil && nr.Priority == 1024)
}

// toKernel converts a route; false (counted as pending) when its device is missing.
func (s *Syncer) toKernel(r Route) (*netlink.Route, bool) {
	nr := &netlink.Route{
		Dst:      &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), r.Dst.Addr().BitLen())},
		Table:    s.table,
		Protocol: netlink.RouteProtocol(r.Protocol),
		Scope:    netlink.Scope(r.Scope),
		Type:     unix.RTN_UNICAST,
	}
	if r.Type == Blackhole {
		nr.Type = unix.RTN_BLACKHOLE
		return nr, true
	}
	if r.Dev != "" {
		idx, ok := s.ifindex[r.Dev]
		if !ok {
			l, err := s.nl.LinkByName(r.Dev)
			if err != nil {
				s.stats.Pending++
				s.log.Debug("route waits for its device", "route", r, "err", err)
				return nil, false
			}
			idx = l.Attrs().Index
			s.ifindex[r.Dev] = idx
		}
		nr.LinkIndex = idx
	}
	if r.Gw.IsValid() {
		nr.Gw = r.Gw.AsSlice()
	}
	if r.OnLink {
		nr.Flags = int(netlink.FLAG_ONLINK)
	}
	return nr, true
}

// fromKernel converts a kernel route to a Route; false for kinds we never write.
func fromKernel(nr netlink.Route, names map[int]string) (Route, bool) {
	k, ok := prefixOf(nr)
	if !ok || len(nr.MultiPath) > 0 {
		return Route{}, false
	}
	r := Route{Dst: k, Protocol: int(nr.Protocol), Scope: Scope(nr.Scope)}
	switch nr.Type {
	case unix.RTN_BLACKHOLE:
		r.Type = Blackhole
		return r, true
	case unix.RTN_UNICAST:
	default:
		return Route{}, false
	}
	r.Dev = names[nr.LinkIndex]
	if gw, ok := netip.AddrFromSlice(nr.Gw); ok {
		r.Gw = gw.Unmap()
	}
	r.OnLink = nr.Flags&int(netlink.FLAG_ONLINK) != 0
	return r, true
}

func prefixOf(nr netlink.Route) (netip.Prefix, bool) {
	if nr.Dst == nil {
		return netip.Prefix{}, false // default routes are never ours
	}
	a, ok := netip.AddrFromSlice(nr.Dst.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones, bits := nr.Dst.Mask.Size()
	if bits != a.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones).Masked(), true
}
