package routes

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/opencalico/calicoctl/internal/netnstest"
	"github.com/opencalico/calicoctl/resources"
)

// benchRoutes returns n /26 routes in 100.64.0.0/10 via vxlan.calico onlink,
// perNode routes sharing each remote tunnel address (a node's blocks).
func benchRoutes(n, perNode int) []Route {
	rs := make([]Route, n)
	for i := range n {
		base := netip.AddrFrom4([4]byte{100, byte(64 + i>>10), byte(i >> 2), byte(i&3) << 6})
		g := i / perNode
		gw := netip.AddrFrom4([4]byte{100, 127, byte(g >> 8), byte(g)})
		rs[i] = Route{Dst: netip.PrefixFrom(base, 26), Dev: DeviceVXLAN, Gw: gw, OnLink: true, Protocol: ProtocolCluster}
	}
	return rs
}

// newBenchSyncer returns a syncer over a fresh netns that holds the VXLAN
// device, and the handle of that netns.
func newBenchSyncer(b *testing.B) (*Syncer, *netlink.Handle) {
	b.Helper()
	h := netnstest.New(b)
	addVXLAN(b, h, DeviceVXLAN)
	s, err := NewSyncer(SyncerOptions{Netlink: h})
	if err != nil {
		b.Fatal(err)
	}
	return s, h
}

// appliedBenchSyncer returns a syncer over a fresh netns that has applied rs.
func appliedBenchSyncer(b *testing.B, rs []Route) *Syncer {
	b.Helper()
	s, _ := newBenchSyncer(b)
	if err := s.Apply(rs); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkSyncerFull10k: one Apply of 10,000 routes into an empty netns,
// as 1,000 remote nodes with 10 blocks each.
func BenchmarkSyncerFull10k(b *testing.B) { benchFull(b, benchRoutes(10000, 10)) }

// BenchmarkSyncerFull10kDistinctGateways: the worst case, every route with
// its own next hop (the kernel allocates per-CPU state per next hop).
func BenchmarkSyncerFull10kDistinctGateways(b *testing.B) { benchFull(b, benchRoutes(10000, 1)) }

func benchFull(b *testing.B, rs []Route) {
	for b.Loop() {
		b.StopTimer()
		s, h := newBenchSyncer(b)
		b.StartTimer()
		if err := s.Apply(rs); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if st := s.LastStats(); st.Added != len(rs) {
			b.Fatalf("added %d, want %d", st.Added, len(rs))
		}
		h.Close()
		b.StartTimer()
	}
}

// BenchmarkSyncerIncremental1of10k: change one route's gateway in a table
// of 10,000 routes.
func BenchmarkSyncerIncremental1of10k(b *testing.B) {
	rs := benchRoutes(10000, 10)
	s := appliedBenchSyncer(b, rs)
	i := 0
	for b.Loop() {
		// Move one block to the next node and back.
		r := &rs[(i/2*10)%len(rs)]
		if i%2 == 0 {
			r.Gw = r.Gw.Next()
		} else {
			r.Gw = r.Gw.Prev()
		}
		i++
		if err := s.Apply(rs); err != nil {
			b.Fatal(err)
		}
		if st := s.LastStats(); st.Changes() != 1 {
			b.Fatalf("changes = %+v, want 1 replace", st)
		}
	}
}

// BenchmarkCompute1000Nodes: intent for 1,000 remote nodes, two blocks each.
func BenchmarkCompute1000Nodes(b *testing.B) {
	s := State{LocalNode: "node0", Nodes: map[string]NodeInfo{},
		Pools: []PoolInfo{{CIDR: pfx("100.64.0.0/10"), VXLANMode: resources.EncapCrossSubnet}}}
	for i := range 1001 {
		name := fmt.Sprintf("node%d", i)
		nodeIP := netip.AddrFrom4([4]byte{10, byte(i >> 8 & 3), byte(i), 1})
		tun := netip.AddrFrom4([4]byte{100, byte(64 + i>>7), byte(i << 1), 0})
		s.Nodes[name] = NodeInfo{Name: name, IPv4: netip.PrefixFrom(nodeIP, 24), IPv4VXLANTunnelAddr: tun,
			VXLANTunnelMACAddr: fmt.Sprintf("66:00:00:00:%02x:%02x", i>>8, i&0xff)}
		for j := range 2 {
			s.Blocks = append(s.Blocks, BlockInfo{CIDR: netip.PrefixFrom(tun, 26), Node: name})
			tun = netip.AddrFrom4([4]byte{100, byte(64 + i>>7), byte(i<<1 + 1), 0})
			_ = j
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		d := Compute(s, Options{})
		if len(d.Routes) != 2002 || len(d.Neighbors) != 1000 {
			b.Fatalf("routes %d neighbors %d", len(d.Routes), len(d.Neighbors))
		}
	}
}

// BenchmarkSyncerUpdate1of10k: the same change through Update (delta API).
func BenchmarkSyncerUpdate1of10k(b *testing.B) {
	rs := benchRoutes(10000, 10)
	s := appliedBenchSyncer(b, rs)
	i := 0
	for b.Loop() {
		r := rs[(i/2*10)%len(rs)]
		if i%2 == 0 {
			r.Gw = r.Gw.Next()
		}
		i++
		if err := s.Update([]Route{r}, nil); err != nil {
			b.Fatal(err)
		}
		if st := s.LastStats(); st.Changes() != 1 {
			b.Fatalf("changes = %+v, want 1 replace", st)
		}
	}
}
