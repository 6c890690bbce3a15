package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/opencalico/calicoctl/e2e/clitest"
)

// server is a `calicoctl datastore serve` child the test may kill with
// SIGKILL and start again on the same data directory.
type server struct {
	cmd      *exec.Cmd
	done     chan error
	stderr   *bytes.Buffer
	endpoint string
}

// startServer runs `datastore serve --data-dir dataDir` on free ports and
// waits until it serves. The test's cleanup kills it if it still runs.
func startServer(t *testing.T, home, dataDir string) *server {
	t.Helper()
	clitest.TrackSources(t)
	cmd := exec.Command(binPath, "datastore", "serve", "--data-dir", dataDir,
		"--listen", "127.0.0.1:0", "--listen-peer", "127.0.0.1:0")
	cmd.Env = clitest.BaseEnv(home, nil)
	serving := &lineWatcher{prefix: "serving on ", found: make(chan string, 1)}
	s := &server{cmd: cmd, done: make(chan error, 1), stderr: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = serving, s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start datastore: %v", err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() { s.kill(t) })
	select {
	case s.endpoint = <-serving.found:
		return s
	case err := <-s.done:
		s.done <- err
		t.Fatalf("datastore exited before serving (%v); stderr:\n%s", err, s.stderr.String())
	case <-time.After(clitest.CommandTimeout):
		t.Fatalf("datastore did not report serving within %s; stderr:\n%s", clitest.CommandTimeout, s.stderr.String())
	}
	return nil
}

// kill stops the server with SIGKILL (no clean shutdown) and waits for it.
func (s *server) kill(t *testing.T) {
	t.Helper()
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	err := <-s.done
	s.done <- err
}

func (s *server) env() env { return env{"DATASTORE_TYPE": "etcdv3", "ETCD_ENDPOINTS": s.endpoint} }

// gnetsets renders n GlobalNetworkSets named <prefix>-00000... as one YAML file.
func gnetsets(prefix string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  name: %s-%05d\n  labels:\n    bulk: \"yes\"\nspec:\n  nets: [10.%d.%d.0/24]\n",
			prefix, i, i/256, i%256)
	}
	return b.String()
}

var failureName = regexp.MustCompile(`^  GlobalNetworkSet\(([^)]+)\)`)

// TestApplyEtcdKilled: etcd is killed with SIGKILL while `apply -f` writes
// 5,000 objects. The command ends by itself, every object it does not count
// as applied is named (failed, or outcome unknown), the count is exactly
// what landed, and a rerun against the restarted etcd converges.
func TestApplyEtcdKilled(t *testing.T) {
	t.Parallel()
	const n = 5000
	home := t.TempDir()
	dataDir := filepath.Join(home, "data")
	srv := startServer(t, home, dataDir)
	file := clitest.WriteFile(t, "bulk.yaml", gnetsets("bulk", n))

	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	prefix := "/calico/resources/v3/projectcalico.org/globalnetworksets/"

	ctx, cancel := context.WithTimeout(context.Background(), clitest.CommandTimeout)
	defer cancel()
	apply := exec.CommandContext(ctx, binPath, "apply", "-f", file)
	apply.Env = clitest.BaseEnv(home, srv.env())
	var stdout, stderr bytes.Buffer
	apply.Stdout, apply.Stderr = &stdout, &stderr
	if err := apply.Start(); err != nil {
		t.Fatal(err)
	}
	applied := make(chan error, 1)
	go func() { applied <- apply.Wait() }()

	// Kill etcd as soon as the first objects have landed.
	var applyErr error
	killed := false
	for !killed {
		select {
		case applyErr = <-applied:
			t.Fatalf("apply ended before etcd could be killed (%v): %s", applyErr, stdout.String())
		default:
		}
		resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err == nil && resp.Count > 0 {
			srv.kill(t)
			killed = true
		}
	}
	applyErr = <-applied
	if ctx.Err() != nil {
		t.Fatalf("apply did not end within %s of etcd being killed", clitest.CommandTimeout)
	}
	out, errOut := stdout.String(), stderr.String()
	if applyErr == nil {
		t.Fatalf("apply exited 0 although etcd was killed:\n%s", out)
	}
	if strings.Contains(errOut, "panic:") || strings.Contains(errOut, "goroutine ") {
		t.Fatalf("apply crashed:\n%s", errOut)
	}

	// Parse the report: N applied (stdout), F failed and U unknown, each named.
	okCount := 0
	if m := regexp.MustCompile(`^Partial success: applied (\d+) out of 5000 'GlobalNetworkSet' resources:\n$`).FindStringSubmatch(out); m != nil {
		okCount, _ = strconv.Atoi(m[1])
	} else if out != "" {
		t.Fatalf("unexpected stdout %q", out)
	}
	failed, unknown := map[string]bool{}, map[string]bool{}
	section := failed
	for _, l := range strings.Split(errOut, "\n") {
		switch {
		case strings.HasPrefix(l, "outcome unknown for "):
			section = unknown
		case strings.HasPrefix(l, "  "):
			m := failureName.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("failure line does not name its object: %q", l)
			}
			section[m[1]] = true
		}
	}
	if okCount+len(failed)+len(unknown) != n {
		t.Fatalf("applied %d + failed %d + unknown %d != %d; stderr head:\n%.2000s", okCount, len(failed), len(unknown), n, errOut)
	}
	for _, l := range strings.Split(errOut, "\n") {
		if strings.HasPrefix(l, "  ") && !strings.Contains(l, " at "+srv.endpoint) {
			t.Errorf("failure line does not name the datastore endpoint: %q", l)
			break
		}
	}

	// Restart etcd on the same data and check the count was exact: every
	// object counted applied is there, no failed one is, unknown ones may be.
	srv = startServer(t, home, dataDir)
	names := srv.listNames(t)
	present := map[string]bool{}
	for _, nm := range names {
		present[nm] = true
	}
	for i := range n {
		nm := fmt.Sprintf("bulk-%05d", i)
		switch {
		case failed[nm] && present[nm]:
			t.Errorf("%s was reported failed but landed", nm)
		case !failed[nm] && !unknown[nm] && !present[nm]:
			t.Errorf("%s was counted applied but is missing", nm)
		}
	}
	t.Logf("applied %d, failed %d, unknown %d, present after restart %d", okCount, len(failed), len(unknown), len(present))

	// A rerun converges.
	res := clitest.Exec(t, binPath, home, srv.env(), "", "apply", "-f", file)
	clitest.WantExact(t, "rerun", res.Stdout, "Successfully applied 5000 'GlobalNetworkSet' resource(s)\n")
	if got := len(srv.listNames(t)); got != n {
		t.Errorf("after the rerun %d objects, want %d", got, n)
	}
}

// listNames returns the names of the stored GlobalNetworkSets, read through
// the binary.
func (s *server) listNames(t *testing.T) []string {
	t.Helper()
	res := clitest.Exec(t, binPath, t.TempDir(), s.env(), "", "get", "gnetset", "-o", "go-template={{range .Items}}{{.Name}} {{end}}")
	if res.Code != 0 {
		t.Fatalf("get gnetset: exit %d: %s", res.Code, res.Stderr)
	}
	return strings.Fields(res.Stdout)
}

// TestServeDataDirInUse: a second `datastore serve` on a data directory
// another process serves refuses at once, naming the directory and the PID
// (calicoctl's own lock file, or a plain etcd's database lock).
func TestServeDataDirInUse(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	t.Run("calicoctl", func(t *testing.T) {
		dataDir := filepath.Join(home, "data")
		first := startServer(t, home, dataDir)
		res := clitest.Exec(t, binPath, home, nil, "", "datastore", "serve", "--data-dir", dataDir,
			"--listen", "127.0.0.1:0", "--listen-peer", "127.0.0.1:0")
		if res.Code != 1 || res.Stdout != "" {
			t.Errorf("second serve: exit %d stdout %q", res.Code, res.Stdout)
		}
		clitest.WantOneLine(t, "stderr", res.Stderr)
		clitest.WantContains(t, "stderr", res.Stderr, dataDir+" is used by process "+strconv.Itoa(first.cmd.Process.Pid))
		// The first server still serves.
		if names := first.listNames(t); len(names) != 0 {
			t.Errorf("unexpected objects %v", names)
		}
	})
	t.Run("etcd", func(t *testing.T) {
		etcdBin, err := exec.LookPath("etcd")
		if err != nil {
			t.Skip("no etcd binary installed")
		}
		dataDir := filepath.Join(home, "etcd-data")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cmd := exec.CommandContext(ctx, etcdBin, "--data-dir", dataDir,
			"--listen-client-urls", "http://127.0.0.1:0", "--advertise-client-urls", "http://127.0.0.1:2379",
			"--listen-peer-urls", "http://127.0.0.1:0", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
			"--initial-cluster", "default=http://127.0.0.1:2380")
		ready := &lineWatcher{prefix: "ready to serve client requests", found: make(chan string, 1)}
		cmd.Stdout, cmd.Stderr = ready, ready
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		defer func() { cancel(); <-exited }()
		// Wait until etcd has opened (and locked) its database.
		select {
		case <-ready.found:
		case err := <-exited:
			exited <- err
			t.Fatalf("etcd exited: %v", err)
		case <-time.After(clitest.CommandTimeout):
			t.Fatal("etcd did not become ready")
		}
		res := clitest.Exec(t, binPath, home, nil, "", "datastore", "serve", "--data-dir", dataDir,
			"--listen", "127.0.0.1:0", "--listen-peer", "127.0.0.1:0")
		if res.Code != 1 {
			t.Errorf("serve on etcd's directory: exit %d", res.Code)
		}
		clitest.WantContains(t, "stderr", res.Stderr, dataDir+" is used by process "+strconv.Itoa(cmd.Process.Pid))
	})
}
