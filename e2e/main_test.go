// Package e2e drives the built calicoctl binary against real embedded etcd
// servers (started with `calicoctl datastore serve`) and checks what a user
// sees: messages, tables, YAML/JSON and exit codes.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Paths of the binary under test, set by TestMain.
var (
	binPath    string // <tmp>/calicoctl
	pluginPath string // <tmp>/kubectl-calico, a symlink to binPath
	moduleRoot string
)

// commandTimeout bounds every CLI invocation; nothing here should come close.
const commandTimeout = 60 * time.Second

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
	binPath = filepath.Join(dir, "calicoctl")
	pluginPath = filepath.Join(dir, "kubectl-calico")
	build := exec.Command("go", "build", "-o", binPath, "./cmd/calicoctl")
	build.Dir = moduleRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building calicoctl:", err)
		return 1
	}
	if err := os.Symlink(binPath, pluginPath); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if _, err := os.Stat("/etc/calico/calicoctl.cfg"); err == nil {
		fmt.Fprintln(os.Stderr, "e2e: warning: /etc/calico/calicoctl.cfg exists; the CLI reads it instead of the environment these tests set")
	}
	return m.Run()
}

var trackOnce sync.Once

// trackSources opens every Go source and go.mod/go.sum of the module so that
// `go test` caching notices changes to the code the binary is built from (the
// build itself runs in a child process the test cache cannot see). It must
// run inside a test, where file accesses are recorded.
func trackSources(t *testing.T) {
	t.Helper()
	trackOnce.Do(func() {
		_ = filepath.WalkDir(moduleRoot, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() {
				if name := d.Name(); path != moduleRoot && (strings.HasPrefix(name, ".") || name == "testdata" || path == filepath.Join(moduleRoot, "e2e")) {
					return filepath.SkipDir
				}
				return nil
			}
			name := d.Name()
			if (strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go")) || name == "go.mod" || name == "go.sum" {
				if f, err := os.Open(path); err == nil {
					_, _ = io.Copy(io.Discard, f)
					f.Close()
				}
			}
			return nil
		})
	})
}

// result is one CLI invocation's outcome.
type result struct {
	Stdout, Stderr string
	Code           int
}

// env is a set of environment variables for one invocation.
type env map[string]string

// cluster is one embedded etcd server run by `calicoctl datastore serve`.
type cluster struct {
	Endpoint string
	home     string
}

// newCluster starts a datastore for the test and stops it when the test ends.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	trackSources(t)
	dir := t.TempDir()
	cmd := exec.Command(binPath, "datastore", "serve",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen", "127.0.0.1:0", "--listen-peer", "127.0.0.1:0")
	cmd.Env = baseEnv(dir, nil)
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
		case <-time.After(commandTimeout):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("datastore did not stop within %s of SIGTERM", commandTimeout)
		}
	})
	// The server prints "serving on <url>, ..." once it is ready and initialized.
	select {
	case url := <-serving.found:
		return &cluster{Endpoint: url, home: dir}
	case err := <-done:
		exited = true
		t.Fatalf("datastore exited before serving (%v); stderr:\n%s", err, stderr.String())
	case <-time.After(commandTimeout):
		t.Fatalf("datastore did not report serving within %s; stderr:\n%s", commandTimeout, stderr.String())
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

// baseEnv is a minimal environment: nothing from the caller's CALICO_*/ETCD_*
// settings leaks into the binary under test.
func baseEnv(home string, extra env) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
	for k, v := range extra {
		out = append(out, k+"="+v)
	}
	return out
}

// env returns the variables that point the CLI at this cluster.
func (c *cluster) env() env {
	return env{"DATASTORE_TYPE": "etcdv3", "ETCD_ENDPOINTS": c.Endpoint}
}

// run runs calicoctl against the cluster with stdin and args.
func (c *cluster) run(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	r := execCLI(t, binPath, c.home, c.env(), stdin, args...)
	return r.Stdout, r.Stderr, r.Code
}

// runEnv is run with extra (or overriding) environment variables.
func (c *cluster) runEnv(t *testing.T, extra env, stdin string, args ...string) result {
	t.Helper()
	e := c.env()
	for k, v := range extra {
		e[k] = v
	}
	return execCLI(t, binPath, c.home, e, stdin, args...)
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

// execCLI runs the binary at path and fails the test on a timeout or on any
// sign of a Go panic in stderr.
func execCLI(t *testing.T, path, home string, e env, stdin string, args ...string) result {
	t.Helper()
	trackSources(t)
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = baseEnv(home, e)
	cmd.Dir = home
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{Stdout: stdout.String(), Stderr: stderr.String()}
	if ctx.Err() != nil {
		t.Fatalf("calicoctl %s: timed out after %s", strings.Join(args, " "), commandTimeout)
	}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("calicoctl %s: %v", strings.Join(args, " "), err)
		}
		res.Code = ee.ExitCode()
	}
	for _, bad := range []string{"panic:", "goroutine ", "runtime error", ".go:"} {
		if strings.Contains(res.Stderr, bad) {
			t.Errorf("calicoctl %s: stderr looks like a Go crash (%q):\n%s", strings.Join(args, " "), bad, res.Stderr)
		}
	}
	return res
}

// writeFile writes content into a new file in the test's temp dir.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
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

// wantExact fails unless got equals want, showing both with visible ends.
func wantExact(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\n got: %q\nwant: %q", what, got, want)
	}
}

// wantContains fails unless every wanted substring is in got.
func wantContains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s: missing %q in:\n%s", what, w, got)
		}
	}
}
