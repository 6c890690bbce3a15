package speaker

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/internal/birdtest"
	"github.com/opencalico/calicoctl/node/bgp"
)

// The foreign peer: BIRD in its own namespace with three sessions to us:
//   - b4 (10.250.0.2, AS 65001): passive, we dial; sends 192.0.2.0/24 and
//     198.51.100.0/24.
//   - b4md5 (10.250.0.3, AS 65002): BIRD dials, we are passive; TCP-MD5.
//   - b6 (fd00:250::2, AS 65001): IPv6; sends 2001:db8:1::/48.
const birdConfig = `
router id 10.250.0.2;
log stderr all;
protocol device {}
protocol static s4 { ipv4; route 192.0.2.0/24 blackhole; route 198.51.100.0/24 blackhole; }
protocol static s6 { ipv6; route 2001:db8:1::/48 blackhole; }
template bgp calico {
  debug { states, events };
  graceful restart on;
  graceful restart time 120;
  connect delay time 1;
  connect retry time 2;
  error wait time 1, 5;
}
protocol bgp b4 from calico {
  local 10.250.0.2 as 65001;
  neighbor 10.250.0.1 port 17900 as 64512;
  passive on;
  ipv4 { import all; export where proto = "s4"; };
}
protocol bgp b4md5 from calico {
  local 10.250.0.3 as 65002;
  # BIRD locks a neighbour address and port per protocol: dial our
  # second address.
  neighbor 10.250.0.4 port 17900 as 64512;
  password "s3cret";
  ipv4 { import all; export none; };
}
protocol bgp b6 from calico {
  local fd00:250::2 as 65001;
  neighbor fd00:250::1 port 17900 as 64512;
  passive on;
  ipv6 { import all; export where proto = "s6"; };
}
`

var (
	usV4   = netip.MustParseAddr("10.250.0.1")
	usV6   = netip.MustParseAddr("fd00:250::1")
	bird4  = netip.MustParseAddr("10.250.0.2")
	birdMD = netip.MustParseAddr("10.250.0.3")
	bird6  = netip.MustParseAddr("fd00:250::2")
)

func birdDesired() bgp.Desired {
	d := bgp.Desired{Enabled: true,
		Global: bgp.Global{ASN: 64512, RouterID: usV4, ListenPort: 17900, NodeIPv4: usV4, NodeIPv6: usV6},
		Peers: []bgp.Peer{
			{Name: "Global_10_250_0_2", Type: bgp.PeerGlobal, Address: bird4, PeerASN: 65001, SourceAddress: usV4},
			{Name: "Global_10_250_0_3", Type: bgp.PeerGlobal, Address: birdMD, PeerASN: 65002, Passive: true, Password: "s3cret"},
			{Name: "Global_fd00_250__2", Type: bgp.PeerGlobal, Address: bird6, PeerASN: 65001, SourceAddress: usV6},
		},
		Paths: []bgp.Path{
			{Prefix: netip.MustParsePrefix("10.244.1.0/26"), Communities: []string{"64512:100", "64512:1:2"}, Kind: bgp.PathBlock},
			{Prefix: netip.MustParsePrefix("10.244.9.0/26"), Kind: bgp.PathBlock},
			{Prefix: netip.MustParsePrefix("fd00:244::/122"), Kind: bgp.PathBlock},
		},
	}
	return d
}

func birdUp(b *birdtest.BIRD, proto string) bool {
	out, _ := b.Birdc("show", "protocols", proto)
	return strings.Contains(out, "Established")
}

// birdRoute is BIRD's route to pfx learned over session b4 ("" when none).
func birdRoute(b *birdtest.BIRD, pfx string) string {
	out, _ := b.Birdc("show", "route", "all", pfx, "protocol", "b4")
	if !strings.Contains(out, pfx) {
		return ""
	}
	return out
}

func birdRoute6(b *birdtest.BIRD, pfx string) string {
	out, _ := b.Birdc("show", "route", "all", pfx, "protocol", "b6")
	if !strings.Contains(out, pfx) {
		return ""
	}
	return out
}

func TestPrivilegedBIRD(t *testing.T) {
	if birdtest.Isolate(t) {
		return
	}
	b := birdtest.Link(t, []string{"10.250.0.1/24", "10.250.0.4/24", "fd00:250::1/64"}, []string{"10.250.0.2/24", "10.250.0.3/24", "fd00:250::2/64"})
	b.Start(birdConfig)
	stateDir := t.TempDir()
	s, err := New(Options{Logger: testLogger(t), StateDir: stateDir, GRDeferral: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Apply(ctx, birdDesired()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			protos, _ := b.Birdc("show", "protocols", "all")
			t.Logf("BIRD log:\n%s\nprotocols:\n%s\nour sessions: %+v", b.Log(), protos, s.Status())
		}
	}()
	waitFor(t, "all three sessions (we dial b4 and b6; BIRD dials b4md5 with TCP-MD5)", 30*time.Second, func() bool {
		return established(s, bird4) && established(s, birdMD) && established(s, bird6)
	})

	t.Run("paths with communities reach BIRD", func(t *testing.T) {
		waitFor(t, "10.244.1.0/26 in BIRD", 10*time.Second, func() bool { return birdRoute(b, "10.244.1.0/26") != "" })
		out := birdRoute(b, "10.244.1.0/26")
		for _, want := range []string{"BGP.next_hop: 10.250.0.1", "(64512,100)", "(64512, 1, 2)", "BGP.as_path: 64512"} {
			if !strings.Contains(out, want) {
				t.Errorf("BIRD's route lacks %q:\n%s", want, out)
			}
		}
		waitFor(t, "fd00:244::/122 in BIRD", 10*time.Second, func() bool { return birdRoute6(b, "fd00:244::/122") != "" })
		if out := birdRoute6(b, "fd00:244::/122"); !strings.Contains(out, "fd00:250::1") {
			t.Errorf("IPv6 route's next hop:\n%s", out)
		}
	})

	t.Run("learned routes from BIRD", func(t *testing.T) {
		waitFor(t, "BIRD's routes in Learned", 10*time.Second, func() bool {
			return hasLearned(s, "192.0.2.0/24", bird4) && hasLearned(s, "198.51.100.0/24", bird4) && hasLearned(s, "2001:db8:1::/48", bird6)
		})
		for _, l := range s.Learned() {
			if l.Prefix.String() == "192.0.2.0/24" && l.Peer != bird4 {
				t.Errorf("learned %+v: peer", l)
			}
		}
	})

	t.Run("BGPFilter reject", func(t *testing.T) {
		d := birdDesired()
		d.Peers[0].Filters = []string{"no-doc"}
		d.Filters = []bgp.PeerFilter{{Peer: bird4, Filters: []bgp.Filter{{Name: "no-doc",
			ImportV4: []bgp.FilterRule{{Action: "Reject", CIDR: netip.MustParsePrefix("192.0.2.0/24"), MatchOperator: "Equal", PrefixLenMin: 24, PrefixLenMax: 24}},
			ExportV4: []bgp.FilterRule{{Action: "Reject", CIDR: netip.MustParsePrefix("10.244.9.0/26"), MatchOperator: "In", PrefixLenMin: 26, PrefixLenMax: 32}},
		}}}}
		if err := s.Apply(ctx, d); err != nil {
			t.Fatal(err)
		}
		// The export change resets the session (gobgp v3 cannot withdraw
		// on a soft reset); wait for it to come back filtered.
		waitFor(t, "the rejects, the rest kept", 20*time.Second, func() bool {
			return !hasLearned(s, "192.0.2.0/24", netip.Addr{}) && hasLearned(s, "198.51.100.0/24", bird4) &&
				birdRoute(b, "10.244.9.0/26") == "" && birdRoute(b, "10.244.1.0/26") != ""
		})
		// Filters off again: both come back.
		if err := s.Apply(ctx, birdDesired()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the filter to go", 20*time.Second, func() bool {
			return hasLearned(s, "192.0.2.0/24", bird4) && birdRoute(b, "10.244.9.0/26") != ""
		})
	})

	t.Run("status", func(t *testing.T) {
		rep, err := s.Report(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Peers) != 3 || rep.Peers[0].Name != "Global_10_250_0_2" || rep.Peers[0].State != "up" || rep.Peers[0].Received != 2 {
			t.Errorf("peers = %+v", rep.Peers)
		}
	})

	t.Run("Close keeps BIRD's routes (graceful restart)", func(t *testing.T) {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "BIRD to notice", 10*time.Second, func() bool { return !birdUp(b, "b4") })
		time.Sleep(time.Second)
		if out := birdRoute(b, "10.244.1.0/26"); out == "" {
			t.Fatalf("BIRD dropped our route after Close; log:\n%s", b.Log())
		}
		if strings.Contains(b.Log(), "Received: Cease") {
			t.Errorf("BIRD received a Cease")
		}
		// A speaker started soon after is a restarting one: R bit,
		// deferral, routes kept throughout.
		s2, err := New(Options{Logger: testLogger(t), StateDir: stateDir, GRDeferral: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		if err := s2.Apply(ctx, birdDesired()); err != nil {
			t.Fatal(err)
		}
		if !s2.Deferring() {
			t.Error("the new speaker is not deferring")
		}
		waitFor(t, "the sessions again", 30*time.Second, func() bool { return established(s2, bird4) && established(s2, bird6) })
		if out := birdRoute(b, "10.244.1.0/26"); out == "" {
			t.Errorf("route gone after the restart")
		}
		waitFor(t, "the deferral to end", 10*time.Second, func() bool { return !s2.Deferring() })
		waitFor(t, "BIRD's routes again", 10*time.Second, func() bool { return hasLearned(s2, "192.0.2.0/24", bird4) })
		if !strings.Contains(b.Log(), "restart") {
			t.Logf("BIRD log has no graceful-restart lines:\n%s", b.Log())
		}
	})
}
