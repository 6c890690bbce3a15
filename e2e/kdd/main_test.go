// Package kdd drives the built calicoctl binary against a real kube-apiserver
// (the Kubernetes datastore, DATASTORE_TYPE=kubernetes) and checks what a
// user sees: messages, tables, YAML and exit codes, and what lands in the
// Kubernetes objects behind Calico's views of them. One shared API server
// (kubetest.Shared) serves the package; tests use distinct object names.
package kdd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"github.com/opencalico/calicoctl/e2e/kubetest"
	"github.com/opencalico/calicoctl/internal/crds"
)

// Paths of the binary under test, set by TestMain.
var (
	binPath    string // <tmp>/calicoctl
	pluginDir  string // <tmp>/plugin: kubectl-calico (a symlink to binPath); kubectl(t) links kubectl here
	moduleRoot string
)

// commandTimeout bounds every CLI invocation; nothing here should come close.
const commandTimeout = 60 * time.Second

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	root, err := filepath.Abs("../..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "kdd:", err)
		return 1
	}
	moduleRoot = root
	dir, err := os.MkdirTemp("", "calicoctl-kdd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "kdd:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "calicoctl")
	build := exec.Command("go", "build", "-o", binPath, "./cmd/calicoctl")
	build.Dir = moduleRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "kdd: building calicoctl:", err)
		return 1
	}
	pluginDir = filepath.Join(dir, "plugin")
	if err := os.Mkdir(pluginDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "kdd:", err)
		return 1
	}
	if err := os.Symlink(binPath, filepath.Join(pluginDir, "kubectl-calico")); err != nil {
		fmt.Fprintln(os.Stderr, "kdd:", err)
		return 1
	}
	if _, err := os.Stat("/etc/calico/calicoctl.cfg"); err == nil {
		fmt.Fprintln(os.Stderr, "kdd: warning: /etc/calico/calicoctl.cfg exists; the CLI reads it instead of the environment these tests set")
	}
	return kubetest.Main(m)
}

var trackOnce sync.Once

// trackSources opens every Go source and go.mod/go.sum of the module so that
// `go test` caching notices changes to the code the binary is built from.
func trackSources(t testing.TB) {
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

var crdOnce struct {
	sync.Once
	err error
}

// server is the package's shared API server with the Calico CRDs installed.
func server(t testing.TB) *kubetest.APIServer {
	t.Helper()
	trackSources(t)
	srv := kubetest.Shared(t)
	crdOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		crdOnce.err = installCRDs(ctx, srv.RESTConfig())
	})
	if crdOnce.err != nil {
		t.Fatalf("install CRDs: %v", crdOnce.err)
	}
	return srv
}

// installCRDs applies every Calico CRD through the Go API and polls
// discovery until the API server serves all of them (Install's own wait is
// skipped: a fresh CRD can have no conditions yet).
func installCRDs(ctx context.Context, rc *rest.Config) error {
	list, err := crds.All()
	if err != nil {
		return err
	}
	if _, err := crds.Install(ctx, rc, crds.InstallOptions{CRDs: list, EstablishTimeout: -1}); err != nil {
		return err
	}
	return waitCRDsServed(ctx, rc, list)
}

// waitCRDsServed polls discovery until every CRD in list is served.
func waitCRDsServed(ctx context.Context, rc *rest.Config, list []*crds.CustomResourceDefinition) error {
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return err
	}
	var missing string
	for {
		missing = ""
		res, err := dc.ServerResourcesForGroupVersion("crd.projectcalico.org/v1")
		served := map[string]bool{}
		if err == nil {
			for _, r := range res.APIResources {
				served[r.Name] = true
			}
		}
		for _, c := range list {
			plural, _, _ := strings.Cut(c.Name, ".")
			if !served[plural] {
				missing = c.Name
				break
			}
		}
		if missing == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRD %s not served: %w", missing, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// result is one CLI invocation's outcome.
type result struct {
	Stdout, Stderr string
	Code           int
}

// env is a set of environment variables for one invocation.
type env map[string]string

// user is a calicoctl user of one API server: a home directory and a
// kubeconfig.
type user struct {
	kubeconfig string
	home       string
}

// admin is calicoctl as the API server's admin.
func admin(t testing.TB, srv *kubetest.APIServer) *user {
	t.Helper()
	return &user{kubeconfig: srv.Kubeconfig, home: t.TempDir()}
}

// env returns the variables that point the CLI at the API server.
func (u *user) env() env {
	return env{"DATASTORE_TYPE": "kubernetes", "KUBECONFIG": u.kubeconfig}
}

// run runs calicoctl with stdin and args.
func (u *user) run(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	return execCLI(t, binPath, u.home, u.env(), stdin, args...)
}

// runEnv is run with extra (or overriding, or with "" removing) variables.
func (u *user) runEnv(t testing.TB, extra env, stdin string, args ...string) result {
	t.Helper()
	e := u.env()
	for k, v := range extra {
		e[k] = v
	}
	return execCLI(t, binPath, u.home, e, stdin, args...)
}

// mustRun runs a command that must succeed and returns its stdout.
func (u *user) mustRun(t testing.TB, args ...string) string {
	t.Helper()
	r := u.run(t, "", args...)
	if r.Code != 0 {
		t.Fatalf("calicoctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// baseEnv is a minimal environment: nothing from the caller's CALICO_*,
// ETCD_* or KUBECONFIG settings leaks into the binary under test. Variables
// set to "" are left out.
func baseEnv(home string, extra env) []string {
	vars := map[string]string{"PATH": os.Getenv("PATH"), "HOME": home}
	for k, v := range extra {
		vars[k] = v
	}
	var out []string
	for k, v := range vars {
		if v != "" {
			out = append(out, k+"="+v)
		}
	}
	slices.Sort(out)
	return out
}

// execCLI runs the binary at path and fails the test on a timeout or on any
// sign of a Go panic in stderr.
func execCLI(t testing.TB, path, home string, e env, stdin string, args ...string) result {
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
		t.Fatalf("%s %s: timed out after %s", filepath.Base(path), strings.Join(args, " "), commandTimeout)
	}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s %s: %v", filepath.Base(path), strings.Join(args, " "), err)
		}
		res.Code = ee.ExitCode()
	}
	for _, bad := range []string{"panic:", "goroutine ", "runtime error", ".go:"} {
		if strings.Contains(res.Stderr, bad) {
			t.Errorf("%s %s: stderr looks like a Go crash (%q):\n%s", filepath.Base(path), strings.Join(args, " "), bad, res.Stderr)
		}
	}
	return res
}

// writeFile writes content into a new file in the test's temp dir.
func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testdata returns the absolute path of a file under the etcd suite's
// e2e/testdata (shared, read-only).
func testdata(t testing.TB, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "testdata", rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// wantExact fails unless got equals want, showing both with visible ends.
func wantExact(t testing.TB, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\n got: %q\nwant: %q", what, got, want)
	}
}

// wantContains fails unless every wanted substring is in got.
func wantContains(t testing.TB, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s: missing %q in:\n%s", what, w, got)
		}
	}
}

// wantOneLine fails unless s is exactly one non-empty line.
func wantOneLine(t testing.TB, what, s string) {
	t.Helper()
	if s == "" || strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Errorf("%s: want one line, got %q", what, s)
	}
}

// readFile returns a file's content.
func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
