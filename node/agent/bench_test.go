package agent

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"testing"

	"github.com/opencalico/calicoctl/node/routes"
	"github.com/opencalico/calicoctl/resources"
)

// benchCluster fills an embedded etcd with one VXLAN pool (100.64.0.0/10,
// /26 blocks), the local node and `nodes` remote nodes with perNode affine
// blocks each.
func benchCluster(b *testing.B, nodes, perNode int) *env {
	b.Helper()
	e := newEnv(b)
	e.pool(b, "bench", "100.64.0.0/10", "", resources.EncapAlways, true, false)
	e.node(b, nodeSpec{name: "local", v4: "10.0.0.1/16", vxlan: "100.127.255.1", mac: "66:00:00:00:00:01"})
	for i := range nodes {
		name := fmt.Sprintf("node-%04d", i)
		e.node(b, nodeSpec{name: name, v4: fmt.Sprintf("10.0.%d.%d/16", 1+i/250, 1+i%250),
			vxlan: fmt.Sprintf("100.126.%d.%d", i>>8, i&255), mac: fmt.Sprintf("66:00:00:00:%02x:%02x", i>>8, i&255)})
		for j := range perNode {
			k := i*perNode + j
			base := netip.AddrFrom4([4]byte{100, byte(64 + k>>10), byte(k >> 2), byte(k&3) << 6})
			e.block(b, netip.PrefixFrom(base, 26).String(), name)
		}
	}
	return e
}

// BenchmarkSnapshotAndCompute: one full datastore read (ReadSnapshot) plus
// route intent (routes.Compute) with 1,000 remote nodes' blocks.
func BenchmarkSnapshotAndCompute(b *testing.B) {
	for _, perNode := range []int{1, 10} {
		b.Run(fmt.Sprintf("nodes=1000/blocksPerNode=%d", perNode), func(b *testing.B) {
			e := benchCluster(b, 1000, perNode)
			ctx := context.Background()
			want := 1000 * perNode
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				s, err := ReadSnapshot(ctx, e.ds, e.store, "local")
				if err != nil {
					b.Fatal(err)
				}
				d := routes.Compute(s.Routes, routes.Options{})
				if len(d.Routes) < want {
					b.Fatalf("%d routes, want at least %d", len(d.Routes), want)
				}
			}
		})
	}
}

// BenchmarkComputeOnly: route intent alone from an in-memory snapshot.
func BenchmarkComputeOnly(b *testing.B) {
	e := benchCluster(b, 1000, 10)
	s, err := ReadSnapshot(context.Background(), e.ds, e.store, "local")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d := routes.Compute(s.Routes, routes.Options{})
		if len(d.Routes) < 10000 {
			b.Fatalf("%d routes", len(d.Routes))
		}
	}
}

// BenchmarkAgentHeap1000Nodes is the "agent RSS with 1,000 remote nodes'
// blocks" figure: the heap the agent holds for one snapshot and its route
// intent (snapshot-heap-B, measured as the HeapInuse growth while both are
// live), and the process's HeapInuse at that moment (heap-inuse-B; in this
// test process it includes the embedded etcd server and the client).
func BenchmarkAgentHeap1000Nodes(b *testing.B) {
	e := benchCluster(b, 1000, 1)
	ctx := context.Background()
	var held, total uint64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s, err := ReadSnapshot(ctx, e.ds, e.store, "local")
		if err != nil {
			b.Fatal(err)
		}
		d := routes.Compute(s.Routes, routes.Options{})
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(s)
		runtime.KeepAlive(d)
		if after.HeapInuse > before.HeapInuse {
			held = after.HeapInuse - before.HeapInuse
		}
		total = after.HeapInuse
	}
	b.ReportMetric(float64(held), "snapshot-heap-B")
	b.ReportMetric(float64(total), "heap-inuse-B")
}
