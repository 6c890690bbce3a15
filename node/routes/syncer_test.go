package routes

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/opencalico/calicoctl/internal/netnstest"
)

// kernelRoutes renders every route of the main table that is not a
// kernel-made connected/local route, as Route.String would.
func kernelRoutes(t *testing.T, h *netlink.Handle) []string {
	t.Helper()
	rs, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatalf("dump routes: %v", err)
	}
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	var out []string
	for _, nr := range rs {
		if nr.Protocol == unix.RTPROT_KERNEL || nr.Type != unix.RTN_UNICAST && nr.Type != unix.RTN_BLACKHOLE {
			continue
		}
		r, ok := fromKernel(nr, names)
		if !ok {
			continue
		}
		if r.Type == Blackhole {
			r.Dev = ""
		}
		out = append(out, r.String())
	}
	slices.Sort(out)
	return out
}

// kernelView is how a desired route reads back: the kernel picks the device
// of a gateway route (ens0 in these tests) and IPv6 routes have no scope.
func kernelView(rs ...Route) []string {
	var out []string
	for _, r := range rs {
		if r.Dev == "" && r.Type == Unicast {
			r.Dev = "ens0"
		}
		if !r.Dst.Addr().Is4() {
			r.Scope = ScopeUniverse
		}
		out = append(out, r.String())
	}
	return out
}

func sorted(ss ...string) []string {
	ss = slices.Clone(ss)
	slices.Sort(ss)
	return ss
}

// syncerNS builds a namespace with a host NIC (ens0, 10.0.0.1/24), two
// workload veths and vxlan.calico.
func syncerNS(t *testing.T) *netlink.Handle {
	h := netnstest.New(t)
	netnstest.AddVeth(t, h, "ens0", "ens0p", "10.0.0.1/24", 0)
	netnstest.AddVeth(t, h, "cali1", "cali1p", "", 0)
	netnstest.AddVeth(t, h, "cali2", "cali2p", "", 0)
	addVXLAN(t, h, "vxlan.calico")
	return h
}

func addKernelRoute(t *testing.T, h *netlink.Handle, nr netlink.Route) {
	t.Helper()
	if nr.Table == 0 {
		nr.Table = unix.RT_TABLE_MAIN
	}
	if err := h.RouteAdd(&nr); err != nil {
		t.Fatalf("seed route %v: %v", nr, err)
	}
}

func ipnet(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

var (
	rBlackhole = Route{Dst: pfx("192.168.1.0/26"), Type: Blackhole, Protocol: 80}
	rWL1       = Route{Dst: pfx("192.168.1.1/32"), Dev: "cali1", Protocol: 3, Scope: ScopeLink}
	rWL2       = Route{Dst: pfx("192.168.1.2/32"), Dev: "cali2", Protocol: 3, Scope: ScopeLink}
	rVXLAN     = Route{Dst: pfx("192.168.2.0/26"), Dev: "vxlan.calico", Gw: addr("192.168.2.0"), OnLink: true, Protocol: 80}
	rDirect    = Route{Dst: pfx("192.168.3.0/26"), Gw: addr("10.0.0.3"), Protocol: 80}
	rBH6       = Route{Dst: pfx("fd10::/122"), Type: Blackhole, Protocol: 80}
	rWL6       = Route{Dst: pfx("fd10::1/128"), Dev: "cali1", Protocol: 3, Scope: ScopeLink}
)

// Foreign routes the syncer must never touch.
func seedForeign(t *testing.T, h *netlink.Handle) []string {
	ens0, _ := h.LinkByName("ens0")
	cali2, _ := h.LinkByName("cali2")
	addKernelRoute(t, h, netlink.Route{Dst: ipnet("172.20.0.0/16"), Gw: net.ParseIP("10.0.0.254"), Protocol: unix.RTPROT_BOOT})
	addKernelRoute(t, h, netlink.Route{Dst: ipnet("192.168.9.0/24"), LinkIndex: ens0.Attrs().Index, Protocol: unix.RTPROT_STATIC, Scope: netlink.SCOPE_LINK})
	addKernelRoute(t, h, netlink.Route{Dst: ipnet("172.21.0.0/16"), LinkIndex: cali2.Attrs().Index, Protocol: unix.RTPROT_STATIC, Scope: netlink.SCOPE_LINK})
	return []string{
		"172.20.0.0/16 via 10.0.0.254 dev ens0 proto 3",
		"192.168.9.0/24 dev ens0 proto 4 scope link",
		"172.21.0.0/16 dev cali2 proto 4 scope link",
	}
}

func TestPrivilegedSyncerConverge(t *testing.T) {
	h := syncerNS(t)
	foreign := seedForeign(t, h)
	s, err := NewSyncer(SyncerOptions{Netlink: h, OwnedCIDRs: []netip.Prefix{pfx("192.168.0.0/16")}})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		routes []Route
		want   Stats
	}{
		{"initial", []Route{rBlackhole, rWL1, rVXLAN, rDirect, rBH6, rWL6},
			Stats{Added: 6, FullSync: true}},
		{"unchanged", []Route{rBlackhole, rWL1, rVXLAN, rDirect, rBH6, rWL6}, Stats{}},
		{"add one", []Route{rBlackhole, rWL1, rWL2, rVXLAN, rDirect, rBH6, rWL6}, Stats{Added: 1}},
		{"change via vxlan to direct", []Route{rBlackhole, rWL1, rWL2,
			{Dst: rVXLAN.Dst, Gw: addr("10.0.0.2"), Protocol: 80}, rDirect, rBH6, rWL6}, Stats{Replaced: 1}},
		{"delete two", []Route{rBlackhole, rWL1, {Dst: rVXLAN.Dst, Gw: addr("10.0.0.2"), Protocol: 80}, rDirect},
			Stats{Deleted: 3}},
		{"v6 back, change blackhole to unicast", []Route{
			{Dst: rBlackhole.Dst, Dev: "cali1", Protocol: 3, Scope: ScopeLink}, rWL1, rDirect, rBH6},
			Stats{Added: 1, Replaced: 1, Deleted: 1}},
		{"empty", nil, Stats{Deleted: 4}},
	}
	for _, st := range steps {
		if err := s.Apply(st.routes); err != nil {
			t.Fatalf("%s: Apply: %v", st.name, err)
		}
		if got := s.LastStats(); got != st.want {
			t.Errorf("%s: stats = %+v, want %+v", st.name, got, st.want)
		}
		if got, want := kernelRoutes(t, h), sorted(append(kernelView(st.routes...), foreign...)...); !slices.Equal(got, want) {
			t.Errorf("%s: kernel routes\n got %q\nwant %q", st.name, got, want)
		}
	}
}

// A new Syncer on a table written by an earlier one adopts everything: no
// writes. Stale routes of ours are deleted; foreign ones stay.
func TestPrivilegedSyncerRestartAdopts(t *testing.T) {
	h := syncerNS(t)
	foreign := seedForeign(t, h)
	routes := []Route{rBlackhole, rWL1, rWL2, rVXLAN, rDirect, rBH6, rWL6}
	first, err := NewSyncer(SyncerOptions{Netlink: h})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Apply(routes); err != nil {
		t.Fatal(err)
	}
	cali1, _ := h.LinkByName("cali1")
	// Leftovers of ours: a blackhole for a block we lost, a workload route
	// whose pod went away while we were down.
	addKernelRoute(t, h, netlink.Route{Dst: ipnet("192.168.4.0/26"), Type: unix.RTN_BLACKHOLE, Protocol: 80})
	addKernelRoute(t, h, netlink.Route{Dst: ipnet("192.168.1.9/32"), LinkIndex: cali1.Attrs().Index, Protocol: 3, Scope: netlink.SCOPE_LINK})

	tests := []struct {
		name string
		want Stats
	}{
		{"restart with stale", Stats{Adopted: 7, Deleted: 2, FullSync: true}},
		{"second restart", Stats{Adopted: 7, FullSync: true}},
	}
	for _, tt := range tests {
		s, err := NewSyncer(SyncerOptions{Netlink: h})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(routes); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := s.LastStats(); got != tt.want || got.Changes() != tt.want.Changes() {
			t.Errorf("%s: stats = %+v, want %+v", tt.name, got, tt.want)
		}
		if got, want := kernelRoutes(t, h), sorted(append(kernelView(routes...), foreign...)...); !slices.Equal(got, want) {
			t.Errorf("%s: kernel routes\n got %q\nwant %q", tt.name, got, want)
		}
	}
}

func TestPrivilegedSyncerPendingConflictResync(t *testing.T) {
	h := syncerNS(t)
	ens0, _ := h.LinkByName("ens0")
	// Someone else's route where we want one.
	addKernelRoute(t, h, netlink.Route{Dst: ipnet("192.168.5.0/26"), LinkIndex: ens0.Attrs().Index, Protocol: unix.RTPROT_STATIC, Scope: netlink.SCOPE_LINK})
	s, err := NewSyncer(SyncerOptions{Netlink: h})
	if err != nil {
		t.Fatal(err)
	}
	rLater := Route{Dst: pfx("192.168.1.7/32"), Dev: "cali7", Protocol: 3, Scope: ScopeLink}
	rClash := Route{Dst: pfx("192.168.5.0/26"), Gw: addr("10.0.0.5"), Protocol: 80}
	routes := []Route{rWL1, rLater, rClash}
	if err := s.Apply(routes); err != nil {
		t.Fatal(err)
	}
	if got, want := s.LastStats(), (Stats{Added: 1, Pending: 1, Conflicts: 1, FullSync: true}); got != want {
		t.Errorf("first apply stats = %+v, want %+v", got, want)
	}
	// The workload device appears; the agent tells the syncer.
	netnstest.AddVeth(t, h, "cali7", "cali7p", "", 0)
	s.LinkChanged("cali7")
	if err := s.Apply(routes); err != nil {
		t.Fatal(err)
	}
	if got, want := s.LastStats(), (Stats{Added: 1, Conflicts: 1}); got != want {
		t.Errorf("after link stats = %+v, want %+v", got, want)
	}
	// Someone deletes our route; a Resync puts it back.
	if err := h.RouteDel(&netlink.Route{Dst: ipnet("192.168.1.1/32"), Table: unix.RT_TABLE_MAIN, Scope: netlink.SCOPE_LINK}); err != nil {
		t.Fatal(err)
	}
	if err := s.Resync(); err != nil {
		t.Fatal(err)
	}
	if got, want := s.LastStats(), (Stats{Adopted: 0, Added: 1, Conflicts: 1, FullSync: true}); got != want {
		t.Errorf("resync stats = %+v, want %+v", got, want)
	}
	got := kernelRoutes(t, h)
	want := sorted(rWL1.String(), rLater.String(), "192.168.5.0/26 dev ens0 proto 4 scope link")
	if !slices.Equal(got, want) {
		t.Errorf("kernel routes\n got %q\nwant %q", got, want)
	}
}

func TestPrivilegedSyncerUpdate(t *testing.T) {
	h := syncerNS(t)
	s, err := NewSyncer(SyncerOptions{Netlink: h})
	if err != nil {
		t.Fatal(err)
	}
	moved := Route{Dst: rVXLAN.Dst, Gw: addr("10.0.0.2"), Protocol: 80}
	steps := []struct {
		name string
		set  []Route
		del  []netip.Prefix
		want Stats
		kern []Route
	}{
		{"first update reads the table", []Route{rBlackhole, rWL1, rVXLAN}, nil,
			Stats{Added: 3, FullSync: true}, []Route{rBlackhole, rWL1, rVXLAN}},
		{"add, change, delete", []Route{rWL2, moved}, []netip.Prefix{rWL1.Dst},
			Stats{Added: 1, Replaced: 1, Deleted: 1}, []Route{rBlackhole, rWL2, moved}},
		{"no-op", []Route{rWL2}, []netip.Prefix{pfx("192.168.77.0/24")}, Stats{}, []Route{rBlackhole, rWL2, moved}},
	}
	for _, st := range steps {
		if err := s.Update(st.set, st.del); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := s.LastStats(); got != st.want {
			t.Errorf("%s: stats = %+v, want %+v", st.name, got, st.want)
		}
		if got, want := kernelRoutes(t, h), sorted(kernelView(st.kern...)...); !slices.Equal(got, want) {
			t.Errorf("%s: kernel routes\n got %q\nwant %q", st.name, got, want)
		}
	}
}

// A held protocol's routes survive a restart's first syncs (BGP inside its
// graceful-restart deferral has not relearned them) and go once released,
// unless the source wants them again.
func TestPrivilegedSyncerHeldProtocols(t *testing.T) {
	h := syncerNS(t)
	const bgpProto = 12
	addKernelRoute(t, h, netlink.Route{Dst: ipnet("10.50.0.0/24"), Gw: net.ParseIP("10.0.0.7"), Protocol: bgpProto})
	addKernelRoute(t, h, netlink.Route{Dst: ipnet("10.51.0.0/24"), Gw: net.ParseIP("10.0.0.8"), Protocol: bgpProto})
	s, err := NewSyncer(SyncerOptions{Netlink: h, Protocols: []int{80, 3, bgpProto}, ExclusiveProtocols: []int{80, bgpProto}})
	if err != nil {
		t.Fatal(err)
	}
	learned := Route{Dst: pfx("10.50.0.0/24"), Gw: addr("10.0.0.7"), Protocol: bgpProto}
	s.SetHeldProtocols([]int{bgpProto})
	if err := s.Apply([]Route{rBlackhole}); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply([]Route{rBlackhole, rDirect}); err != nil {
		t.Fatal(err)
	}
	held := sorted(append(kernelView(rBlackhole, rDirect), "10.50.0.0/24 via 10.0.0.7 dev ens0 proto 12", "10.51.0.0/24 via 10.0.0.8 dev ens0 proto 12")...)
	if got := kernelRoutes(t, h); !slices.Equal(got, held) {
		t.Errorf("while held:\n got %q\nwant %q", got, held)
	}
	s.SetHeldProtocols(nil)
	if err := s.Apply([]Route{rBlackhole, rDirect, learned}); err != nil {
		t.Fatal(err)
	}
	want := sorted(kernelView(rBlackhole, rDirect, learned)...)
	if got := kernelRoutes(t, h); !slices.Equal(got, want) {
		t.Errorf("released:\n got %q\nwant %q", got, want)
	}
}
