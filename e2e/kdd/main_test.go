// Package kdd drives the built calicoctl binary against a real kube-apiserver
// (the Kubernetes datastore, DATASTORE_TYPE=kubernetes) and checks what a
// user sees: messages, tables, YAML and exit codes, and what lands in the
// Kubernetes objects behind Calico's views of them. One shared API server
// (kubetest.Shared) serves the package; tests use distinct object names.
package kdd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/e2e/clitest"
	"github.com/opencalico/calicoctl/internal/kubetest"
	"github.com/opencalico/calicoctl/internal/kubetest/kubecrd"
)

// Paths of the binary under test, set by TestMain.
var (
	binPath    string // <tmp>/calicoctl
	pluginDir  string // <tmp>/plugin: kubectl-calico (a symlink to binPath); kubectl(t) links kubectl here
	moduleRoot string
)

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
	if binPath, err = clitest.Build(moduleRoot, dir); err != nil {
		fmt.Fprintln(os.Stderr, "kdd:", err)
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
	clitest.WarnConfigFile("kdd")
	return kubetest.Main(m)
}

// server is the package's shared API server with the Calico CRDs installed.
func server(t testing.TB) *kubetest.APIServer {
	t.Helper()
	clitest.TrackSources(t)
	srv := kubetest.Shared(t)
	kubecrd.Install(t, srv)
	return srv
}

// result is one CLI invocation's outcome; env, its extra variables.
type (
	result = clitest.Result
	env    = clitest.Env
)

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
	return clitest.Exec(t, binPath, u.home, u.env(), stdin, args...)
}

// runEnv is run with extra (or overriding, or with "" removing) variables.
func (u *user) runEnv(t testing.TB, extra env, stdin string, args ...string) result {
	t.Helper()
	e := u.env()
	for k, v := range extra {
		e[k] = v
	}
	return clitest.Exec(t, binPath, u.home, e, stdin, args...)
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
