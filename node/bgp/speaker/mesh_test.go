package speaker

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/node/bgp"
)

// freePort is a TCP port free on addr.
func freePort(t *testing.T, addr string) int {
	t.Helper()
	l, err := net.Listen("tcp4", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("BGP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newTestSpeaker(t *testing.T) *Speaker {
	t.Helper()
	s, err := New(Options{Logger: testLogger(t), StateDir: t.TempDir(), GRDeferral: 2 * time.Second, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func established(s *Speaker, addr netip.Addr) bool {
	for _, p := range s.Status() {
		if p.Address == addr && p.State == "Established" {
			return true
		}
	}
	return false
}

func hasLearned(s *Speaker, pfx string, nh netip.Addr) bool {
	for _, l := range s.Learned() {
		if l.Prefix.String() == pfx && (!nh.IsValid() || l.NextHop == nh) {
			return true
		}
	}
	return false
}

// meshPair is two of our speakers on 127.0.0.1 and 127.0.0.2, high
// ports, no root needed: a dials, b is passive, as the mesh's rule makes
// exactly one side dial.
func meshDesired(self, peer netip.Addr, selfPort, peerPort int, passive bool, paths ...string) bgp.Desired {
	d := bgp.Desired{Enabled: true, Global: bgp.Global{ASN: 64512, RouterID: self, ListenPort: selfPort,
		ListenAddresses: []netip.Addr{self}, NodeIPv4: self}}
	d.Peers = []bgp.Peer{{Name: "Mesh_" + strings.ReplaceAll(peer.String(), ".", "_"), Type: bgp.PeerMesh,
		Address: peer, Port: peerPort, PeerASN: 64512, SourceAddress: self, Passive: passive, IsCalicoNode: true}}
	for _, p := range paths {
		d.Paths = append(d.Paths, bgp.Path{Prefix: netip.MustParsePrefix(p), Kind: bgp.PathBlock})
	}
	return d
}

func TestTwoSpeakersMesh(t *testing.T) {
	a1, a2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	p1, p2 := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.2")
	s1, s2 := newTestSpeaker(t), newTestSpeaker(t)
	ctx := context.Background()
	if err := s2.Apply(ctx, meshDesired(a2, a1, p2, p1, true, "10.244.2.0/26")); err != nil {
		t.Fatal(err)
	}
	if err := s1.Apply(ctx, meshDesired(a1, a2, p1, p2, false, "10.244.1.0/26")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the session", 20*time.Second, func() bool { return established(s1, a2) && established(s2, a1) })
	waitFor(t, "routes both ways", 10*time.Second, func() bool {
		return hasLearned(s1, "10.244.2.0/26", a2) && hasLearned(s2, "10.244.1.0/26", a1)
	})
	for _, l := range s1.Learned() {
		if l.Prefix.String() == "10.244.1.0/26" {
			t.Errorf("Learned includes our own path: %+v", l)
		}
	}
	select {
	case <-s2.LearnedChanges():
	case <-time.After(5 * time.Second):
		t.Error("no LearnedChanges notification")
	}

	// Idempotent: the same intent changes nothing (no flap).
	flaps := s1.Status()[0].Flaps
	if err := s1.Apply(ctx, meshDesired(a1, a2, p1, p2, false, "10.244.1.0/26")); err != nil {
		t.Fatal(err)
	}
	// Withdraw one path, originate another.
	if err := s1.Apply(ctx, meshDesired(a1, a2, p1, p2, false, "10.244.3.0/26")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the withdrawal and the new path", 10*time.Second, func() bool {
		return hasLearned(s2, "10.244.3.0/26", a1) && !hasLearned(s2, "10.244.1.0/26", netip.Addr{})
	})
	if st := s1.Status(); st[0].Flaps != flaps || st[0].State != "Established" {
		t.Errorf("session flapped on a path change: %+v", st)
	}

	rep, err := s1.Report(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Running || rep.RouterID != "127.0.0.1" || rep.ASN != 64512 || len(rep.Peers) != 1 || rep.Peers[0].State != "up" ||
		rep.Peers[0].Type != "node-to-node mesh" || len(rep.Routes) != 2 {
		t.Errorf("report = %+v", rep)
	}
	var metrics strings.Builder
	if err := s1.WriteMetrics(ctx, &metrics); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`calico_bgp_sessions{state="Established"} 1`, `calico_bgp_prefixes_received{peer="127.0.0.2",name="Mesh_127_0_0_2",type="node-to-node mesh"} 1`,
		`calico_bgp_prefixes_advertised{peer="127.0.0.2",name="Mesh_127_0_0_2",type="node-to-node mesh"} `} {
		if !strings.Contains(metrics.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics.String())
		}
	}

	// Disabled: stopped without a Cease; s2 keeps s1's route (graceful
	// restart) while its session is down.
	if err := s1.Apply(ctx, bgp.Desired{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the session to drop", 10*time.Second, func() bool { return !established(s2, a1) })
	if !hasLearned(s2, "10.244.3.0/26", a1) {
		t.Errorf("s2 dropped s1's route although s1 left without a Cease: %+v", s2.Learned())
	}
	if rep, _ := s1.Report(ctx, false); rep.Running {
		t.Errorf("disabled speaker reports running")
	}
}
