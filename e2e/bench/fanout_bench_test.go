package bench

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/datastore/etcd"
	"github.com/opencalico/calicoctl/datastore/kubernetes"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/etcdstore"
	"github.com/opencalico/calicoctl/internal/ipam/ipamstore"
	"github.com/opencalico/calicoctl/internal/kubetest"
	"github.com/opencalico/calicoctl/node/state"
)

// The fan-out benchmarks run fanFollowers agents' followers (node/state) in
// this process, each with its own datastore client, then create fanPods
// pods in a burst (fanWriters at a time) and time until every follower's
// model holds all of them. The datastore runs as a separate process, whose
// CPU time over the burst is reported.
const (
	fanFollowers = 100
	fanPods      = 1000
	fanNodes     = 100
	fanWriters   = 32
)

// fanOut is one datastore set-up for the fan-out benchmark.
type fanOut struct {
	// open connects follower i.
	open func(b *testing.B, i int) (datastore.Interface, ipam.Store)
	// create creates pod i (a WorkloadEndpoint on etcd, a Pod on Kubernetes).
	create func(ctx context.Context, i int) error
	// procs are the datastore's processes, by name, whose CPU is reported.
	procs map[string]int
	// watchers, when set, counts the watches the datastore serves.
	watchers func(b *testing.B) float64
}

// BenchmarkFanOut: 100 followers, 1,000 pods in a burst, on etcd, on etcd
// through `etcd grpc-proxy`, and on kube-apiserver; etcd-no-followers is
// the same burst with nobody watching (the writes alone). all-s (= ns/op) is from
// the first write until the last follower holds the last pod; write-s is
// how long the writes themselves took and lag-s how long after the last
// write the last follower had it; <proc>-cpu-s the datastore processes'
// CPU time over the burst and bench-cpu-s this process's (the 100
// followers and the writers); sync-s how long the 100 followers took to
// list and start watching; watches the watches etcd serves once they have.
func BenchmarkFanOut(b *testing.B) {
	b.Run("etcd-no-followers", func(b *testing.B) {
		e := startSystemEtcd(b)
		runFanOut(b, 0, etcdFanOut(b, e, e.Endpoint, map[string]int{"etcd": e.Pid()}))
	})
	b.Run("etcd", func(b *testing.B) {
		e := startSystemEtcd(b)
		runFanOut(b, fanFollowers, etcdFanOut(b, e, e.Endpoint, map[string]int{"etcd": e.Pid()}))
	})
	b.Run("etcd-grpc-proxy", func(b *testing.B) {
		e := startSystemEtcd(b)
		p := startGRPCProxy(b, e.Endpoint)
		runFanOut(b, fanFollowers, etcdFanOut(b, e, p.Endpoint, map[string]int{"etcd": e.Pid(), "proxy": p.Pid()}))
	})
	b.Run("kube-apiserver", func(b *testing.B) {
		runFanOut(b, fanFollowers, kubeFanOut(b))
	})
}

// etcdFanOut: the followers connect to followEP (etcd or a proxy in front
// of it); the pods are WorkloadEndpoints written straight to etcd.
func etcdFanOut(b *testing.B, e *etcdProcess, followEP string, procs map[string]int) fanOut {
	loadScaleCluster(b, e.Endpoint, fanNodes, 0)
	w, err := etcd.New(context.Background(), etcd.Config{Endpoints: []string{e.Endpoint}, Logger: quietLog()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Close() })
	return fanOut{
		open: func(b *testing.B, i int) (datastore.Interface, ipam.Store) {
			ds, err := etcd.New(context.Background(), etcd.Config{Endpoints: []string{followEP}, Logger: quietLog()})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { ds.Close() })
			return ds, etcdstore.New(ds.Client())
		},
		create: func(ctx context.Context, i int) error {
			_, err := w.Create(ctx, scaleWEP(i, fanNodes, "burst"))
			return err
		},
		procs: procs,
		watchers: func(b *testing.B) float64 {
			return etcdGauge(b, e.Endpoint, "etcd_debugging_mvcc_watcher_total")
		},
	}
}

// kubeFanOut: a real kube-apiserver (internal/kubetest; its etcd runs in
// this process, so only the API server's CPU is reported). The pods carry
// the CNI plugin's podIP annotation. The followers' clients are separate
// client-go clients, but client-go shares one HTTP/2 transport between
// clients of the same TLS configuration, so their watches are streams of a
// few connections rather than 100 connections.
func kubeFanOut(b *testing.B) fanOut {
	if _, err := kubetest.FindBinary(false, b.Logf); err != nil {
		b.Skipf("no kube-apiserver binary (export KUBE_APISERVER_BIN=$(e2e/kubeapiserver/build.sh)): %v", err)
	}
	srv := startKDD(b)
	srv.CreateNamespace(b, "burst", nil)
	cs := fastClientset(b, srv)
	return fanOut{
		open: func(b *testing.B, i int) (datastore.Interface, ipam.Store) {
			ds, err := kubernetes.New(context.Background(), kubernetes.Config{Kubeconfig: srv.Kubeconfig, Logger: quietLog()})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { ds.Close() })
			store, err := ipamstore.Open(ds)
			if err != nil {
				b.Fatal(err)
			}
			return ds, store
		},
		create: func(ctx context.Context, i int) error {
			w := scaleWEP(i, fanNodes, "burst")
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: "burst", Name: w.Spec.Pod, Labels: map[string]string{"app": "burst"},
					Annotations: map[string]string{kubernetes.AnnotationPodIP: w.Spec.IPNetworks[0]}},
				Spec: corev1.PodSpec{NodeName: w.Spec.Node, ServiceAccountName: "default",
					Containers: []corev1.Container{{Name: "main", Image: kubetest.PauseImage}}},
			}
			_, err := cs.CoreV1().Pods("burst").Create(ctx, pod, metav1.CreateOptions{})
			return err
		},
		procs: map[string]int{"apiserver": srv.Pid()},
	}
}

func runFanOut(b *testing.B, n int, fo fanOut) {
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	b.Cleanup(func() { cancel(); running.Wait() })

	begin := time.Now()
	followers := make([]*state.Follower, n)
	for i := range followers {
		ds, store := fo.open(b, i)
		f, err := state.New(state.Config{Datastore: ds, Blocks: store, Logger: quietLog()})
		if err != nil {
			b.Fatal(err)
		}
		followers[i] = f
		running.Go(func() { _ = f.Run(ctx) })
	}
	base := make([]int, n)
	waitAll(b, followers, func(i int, m *state.Model, st state.Status) bool {
		base[i] = m.Counts().WorkloadEndpoints
		return st.Synced
	})
	syncS := time.Since(begin).Seconds()
	watches := -1.0
	if fo.watchers != nil {
		watches = fo.watchers(b)
	}

	var writeS, lagS, selfS float64
	cpu := map[string]float64{}
	iter := 0
	for b.Loop() {
		before := map[string]float64{}
		for name, pid := range fo.procs {
			before[name] = cpuSeconds(b, pid)
		}
		self0 := selfCPUSeconds(b)
		t0 := time.Now()
		burst(b, ctx, fo.create, iter*fanPods)
		t1 := time.Now()
		writeS += t1.Sub(t0).Seconds()
		want := (iter + 1) * fanPods
		waitAll(b, followers, func(i int, m *state.Model, _ state.Status) bool {
			return m.Counts().WorkloadEndpoints-base[i] >= want
		})
		lagS += time.Since(t1).Seconds()
		selfS += selfCPUSeconds(b) - self0
		for name, pid := range fo.procs {
			cpu[name] += cpuSeconds(b, pid) - before[name]
		}
		iter++
	}
	// Reported after the loop: b.Loop's first call clears earlier metrics.
	b.ReportMetric(syncS, "sync-s")
	if watches >= 0 {
		b.ReportMetric(watches, "watches")
	}
	b.ReportMetric(writeS/float64(iter), "write-s")
	b.ReportMetric(lagS/float64(iter), "lag-s")
	b.ReportMetric(selfS/float64(iter), "bench-cpu-s")
	for name, s := range cpu {
		b.ReportMetric(s/float64(iter), name+"-cpu-s")
	}
}

// selfCPUSeconds is this process's user plus system CPU time.
func selfCPUSeconds(b *testing.B) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// burst creates fanPods pods numbered from first, fanWriters at a time.
func burst(b *testing.B, ctx context.Context, create func(context.Context, int) error, first int) {
	jobs := make(chan int)
	errs := make(chan error, fanWriters)
	var wg sync.WaitGroup
	for range fanWriters {
		wg.Go(func() {
			for i := range jobs {
				if err := create(ctx, i); err != nil {
					errs <- fmt.Errorf("create pod %d: %w", i, err)
					return
				}
			}
		})
	}
	for i := first; i < first+fanPods; i++ {
		select {
		case jobs <- i:
		case err := <-errs:
			b.Fatal(err)
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

// waitAll blocks until pred holds for every follower; the guard only stops
// a hung benchmark.
func waitAll(b *testing.B, fs []*state.Follower, pred func(i int, m *state.Model, st state.Status) bool) {
	b.Helper()
	var wg sync.WaitGroup
	failed := make(chan string, len(fs))
	for i, f := range fs {
		wg.Go(func() {
			guard := time.After(5 * time.Minute)
			for {
				ok := false
				st := f.Status()
				f.Read(func(m *state.Model, _ uint64) { ok = pred(i, m, st) })
				if ok {
					return
				}
				select {
				case <-f.Changed():
				case <-guard:
					var c state.Counts
					f.Read(func(m *state.Model, _ uint64) { c = m.Counts() })
					failed <- fmt.Sprintf("follower %d: %+v, %+v", i, st, c)
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case msg := <-failed:
		b.Fatalf("a follower never got there: %s", msg)
	default:
	}
}
