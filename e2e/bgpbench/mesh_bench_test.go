package bgpbench

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/node/bgp/speaker"
)

// BenchmarkBGPMesh100 is the node-to-node mesh of 100 of our speakers
// (issue 10 item 7, target < 5 s), all in this process: node i listens
// on 127.10.0.(i+1):17179 and originates one /26; its intent is
// bgp.Compute over the 100 Node resources with bindMode NodeIP, so the
// sessions, their passive sides and the paths are the agent's.
//
// converge-s runs from the first Apply (all 100 are applied at once, as
// 100 agents starting together would) until every speaker has 99
// Established sessions and has learned the 99 other blocks, each via its
// node. rss-MiB is this process's RSS then, peakRSS-MiB its VmHWM, cpu-s
// the process CPU time (user+system) over the convergence.
// BGPBENCH_MESH (default 100) changes the size.
func BenchmarkBGPMesh100(b *testing.B) {
	n := envInt("BGPBENCH_MESH", 100)
	if n > 250 {
		b.Skipf("BGPBENCH_MESH=%d: at most 250 nodes (one 127.10.0.x address each)", n)
	}
	raiseNoFile(b, uint64(n*n+1024)) // both ends of n(n-1)/2 sessions, n listeners
	ds := meshDesired(n)
	for i, d := range ds {
		if len(d.Peers) != n-1 || len(d.Paths) != 1 {
			b.Fatalf("node %d: the planner gave %d peers and %d paths, want %d and 1 (warnings: %v)", i, len(d.Peers), len(d.Paths), n-1, d.Warnings)
		}
	}
	var convS, rssMiB, peakMiB, cpuS, applyS float64
	for range b.N {
		runtime.GC()
		speakers := make([]*speaker.Speaker, n)
		for i := range n {
			s, err := speaker.New(speaker.Options{Logger: slog.New(slog.DiscardHandler), StateDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			speakers[i] = s
		}
		ctx := context.Background()
		stopProfile := profileWindow(b)
		cpu0 := cpuSeconds(0)
		t0 := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { errs[i] = speakers[i].Apply(ctx, ds[i]) })
		}
		wg.Wait()
		applied := time.Since(t0)
		for i, err := range errs {
			if err != nil {
				b.Fatalf("node %d: apply: %v", i, err)
			}
		}
		if err := waitMesh(speakers, time.Now().Add(120*time.Second)); err != nil {
			b.Fatal(err)
		}
		conv := time.Since(t0)
		cpu := cpuSeconds(0) - cpu0
		stopProfile()
		st := procStatusKiB(0)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		// Still converged after the measurement (no session dropped).
		for i, s := range speakers {
			if !meshNodeConverged(s, i, n) {
				b.Errorf("node %d no longer converged after the measurement", i)
			}
		}
		b.Logf("%d speakers: applied in %.2fs, converged in %.2fs, CPU %.2fs, RSS %.0f MiB, peak %.0f MiB; %d goroutines, stacks %.0f MiB, heap in use %.0f MiB",
			n, applied.Seconds(), conv.Seconds(), cpu, st["VmRSS"]/1024, st["VmHWM"]/1024,
			runtime.NumGoroutine(), float64(ms.StackInuse)/(1<<20), float64(ms.HeapInuse)/(1<<20))
		convS += conv.Seconds()
		applyS += applied.Seconds()
		cpuS += cpu
		rssMiB = max(rssMiB, st["VmRSS"]/1024)
		peakMiB = max(peakMiB, st["VmHWM"]/1024)
		b.StopTimer()
		closeAll(speakers)
		b.StartTimer()
	}
	f := float64(b.N)
	b.ReportMetric(applyS/f, "apply-s")
	b.ReportMetric(convS/f, "converge-s")
	b.ReportMetric(cpuS/f, "cpu-s")
	b.ReportMetric(rssMiB, "rss-MiB")
	b.ReportMetric(peakMiB, "peakRSS-MiB")
}

// profileWindow writes a CPU profile of the convergence alone to
// $BGPBENCH_CPUPROFILE, when set (go test's -cpuprofile also covers the
// set-up and the Close of 100 speakers).
func profileWindow(b *testing.B) (stop func()) {
	p := os.Getenv(profileEnv)
	if p == "" {
		return func() {}
	}
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// waitMesh polls the speakers not yet converged every 50 ms (Learned
// first; Status, which has gobgp count every peer's advertised paths,
// only once the paths are complete).
func waitMesh(speakers []*speaker.Speaker, deadline time.Time) error {
	n := len(speakers)
	pending := map[int]bool{}
	for i := range n {
		pending[i] = true
	}
	for len(pending) > 0 {
		for i := range pending {
			if meshNodeConverged(speakers[i], i, n) {
				delete(pending, i)
			}
		}
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for i := range pending {
				est := 0
				for _, p := range speakers[i].Status() {
					if p.State == "Established" {
						est++
					}
				}
				return fmt.Errorf("%d of %d speakers not converged; node %d has %d Established sessions and %d learned paths",
					len(pending), n, i, est, len(speakers[i].Learned()))
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// meshNodeConverged: node i has learned every other node's block via
// that node, and all its n-1 sessions are Established.
func meshNodeConverged(s *speaker.Speaker, i, n int) bool {
	learned := s.Learned()
	if len(learned) != n-1 {
		return false
	}
	want := map[netip.Prefix]netip.Addr{}
	for j := range n {
		if j != i {
			want[block(j, false)] = meshAddr(j)
		}
	}
	for _, l := range learned {
		if nh, ok := want[l.Prefix]; !ok || l.NextHop != nh {
			return false
		}
	}
	est := 0
	for _, p := range s.Status() {
		if p.State == "Established" {
			est++
		}
	}
	return est == n-1
}

// closeAll stops the speakers in parallel. (Each Close shuts down the
// sockets of this process on the listen port, which the speakers share
// here; they are all going anyway.)
func closeAll(speakers []*speaker.Speaker) {
	var wg sync.WaitGroup
	for _, s := range speakers {
		wg.Go(func() { _ = s.Close() })
	}
	wg.Wait()
}

// BenchmarkBGPApplyMeshNode is one mesh node's first Apply (start gobgp,
// policies, 99 neighbours, one path) with no other speaker running: the
// set-up cost inside BenchmarkBGPMesh100's apply-s without the
// contention of 99 others.
func BenchmarkBGPApplyMeshNode(b *testing.B) {
	d := meshDesired(100)[0]
	ctx := context.Background()
	for b.Loop() {
		s, err := speaker.New(speaker.Options{Logger: slog.New(slog.DiscardHandler), StateDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Apply(ctx, d); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = s.Close()
		b.StartTimer()
	}
}
