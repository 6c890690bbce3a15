package state

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/datastore/etcd"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/internal/etcdserver"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/etcdstore"
	"github.com/opencalico/calicoctl/resources"
)

// etcdEnv is an embedded etcd with the resource client and the IPAM store.
type etcdEnv struct {
	srv   *etcdserver.Server
	ds    *etcd.Backend
	c     *client.Client
	store ipam.Store
}

func newEtcdEnv(t testing.TB) *etcdEnv {
	t.Helper()
	srv := etcdserver.StartForTest(t)
	return openEtcdEnv(t, srv)
}

func openEtcdEnv(t testing.TB, srv *etcdserver.Server) *etcdEnv {
	t.Helper()
	ds, err := etcd.New(context.Background(), etcd.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	return &etcdEnv{srv: srv, ds: ds, c: client.New(ds), store: etcdstore.New(ds.Client())}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// start runs a follower on ds and store until the test ends.
func start(t *testing.T, cfg Config) *Follower {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	cfg.MinBackoff = 20 * time.Millisecond
	cfg.MaxBackoff = 200 * time.Millisecond
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
	return f
}

// waitModel blocks until pred holds for the model and the status; the
// guard only stops a hung test.
func waitModel(t *testing.T, f *Follower, what string, pred func(m *Model, st Status) bool) {
	t.Helper()
	guard := time.NewTimer(60 * time.Second)
	defer guard.Stop()
	for {
		ok := false
		st := f.Status()
		f.Read(func(m *Model, _ uint64) { ok = pred(m, st) })
		if ok {
			return
		}
		select {
		case <-f.Changed():
		case <-guard.C:
			t.Fatalf("model never showed %s (status %+v)", what, f.Status())
		}
	}
}

func synced(_ *Model, st Status) bool { return st.Synced }

func (e *etcdEnv) put(t testing.TB, r resources.Resource) {
	t.Helper()
	resources.SetTypeMeta(r)
	ctx := context.Background()
	cur, err := e.c.Get(ctx, resources.KeyOf(r))
	switch {
	case errors.Is(err, datastore.ErrNotFound):
		_, err = e.c.Create(ctx, r)
	case err == nil:
		r.SetResourceVersion(cur.GetResourceVersion())
		_, err = e.c.Update(ctx, r)
	}
	if err != nil {
		t.Fatalf("write %s: %v", resources.KeyOf(r), err)
	}
}

func (e *etcdEnv) del(t testing.TB, k resources.Key) {
	t.Helper()
	if _, err := e.c.Delete(context.Background(), k, ""); err != nil {
		t.Fatalf("delete %s: %v", k, err)
	}
}

func node(name, v4 string) *resources.Node {
	n := &resources.Node{}
	n.Name = name
	n.Spec.BGP = &resources.NodeBGPSpec{IPv4Address: v4}
	return n
}

func pool(name, cidr string, disabled bool) *resources.IPPool {
	p := &resources.IPPool{}
	p.Name = name
	p.Spec = resources.IPPoolSpec{CIDR: cidr, VXLANMode: resources.EncapAlways, IPIPMode: resources.EncapNever, Disabled: disabled}
	return p
}

func felix(name string, mtu int) *resources.FelixConfiguration {
	f := &resources.FelixConfiguration{}
	f.Name = name
	f.Spec.VXLANMTU = &mtu
	return f
}

func wep(t testing.TB, node, pod string, ips ...string) *resources.WorkloadEndpoint {
	t.Helper()
	w := &resources.WorkloadEndpoint{}
	w.Namespace = "default"
	w.Spec = resources.WorkloadEndpointSpec{Orchestrator: "k8s", Node: node, Pod: pod, Endpoint: "eth0",
		InterfaceName: "cali" + pod, IPNetworks: ips}
	name, err := resources.WEPIdentifiersOf(&w.Spec).Name()
	if err != nil {
		t.Fatal(err)
	}
	w.Name = name
	return w
}

func newBlock(cidr, host string) *ipam.Block {
	b := ipam.NewBlock(netip.MustParsePrefix(cidr), "", time.Unix(0, 0))
	if host != "" {
		b.Affinity = "host:" + host
	}
	return b
}

func (e *etcdEnv) putBlock(t testing.TB, cidr, host string) {
	t.Helper()
	ctx := context.Background()
	b, err := e.store.GetBlock(ctx, netip.MustParsePrefix(cidr))
	switch {
	case errors.Is(err, datastore.ErrNotFound):
		_, err = e.store.CreateBlock(ctx, newBlock(cidr, host))
	case err == nil:
		b.Affinity = "host:" + host
		_, err = e.store.UpdateBlock(ctx, b)
	}
	if err != nil {
		t.Fatalf("write block %s: %v", cidr, err)
	}
}

func (e *etcdEnv) delBlock(t testing.TB, cidr string) {
	t.Helper()
	ctx := context.Background()
	b, err := e.store.GetBlock(ctx, netip.MustParsePrefix(cidr))
	if err == nil {
		err = e.store.DeleteBlock(ctx, b)
	}
	if err != nil {
		t.Fatalf("delete block %s: %v", cidr, err)
	}
}

func wepsOn(m *Model, node string) []string {
	var out []string
	for _, w := range m.WorkloadEndpointsOn(node) {
		out = append(out, strings.TrimPrefix(w.InterfaceName, "cali")) // wep names the interface cali<pod>
	}
	slices.Sort(out)
	return out
}

// TestFollowerEtcd lists what exists, then follows an add, a modification
// and a delete of every source through the watches (and the indexes).
func TestFollowerEtcd(t *testing.T) {
	e := newEtcdEnv(t)
	e.put(t, node("n1", "10.0.0.1/24"))
	e.put(t, pool("p1", "10.244.0.0/16", false))
	e.put(t, felix("default", 1400))
	e.put(t, wep(t, "n1", "a", "10.244.0.2/32"))
	e.putBlock(t, "10.244.0.0/26", "n1")

	f := start(t, Config{Datastore: e.ds, Blocks: e.store, Connectivity: e.ds.WatchConnectivity})
	waitModel(t, f, "the initial list", synced)
	f.Read(func(m *Model, _ uint64) {
		if got := m.Counts(); got != (Counts{Nodes: 1, Pools: 1, FelixConfigurations: 1, WorkloadEndpoints: 1, Blocks: 1}) {
			t.Errorf("after the first list: %+v", got)
		}
		if b := m.BlockContaining(netip.MustParseAddr("10.244.0.9")); b == nil || BlockHost(b) != "n1" {
			t.Errorf("block containing 10.244.0.9 = %+v, want n1's", b)
		}
		if got := wepsOn(m, "n1"); !slices.Equal(got, []string{"a"}) {
			t.Errorf("weps on n1 = %v", got)
		}
	})

	tests := []struct {
		name                string
		add, modify, remove func(t *testing.T)
		added, modified     func(m *Model) bool
		removed             func(m *Model) bool
	}{
		{
			name:     "Node",
			add:      func(t *testing.T) { e.put(t, node("n2", "10.0.0.2/24")) },
			added:    func(m *Model) bool { return m.Node("n2") != nil },
			modify:   func(t *testing.T) { e.put(t, node("n2", "10.0.0.22/24")) },
			modified: func(m *Model) bool { n := m.Node("n2"); return n != nil && n.Spec.BGP.IPv4Address == "10.0.0.22/24" },
			remove:   func(t *testing.T) { e.del(t, resources.Key{Kind: "Node", Name: "n2"}) },
			removed:  func(m *Model) bool { return m.Node("n2") == nil && m.Node("n1") != nil },
		},
		{
			name:     "IPPool",
			add:      func(t *testing.T) { e.put(t, pool("p2", "10.250.0.0/16", false)) },
			added:    func(m *Model) bool { return len(m.Pools()) == 2 },
			modify:   func(t *testing.T) { e.put(t, pool("p2", "10.250.0.0/16", true)) },
			modified: func(m *Model) bool { p := m.Pools(); return len(p) == 2 && p[1].Spec.Disabled },
			remove:   func(t *testing.T) { e.del(t, resources.Key{Kind: "IPPool", Name: "p2"}) },
			removed:  func(m *Model) bool { p := m.Pools(); return len(p) == 1 && p[0].Name == "p1" },
		},
		{
			name:   "FelixConfiguration",
			add:    func(t *testing.T) { e.put(t, felix("node.n1", 1300)) },
			added:  func(m *Model) bool { return m.FelixConfiguration("node.n1") != nil },
			modify: func(t *testing.T) { e.put(t, felix("node.n1", 1200)) },
			modified: func(m *Model) bool {
				f := m.FelixConfiguration("node.n1")
				return f != nil && *f.Spec.VXLANMTU == 1200
			},
			remove:  func(t *testing.T) { e.del(t, resources.Key{Kind: "FelixConfiguration", Name: "node.n1"}) },
			removed: func(m *Model) bool { return m.FelixConfiguration("node.n1") == nil },
		},
		{
			name:  "WorkloadEndpoint",
			add:   func(t *testing.T) { e.put(t, wep(t, "n2", "b", "10.244.0.70/32")) },
			added: func(m *Model) bool { return slices.Equal(wepsOn(m, "n2"), []string{"b"}) },
			modify: func(t *testing.T) {
				w := wep(t, "n2", "b", "10.244.0.71/32")
				e.put(t, w)
			},
			modified: func(m *Model) bool {
				ws := m.WorkloadEndpointsOn("n2")
				return len(ws) == 1 && slices.Equal(ws[0].Networks, []netip.Prefix{netip.MustParsePrefix("10.244.0.71/32")})
			},
			remove: func(t *testing.T) {
				e.del(t, resources.KeyOf(wep(t, "n2", "b")))
			},
			removed: func(m *Model) bool { return len(wepsOn(m, "n2")) == 0 && len(wepsOn(m, "n1")) == 1 },
		},
		{
			name: "IPAMBlock",
			add:  func(t *testing.T) { e.putBlock(t, "10.244.0.64/26", "n2") },
			added: func(m *Model) bool {
				return slices.Equal(m.BlocksAffineTo("n2"), []netip.Prefix{netip.MustParsePrefix("10.244.0.64/26")})
			},
			// Re-affined: the by-node index moves.
			modify: func(t *testing.T) { e.putBlock(t, "10.244.0.64/26", "n3") },
			modified: func(m *Model) bool {
				return len(m.BlocksAffineTo("n2")) == 0 && len(m.BlocksAffineTo("n3")) == 1
			},
			remove: func(t *testing.T) { e.delBlock(t, "10.244.0.64/26") },
			removed: func(m *Model) bool {
				return m.BlockContaining(netip.MustParseAddr("10.244.0.70")) == nil && len(m.BlocksAffineTo("n3")) == 0 && len(m.Blocks()) == 1
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.add(t)
			waitModel(t, f, "the addition", func(m *Model, _ Status) bool { return tt.added(m) })
			tt.modify(t)
			waitModel(t, f, "the modification", func(m *Model, _ Status) bool { return tt.modified(m) })
			tt.remove(t)
			waitModel(t, f, "the deletion", func(m *Model, _ Status) bool { return tt.removed(m) })
		})
	}
	if st := f.Status(); !st.Synced || st.Relists != 0 {
		t.Errorf("status after following changes = %+v, want synced without relists", st)
	}
}

// gatedStore holds the block watch until the test opens the gate.
type gatedStore struct {
	ipam.Store
	gate chan struct{}
}

func (g *gatedStore) ListBlocksRevision(ctx context.Context) ([]*ipam.Block, string, error) {
	return g.Store.(ipam.BlockWatcher).ListBlocksRevision(ctx)
}

func (g *gatedStore) WatchBlocks(ctx context.Context, rev string) (<-chan ipam.BlockEvent, error) {
	<-g.gate
	return g.Store.(ipam.BlockWatcher).WatchBlocks(ctx, rev)
}

func (g *gatedStore) ListAffinitiesRevision(ctx context.Context) ([]*ipam.Affinity, string, error) {
	return g.Store.(ipam.BlockWatcher).ListAffinitiesRevision(ctx)
}

func (g *gatedStore) WatchAffinities(ctx context.Context, rev string) (<-chan ipam.AffinityEvent, error) {
	return g.Store.(ipam.BlockWatcher).WatchAffinities(ctx, rev)
}

// gatedDatastore holds the IPPool watch until the test opens the gate.
type gatedDatastore struct {
	datastore.Interface
	gate chan struct{}
}

func (g *gatedDatastore) Watch(ctx context.Context, o datastore.WatchOptions) (<-chan datastore.Event, error) {
	if o.Kind == "IPPool" {
		<-g.gate
	}
	return g.Interface.Watch(ctx, o)
}

// TestFollowerRelistsAfterCompaction lets the history a watch must resume
// from be compacted away between the list and the watch (as after a long
// disconnection): the watch fails, the source relists, and the model has
// what was written meanwhile, without ever losing what it had.
func TestFollowerRelistsAfterCompaction(t *testing.T) {
	e := newEtcdEnv(t)
	e.put(t, pool("p1", "10.244.0.0/16", false))
	e.putBlock(t, "10.244.0.0/26", "n1")
	dsGate, blockGate := make(chan struct{}), make(chan struct{})
	f := start(t, Config{Datastore: &gatedDatastore{Interface: e.ds, gate: dsGate}, Blocks: &gatedStore{Store: e.store, gate: blockGate}})
	waitModel(t, f, "the first lists", func(m *Model, _ Status) bool { return len(m.Pools()) == 1 && len(m.Blocks()) == 1 })
	// The other sources' watches are open once they deliver an event (a
	// watch request reaching etcd after the compaction would fail too).
	e.put(t, node("n1", "10.0.0.1/24"))
	e.put(t, felix("default", 1400))
	e.put(t, wep(t, "n1", "a", "10.244.0.2/32"))
	waitModel(t, f, "events of the ungated sources", func(m *Model, _ Status) bool {
		c := m.Counts()
		return c.Nodes == 1 && c.FelixConfigurations == 1 && c.WorkloadEndpoints == 1
	})

	// Written after the lists, then compacted away.
	e.put(t, pool("p2", "10.250.0.0/16", false))
	e.del(t, resources.Key{Kind: "IPPool", Name: "p1"})
	e.putBlock(t, "10.244.0.64/26", "n2")
	e.delBlock(t, "10.244.0.0/26")
	resp, err := e.ds.Client().Get(context.Background(), "compact-marker")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ds.Client().Compact(context.Background(), resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	f.Read(func(m *Model, _ uint64) {
		if len(m.Pools()) != 1 || m.Pools()[0].Name != "p1" {
			t.Errorf("the model changed before any watch ran: %+v", m.Pools())
		}
	})
	close(dsGate)
	close(blockGate)
	waitModel(t, f, "the relisted state", func(m *Model, st Status) bool {
		p := m.Pools()
		return st.Synced && len(p) == 1 && p[0].Name == "p2" && len(m.Blocks()) == 1 && len(m.BlocksAffineTo("n2")) == 1
	})
	// The pools and the blocks must relist. A source whose watch request
	// happened to reach etcd only after the compaction relists too (a
	// correct reaction), so more than two is not a failure.
	if st := f.Status(); st.Relists < 2 {
		t.Errorf("relists = %d, want at least 2 (the pools and the blocks)", st.Relists)
	}
}

// restartable is an embedded etcd that can be stopped and started again
// on the same data directory and client port.
type restartable struct {
	cfg etcdserver.Config
	mu  sync.Mutex
	srv *etcdserver.Server
}

func startRestartable(t *testing.T) *restartable {
	t.Helper()
	r := &restartable{cfg: etcdserver.Config{DataDir: t.TempDir() + "/etcd", ListenClient: "127.0.0.1:0", Name: "test",
		Logger: quiet(), UnsafeNoFsync: true}}
	r.start(t)
	// The same port on every restart.
	r.cfg.ListenClient = r.srv.Endpoints()[0][len("http://"):]
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *restartable) start(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	srv, err := etcdserver.Start(context.Background(), r.cfg)
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	r.srv = srv
}

func (r *restartable) stop(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv != nil {
		if err := r.srv.Close(); err != nil {
			t.Errorf("stop etcd: %v", err)
		}
		r.srv = nil
	}
}

// TestFollowerKeepsModelAcrossEtcdRestart stops etcd under a synced
// follower: the status reports the outage, the model keeps everything, and
// when etcd is back the follower resumes and follows new writes.
func TestFollowerKeepsModelAcrossEtcdRestart(t *testing.T) {
	r := startRestartable(t)
	e := openEtcdEnv(t, r.srv)
	e.put(t, node("n1", "10.0.0.1/24"))
	e.put(t, pool("p1", "10.244.0.0/16", false))
	e.put(t, wep(t, "n1", "a", "10.244.0.2/32"))
	e.putBlock(t, "10.244.0.0/26", "n1")
	f := start(t, Config{Datastore: e.ds, Blocks: e.store, Connectivity: e.ds.WatchConnectivity, ListTimeout: 2 * time.Second})
	waitModel(t, f, "the first sync", synced)
	want := Counts{Nodes: 1, Pools: 1, WorkloadEndpoints: 1, Blocks: 1}

	r.stop(t)
	waitModel(t, f, "the outage", func(m *Model, st Status) bool { return !st.Synced })
	if st := f.Status(); !errors.Is(st.Err, datastore.ErrUnavailable) {
		t.Errorf("outage status error = %v, want one wrapping datastore.ErrUnavailable", st.Err)
	}
	f.Read(func(m *Model, _ uint64) {
		if got := m.Counts(); got != want {
			t.Errorf("model during the outage = %+v, want %+v kept", got, want)
		}
	})

	r.start(t)
	waitModel(t, f, "the resync", synced)
	e.put(t, pool("p2", "10.250.0.0/16", false))
	e.putBlock(t, "10.244.0.64/26", "n2")
	waitModel(t, f, "writes after the restart", func(m *Model, st Status) bool {
		return st.Synced && len(m.Pools()) == 2 && len(m.BlocksAffineTo("n2")) == 1 && m.Node("n1") != nil
	})
}
