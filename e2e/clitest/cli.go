package clitest

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
)

// CommandTimeout bounds every CLI invocation; nothing should come close.
const CommandTimeout = 60 * time.Second

// Result is one CLI invocation's outcome.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Env is a set of environment variables for one invocation.
type Env map[string]string

// module is the calicoctl module whose binary the test binary runs.
var module struct {
	mu    sync.Mutex
	root  string
	track sync.Once
}

// Build compiles the calicoctl command of the module at root into
// dir/calicoctl, with its output on stderr, and returns the binary's path.
// It also records root for TrackSources. Call it from TestMain.
func Build(root, dir string) (string, error) {
	module.mu.Lock()
	module.root = root
	module.mu.Unlock()
	bin := filepath.Join(dir, "calicoctl")
	build := exec.Command("go", "build", "-o", bin, "./cmd/calicoctl")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("building calicoctl: %w", err)
	}
	return bin, nil
}

// WarnConfigFile prints a warning (prefixed with suite) when
// /etc/calico/calicoctl.cfg exists: the CLI reads it instead of the
// environment the tests set.
func WarnConfigFile(suite string) {
	if _, err := os.Stat("/etc/calico/calicoctl.cfg"); err == nil {
		fmt.Fprintln(os.Stderr, suite+": warning: /etc/calico/calicoctl.cfg exists; the CLI reads it instead of the environment these tests set")
	}
}

// TrackSources opens, once per test binary, every Go source and
// go.mod/go.sum of the module Build compiled (except the e2e tree,
// testdata and hidden directories), so that `go test` caching notices
// changes to the code the binary is built from: the build runs in a child
// process the test cache cannot see. It must run inside a test, where file
// accesses are recorded. Before Build it does nothing.
func TrackSources(t testing.TB) {
	t.Helper()
	module.mu.Lock()
	root := module.root
	module.mu.Unlock()
	if root == "" {
		return
	}
	module.track.Do(func() { readSources(root) })
}

func readSources(root string) {
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || path == filepath.Join(root, "e2e")) {
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
}

// BaseEnv is a minimal environment: PATH, HOME and extra, so nothing from
// the caller's CALICO_*, ETCD_* or KUBECONFIG settings leaks into the
// binary under test. Variables set to "" are left out; the result is
// sorted.
func BaseEnv(home string, extra Env) []string {
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

// Exec runs the binary at path in home with BaseEnv(home, e) and stdin,
// after TrackSources. It fails the test on a timeout (CommandTimeout), on a
// failure to run, and on any sign of a Go panic in stderr; a non-zero exit
// is only reported in the Result.
func Exec(t testing.TB, path, home string, e Env, stdin string, args ...string) Result {
	t.Helper()
	TrackSources(t)
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = BaseEnv(home, e)
	cmd.Dir = home
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	name := filepath.Base(path) + " " + strings.Join(args, " ")
	if ctx.Err() != nil {
		t.Fatalf("%s: timed out after %s", name, CommandTimeout)
	}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s: %v", name, err)
		}
		res.Code = ee.ExitCode()
	}
	for _, bad := range []string{"panic:", "goroutine ", "runtime error", ".go:"} {
		if strings.Contains(res.Stderr, bad) {
			t.Errorf("%s: stderr looks like a Go crash (%q):\n%s", name, bad, res.Stderr)
		}
	}
	return res
}

// WriteFile writes content into a new file in the test's temp dir and
// returns its path.
func WriteFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// ReadFile returns a file's content.
func ReadFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// WantExact fails unless got equals want, showing both with visible ends.
func WantExact(t testing.TB, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\n got: %q\nwant: %q", what, got, want)
	}
}

// WantContains fails unless every wanted substring is in got.
func WantContains(t testing.TB, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s: missing %q in:\n%s", what, w, got)
		}
	}
}

// WantOneLine fails unless s is exactly one non-empty line.
func WantOneLine(t testing.TB, what, s string) {
	t.Helper()
	if s == "" || strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Errorf("%s: want one line, got %q", what, s)
	}
}
