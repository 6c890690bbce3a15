package agent

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opencalico/calicoctl/internal/kubetest"
	"github.com/opencalico/calicoctl/resources"
)

// etcdRequests reads, from the in-process embedded etcd's metrics, the
// key-value ranges it has served and the unary gRPC calls it has started
// (every request but the watch streams).
func etcdRequests(t *testing.T) (ranges, unary float64) {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	seen := 0
	for _, mf := range mfs {
		switch mf.GetName() {
		case "etcd_mvcc_range_total", "etcd_debugging_mvcc_range_total":
			seen++
			for _, m := range mf.GetMetric() {
				ranges += m.GetCounter().GetValue()
			}
		case "grpc_server_started_total":
			seen++
			for _, m := range mf.GetMetric() {
				if label(m, "grpc_type") == "unary" {
					unary += m.GetCounter().GetValue()
				}
			}
		}
	}
	if seen != 2 {
		t.Fatalf("embedded etcd's range and gRPC counters not found in the metrics (%d of 2)", seen)
	}
	return ranges, unary
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// TestRunIdleSendsNothing runs the agent (with a fake dataplane) on
// embedded etcd: once in sync and settled it sends etcd no request while
// nothing changes, and a write elsewhere costs it only the watch event
// (the write's own Put is the only request etcd serves).
func TestRunIdleSendsNothing(t *testing.T) {
	e := newEnv(t)
	r := runAgent(t, e.ds, e)
	r.dp.waitFor(t, "the local tunnel address", func(s *Snapshot) bool { return s.Local.IPv4VXLANTunnelAddr.IsValid() })

	// Settle: the agent's own startup writes come back as events first.
	time.Sleep(300 * time.Millisecond)
	ranges0, unary0 := etcdRequests(t)
	applied0 := len(r.dp.snapshots())
	// An idle interval of many readiness heartbeats (SyncInterval 20ms).
	time.Sleep(2 * time.Second)
	ranges1, unary1 := etcdRequests(t)
	if ranges1 != ranges0 || unary1 != unary0 {
		t.Errorf("idle agent: etcd served %v ranges and %v unary requests, want none", ranges1-ranges0, unary1-unary0)
	}
	if n := len(r.dp.snapshots()); n != applied0 {
		t.Errorf("idle agent applied %d snapshots, want none", n-applied0)
	}

	// A pool written by someone else with one raw Put.
	p := &resources.IPPool{}
	p.Name = "elsewhere"
	p.Spec = resources.IPPoolSpec{CIDR: "10.250.0.0/16", IPIPMode: resources.EncapNever, VXLANMode: resources.EncapNever,
		NATOutgoing: true, BlockSize: 26, NodeSelector: "all()"}
	resources.SetTypeMeta(p)
	value, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ds.Client().Put(context.Background(), "/calico/resources/v3/projectcalico.org/ippools/elsewhere", string(value)); err != nil {
		t.Fatal(err)
	}
	r.dp.waitFor(t, "the pool written elsewhere", func(s *Snapshot) bool { return hasPool(s, "10.250.0.0/16") })
	time.Sleep(300 * time.Millisecond) // anything the event might have caused has been sent
	ranges2, unary2 := etcdRequests(t)
	if ranges2 != ranges1 || unary2 != unary1+1 {
		t.Errorf("after one write elsewhere: etcd served %v ranges and %v unary requests, want 0 and 1 (the Put)", ranges2-ranges1, unary2-unary1)
	}

	// The counters are live: one read is one more range.
	if _, err := e.ds.Client().Get(context.Background(), "/calico/resources/v3/projectcalico.org/ippools/elsewhere"); err != nil {
		t.Fatal(err)
	}
	if ranges3, _ := etcdRequests(t); ranges3 != ranges2+1 {
		t.Errorf("one Get moved the range counter by %v, want 1", ranges3-ranges2)
	}
}

var apiRequestLine = regexp.MustCompile(`^apiserver_request_total\{(.*)\} ([0-9.e+]+)$`)

// apiReads sums the API server's GET and LIST requests on the resources
// the agent follows, from its /metrics.
func apiReads(t *testing.T, srv *kubetest.APIServer) float64 {
	t.Helper()
	body, err := srv.Clientset(t).CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(t.Context())
	if err != nil {
		t.Skipf("the API server's /metrics is not readable with the harness's credentials: %v", err)
	}
	followed := map[string]bool{"nodes": true, "pods": true, "ippools": true, "felixconfigurations": true, "ipamblocks": true,
		"bgppeers": true, "bgpconfigurations": true, "bgpfilters": true}
	total, seen := 0.0, false
	for _, line := range strings.Split(string(body), "\n") {
		m := apiRequestLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		seen = true
		labels := map[string]string{}
		for _, kv := range strings.Split(m[1], ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				labels[k] = strings.Trim(v, `"`)
			}
		}
		if followed[labels["resource"]] && (labels["verb"] == "LIST" || labels["verb"] == "GET") {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			total += v
		}
	}
	if !seen {
		t.Fatal("no apiserver_request_total in the API server's metrics")
	}
	return total
}

// TestKDDRunIdleSendsNothing is TestRunIdleSendsNothing on the Kubernetes
// datastore: no GET or LIST of the followed resources while idle, and a
// pool created elsewhere reaches the dataplane through the watch alone.
func TestKDDRunIdleSendsNothing(t *testing.T) {
	srv := kddServer(t)
	const node = "kdd-idle-node"
	srv.CreateNode(t, node, nil, "10.0.0.5")
	// Registered before the agent's cleanup, so it runs after the agent
	// stopped: later tests' nodes use the same address.
	t.Cleanup(func() {
		if err := srv.Clientset(t).CoreV1().Nodes().Delete(context.Background(), node, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete node %s: %v", node, err)
		}
	})
	a := startKDDAgent(t, srv, node)
	select {
	case <-a.ready:
	case err := <-a.done:
		t.Fatalf("Run returned before the first sync: %v", err)
	case <-time.After(90 * time.Second):
		t.Fatal("no first sync (hang guard)")
	}
	a.dp.waitFor(t, "the local tunnel address", func(s *Snapshot) bool { return s.Local.IPv4VXLANTunnelAddr.IsValid() })
	time.Sleep(300 * time.Millisecond) // the agent's own writes come back first
	reads0 := apiReads(t, srv)
	if reads0 == 0 {
		t.Fatal("the API server counted no GET/LIST of the followed resources, not even the agent's first lists")
	}
	time.Sleep(2 * time.Second)
	reads1 := apiReads(t, srv)
	if reads1 != reads0 {
		t.Errorf("idle agent: %v GET/LIST requests on the followed resources, want none", reads1-reads0)
	}

	p := &resources.IPPool{}
	p.Name = "kdd-idle-elsewhere"
	p.Spec = resources.IPPoolSpec{CIDR: "10.252.0.0/16", IPIPMode: resources.EncapNever, VXLANMode: resources.EncapNever,
		NATOutgoing: true, BlockSize: 26, NodeSelector: "all()"}
	resources.SetTypeMeta(p)
	if _, err := a.ds.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = a.ds.Delete(context.Background(), resources.KeyOf(p), "") })
	a.dp.waitFor(t, "the pool created elsewhere", func(s *Snapshot) bool { return hasPool(s, "10.252.0.0/16") })
	time.Sleep(300 * time.Millisecond)
	if reads2 := apiReads(t, srv); reads2 != reads1 {
		t.Errorf("after one write elsewhere: %v GET/LIST requests on the followed resources, want none", reads2-reads1)
	}
}
