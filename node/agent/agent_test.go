package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/node/autodetect"
	"github.com/opencalico/calicoctl/node/config"
	"github.com/opencalico/calicoctl/node/plan"
	"github.com/opencalico/calicoctl/node/routes"
	"github.com/opencalico/calicoctl/resources"
)

// fakeDataplane records every snapshot it is given.
type fakeDataplane struct {
	mu      sync.Mutex
	applied []*Snapshot
	resyncs int
	closed  bool
	notify  chan struct{} // poked (non-blocking) on every Apply
}

var _ Dataplane = (*fakeDataplane)(nil)

func newFakeDataplane() *fakeDataplane { return &fakeDataplane{notify: make(chan struct{}, 1)} }

func (f *fakeDataplane) Apply(_ context.Context, in plan.Input) error {
	s := in.Snapshot()
	f.mu.Lock()
	f.applied = append(f.applied, s)
	f.mu.Unlock()
	select {
	case f.notify <- struct{}{}:
	default:
	}
	return nil
}

func (f *fakeDataplane) Resync() { f.mu.Lock(); f.resyncs++; f.mu.Unlock() }

func (f *fakeDataplane) Close() error { f.mu.Lock(); f.closed = true; f.mu.Unlock(); return nil }

func (f *fakeDataplane) snapshots() []*Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.applied)
}

// waitFor blocks until an applied snapshot satisfies pred, or fails the test
// after the guard deadline (a hang guard, not a timing assertion).
func (f *fakeDataplane) waitFor(t *testing.T, what string, pred func(*Snapshot) bool) *Snapshot {
	t.Helper()
	guard := time.NewTimer(60 * time.Second)
	defer guard.Stop()
	for {
		for _, s := range f.snapshots() {
			if pred(s) {
				return s
			}
		}
		select {
		case <-f.notify:
		case <-guard.C:
			t.Fatalf("no applied snapshot with %s", what)
		}
	}
}

// switchable is a datastore that can be made unreachable: while down, every
// call fails at once with ErrUnavailable, as a refused connection does.
type switchable struct {
	datastore.Interface
	down atomic.Bool
	mu   sync.Mutex
	lost chan struct{} // closed when the datastore goes down
}

// setDown flips the datastore; going down ends every open watch with an
// Error event, as a lost connection does.
func (s *switchable) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down.Store(down)
	if s.lost == nil {
		s.lost = make(chan struct{})
	}
	if down {
		close(s.lost)
		s.lost = make(chan struct{})
	}
}

func (s *switchable) Watch(ctx context.Context, o datastore.WatchOptions) (<-chan datastore.Event, error) {
	if err := s.err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.lost == nil {
		s.lost = make(chan struct{})
	}
	lost := s.lost
	s.mu.Unlock()
	wctx, cancel := context.WithCancel(ctx)
	in, err := s.Interface.Watch(wctx, o)
	if err != nil {
		cancel()
		return nil, err
	}
	out := make(chan datastore.Event)
	go func() {
		defer close(out)
		defer func() {
			cancel()
			for range in {
			}
		}()
		for {
			select {
			case ev, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			case <-lost:
				select {
				case out <- datastore.Event{Type: datastore.Error, Err: s.err()}:
				case <-ctx.Done():
				}
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (s *switchable) err() error {
	if s.down.Load() {
		return fmt.Errorf("connection refused: %w", datastore.ErrUnavailable)
	}
	return nil
}

func (s *switchable) Get(ctx context.Context, k resources.Key) (resources.Resource, error) {
	if err := s.err(); err != nil {
		return nil, err
	}
	return s.Interface.Get(ctx, k)
}

func (s *switchable) List(ctx context.Context, o datastore.ListOptions) (*datastore.ListResult, error) {
	if err := s.err(); err != nil {
		return nil, err
	}
	return s.Interface.List(ctx, o)
}

func (s *switchable) Create(ctx context.Context, r resources.Resource) (resources.Resource, error) {
	if err := s.err(); err != nil {
		return nil, err
	}
	return s.Interface.Create(ctx, r)
}

func (s *switchable) Update(ctx context.Context, r resources.Resource) (resources.Resource, error) {
	if err := s.err(); err != nil {
		return nil, err
	}
	return s.Interface.Update(ctx, r)
}

// logCapture is a slog handler that keeps records' messages and attributes.
type logCapture struct {
	mu    sync.Mutex
	lines []string
	attrs []map[string]string
}

func (l *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCapture) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logCapture) WithGroup(string) slog.Handler            { return l }
func (l *logCapture) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	l.mu.Lock()
	l.lines = append(l.lines, r.Message)
	l.attrs = append(l.attrs, m)
	l.mu.Unlock()
	return nil
}

// attr returns attribute key of the first record with message msg.
func (l *logCapture) attr(msg, key string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, m := range l.lines {
		if m == msg {
			v, ok := l.attrs[i][key]
			return v, ok
		}
	}
	return "", false
}

type staticHost []autodetect.Interface

func (h staticHost) Interfaces() ([]autodetect.Interface, error) { return h, nil }
func (h staticHost) SourceFor(context.Context, netip.Addr) (netip.Addr, error) {
	return netip.Addr{}, errors.New("unreachable")
}
func (h staticHost) ResolveHost(context.Context, string) ([]netip.Addr, error) {
	return nil, errors.New("no such host")
}

// running is an agent started by runAgent: the fake dataplane, the health
// base URL, the log and a stop function that waits for Run to return.
type running struct {
	dp      *fakeDataplane
	healthz string
	logs    *logCapture
	ready   chan struct{}
	stop    func() error
}

func runAgent(t *testing.T, ds datastore.Interface, e *env) *running {
	t.Helper()
	envCfg, err := config.FromEnviron([]string{"NODENAME=node-a", "IP=10.0.0.5/24",
		"CALICO_IPV4POOL_CIDR=10.244.0.0/16", "CALICO_IPV4POOL_VXLAN=Always"})
	if err != nil {
		t.Fatal(err)
	}
	r := &running{dp: newFakeDataplane(), logs: &logCapture{}, ready: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			Env: envCfg, NodeName: "node-a", Datastore: ds, IPAM: e.store, ClusterType: "etcd",
			CalicoVersion: "test", Host: staticHost{{Name: "eth0", Up: true, Addrs: []netip.Prefix{pfx("10.0.0.5/24")}}},
			Dataplane: r.dp, SyncInterval: 20 * time.Millisecond, HealthAddr: "127.0.0.1:0",
			Logger: slog.New(r.logs), Ready: func() { close(r.ready) },
		})
	}()
	var once sync.Once
	var runErr error
	r.stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { _ = r.stop() })
	select {
	case <-r.ready:
	case err := <-done:
		t.Fatalf("Run returned before the first sync: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("no first sync")
	}
	addr, ok := r.logs.attr("health server listening", "addr")
	for deadline := time.Now().Add(30 * time.Second); !ok; addr, ok = r.logs.attr("health server listening", "addr") {
		// The health server goroutine may log just after the first sync.
		if time.Now().After(deadline) {
			t.Fatal("the health server never logged its address")
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.healthz = "http://" + addr
	return r
}

func probe(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitStatus polls a probe until it answers code (hang guard only).
func waitStatus(t *testing.T, url string, code int, guard time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(guard)
	for {
		got, body := probe(t, url)
		if got == code {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s stayed %d (%q), want %d", url, got, body, code)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasPool(s *Snapshot, cidr string) bool {
	return slices.ContainsFunc(s.Routes.Pools, func(p routes.PoolInfo) bool { return p.CIDR == pfx(cidr) })
}

func TestRunSyncsAndKeepsStateWhileDatastoreIsDown(t *testing.T) {
	e := newEnv(t)
	ds := &switchable{Interface: e.ds}
	r := runAgent(t, ds, e)

	first := r.dp.snapshots()[0]
	if !hasPool(first, "10.244.0.0/16") || !slices.Contains(first.NAT.MasqPools, pfx("10.244.0.0/16")) || !first.VXLAN {
		t.Fatalf("first snapshot lacks the default VXLAN natOutgoing pool: pools %+v nat %+v", first.Routes.Pools, first.NAT)
	}
	if !first.Local.IPv4VXLANTunnelAddr.IsValid() || first.Local.IPv4 != pfx("10.0.0.5/24") {
		t.Fatalf("first snapshot's local node = %+v, want 10.0.0.5/24 with a VXLAN tunnel address", first.Local)
	}
	if code, body := probe(t, r.healthz+"/readiness"); code != http.StatusOK || !strings.Contains(body, "in sync") {
		t.Fatalf("readiness after first sync = %d %q", code, body)
	}

	// A pool created later shows up in a later snapshot.
	e.pool(t, "extra", "10.250.0.0/16", "", "", true, false)
	r.dp.waitFor(t, "pool 10.250.0.0/16", func(s *Snapshot) bool { return hasPool(s, "10.250.0.0/16") })

	// The datastore goes away: nothing is applied (the last state stays
	// programmed) and readiness turns 503 saying why.
	ds.setDown(true)
	n := len(r.dp.snapshots())
	body := waitStatus(t, r.healthz+"/readiness", http.StatusServiceUnavailable, 60*time.Second)
	if !strings.Contains(body, "sync failing") || !strings.Contains(body, "datastore unavailable") {
		t.Errorf("readiness detail while down = %q, want the sync failure", body)
	}
	snaps := r.dp.snapshots()
	// At most one Apply may have been in flight when the switch flipped.
	if len(snaps) > n+1 {
		t.Errorf("%d snapshots applied while the datastore was down", len(snaps)-n)
	}
	if last := snaps[len(snaps)-1]; !hasPool(last, "10.250.0.0/16") {
		t.Errorf("last applied snapshot lost the extra pool")
	}
	if code, _ := probe(t, r.healthz+"/liveness"); code != http.StatusOK {
		t.Errorf("liveness while the datastore is down = %d, want 200", code)
	}
	if _, ok := r.logs.attr("sync failed; keeping the last programmed state", "error"); !ok {
		t.Errorf("no warning logged about keeping the last state")
	}

	// A pool written meanwhile (by someone the outage did not cut off) is
	// missed by the lost watches; the relist after recovery finds it.
	e.pool(t, "during-outage", "10.251.0.0/16", "", "", true, false)

	// Back: readiness recovers and syncing resumes.
	before := len(r.dp.snapshots())
	ds.setDown(false)
	waitStatus(t, r.healthz+"/readiness", http.StatusOK, 60*time.Second)
	r.dp.waitFor(t, "a new snapshot after recovery with the pool written during the outage", func(s *Snapshot) bool {
		return len(r.dp.snapshots()) > before && hasPool(s, "10.251.0.0/16") && hasPool(s, "10.250.0.0/16")
	})

	if err := r.stop(); err != nil {
		t.Fatalf("Run returned %v on cancel, want nil", err)
	}
	r.dp.mu.Lock()
	closed := r.dp.closed
	r.dp.mu.Unlock()
	if !closed {
		t.Errorf("dataplane not closed when Run returned")
	}
}

// TestRunKeepsStateWhenEtcdStops stops the real embedded etcd under the
// agent: no new Apply, and readiness turns 503 once a sync round times out.
func TestRunKeepsStateWhenEtcdStops(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the readiness timeout")
	}
	e := newEnv(t)
	r := runAgent(t, e.ds, e)
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	n := len(r.dp.snapshots())
	body := waitStatus(t, r.healthz+"/readiness", http.StatusServiceUnavailable, 60*time.Second)
	if !strings.Contains(body, "dataplane") || !strings.Contains(body, "sync failing") {
		t.Errorf("readiness body %q does not say the dataplane's sync is failing", body)
	}
	if got := len(r.dp.snapshots()); got > n+1 {
		t.Errorf("%d snapshots applied after etcd stopped", got-n)
	}
	t.Logf("readiness after etcd stopped: %s", body)
}
