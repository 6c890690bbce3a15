package bgpbench

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BIRD 2 as the reflector: one passive `rr client` iBGP protocol per
// client, on the reflector's address and port, as upstream's calico-node
// template configures a reflector's clients.

// birdConfig is the reflector's configuration for total clients.
//
// BIRD ignores loopback interfaces and rejects routes in 127/8 as bogus,
// so the clients' next hops (127.20.x.y) never resolve: BIRD keeps their
// routes as "unreachable" but still reflects them, next hop unchanged.
// Nothing is exported to the kernel (no kernel protocol).
func birdConfig(total int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `router id %s;
protocol device { }
template bgp rrclient {
  local %s port %d as %d;
  rr client;
  rr cluster id %s;
  passive on;
  ipv4 { import all; export where source = RTS_BGP; };
}
`, rrAddr, rrAddr, rrPort, asn, clusterID)
	for i := range total {
		fmt.Fprintf(&b, "protocol bgp c%d from rrclient { neighbor %s as %d; }\n", i, clientAddr(i), asn)
	}
	return b.String()
}

// birdReflector is a running BIRD.
type birdReflector struct {
	birdc, sock string
	cmd         *exec.Cmd
	done        chan struct{}
	out         bytes.Buffer
	// lastRoutes is the last `show route` that was not what we wanted.
	lastRoutes string
}

// startBird runs `bird -f` with birdConfig(total); it returns once the
// control socket answers. The benchmark skips when bird is missing.
func startBird(b *testing.B, total int) *birdReflector {
	b.Helper()
	bird, err1 := exec.LookPath("bird")
	birdc, err2 := exec.LookPath("birdc")
	if err1 != nil || err2 != nil {
		b.Skip("bird and birdc not found (apt-get install bird2): the BIRD reflector run is skipped")
	}
	dir := b.TempDir()
	cfg := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(cfg, []byte(birdConfig(total)), 0o644); err != nil {
		b.Fatal(err)
	}
	r := &birdReflector{birdc: birdc, sock: filepath.Join(dir, "bird.ctl"), done: make(chan struct{})}
	r.cmd = exec.Command(bird, "-c", cfg, "-s", r.sock, "-f")
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	if err := r.cmd.Start(); err != nil {
		b.Fatalf("start bird: %v", err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	b.Cleanup(func() {
		_ = r.cmd.Process.Signal(os.Interrupt)
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := r.query("show status"); err == nil {
			return r
		}
		select {
		case <-r.done:
			b.Fatalf("bird exited: %s", r.out.String())
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("bird's control socket did not answer in 30 s: %s", r.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *birdReflector) pid() int { return r.cmd.Process.Pid }

func (r *birdReflector) query(q string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, r.birdc, append([]string{"-s", r.sock}, strings.Fields(q)...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %w: %s", q, err, out)
	}
	return string(out), nil
}

// state counts Established sessions and reports whether BIRD's BGP routes
// are exactly want, each via its client.
func (r *birdReflector) state(want map[netip.Prefix]int) (established int, exact bool, err error) {
	protos, err := r.query("show protocols")
	if err != nil {
		return 0, false, err
	}
	established = countEstablished(protos)
	routes, err := r.query("show route where source = RTS_BGP")
	if err != nil {
		return established, false, err
	}
	got := parseBirdRoutes(routes)
	if len(got) != len(want) {
		r.lastRoutes = routes
		return established, false, nil
	}
	for pfx, via := range got {
		if i, ok := want[pfx]; !ok || via != clientAddr(i) {
			r.lastRoutes = routes
			return established, false, nil
		}
	}
	return established, true, nil
}

// countEstablished counts the BGP protocols in `show protocols` output
// whose Info column is Established.
func countEstablished(out string) int {
	n := 0
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 6 && f[1] == "BGP" && f[len(f)-1] == "Established" {
			n++
		}
	}
	return n
}

// parseBirdRoutes reads `show route` output, a line per route
// ("10.0.0.0/26  unreachable [c0 05:51:46.889 from 127.20.0.1] * (100) [i]",
// continuation lines start with a space) and returns each network's
// preferred route's source: the peer after "from".
func parseBirdRoutes(out string) map[netip.Prefix]netip.Addr {
	got := map[netip.Prefix]netip.Addr{}
	var cur netip.Prefix
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if p, err := netip.ParsePrefix(f[0]); err == nil {
			cur = p
		} else if !strings.HasPrefix(l, " ") || !cur.IsValid() {
			continue // a header, or a gateway line
		}
		if _, seen := got[cur]; seen {
			continue
		}
		for i := range f[:len(f)-1] {
			if f[i] == "from" {
				if a, err := netip.ParseAddr(strings.TrimSuffix(f[i+1], "]")); err == nil {
					got[cur] = a
				}
			}
		}
	}
	return got
}

func TestBirdConfig(t *testing.T) {
	cfg := birdConfig(3)
	for _, want := range []string{"local 127.19.0.1 port 17180 as 64512;", "rr cluster id 224.0.0.1;",
		"protocol bgp c2 from rrclient { neighbor 127.20.0.3 as 64512; }"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	if bird, err := exec.LookPath("bird"); err == nil {
		p := filepath.Join(t.TempDir(), "bird.conf")
		if err := os.WriteFile(p, []byte(birdConfig(3)), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bird, "-p", "-c", p).CombinedOutput(); err != nil {
			t.Errorf("bird -p rejects the config: %v: %s", err, out)
		}
	}
}

func TestParseBird(t *testing.T) {
	protos := `BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     05:47:14.514  
c0         BGP        ---        up     05:47:15.514  Established   
c1         BGP        ---        start  05:47:14.514  Passive       
`
	if n := countEstablished(protos); n != 1 {
		t.Errorf("countEstablished = %d, want 1", n)
	}
	routes := `BIRD 2.0.12 ready.
Table master4:
10.0.0.0/26          unreachable [c0 05:51:46.889 from 127.20.0.1] * (100) [i]
10.0.0.64/26         unicast [c1 05:50:01.123 from 127.20.0.2] * (100/0) [i]
	via 127.20.0.2 on lo
                     unicast [c9 05:50:01.123 from 127.20.0.9] (100/0) [i]
`
	got := parseBirdRoutes(routes)
	if len(got) != 2 || got[netip.MustParsePrefix("10.0.0.64/26")] != netip.MustParseAddr("127.20.0.2") ||
		got[netip.MustParsePrefix("10.0.0.0/26")] != netip.MustParseAddr("127.20.0.1") {
		t.Errorf("parseBirdRoutes = %v", got)
	}
}
