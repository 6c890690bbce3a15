package status

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opencalico/calicoctl/datastore/etcd"
	"github.com/opencalico/calicoctl/internal/etcdserver"
	"github.com/opencalico/calicoctl/resources"
)

// fakeSource is a Source with a settable report.
type fakeSource struct {
	mu  sync.Mutex
	rep Report
}

func (f *fakeSource) set(r Report) { f.mu.Lock(); f.rep = r; f.mu.Unlock() }

func (f *fakeSource) Report(_ context.Context, withRoutes bool) (Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.rep
	if !withRoutes {
		r.Routes = nil
	}
	return r, nil
}

func (f *fakeSource) WriteMetrics(_ context.Context, w io.Writer) error {
	_, err := io.WriteString(w, "calico_bgp_speaker_up 1\n")
	return err
}

var _ Source = (*fakeSource)(nil)

var since = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func sampleReport() Report {
	return Report{Running: true, Version: "v1", RouterID: "10.0.0.1", ASN: 64512, Started: since,
		Peers: []Peer{
			{Name: "Mesh_10_0_0_2", Address: "10.0.0.2", Type: "node-to-node mesh", State: "up", BGPState: "Established", Since: since},
			{Name: "Global_10_0_0_9", Address: "10.0.0.9", Type: "global", State: "start", BGPState: "Active", LastError: "Socket: connection refused", Since: since},
			{Name: "Mesh_fd00__2", Address: "fd00::2", Type: "node-to-node mesh", State: "up", BGPState: "Established", Since: since},
			{Name: "Local_Workload_10_0_0_7", Address: "10.0.0.7", Type: "local workload", BGPState: "Idle"},
		},
		Routes: []Route{
			{Prefix: "10.244.1.0/26", NextHop: "10.0.0.1", Best: true, Local: true},
			{Prefix: "10.244.2.0/26", NextHop: "10.0.0.2", Peer: "10.0.0.2", Best: true},
			{Prefix: "fd00:244::/122", NextHop: "fd00::9", Peer: "fd00::9"},
		}}
}

func TestServeFetch(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "run", "bgp.sock")
	ctx, cancel := context.WithCancel(context.Background())
	src := &fakeSource{rep: sampleReport()}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, sock, src, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	var rep Report
	var err error
	for i := 0; i < 50; i++ {
		if rep, err = Fetch(context.Background(), sock, false); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Running || rep.RouterID != "10.0.0.1" || len(rep.Peers) != 4 || rep.Routes != nil || !rep.Peers[0].Since.Equal(since) {
		t.Errorf("report = %+v", rep)
	}
	if rep.Peers[1].Info() != "Active Socket: connection refused" || rep.Peers[0].Info() != "Established" {
		t.Errorf("info = %q, %q", rep.Peers[1].Info(), rep.Peers[0].Info())
	}
	if rep, err = Fetch(context.Background(), sock, true); err != nil || len(rep.Routes) != 3 {
		t.Errorf("with routes: %v %v", rep.Routes, err)
	}
	resp, err := client(sock).Get("http://agent/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "calico_bgp_speaker_up 1") {
		t.Errorf("metrics = %s", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := Fetch(context.Background(), sock, false); !errors.Is(err, ErrNotRunning) {
		t.Errorf("after shutdown: %v, want ErrNotRunning", err)
	}
}

func TestBuild(t *testing.T) {
	now := since.Add(time.Hour)
	st := Build([]string{"Agent", "BGP", "Routes"}, sampleReport(), now)
	if st.Agent.BIRDV4.State != "Ready" || st.Agent.BIRDV4.RouterID != "10.0.0.1" || st.Agent.BIRDV6.LastBootTime != "2026-12-01 10:00:00" {
		t.Errorf("agent = %+v", st.Agent)
	}
	b := st.BGP
	if b.NumberEstablishedV4 != 1 || b.NumberNotEstablishedV4 != 1 || b.NumberEstablishedV6 != 1 || len(b.PeersV4) != 2 ||
		b.PeersV4[0] != (resources.CalicoNodePeer{PeerIP: "10.0.0.2", Type: "NodeMesh", State: "Established", Since: "2026-12-01 10:00:00"}) ||
		b.PeersV4[1].Type != "GlobalPeer" {
		t.Errorf("bgp = %+v", b)
	}
	r := st.Routes
	if len(r.RoutesV4) != 2 || r.RoutesV4[0].LearnedFrom.SourceType != "Static" || r.RoutesV4[1].LearnedFrom.SourceType != "NodeMesh" ||
		r.RoutesV4[1].Type != "FIB" || len(r.RoutesV6) != 1 || r.RoutesV6[0].Type != "RIB" || r.RoutesV6[0].LearnedFrom.SourceType != "BGPPeer" {
		t.Errorf("routes = %+v", r)
	}
	if only := Build([]string{"BGP"}, sampleReport(), now); only.Agent.BIRDV4.State != "" || only.Routes.RoutesV4 != nil {
		t.Errorf("classes not honoured: %+v", only)
	}
	if down := Build([]string{"Agent"}, Report{}, now); down.Agent.BIRDV4.State != "NotReady" {
		t.Errorf("stopped = %+v", down.Agent)
	}
}

func ptr[T any](v T) *T { return &v }

func TestPublisher(t *testing.T) {
	srv := etcdserver.StartForTest(t)
	ctx := context.Background()
	ds, err := etcd.New(ctx, etcd.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	mk := func(name, node string, period uint32, classes ...string) {
		t.Helper()
		c := &resources.CalicoNodeStatus{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: resources.CalicoNodeStatusSpec{Node: node, Classes: classes, UpdatePeriodSeconds: ptr(period)}}
		resources.SetTypeMeta(c)
		if _, err := ds.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	get := func(name string) *resources.CalicoNodeStatus {
		t.Helper()
		r, err := ds.Get(ctx, resources.Key{Kind: "CalicoNodeStatus", Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return r.(*resources.CalicoNodeStatus)
	}
	mk("n1-bgp", "n1", 10, "BGP")
	mk("n1-once", "n1", 0, "Agent")
	mk("n2", "n2", 10, "BGP")

	now := since
	src := &fakeSource{rep: sampleReport()}
	p := &Publisher{Datastore: ds, Node: "n1", Source: src, Now: func() time.Time { return now }}
	if err := p.Once(ctx); err != nil {
		t.Fatal(err)
	}
	c := get("n1-bgp")
	if c.Status.BGP.NumberEstablishedV4 != 1 || len(c.Status.BGP.PeersV4) != 2 || !c.Status.LastUpdated.Time.Equal(now) {
		t.Errorf("n1-bgp status = %+v", c.Status)
	}
	if once := get("n1-once"); once.Status.Agent.BIRDV4.State != "Ready" {
		t.Errorf("n1-once status = %+v", once.Status)
	}
	if other := get("n2"); !other.Status.LastUpdated.IsZero() {
		t.Errorf("another node's object was written: %+v", other.Status)
	}
	rev := c.ResourceVersion

	// Before the period is over, a change is not written.
	src.set(Report{Running: true, Peers: []Peer{{Address: "10.0.0.2", Type: "node-to-node mesh", BGPState: "Active"}}})
	now = now.Add(5 * time.Second)
	if err := p.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if get("n1-bgp").ResourceVersion != rev {
		t.Error("written before its period")
	}
	// After it, it is; the period-0 object is never refreshed.
	now = now.Add(6 * time.Second)
	// A spec edit made meanwhile is kept (the status is written onto the
	// listed copy, with its resourceVersion).
	edited := get("n1-bgp")
	edited.Spec.Classes = []string{"BGP", "Agent"}
	if _, err := ds.Update(ctx, edited); err != nil {
		t.Fatal(err)
	}
	if err := p.Once(ctx); err != nil {
		t.Fatal(err)
	}
	c = get("n1-bgp")
	if c.Status.BGP.NumberNotEstablishedV4 != 1 || c.Status.BGP.NumberEstablishedV4 != 0 || c.Status.Agent.BIRDV4.State != "Ready" ||
		len(c.Spec.Classes) != 2 {
		t.Errorf("after the period: %+v %+v", c.Spec, c.Status)
	}
	if once := get("n1-once"); once.Status.Agent.BIRDV4.RouterID != "10.0.0.1" {
		t.Errorf("period 0 was refreshed: %+v", once.Status)
	}
	// Unchanged content is not rewritten.
	rev = c.ResourceVersion
	now = now.Add(11 * time.Second)
	if err := p.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if get("n1-bgp").ResourceVersion != rev {
		t.Error("rewritten without a change")
	}
}
