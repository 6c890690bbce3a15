// Package bgpbench measures the agent's BGP at scale (issue 10, item 7):
//
//   - BenchmarkBGPMesh100: 100 of our speakers (node/bgp/speaker) in this
//     process, each on its own 127.10.0.x address, to a full mesh.
//   - BenchmarkBGPReflector1000/{ours,bird}: one route reflector in its own
//     process, our speaker or BIRD 2, with 1,000 route-reflector clients
//     (plain gobgp v3 servers, 100 per process), then a churn of 10% of
//     the clients' blocks.
//
// Intent comes from bgp.Compute over Node, BGPConfiguration and BGPPeer
// resources, as the agent computes it. Everything runs on loopback
// addresses (all of 127/8 is local) and high ports, so no root is needed.
// Run with `make bench` or as docs/benchmarks.md says; figures are there.
//
// The test binary doubles as the helper processes: with BGPBENCH_HELPER
// set, TestMain runs a reflector or a group of clients (helper_test.go)
// instead of the tests.
package bgpbench

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode))
	}
	os.Exit(m.Run())
}

// BGP settings shared by the benchmarks and their helper processes.
const (
	asn = 64512
	// meshPort and rrPort are the listen ports (every node listens on its
	// own address, bindMode NodeIP).
	meshPort = 17179
	rrPort   = 17180
	// clusterID is the reflector's routeReflectorClusterID.
	clusterID = "224.0.0.1"
)

// meshAddr is mesh node i's address (i < 250).
func meshAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{127, 10, 0, byte(i + 1)}) }

// rrAddr is the reflector's address. It sorts before every client's as a
// string, so the planner makes the reflector the passive side.
var rrAddr = netip.MustParseAddr("127.19.0.1")

// clientAddr is reflector client i's address (i < 25,000).
func clientAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, 20, byte(i / 250), byte(i%250 + 1)})
}

// block is the /26 node or client i originates: from 10.0.0.0/16 at
// first, from 10.1.0.0/16 once churned (i < 1,024).
func block(i int, churned bool) netip.Prefix {
	second := byte(0)
	if churned {
		second = 1
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, second, byte(i / 4), byte(i % 4 * 64)}), 26)
}

// expected is every block of total clients, those in churned moved.
func expected(total int, churned map[int]bool) map[netip.Prefix]int {
	out := make(map[netip.Prefix]int, total)
	for i := range total {
		out[block(i, churned[i])] = i
	}
	return out
}

// churnSet is the 10% of clients that churn: every tenth, so each client
// process has ten.
func churnSet(total int) []int {
	var out []int
	for i := 0; i < total; i += 10 {
		out = append(out, i)
	}
	return out
}

func formatInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

func parseInts(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		x, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("bad integer list %q: %w", s, err)
		}
		out = append(out, x)
	}
	return out, nil
}

// raiseNoFile lifts RLIMIT_NOFILE to want (at most the hard limit). The
// explicit Setrlimit also makes child processes (BIRD, the helpers)
// inherit it. It skips the benchmark when the hard limit is below want.
func raiseNoFile(b *testing.B, want uint64) {
	b.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Skipf("cannot read RLIMIT_NOFILE: %v", err)
	}
	if lim.Max < want {
		b.Skipf("RLIMIT_NOFILE hard limit %d is below the %d descriptors this benchmark needs (raise it with ulimit -Hn as root)", lim.Max, want)
	}
	lim.Cur = max(lim.Cur, want)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Skipf("cannot raise RLIMIT_NOFILE to %d: %v", want, err)
	}
}

// procStatusKiB reads the kB fields of /proc/<pid>/status (pid 0 = self).
func procStatusKiB(pid int) map[string]float64 {
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	out := map[string]float64{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 2 && fs[1] == "kB" {
			if x, err := strconv.ParseFloat(fs[0], 64); err == nil {
				out[k] = x
			}
		}
	}
	return out
}

// cpuSeconds is a process's user+system CPU time so far (pid 0 = self).
func cpuSeconds(pid int) float64 {
	path := "/proc/self/stat"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	// Fields after the ")" of the command name: state is field 3, utime 14,
	// stime 15.
	s := string(b)
	fs := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fs) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(fs[11], 64)
	st, _ := strconv.ParseFloat(fs[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

func TestAddressing(t *testing.T) {
	seen := map[netip.Prefix]bool{}
	for i := range 1000 {
		for _, c := range []bool{false, true} {
			p := block(i, c)
			if seen[p] || p != p.Masked() {
				t.Fatalf("block(%d, %v) = %s: duplicate or not a network", i, c, p)
			}
			seen[p] = true
		}
		if a := clientAddr(i); !a.IsLoopback() || a.String() <= rrAddr.String() {
			t.Fatalf("clientAddr(%d) = %s: not loopback or sorts before the reflector", i, a)
		}
	}
	if got := len(churnSet(1000)); got != 100 {
		t.Errorf("churnSet(1000) has %d clients", got)
	}
	xs, err := parseInts(formatInts([]int{0, 10, 990}))
	if err != nil || len(xs) != 3 || xs[2] != 990 {
		t.Errorf("parseInts(formatInts) = %v, %v", xs, err)
	}
}
