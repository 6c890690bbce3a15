package ipam_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/internal/etcdserver"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/etcdstore"
)

// perHost is how many addresses one host name takes before the benchmarks
// move on to a fresh one, so a host never has more than a few (full) blocks
// and every request sees the same amount of work: a host with hundreds of
// full blocks is not the case being measured.
const perHost = 500

func benchEnv(b *testing.B) (endpoints []string, pools *staticPools) {
	b.Helper()
	endpoints = etcdserver.StartForTest(b).Endpoints()
	pools = &staticPools{pools: []ipam.Pool{pool("bench", "10.0.0.0/8", 26)}}
	return endpoints, pools
}

// BenchmarkAutoAssign measures one AutoAssign of one IPv4 address with a new
// handle, on embedded etcd, one request at a time (p50/p99 latency).
func BenchmarkAutoAssign(b *testing.B) {
	endpoints, pools := benchEnv(b)
	alloc := ipam.New(etcdstore.New(newClient(b, endpoints)), pools)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		_, err := alloc.AutoAssign(ctx, ipam.AutoAssignArgs{
			Num4: 1, HandleID: fmt.Sprintf("h-%d", i), Hostname: fmt.Sprintf("node-%d", i/perHost),
		})
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkAutoAssignParallel measures throughput with 32 concurrent
// clients (4 per node, 8 nodes, one etcd client per node).
func BenchmarkAutoAssignParallel(b *testing.B) {
	const clients, nodes = 32, 8
	endpoints, pools := benchEnv(b)
	allocs := make([]*ipam.Allocator, nodes)
	for i := range allocs {
		allocs[i] = ipam.New(etcdstore.New(newClient(b, endpoints)), pools)
	}
	ctx := context.Background()
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	lats := make([][]time.Duration, clients)
	b.ResetTimer()
	start := time.Now()
	for c := range clients {
		node := c % nodes
		wg.Go(func() {
			// A client's k-th request goes to host node-<node>-<k/perHost>,
			// so the 4 clients of a node share its blocks.
			for k := 0; ; k++ {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				_, err := allocs[node].AutoAssign(ctx, ipam.AutoAssignArgs{
					Num4: 1, HandleID: fmt.Sprintf("h-%d", i),
					Hostname: fmt.Sprintf("node-%d-%d", node, k*clients/nodes/perHost),
				})
				lats[c] = append(lats[c], time.Since(t0))
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "allocs/s")
	reportLatency(b, slices.Concat(lats...))
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
