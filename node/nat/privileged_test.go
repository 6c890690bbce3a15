package nat

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/opencalico/calicoctl/internal/netnstest"
)

func requirePrivileged(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (creates network namespaces and nftables tables)")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs the nft CLI (Debian package nftables): knftables runs transactions through it")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (iproute2) to build test namespaces")
	}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// nsRun runs a command inside the named namespace.
func nsRun(t *testing.T, ns string, args ...string) string {
	t.Helper()
	return run(t, append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// inNS runs fn inside the named namespace (netnstest.Do).
func inNS(t *testing.T, name string, fn func()) { t.Helper(); netnstest.Do(t, name, fn) }

func quietSyncer(t *testing.T) *Syncer {
	t.Helper()
	s, err := NewSyncer(Config{}, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func elementKeys(t *testing.T, nft knftables.Interface, objType, name string) []string {
	t.Helper()
	els, err := nft.ListElements(context.Background(), objType, name)
	if err != nil {
		t.Fatalf("list %s %s: %v", objType, name, err)
	}
	var out []string
	for _, e := range els {
		s := strings.Join(e.Key, " . ")
		if len(e.Value) > 0 {
			s += " : " + strings.Join(e.Value, " . ")
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func TestPrivilegedApplyAndConverge(t *testing.T) {
	requirePrivileged(t)
	ns := netnstest.NewNamed(t, "calnat-apply").Name
	ctx := context.Background()
	steps := []struct {
		name       string
		d          Desired
		masq, all  []string
		dnat, snat []string
	}{
		{
			name: "initial", d: desired1,
			masq: []string{"10.65.0.0/16"}, all: []string{"10.65.0.0/16", "10.66.0.0/16"},
			dnat: []string{"192.0.2.10 : 10.65.0.5"}, snat: []string{"10.65.0.5 : 192.0.2.10"},
		},
		{
			name: "pool and floating IP change",
			d: Desired{
				MasqPools:   pfx("10.67.0.0/16"),
				AllPools:    pfx("10.65.0.0/16"),
				FloatingIPs: []FloatingNAT{fip("192.0.2.11", "10.65.0.5")},
			},
			masq: []string{"10.67.0.0/16"}, all: []string{"10.65.0.0/16", "10.67.0.0/16"},
			dnat: []string{"192.0.2.11 : 10.65.0.5"}, snat: []string{"10.65.0.5 : 192.0.2.11"},
		},
		{name: "everything removed", d: Desired{}},
	}
	inNS(t, ns, func() {
		s := quietSyncer(t)
		t.Logf("backend: %s", s.Backend())
		for _, st := range steps {
			if err := s.Apply(ctx, st.d); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			nft := s.nft
			chains, err := nft.List(ctx, "chains")
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(chains)
			if want := []string{"output", "postrouting", "prerouting"}; !slices.Equal(chains, want) {
				t.Errorf("%s: chains = %v, want %v", st.name, chains, want)
			}
			rules, err := nft.ListRules(ctx, "postrouting")
			if err != nil {
				t.Fatal(err)
			}
			if len(rules) != 6 {
				t.Errorf("%s: postrouting has %d rules, want 6", st.name, len(rules))
			}
			for _, c := range []struct {
				typ, name string
				want      []string
			}{
				{"set", SetMasqPools, st.masq}, {"set", SetAllPools, st.all},
				{"map", MapFloatingDNAT, st.dnat}, {"map", MapFloatingSNAT, st.snat},
			} {
				if got := elementKeys(t, nft, c.typ, c.name); !slices.Equal(got, c.want) {
					t.Errorf("%s: %s %s = %v, want %v", st.name, c.typ, c.name, got, c.want)
				}
			}
		}
		if err := s.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
		if out := run(t, "nft", "list", "tables"); strings.Contains(out, TableName) {
			t.Errorf("table still present after Cleanup:\n%s", out)
		}
	})
}

func TestPrivilegedRestartAdoptAndCoexistence(t *testing.T) {
	requirePrivileged(t)
	ns := netnstest.NewNamed(t, "calnat-adopt").Name
	ctx := context.Background()
	const foreign = `table ip foreign {
	set keep { type ipv4_addr; elements = { 10.65.0.1 }; }
	chain post { type nat hook postrouting priority 50; policy accept; ip saddr @keep counter; }
}
table inet filter {
	chain input { type filter hook input priority 0; policy accept; }
}
`
	inNS(t, ns, func() {
		cmd := exec.Command("nft", "-f", "-")
		cmd.Stdin = strings.NewReader(foreign)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("loading foreign tables: %v\n%s", err, out)
		}
		foreignBefore := run(t, "nft", "list", "table", "ip", "foreign") + run(t, "nft", "list", "table", "inet", "filter")

		first := quietSyncer(t)
		if err := first.Apply(ctx, desired1); err != nil {
			t.Fatal(err)
		}
		// The previous version of us left extra objects behind.
		cmd = exec.Command("nft", "-f", "-")
		cmd.Stdin = strings.NewReader("add chain inet calico-nat old-chain\nadd set inet calico-nat old-set { type ipv4_addr; }\n" +
			"add rule inet calico-nat old-chain ip saddr @old-set counter\nadd element inet calico-nat masq-pools { 10.99.0.0/16 }\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("adding stale objects: %v\n%s", err, out)
		}
		before := run(t, "nft", "-a", "list", "chain", "inet", TableName, "postrouting")

		second := quietSyncer(t) // a restarted agent
		if err := second.Apply(ctx, desired1); err != nil {
			t.Fatal(err)
		}
		after := run(t, "nft", "-a", "list", "chain", "inet", TableName, "postrouting")
		if before == after {
			t.Errorf("adoption did not rewrite the chain (handles unchanged)")
		}
		if got, _ := second.nft.List(ctx, "chains"); slices.Contains(got, "old-chain") {
			t.Errorf("stale chain survived adoption: %v", got)
		}
		if got, _ := second.nft.List(ctx, "sets"); slices.Contains(got, "old-set") {
			t.Errorf("stale set survived adoption: %v", got)
		}
		if got := elementKeys(t, second.nft, "set", SetMasqPools); !slices.Equal(got, []string{"10.65.0.0/16"}) {
			t.Errorf("masq-pools after adoption = %v", got)
		}
		if err := second.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
		foreignAfter := run(t, "nft", "list", "table", "ip", "foreign") + run(t, "nft", "list", "table", "inet", "filter")
		if foreignBefore != foreignAfter {
			t.Errorf("foreign tables changed:\nbefore:\n%s\nafter:\n%s", foreignBefore, foreignAfter)
		}
		if out := run(t, "nft", "list", "tables"); strings.Contains(out, TableName) {
			t.Errorf("our table survived Cleanup:\n%s", out)
		}
	})
}

// TestPrivilegedTraffic routes real TCP connections from a pod namespace
// through a router namespace running our table to an outside namespace (and
// back for the floating IP) and checks the source address the far end sees.
//
//	pod(eth0 10.65.0.5/24) -- (r-pod 10.65.0.1/24) router (r-out 198.51.100.1/24, 198.51.100.10/32) -- (eth0 198.51.100.2/24) out
//
// The outside namespace has no route to the pool, so only NATed connections
// can complete.
func TestPrivilegedTraffic(t *testing.T) {
	requirePrivileged(t)
	pod, router, out := netnstest.NewNamed(t, "calnat-pod").Name, netnstest.NewNamed(t, "calnat-router").Name, netnstest.NewNamed(t, "calnat-out").Name
	run(t, "ip", "-n", router, "link", "add", "r-pod", "type", "veth", "peer", "name", "eth0", "netns", pod)
	run(t, "ip", "-n", router, "link", "add", "r-out", "type", "veth", "peer", "name", "eth0", "netns", out)
	for _, c := range [][]string{
		{pod, "addr", "add", "10.65.0.5/24", "dev", "eth0"}, {pod, "link", "set", "eth0", "up"},
		{pod, "route", "add", "default", "via", "10.65.0.1"},
		{router, "addr", "add", "10.65.0.1/24", "dev", "r-pod"}, {router, "link", "set", "r-pod", "up"},
		{router, "addr", "add", "198.51.100.1/24", "dev", "r-out"},
		{router, "addr", "add", "198.51.100.10/32", "dev", "r-out"}, {router, "link", "set", "r-out", "up"},
		{out, "addr", "add", "198.51.100.2/24", "dev", "eth0"}, {out, "link", "set", "eth0", "up"},
	} {
		run(t, append([]string{"ip", "-n", c[0]}, c[1:]...)...)
	}
	nsRun(t, router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")

	var syncer *Syncer
	inNS(t, router, func() { syncer = quietSyncer(t) })
	t.Cleanup(func() { inNS(t, router, func() { _ = syncer.Cleanup(context.Background()) }) })

	masqOnly := Desired{MasqPools: pfx("10.65.0.0/16"), AllPools: pfx("10.65.0.0/16")}
	withFloating := masqOnly
	withFloating.FloatingIPs = []FloatingNAT{fip("198.51.100.10", "10.65.0.5")}
	tests := []struct {
		name         string
		d            Desired
		fromNS, toNS string
		listen, dial string // listen address in toNS, dial address from fromNS
		wantPeer     string // "" = the connection must fail
	}{
		{name: "no pools: no NAT, outside cannot answer", d: Desired{},
			fromNS: pod, toNS: out, listen: "198.51.100.2", dial: "198.51.100.2"},
		{name: "natOutgoing masquerades to the router address", d: masqOnly,
			fromNS: pod, toNS: out, listen: "198.51.100.2", dial: "198.51.100.2", wantPeer: "198.51.100.1"},
		{name: "floating IP SNAT wins over masquerade", d: withFloating,
			fromNS: pod, toNS: out, listen: "198.51.100.2", dial: "198.51.100.2", wantPeer: "198.51.100.10"},
		{name: "floating IP DNAT reaches the pod", d: withFloating,
			fromNS: out, toNS: pod, listen: "10.65.0.5", dial: "198.51.100.10", wantPeer: "198.51.100.2"},
		{name: "floating IP removed: DNAT gone", d: masqOnly,
			fromNS: out, toNS: pod, listen: "10.65.0.5", dial: "198.51.100.10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inNS(t, router, func() {
				if err := syncer.Apply(context.Background(), tt.d); err != nil {
					t.Fatal(err)
				}
			})
			// Each connection uses a new listener port, so no conntrack
			// entry from an earlier case applies.
			peer, err := connect(t, tt.fromNS, tt.toNS, tt.listen, tt.dial)
			switch {
			case tt.wantPeer == "" && err == nil:
				t.Fatalf("connection succeeded (peer %s), want failure", peer)
			case tt.wantPeer != "" && err != nil:
				t.Fatalf("connection failed: %v", err)
			case tt.wantPeer != "" && peer != tt.wantPeer:
				t.Fatalf("listener saw peer %s, want %s", peer, tt.wantPeer)
			}
		})
	}
}

// connect listens on listenIP in toNS, dials dialIP from fromNS, and returns
// the peer address the listener saw.
func connect(t *testing.T, fromNS, toNS, listenIP, dialIP string) (string, error) {
	t.Helper()
	var ln *net.TCPListener
	inNS(t, toNS, func() {
		l, err := net.Listen("tcp4", net.JoinHostPort(listenIP, "0"))
		if err != nil {
			t.Fatal(err)
		}
		ln = l.(*net.TCPListener)
	})
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	type result struct {
		peer string
		err  error
	}
	accepted := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- result{err: err}
			return
		}
		defer c.Close()
		ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
		accepted <- result{peer: ap.Addr().String()}
	}()
	var dialErr error
	inNS(t, fromNS, func() {
		d := net.Dialer{Timeout: 3 * time.Second} // a failure bound, not an assertion
		c, err := d.Dial("tcp4", net.JoinHostPort(dialIP, fmt.Sprint(port)))
		if err == nil {
			c.Close()
		}
		dialErr = err
	})
	if dialErr != nil {
		return "", dialErr
	}
	r := <-accepted
	return r.peer, r.err
}
