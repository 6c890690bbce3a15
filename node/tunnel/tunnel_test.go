package tunnel

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/internal/netnstest"
	"github.com/opencalico/calicoctl/node/routes"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

func newManager(t *testing.T) (*Manager, *netlink.Handle) {
	h := netnstest.New(t)
	m, err := New(Options{Handle: h})
	if err != nil {
		t.Fatal(err)
	}
	netnstest.AddVeth(t, h, "ens0", "ens0p", "10.0.0.1/24", 1500)
	netnstest.AddVeth(t, h, "ens1", "ens1p", "10.1.0.1/24", 9000)
	return m, h
}

type vxState struct {
	vni, port, mtu int
	parent         string
	src, mac       string
	addrs          []string
	up             bool
}

func readVXLAN(t *testing.T, h *netlink.Handle) vxState {
	t.Helper()
	l, err := h.LinkByName(VXLANDevice)
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	v, ok := l.(*netlink.Vxlan)
	if !ok {
		t.Fatalf("type %s", l.Type())
	}
	st := vxState{vni: v.VxlanId, port: v.Port, mtu: v.MTU, mac: v.HardwareAddr.String(), up: v.Flags&net.FlagUp != 0}
	if v.SrcAddr != nil {
		st.src = v.SrcAddr.String()
	}
	if v.VtepDevIndex != 0 {
		p, err := h.LinkByIndex(v.VtepDevIndex)
		if err != nil {
			t.Fatal(err)
		}
		st.parent = p.Attrs().Name
	}
	as, err := h.AddrList(l, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		st.addrs = append(st.addrs, a.IPNet.String())
	}
	return st
}

func TestPrivilegedEnsureVXLAN(t *testing.T) {
	m, h := newManager(t)
	ctx := context.Background()
	base := VXLANConfig{ParentAddr: addr("10.0.0.1"), MTU: 1450, Addr: pfx("192.168.1.0/32"), MAC: "66:00:00:00:00:0A"}
	steps := []struct {
		name     string
		cfg      VXLANConfig
		before   func()
		want     vxState
		recreate bool
	}{
		{"create", base, nil, vxState{4096, 4789, 1450, "ens0", "10.0.0.1", "66:00:00:00:00:0a", []string{"192.168.1.0/32"}, true}, false},
		{"adopt unchanged", base, nil, vxState{4096, 4789, 1450, "ens0", "10.0.0.1", "66:00:00:00:00:0a", []string{"192.168.1.0/32"}, true}, false},
		{"fix mtu, mac, address, down", VXLANConfig{ParentAddr: addr("10.0.0.1"), MTU: 1400, Addr: pfx("192.168.1.64/32"), MAC: "66:00:00:00:00:0b"},
			func() {
				l, _ := h.LinkByName(VXLANDevice)
				_ = h.LinkSetDown(l)
				a, _ := netlink.ParseAddr("172.30.0.1/32")
				_ = h.AddrAdd(l, a)
			},
			vxState{4096, 4789, 1400, "ens0", "10.0.0.1", "66:00:00:00:00:0b", []string{"192.168.1.64/32"}, true}, false},
		{"new parent recreates", VXLANConfig{ParentAddr: addr("10.1.0.1"), MTU: 8950, Addr: pfx("192.168.1.64/32"), MAC: "66:00:00:00:00:0b"}, nil,
			vxState{4096, 4789, 8950, "ens1", "10.1.0.1", "66:00:00:00:00:0b", []string{"192.168.1.64/32"}, true}, true},
		{"wrong type recreated", base, func() {
			l, _ := h.LinkByName(VXLANDevice)
			_ = h.LinkDel(l)
			la := netlink.NewLinkAttrs()
			la.Name = VXLANDevice
			if err := h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "imposter"}); err != nil {
				t.Fatal(err)
			}
		}, vxState{4096, 4789, 1450, "ens0", "10.0.0.1", "66:00:00:00:00:0a", []string{"192.168.1.0/32"}, true}, true},
	}
	lastIndex := 0
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		if err := m.EnsureVXLAN(ctx, st.cfg); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got := readVXLAN(t, h)
		if !slices.Equal(got.addrs, st.want.addrs) || got.vni != st.want.vni || got.port != st.want.port || got.mtu != st.want.mtu ||
			got.parent != st.want.parent || got.src != st.want.src || got.mac != st.want.mac || got.up != st.want.up {
			t.Errorf("%s: got %+v want %+v", st.name, got, st.want)
		}
		l, _ := h.LinkByName(VXLANDevice)
		if lastIndex != 0 && (l.Attrs().Index != lastIndex) != st.recreate {
			t.Errorf("%s: index %d -> %d, recreate want %v", st.name, lastIndex, l.Attrs().Index, st.recreate)
		}
		lastIndex = l.Attrs().Index
	}
	if err := m.EnsureVXLAN(ctx, VXLANConfig{ParentAddr: addr("10.9.9.9")}); err == nil || !strings.Contains(err.Error(), "no interface carries 10.9.9.9") {
		t.Errorf("missing parent: err = %v", err)
	}
}

func TestPrivilegedVTEPSyncer(t *testing.T) {
	m, h := newManager(t)
	if err := m.EnsureVXLAN(context.Background(), VXLANConfig{ParentAddr: addr("10.0.0.1"), Addr: pfx("192.168.1.0/32")}); err != nil {
		t.Fatal(err)
	}
	fdbB := routes.FDBEntry{MAC: "66:00:00:00:00:0b", Dst: addr("10.0.0.2"), Dev: VXLANDevice}
	fdbC := routes.FDBEntry{MAC: "66:00:00:00:00:0c", Dst: addr("10.1.0.3"), Dev: VXLANDevice}
	fdbCmoved := routes.FDBEntry{MAC: "66:00:00:00:00:0C", Dst: addr("10.1.0.4"), Dev: VXLANDevice}
	nB := routes.NeighEntry{IP: addr("192.168.2.0"), MAC: "66:00:00:00:00:0b", Dev: VXLANDevice}
	nC := routes.NeighEntry{IP: addr("192.168.3.0"), MAC: "66:00:00:00:00:0c", Dev: VXLANDevice}
	nV6 := routes.NeighEntry{IP: addr("fd10::3"), MAC: "66:00:00:00:06:0c", Dev: VXLANDevice6} // device absent
	s := m.NewVTEPSyncer()
	steps := []struct {
		name  string
		fdb   []routes.FDBEntry
		neigh []routes.NeighEntry
		want  VTEPStats
		kern  []string
	}{
		{"initial", []routes.FDBEntry{fdbB, fdbC}, []routes.NeighEntry{nB, nC, nV6},
			VTEPStats{Added: 4, Pending: 1, FullSync: true},
			[]string{"fdb 66:00:00:00:00:0b 10.0.0.2", "fdb 66:00:00:00:00:0c 10.1.0.3", "neigh 192.168.2.0 66:00:00:00:00:0b", "neigh 192.168.3.0 66:00:00:00:00:0c"}},
		{"unchanged", []routes.FDBEntry{fdbB, fdbC}, []routes.NeighEntry{nB, nC}, VTEPStats{},
			[]string{"fdb 66:00:00:00:00:0b 10.0.0.2", "fdb 66:00:00:00:00:0c 10.1.0.3", "neigh 192.168.2.0 66:00:00:00:00:0b", "neigh 192.168.3.0 66:00:00:00:00:0c"}},
		{"node c moved, b gone", []routes.FDBEntry{fdbCmoved}, []routes.NeighEntry{nC},
			VTEPStats{Added: 1, Deleted: 3},
			[]string{"fdb 66:00:00:00:00:0c 10.1.0.4", "neigh 192.168.3.0 66:00:00:00:00:0c"}},
	}
	for _, st := range steps {
		if err := s.Apply(st.fdb, st.neigh); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := s.LastStats(); got != st.want {
			t.Errorf("%s: stats %+v want %+v", st.name, got, st.want)
		}
		if got := kernelVTEPs(t, h); !slices.Equal(got, st.kern) {
			t.Errorf("%s: kernel\n got %q\nwant %q", st.name, got, st.kern)
		}
	}
	// Restart: a new syncer adopts everything and writes nothing; a stale
	// entry left behind is removed.
	l, _ := h.LinkByName(VXLANDevice)
	stale, _ := net.ParseMAC("66:00:00:00:00:99")
	if err := h.NeighSet(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF,
		State: netlink.NUD_PERMANENT, IP: net.ParseIP("10.0.0.99"), HardwareAddr: stale}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []VTEPStats{{Adopted: 2, Deleted: 1, FullSync: true}, {Adopted: 2, FullSync: true}} {
		s2 := m.NewVTEPSyncer()
		if err := s2.Apply([]routes.FDBEntry{fdbCmoved}, []routes.NeighEntry{nC}); err != nil {
			t.Fatal(err)
		}
		if got := s2.LastStats(); got != want {
			t.Errorf("restart %d: stats %+v want %+v", i, got, want)
		}
	}
}

func kernelVTEPs(t *testing.T, h *netlink.Handle) []string {
	t.Helper()
	l, err := h.LinkByName(VXLANDevice)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fdb, err := h.NeighList(l.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range fdb {
		if n.State&netlink.NUD_PERMANENT != 0 {
			out = append(out, "fdb "+n.HardwareAddr.String()+" "+n.IP.String())
		}
	}
	ns, err := h.NeighList(l.Attrs().Index, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.State&netlink.NUD_PERMANENT != 0 {
			out = append(out, "neigh "+n.IP.String()+" "+n.HardwareAddr.String())
		}
	}
	slices.Sort(out)
	return out
}

// This kernel has no IPIP: the probe must say so clearly and EnsureIPIP
// must return ErrIPIPUnsupported. On a kernel with IPIP both succeed.
func TestPrivilegedIPIP(t *testing.T) {
	m, h := newManager(t)
	ok, reason := IPIPSupported()
	t.Logf("IPIPSupported() = %v, %q", ok, reason)
	if reason == "" {
		t.Fatal("empty reason")
	}
	err := m.EnsureIPIP(context.Background(), IPIPConfig{MTU: 1480, Addr: pfx("192.168.1.1/32")})
	if ok {
		if err != nil {
			t.Fatalf("EnsureIPIP on a kernel with IPIP: %v", err)
		}
		l, err := h.LinkByName(IPIPDevice)
		if err != nil || l.Attrs().MTU != 1480 || l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("tunl0 = %+v, %v", l, err)
		}
		return
	}
	if !strings.Contains(reason, "no ipip device type") {
		t.Errorf("reason %q does not name the missing device type", reason)
	}
	if !errors.Is(err, ErrIPIPUnsupported) {
		t.Errorf("EnsureIPIP err = %v, want ErrIPIPUnsupported", err)
	}
}

func TestIPIPReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{unix.EOPNOTSUPP, "no ipip device type"},
		{unix.ENODEV, "no ipip device type"},
		{unix.EPERM, "cannot create an ipip tunnel"},
	}
	for _, tt := range tests {
		if got := ipipReason(tt.err); !strings.Contains(got, tt.want) {
			t.Errorf("ipipReason(%v) = %q, want it to contain %q", tt.err, got, tt.want)
		}
	}
}
