package bench

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/datastore/etcd"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/etcdstore"
	"github.com/opencalico/calicoctl/node/agent"
	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

// The simulated cluster of issue 9: scaleNodes nodes, each with one /26
// block holding scaleWEPs/scaleNodes allocations, and scaleWEPs workload
// endpoints using them, in one pool.
const (
	scaleNodes = 5000
	scaleWEPs  = 50000
	// childEnv, set in a re-run of this test binary, is the etcd endpoint
	// TestScaleFollowerChild follows.
	childEnv = "CALICOCTL_BENCH_FOLLOWER_ENDPOINT"
)

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func scaleBlock(i int) netip.Prefix {
	a := uint32(100)<<24 | uint32(64)<<16 + uint32(i)<<6 // 100.64.0.0 + i /26s
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), 26)
}

func scaleNodeName(i int) string { return fmt.Sprintf("node-%05d", i) }

// scaleWEP is workload endpoint i in the scale cluster: on node i%nodes,
// address i/nodes of that node's block.
func scaleWEP(i, nodes int, prefix string) *resources.WorkloadEndpoint {
	n := i % nodes
	a := scaleBlock(n).Addr().As4()
	a[3] += byte(i / nodes % 64)
	w := &resources.WorkloadEndpoint{}
	w.Namespace = fmt.Sprintf("ns%d", i%10)
	w.Name = fmt.Sprintf("%s-k8s-%s%06d-eth0", scaleNodeName(n), prefix, i)
	w.Labels = map[string]string{"app": fmt.Sprintf("app%d", i%100), "projectcalico.org/namespace": w.Namespace}
	w.Spec = resources.WorkloadEndpointSpec{Orchestrator: "k8s", Node: scaleNodeName(n), Pod: fmt.Sprintf("%s%06d", prefix, i),
		Endpoint: "eth0", InterfaceName: fmt.Sprintf("cali%011x", i), IPNetworks: []string{netip.AddrFrom4(a).String() + "/32"}}
	resources.SetTypeMeta(w)
	return w
}

// loadScaleCluster writes the pool, the nodes and the endpoints through
// the etcd backend's bulk path, and the blocks straight to etcd in
// upstream's encoding (transactions of 100 puts).
func loadScaleCluster(b *testing.B, endpoint string, nodes, weps int) {
	b.Helper()
	begin := time.Now()
	ctx := context.Background()
	ds, err := etcd.New(ctx, etcd.Config{Endpoints: []string{endpoint}, Logger: quietLog(), RequestTimeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer ds.Close()
	p := &resources.IPPool{}
	p.Name = "scale"
	p.Spec = resources.IPPoolSpec{CIDR: "100.64.0.0/10", BlockSize: 26, VXLANMode: resources.EncapAlways, NodeSelector: "all()"}
	objs := []resources.Resource{p}
	for i := range nodes {
		n := &resources.Node{}
		n.Name = scaleNodeName(i)
		n.Spec.BGP = &resources.NodeBGPSpec{IPv4Address: fmt.Sprintf("10.%d.%d.%d/8", i>>16, (i>>8)&255, i&255)}
		n.Spec.IPv4VXLANTunnelAddr = fmt.Sprintf("100.127.%d.%d", i>>8, i&255)
		objs = append(objs, n)
	}
	for _, o := range objs {
		resources.SetTypeMeta(o)
	}
	create := func(rs []resources.Resource) {
		if _, errs := ds.CreateMany(ctx, rs); errs != nil {
			for _, err := range errs {
				if err != nil {
					b.Fatalf("bulk create: %v", err)
				}
			}
		}
	}
	create(objs)
	for start := 0; start < weps; start += 5000 {
		chunk := make([]resources.Resource, 0, 5000)
		for i := start; i < min(start+5000, weps); i++ {
			chunk = append(chunk, scaleWEP(i, nodes, "pod"))
		}
		create(chunk)
	}
	kvs := make(map[string][]byte, nodes)
	now := time.Now()
	for n := range nodes {
		blk := ipam.NewBlock(scaleBlock(n), "host:"+scaleNodeName(n), now)
		per := 0
		for i := n; i < weps; i += nodes {
			o := i / nodes % 64
			handle := fmt.Sprintf("k8s-pod-network.%064x", i)
			idx := len(blk.Attributes)
			blk.Allocations[o] = &idx
			blk.Attributes = append(blk.Attributes, ipam.AllocationAttribute{HandleID: &handle,
				ActiveOwnerAttrs: map[string]string{ipam.AttrNode: scaleNodeName(n), ipam.AttrPod: fmt.Sprintf("pod%06d", i), ipam.AttrNamespace: fmt.Sprintf("ns%d", i%10)}})
			blk.SequenceNumberForAllocation[ipam.OrdinalKey(o)] = blk.SequenceNumber
			per++
		}
		blk.Unallocated = blk.Unallocated[min(per, len(blk.Unallocated)):]
		v, err := ipam.EncodeBlock(blk)
		if err != nil {
			b.Fatal(err)
		}
		kvs[ipam.BlockKey(blk.CIDR)] = v
	}
	putAll(b, strings.TrimPrefix(endpoint, "http://"), kvs)
	b.Logf("loaded %d nodes, %d blocks, %d workload endpoints in %s", nodes, nodes, weps, time.Since(begin).Round(time.Millisecond))
}

// BenchmarkFollowerInitialSync: one agent's follower (node/state) lists and
// starts watching a cluster of 5,000 nodes and 50,000 workload endpoints
// on a separate etcd process. Each iteration is a fresh process (this test
// binary re-run as TestScaleFollowerChild), so its memory is the
// follower's alone: sync-s is from start of connecting to synced, heap-MiB
// the live heap after a GC with the model held, peakRSS-MiB the process's
// peak resident set, rss-MiB its resident set once the runtime has returned
// free memory to the kernel (anon-MiB: the anonymous part of it, without
// the executable's pages), rssNoFree-MiB the resident set after a GC but
// before debug.FreeOSMemory, snapshot-ms one agent.BuildSnapshot
// over that model (what the agent does after a change). With
// CALICOCTL_BENCH_HEAPPROFILE=file the follower process writes a heap
// profile there once synced.
func BenchmarkFollowerInitialSync(b *testing.B) {
	etcdProc := startSystemEtcd(b)
	loadScaleCluster(b, etcdProc.Endpoint, scaleNodes, scaleWEPs)
	sums := map[string]float64{}
	n := 0
	for b.Loop() {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestScaleFollowerChild$", "-test.count", "1")
		cmd.Env = append(os.Environ(), childEnv+"="+etcdProc.Endpoint)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("follower process: %v\n%s", err, out)
		}
		found := false
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			rest, ok := strings.CutPrefix(sc.Text(), "RESULT ")
			if !ok {
				continue
			}
			found = true
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					b.Fatalf("child result %q: %v", kv, err)
				}
				sums[k] += f
			}
		}
		if !found {
			b.Fatalf("follower process printed no result:\n%s", out)
		}
		n++
	}
	for k, v := range sums {
		b.ReportMetric(v/float64(n), k)
	}
}

// TestScaleFollowerChild is BenchmarkFollowerInitialSync's follower
// process; it skips unless that benchmark started it.
func TestScaleFollowerChild(t *testing.T) {
	ep := os.Getenv(childEnv)
	if ep == "" {
		t.Skip("the follower process of BenchmarkFollowerInitialSync")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	begin := time.Now()
	ds, err := etcd.New(ctx, etcd.Config{Endpoints: []string{ep}, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	f, err := state.New(state.Config{Datastore: ds, Blocks: etcdstore.New(ds.Client()), Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	go f.Run(ctx)
	guard := time.After(5 * time.Minute)
	for !f.Status().Synced {
		select {
		case <-f.Changed():
		case <-guard:
			t.Fatalf("not synced: %+v", f.Status())
		}
	}
	sync := time.Since(begin)
	var counts state.Counts
	var snap time.Duration
	f.Read(func(m *state.Model, _ uint64) {
		counts = m.Counts()
		t0 := time.Now()
		s := agent.BuildSnapshot(m, scaleNodeName(1))
		snap = time.Since(t0)
		if len(s.Routes.Blocks) != scaleNodes {
			t.Errorf("snapshot has %d blocks, want %d", len(s.Routes.Blocks), scaleNodes)
		}
	})
	if counts.Nodes != scaleNodes || counts.WorkloadEndpoints != scaleWEPs || counts.Blocks != scaleNodes {
		t.Fatalf("model holds %+v", counts)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := procStatus(t)
	// What stays resident once the runtime has returned the sync's garbage
	// (it does so by itself within minutes).
	debug.FreeOSMemory()
	st := procStatus(t)
	fmt.Printf("RESULT sync-s=%.3f heap-MiB=%.1f rss-MiB=%.1f anon-MiB=%.1f rssNoFree-MiB=%.1f peakRSS-MiB=%.1f snapshot-ms=%.1f\n",
		sync.Seconds(), float64(ms.HeapAlloc)/(1<<20), st["VmRSS"]/1024, st["RssAnon"]/1024, before["VmRSS"]/1024,
		before["VmHWM"]/1024, float64(snap.Microseconds())/1000)
	if path := os.Getenv("CALICOCTL_BENCH_HEAPPROFILE"); path != "" {
		out, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		if err := pprof.WriteHeapProfile(out); err != nil {
			t.Fatal(err)
		}
	}
	runtime.KeepAlive(f)
}

// procStatus reads the kB figures of /proc/self/status.
func procStatus(t *testing.T) map[string]float64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if f := strings.Fields(v); len(f) == 2 && f[1] == "kB" {
			out[k], _ = strconv.ParseFloat(f[0], 64)
		}
	}
	return out
}
