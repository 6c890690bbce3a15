package cni

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// BenchmarkConcurrentAdd runs 30 ADDs at once, each connecting to the
// datastore as a separate plugin process would, and reports the latency
// percentiles of one ADD. As root it wires real veths (the host is a scratch
// namespace); otherwise the dataplane is the in-memory fake.
func BenchmarkConcurrentAdd(b *testing.B) {
	const parallel = 30
	h := newHarness(b, "10.70.0.0/16")
	pods := fakePods{pods: map[string]*corev1.Pod{}}
	invs := make([]invocation, parallel)
	var dp Dataplane = &fakeDataplane{}
	paths := make([]string, parallel)
	if os.Geteuid() == 0 {
		dp = NewLinuxDataplane(newHostNS(b))
		for i := range paths {
			_, paths[i] = newNetns(b)
		}
	} else {
		b.Log("not root: using the fake dataplane")
	}
	for i := range invs {
		name := fmt.Sprintf("bench%d", i)
		pods.pods["bench/"+name] = pod("bench", name, nil, nil)
		invs[i] = invocation{id: "b" + name, netns: paths[i], pod: "bench/" + name, conf: h.conf("", "")}
		if invs[i].netns == "" {
			invs[i].netns = "/run/netns/" + name
		}
	}
	o := Options{Dataplane: dp, Pods: pods}
	var lat []time.Duration
	var mu sync.Mutex
	b.ResetTimer()
	for range b.N {
		var wg sync.WaitGroup
		for i := range invs {
			wg.Add(1)
			go func(inv invocation) {
				defer wg.Done()
				inv.command = CmdAdd
				start := time.Now()
				out, code := h.run(o, inv)
				d := time.Since(start)
				if code != 0 {
					b.Errorf("ADD %s: %s", inv.id, out)
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}(invs[i])
		}
		wg.Wait()
		b.StopTimer()
		for _, inv := range invs {
			inv.command = CmdDel
			if out, code := h.run(o, inv); code != 0 {
				b.Fatalf("DEL %s: %s", inv.id, out)
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}
