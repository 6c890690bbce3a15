// Package bench measures whole calicoctl commands (the built binary, as a
// user runs it) against an embedded etcd: wall time per command and the
// command's peak RSS. Run with `make bench`.
package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/opencalico/calicoctl/internal/etcdserver"
)

var binary string

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		// A follower process of BenchmarkFollowerInitialSync: no binary needed.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "calicoctl-bench")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "calicoctl")
	build := exec.Command("go", "build", "-o", binary, "github.com/opencalico/calicoctl/cmd/calicoctl")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building calicoctl:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startEtcd runs a real embedded etcd (fsync on) for the benchmark.
func startEtcd(b *testing.B) string {
	b.Helper()
	srv, err := etcdserver.Start(context.Background(), etcdserver.Config{
		DataDir:      filepath.Join(b.TempDir(), "etcd"),
		ListenClient: "127.0.0.1:0",
		ListenPeer:   "127.0.0.1:0",
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	return srv.Endpoints()[0]
}

// gnuTime is GNU time, used to read a command's own peak RSS: Go starts
// children with vfork, and Linux then counts the parent's (this benchmark
// process's) resident set in the child's ru_maxrss, so the rusage from
// wait4 would report max(parent, child).
const gnuTime = "/usr/bin/time"

// runBinary runs the built binary with args in an environment of PATH, a
// scratch HOME and env (the datastore settings), and returns its stdout and
// its own peak RSS in MiB (through GNU time when installed, else the
// inflated ru_maxrss of the direct child).
func runBinary(b *testing.B, env []string, args ...string) (string, float64) {
	b.Helper()
	rssFile := filepath.Join(b.TempDir(), "rss")
	name, argv := binary, args
	_, err := os.Stat(gnuTime)
	useTime := err == nil
	if useTime {
		name, argv = gnuTime, append([]string{"-f", "%M", "-o", rssFile, binary}, args...)
	}
	cmd := exec.Command(name, argv...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + b.TempDir()}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		b.Fatalf("calicoctl %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	if !useTime {
		return out.String(), float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024
	}
	data, err := os.ReadFile(rssFile)
	if err != nil {
		b.Fatal(err)
	}
	kib, err := strconv.ParseFloat(strings.TrimSpace(string(data)), 64)
	if err != nil {
		b.Fatalf("GNU time output %q: %v", data, err)
	}
	return out.String(), kib / 1024
}

// calicoctl runs one command against etcd at endpoint and returns its
// stdout and its own peak RSS in MiB.
func calicoctl(b *testing.B, endpoint string, args ...string) (string, float64) {
	b.Helper()
	return runBinary(b, []string{"DATASTORE_TYPE=etcdv3", "ETCD_ENDPOINTS=" + endpoint}, args...)
}

// measure runs cmd once per benchmark iteration (after resetting the
// timer), hands each output to check and reports the largest peak RSS.
func measure(b *testing.B, cmd func() (string, float64), check func(out string)) {
	b.Helper()
	var rss float64
	b.ResetTimer()
	for b.Loop() {
		out, r := cmd()
		rss = max(rss, r)
		check(out)
	}
	b.ReportMetric(rss, "peakRSS-MiB")
}

// wepManifest writes n WorkloadEndpoints (10 namespaces, 8 nodes) as one
// multi-document YAML file.
func wepManifest(b *testing.B, n int) string {
	b.Helper()
	var buf bytes.Buffer
	for i := range n {
		node := fmt.Sprintf("node%d", i%8)
		pod := fmt.Sprintf("web%d", i)
		fmt.Fprintf(&buf, `---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata:
  name: %[1]s-k8s-%[2]s-eth0
  namespace: ns%[3]d
  labels:
    app: web
    tier: frontend
spec:
  orchestrator: k8s
  node: %[1]s
  pod: %[2]s
  endpoint: eth0
  containerID: c%08[4]x
  interfaceName: cali%011[4]x
  ipNetworks:
  - 10.%[5]d.%[6]d.%[7]d/32
  profiles:
  - kns.ns%[3]d
  ports:
  - name: http
    port: 8080
    protocol: TCP
`, node, pod, i%10, i, 10+i/65536, (i/256)%256, i%256)
	}
	path := filepath.Join(b.TempDir(), "weps.yaml")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

const nWEPs = 10000

// BenchmarkApply10kWEPs: `calicoctl apply -f` of one file holding 10,000
// WorkloadEndpoints into an empty datastore.
func BenchmarkApply10kWEPs(b *testing.B) {
	file := wepManifest(b, nWEPs)
	var rss float64
	for b.Loop() {
		b.StopTimer()
		ep := startEtcd(b)
		b.StartTimer()
		out, r := calicoctl(b, ep, "apply", "-f", file)
		rss = max(rss, r)
		if !strings.Contains(out, fmt.Sprintf("Successfully applied %d 'WorkloadEndpoint' resource(s)", nWEPs)) {
			b.Fatalf("unexpected output: %q", out)
		}
	}
	b.ReportMetric(rss, "peakRSS-MiB")
}

func benchmarkGet(b *testing.B, args ...string) {
	ep := startEtcd(b)
	calicoctl(b, ep, "apply", "-f", wepManifest(b, nWEPs))
	measure(b, func() (string, float64) { return calicoctl(b, ep, args...) }, func(out string) {
		if n := strings.Count(out, "-k8s-web"); n < nWEPs {
			b.Fatalf("output names %d endpoints, want %d", n, nWEPs)
		}
	})
}

// BenchmarkGetWEPsAllNamespaces: `calicoctl get wep -A -o wide` over 10,000.
func BenchmarkGetWEPsAllNamespaces(b *testing.B) { benchmarkGet(b, "get", "wep", "-A", "-o", "wide") }

// BenchmarkGetWEPsAllNamespacesYAML: `calicoctl get wep -A -o yaml` over 10,000.
func BenchmarkGetWEPsAllNamespacesYAML(b *testing.B) {
	benchmarkGet(b, "get", "wep", "-A", "-o", "yaml")
}
