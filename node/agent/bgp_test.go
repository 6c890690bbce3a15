package agent

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/opencalico/calicoctl/node/bgp"
	"github.com/opencalico/calicoctl/node/bgp/status"
	"github.com/opencalico/calicoctl/node/config"
	"github.com/opencalico/calicoctl/node/routes"
	"github.com/opencalico/calicoctl/resources"
)

// fakeSpeaker records what the agent applies and serves learned paths the
// test sets. The real speaker (gobgp) is tested against BIRD in
// node/bgp/speaker and in the netns cluster e2e.
type fakeSpeaker struct {
	mu      sync.Mutex
	applied []bgp.Desired
	learned []bgp.Learned
	changes chan struct{}
	applyCh chan struct{}
	closed  bool
}

func newFakeSpeaker() *fakeSpeaker {
	return &fakeSpeaker{changes: make(chan struct{}, 1), applyCh: make(chan struct{}, 1)}
}

func (f *fakeSpeaker) Apply(_ context.Context, d bgp.Desired) error {
	f.mu.Lock()
	f.applied = append(f.applied, d)
	f.mu.Unlock()
	select {
	case f.applyCh <- struct{}{}:
	default:
	}
	return nil
}

func (f *fakeSpeaker) Learned() []bgp.Learned {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.learned)
}

func (f *fakeSpeaker) LearnedChanges() <-chan struct{} { return f.changes }

func (f *fakeSpeaker) Close() error { f.mu.Lock(); f.closed = true; f.mu.Unlock(); return nil }

func (f *fakeSpeaker) learn(ls ...bgp.Learned) {
	f.mu.Lock()
	f.learned = ls
	f.mu.Unlock()
	select {
	case f.changes <- struct{}{}:
	default:
	}
}

// waitApplied waits for an applied intent that satisfies pred.
func (f *fakeSpeaker) waitApplied(t *testing.T, what string, pred func(bgp.Desired) bool) bgp.Desired {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		f.mu.Lock()
		for _, d := range slices.Backward(f.applied) {
			if pred(d) {
				f.mu.Unlock()
				return d
			}
		}
		f.mu.Unlock()
		select {
		case <-f.applyCh:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("the speaker never got %s; last applied: %+v", what, f.last())
		}
	}
}

func (f *fakeSpeaker) last() bgp.Desired {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.applied) == 0 {
		return bgp.Desired{}
	}
	return f.applied[len(f.applied)-1]
}

// sinkDataplane is the fake dataplane plus a route sink.
type sinkDataplane struct {
	*fakeDataplane
	mu     sync.Mutex
	routes map[string][]routes.Route
}

func (s *sinkDataplane) SetRoutes(source string, rs []routes.Route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.routes == nil {
		s.routes = map[string][]routes.Route{}
	}
	s.routes[source] = slices.Clone(rs)
}

func (s *sinkDataplane) waitRoutes(t *testing.T, what string, pred func([]routes.Route) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.mu.Lock()
		rs := s.routes[SourceBGP]
		ok := pred(rs)
		s.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the route writer never got %s; BGP routes: %v", what, rs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasPeer(d bgp.Desired, name string) (bgp.Peer, bool) {
	for _, p := range d.Peers {
		if p.Name == name {
			return p, true
		}
	}
	return bgp.Peer{}, false
}

// The agent drives the speaker from the followed state: the mesh to the
// other node, a BGPPeer with its password read from the secrets directory,
// the mesh-off warning, learned routes handed to the route writer, and
// Close on the way out.
func TestRunDrivesBGPSpeaker(t *testing.T) {
	e := newEnv(t)
	e.node(t, nodeSpec{name: "node-b", v4: "10.0.0.6/24"})
	secrets := t.TempDir()
	if err := os.MkdirAll(filepath.Join(secrets, "bgp-pw"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secrets, "bgp-pw", "password"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	envCfg, err := config.FromEnviron([]string{"NODENAME=node-a", "IP=10.0.0.5/24",
		"CALICO_IPV4POOL_CIDR=10.244.0.0/16", "CALICO_IPV4POOL_IPIP=Never", "CALICO_BGP_SECRETS_DIR=" + secrets})
	if err != nil {
		t.Fatal(err)
	}
	sp := newFakeSpeaker()
	dp := &sinkDataplane{fakeDataplane: newFakeDataplane()}
	logs := &logCapture{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			Env: envCfg, NodeName: "node-a", Datastore: e.ds, IPAM: e.store, ClusterType: "etcd", CalicoVersion: "test",
			Host:      staticHost{{Name: "eth0", Up: true, Addrs: []netip.Prefix{pfx("10.0.0.5/24")}}},
			Dataplane: dp, SyncInterval: 20 * time.Millisecond, HealthAddr: "127.0.0.1:0", Logger: slog.New(logs), BGP: sp,
		})
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	t.Cleanup(stop)

	d := sp.waitApplied(t, "the mesh session to node-b", func(d bgp.Desired) bool {
		_, ok := hasPeer(d, "Mesh_10_0_0_6")
		return d.Enabled && ok
	})
	if d.Global.ASN != bgp.DefaultASN || d.Global.RouterID != addr("10.0.0.5") {
		t.Errorf("global: got AS %d router ID %v, want %d and 10.0.0.5", d.Global.ASN, d.Global.RouterID, bgp.DefaultASN)
	}
	// Exactly one side dials: the one whose address sorts first waits.
	if p, _ := hasPeer(d, "Mesh_10_0_0_6"); !p.Passive {
		t.Errorf("node-a (10.0.0.5) must wait for node-b (10.0.0.6) to dial: got active")
	}

	// A ToR peer with a password, then the mesh off.
	peer := &resources.BGPPeer{}
	peer.Name = "tor"
	peer.Spec = resources.BGPPeerSpec{PeerIP: "10.0.0.254", ASNumber: 65000,
		Password: &resources.BGPPassword{SecretKeyRef: &resources.SecretKeySelector{Name: "bgp-pw", Key: "password"}}}
	e.create(t, peer)
	d = sp.waitApplied(t, "the ToR peer with its password", func(d bgp.Desired) bool {
		p, ok := hasPeer(d, "Global_10_0_0_254")
		return ok && p.Password == "s3cret" && p.PeerASN == 65000
	})

	// Startup created the default BGPConfiguration: turn its mesh off.
	r, err := e.c.Get(context.Background(), resources.Key{Kind: "BGPConfiguration", Name: "default"})
	if err != nil {
		t.Fatal(err)
	}
	cfgObj := r.(*resources.BGPConfiguration)
	off := false
	cfgObj.Spec.NodeToNodeMeshEnabled = &off
	if _, err := e.c.Update(context.Background(), cfgObj); err != nil {
		t.Fatal(err)
	}
	sp.waitApplied(t, "the mesh gone", func(d bgp.Desired) bool {
		_, mesh := hasPeer(d, "Mesh_10_0_0_6")
		_, tor := hasPeer(d, "Global_10_0_0_254")
		return !mesh && tor
	})

	// Learned paths become kernel routes: a LAN behind the ToR, not our
	// own next hop.
	sp.learn(bgp.Learned{Prefix: pfx("192.168.100.0/24"), NextHop: addr("10.0.0.254"), Peer: addr("10.0.0.254")},
		bgp.Learned{Prefix: pfx("192.168.101.0/24"), NextHop: addr("10.0.0.5"), Peer: addr("10.0.0.254")})
	dp.waitRoutes(t, "the LAN route via the ToR", func(rs []routes.Route) bool {
		return slices.ContainsFunc(rs, func(r routes.Route) bool {
			return r.Dst == pfx("192.168.100.0/24") && r.Gw == addr("10.0.0.254") && r.Protocol == bgp.RouteProtocol
		}) && !slices.ContainsFunc(rs, func(r routes.Route) bool { return r.Dst == pfx("192.168.101.0/24") })
	})

	stop()
	sp.mu.Lock()
	closed := sp.closed
	sp.mu.Unlock()
	if !closed {
		t.Error("Run returned without closing the speaker")
	}
}

// Next hops outside the node's subnet are resolved through the kernel's
// route to them (the fabric's gateway); unreachable ones are dropped.
func TestBGPKernelRoutesResolveNextHops(t *testing.T) {
	resolved := map[netip.Addr]netip.Addr{addr("10.1.0.7"): addr("10.0.0.1")}
	b := &bgpRunner{resolver: func() NextHopResolver {
		return func(nh netip.Addr) (netip.Addr, bool) {
			g, ok := resolved[nh]
			return g, ok
		}
	}}
	in := bgp.RouteInput{NodeIPv4: pfx("10.0.0.5/24"), Pools: []routes.PoolInfo{{CIDR: pfx("10.244.0.0/16")}}}
	got := b.kernelRoutes([]bgp.Learned{
		{Prefix: pfx("10.244.1.0/26"), NextHop: addr("10.0.0.6")}, // same subnet: as is
		{Prefix: pfx("10.244.2.0/26"), NextHop: addr("10.1.0.7")}, // other rack: via the gateway
		{Prefix: pfx("10.244.3.0/26"), NextHop: addr("10.2.0.8")}, // no route to it: dropped
	}, in)
	var text []string
	for _, r := range got {
		text = append(text, r.String())
	}
	want := []string{"10.244.1.0/26 via 10.0.0.6 proto 12", "10.244.2.0/26 via 10.0.0.1 proto 12"}
	if strings.Join(text, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(text, "\n"), strings.Join(want, "\n"))
	}
}

// BGP passwords on the Kubernetes datastore: read from a Secret of the
// agent's namespace through a watch on that Secret alone; a rotation wakes
// the BGP reconciler and the next read has the new value.
func TestKubeSecretsFollowRotation(t *testing.T) {
	srv := kddServer(t)
	cs, err := k8s.NewForConfig(srv.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const ns = "default"
	name := "bgp-pw-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: map[string][]byte{"password": []byte("first\n")}}
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Secrets(ns).Delete(context.Background(), name, metav1.DeleteOptions{}) })
	changed := make(chan struct{}, 10)
	s := newKubeSecrets(ctx, cs, ns, func() { changed <- struct{}{} })
	if v, err := s.Secret(ctx, name, "password"); err != nil || v != "first" {
		t.Fatalf("first read: %q, %v; want \"first\"", v, err)
	}
	if _, err := s.Secret(ctx, name, "nokey"); err == nil || !strings.Contains(err.Error(), `no key "nokey"`) {
		t.Errorf("missing key: got %v", err)
	}
	if _, err := s.Secret(ctx, "absent-"+name, "password"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing secret: got %v", err)
	}
	sec.Data["password"] = []byte("second")
	if _, err := cs.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(30 * time.Second):
		t.Fatal("no change notified after the Secret was updated")
	}
	if v, err := s.Secret(ctx, name, "password"); err != nil || v != "second" {
		t.Errorf("after rotation: %q, %v; want \"second\"", v, err)
	}
}

type fakeSource struct{}

func (fakeSource) Report(context.Context, bool) (status.Report, error) { return status.Report{}, nil }
func (fakeSource) WriteMetrics(_ context.Context, w io.Writer) error {
	_, err := io.WriteString(w, "calico_bgp_speaker_up 1\n")
	return err
}

// Prometheus metrics as Felix serves them: only when enabled, on its port.
func TestBGPMetricsEndpoint(t *testing.T) {
	for _, tt := range []struct {
		env  []string
		want string
	}{
		{nil, ""},
		{[]string{"FELIX_PROMETHEUSMETRICSENABLED=true"}, ":9091"},
		{[]string{"FELIX_PROMETHEUSMETRICSENABLED=true", "FELIX_PROMETHEUSMETRICSHOST=127.0.0.1", "FELIX_PROMETHEUSMETRICSPORT=19091"}, "127.0.0.1:19091"},
	} {
		envCfg, err := config.FromEnviron(append([]string{"NODENAME=n"}, tt.env...))
		if err != nil {
			t.Fatal(err)
		}
		if got := metricsAddr(Config{Env: envCfg}); got != tt.want {
			t.Errorf("%v: addr %q, want %q", tt.env, got, tt.want)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveMetrics(ctx, addr, fakeSource{}, slog.New(slog.DiscardHandler)) }()
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /metrics: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if body != "calico_bgp_speaker_up 1\n" {
		t.Errorf("metrics body %q", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serveMetrics: %v", err)
	}
}
