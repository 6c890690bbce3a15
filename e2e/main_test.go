// Package e2e drives the built calicoctl binary against real embedded etcd
// servers (started with `calicoctl datastore serve`) and checks what a user
// sees: messages, tables, YAML/JSON and exit codes.
package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/e2e/clitest"
)

// Paths of the binary under test, set by TestMain.
var (
	binPath    string // <tmp>/calicoctl
	pluginPath string // <tmp>/kubectl-calico, a symlink to binPath
	moduleRoot string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	moduleRoot = root
	dir, err := os.MkdirTemp("", "calicoctl-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if binPath, err = clitest.Build(moduleRoot, dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	pluginPath = filepath.Join(dir, "kubectl-calico")
	if err := os.Symlink(binPath, pluginPath); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	clitest.WarnConfigFile("e2e")
	return m.Run()
}

// result is one CLI invocation's outcome; env, its extra variables.
type (
	result = clitest.Result
	env    = clitest.Env
)

// cluster is one embedded etcd server run by `calicoctl datastore serve`.
type cluster struct {
	Endpoint string
	home     string
}

// newCluster starts a datastore for the test and stops it when the test ends.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	clitest.TrackSources(t)
	dir := t.TempDir()
	cmd := exec.Command(binPath, "datastore", "serve",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen", "127.0.0.1:0", "--listen-peer", "127.0.0.1:0")
	cmd.Env = clitest.BaseEnv(dir, nil)
	serving := &lineWatcher{prefix: "serving on ", found: make(chan string, 1)}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = serving, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start datastore: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := false
	t.Cleanup(func() {
		if exited {
			return
		}
		// SIGTERM must stop the server cleanly (exit 0).
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("datastore did not exit cleanly on SIGTERM: %v; stderr:\n%s", err, stderr.String())
			}
		case <-time.After(clitest.CommandTimeout):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("datastore did not stop within %s of SIGTERM", clitest.CommandTimeout)
		}
	})
	// The server prints "serving on <url>, ..." once it is ready and initialized.
	select {
	case url := <-serving.found:
		return &cluster{Endpoint: url, home: dir}
	case err := <-done:
		exited = true
		t.Fatalf("datastore exited before serving (%v); stderr:\n%s", err, stderr.String())
	case <-time.After(clitest.CommandTimeout):
		t.Fatalf("datastore did not report serving within %s; stderr:\n%s", clitest.CommandTimeout, stderr.String())
	}
	return nil
}

// lineWatcher is a writer that reports the rest of the first line containing
// prefix (up to a comma) on found.
type lineWatcher struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	prefix string
	found  chan string
	sent   bool
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.sent {
		return len(p), nil
	}
	for line := range strings.Lines(w.buf.String()) {
		if !strings.HasSuffix(line, "\n") {
			break
		}
		if _, rest, ok := strings.Cut(line, w.prefix); ok {
			url, _, _ := strings.Cut(strings.TrimSpace(rest), ",")
			w.found <- url
			w.sent = true
			break
		}
	}
	return len(p), nil
}

// env returns the variables that point the CLI at this cluster.
func (c *cluster) env() env {
	return env{"DATASTORE_TYPE": "etcdv3", "ETCD_ENDPOINTS": c.Endpoint}
}

// run runs calicoctl against the cluster with stdin and args.
func (c *cluster) run(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	r := clitest.Exec(t, binPath, c.home, c.env(), stdin, args...)
	return r.Stdout, r.Stderr, r.Code
}

// runEnv is run with extra (or overriding) environment variables.
func (c *cluster) runEnv(t *testing.T, extra env, stdin string, args ...string) result {
	t.Helper()
	e := c.env()
	for k, v := range extra {
		e[k] = v
	}
	return clitest.Exec(t, binPath, c.home, e, stdin, args...)
}

// mustRun runs a command that must succeed and returns its stdout.
func (c *cluster) mustRun(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, code := c.run(t, stdin, args...)
	if code != 0 {
		t.Fatalf("calicoctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// testdata returns the absolute path of a file under testdata/.
func testdata(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
