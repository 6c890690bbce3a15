package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/netnstest"
	"github.com/opencalico/calicoctl/node/bgp"
	"github.com/opencalico/calicoctl/node/nat"
	"github.com/opencalico/calicoctl/node/plan"
	"github.com/opencalico/calicoctl/node/reconcile"
	"github.com/opencalico/calicoctl/node/routes"
	"github.com/opencalico/calicoctl/node/state"
)

// BenchmarkBlockToKernelRoute: one pod created on another node, until its
// block's route is in this node's kernel. A block affine to a remote node
// is written to embedded etcd; the agent's follower, main loop
// (planInput + KernelDataplane.Apply, default ApplyInterval) and route
// writer (default Debounce) run against a scratch network namespace; the
// clock stops when netlink reports the route there. It reports the median
// and 99th percentile (p50-ms, p99-ms). In "quiet" each block follows a
// pause longer than the agent's minimum intervals (a pod created in a
// quiet cluster; the pause is not timed); in "back-to-back" each follows
// the previous route at once (a steady stream of new blocks, where the
// minimum intervals coalesce). Needs root; run it with -benchtime 300x or
// more for a meaningful p99.
func BenchmarkBlockToKernelRoute(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("skipping: BenchmarkBlockToKernelRoute needs root (a network namespace and its routes)")
	}
	for _, gap := range []struct {
		name  string
		pause time.Duration
	}{{"quiet", 150 * time.Millisecond}, {"back-to-back", 0}} {
		b.Run(gap.name, func(b *testing.B) { benchBlockToKernelRoute(b, gap.pause) })
	}
}

func benchBlockToKernelRoute(b *testing.B, pause time.Duration) {
	ns := netnstest.NewNamed(b, "bench-route")
	h, err := netlink.NewHandleAt(ns.Handle)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	// The node's interface: remote nodes' addresses are on its subnet.
	netnstest.AddVeth(b, h, "eth0", "eth0-peer", "10.0.0.1/16", 0)

	// A plain (unencapsulated) pool, the local node and 100 remote nodes
	// with one block each.
	e := newEnv(b)
	e.pool(b, "bench", "100.64.0.0/10", "", "", false, false)
	e.node(b, nodeSpec{name: "local", v4: "10.0.0.1/16"})
	for i := range 100 {
		name := fmt.Sprintf("node-%04d", i)
		e.node(b, nodeSpec{name: name, v4: fmt.Sprintf("10.0.%d.%d/16", 1+i/250, 1+i%250)})
		base := netip.AddrFrom4([4]byte{100, 64, byte(i >> 2), byte(i&3) << 6})
		e.block(b, netip.PrefixFrom(base, 26).String(), name)
	}

	log := slog.New(slog.DiscardHandler)
	rs, err := routes.NewSyncer(routes.SyncerOptions{Netlink: h, Logger: log,
		Protocols:          []int{routes.ProtocolCluster, routes.ProtocolBoot, bgp.RouteProtocol},
		ExclusiveProtocols: []int{routes.ProtocolCluster, bgp.RouteProtocol}})
	if err != nil {
		b.Fatal(err)
	}
	// The route writer is the agent's; the others have nothing to do here.
	d := startDataplane(KernelOptions{NodeName: "local", NodeIP: netip.MustParseAddr("10.0.0.1"), Resync: reconcile.DefaultResync, MTUFile: "-"},
		log, fakeProbe{}, writeFuncs{
			routes:  (&routeWriter{routes: rs, ifindex: map[string]int{}}).write,
			vxlan:   func(context.Context, plan.VXLANSet, bool) error { return nil },
			tunnels: func(context.Context, plan.TunnelSet, bool) error { return nil },
			nat:     func(context.Context, nat.Desired, bool) error { return nil },
		})
	defer d.Close()

	f, err := state.New(state.Config{Datastore: e.ds, Blocks: e.store, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	l := &loop{cfg: Config{NodeName: "local", SyncInterval: time.Second, ResyncInterval: 90 * time.Second,
		ApplyInterval: 100 * time.Millisecond, Ready: func() { close(ready) }},
		f: f, dp: d, log: log, changes: newBroadcast(), plan: newPlanInput("local", FelixSettings{})}
	l.tunnels = reconcile.New(reconcile.Config{Name: "tunnel-addresses", Resync: -1, Logger: log},
		func(context.Context, uint64, bool) error { return nil })
	go f.Run(ctx)
	go l.changes.relay(ctx, f)
	go l.tunnels.Run(ctx)
	go l.run(ctx)
	select {
	case <-ready:
	case <-time.After(time.Minute):
		b.Fatal("the agent did not sync")
	}

	updates := make(chan netlink.RouteUpdate, 1024)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.RouteSubscribeWithOptions(updates, done, netlink.RouteSubscribeOptions{Namespace: &ns.Handle}); err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		if pause > 0 {
			b.StopTimer()
			time.Sleep(pause)
			b.StartTimer()
		}
		a := uint32(100)<<24 | uint32(100)<<16 + uint32(i)<<6 // 100.100.0.0 + i /26s
		cidr := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), 26)
		begin := time.Now()
		if _, err := e.store.CreateBlock(ctx, &ipam.Block{CIDR: cidr, Affinity: "host:node-0001",
			Allocations: make([]*int, 64), Unallocated: make([]int, 64)}); err != nil {
			b.Fatal(err)
		}
		guard := time.After(30 * time.Second)
	wait:
		for {
			select {
			case u := <-updates:
				if u.Type == 24 /* RTM_NEWROUTE */ && u.Dst != nil && u.Dst.String() == cidr.String() {
					break wait
				}
			case <-guard:
				b.Fatalf("no route to %s in the kernel", cidr)
			}
		}
		lat = append(lat, time.Since(begin))
	}
	reportPercentiles(b, lat)
}
