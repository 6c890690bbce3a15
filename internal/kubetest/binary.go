package kubetest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// DefaultVersion is the Kubernetes release the harness runs unless
// KUBE_VERSION says otherwise; it must match e2e/kubeapiserver/go.mod.
const DefaultVersion = "v1.34.2"

// ErrNoBinary means no kube-apiserver executable could be found or built.
var ErrNoBinary = errors.New("no kube-apiserver binary")

// Environment variables consulted when looking for the binary. They mirror
// e2e/kubeapiserver/build.sh so both agree on the cache path.
const (
	envBinary  = "KUBE_APISERVER_BIN"
	envVersion = "KUBE_VERSION"
	envCache   = "CACHE_DIR"
)

// cachePath is where build.sh leaves the binary for the given environment.
func cachePath(getenv func(string) string) (string, error) {
	version := getenv(envVersion)
	if version == "" {
		version = DefaultVersion
	}
	dir := getenv(envCache)
	if dir == "" {
		base := getenv("XDG_CACHE_HOME")
		if base == "" {
			home := getenv("HOME")
			if home == "" {
				return "", errors.New("neither CACHE_DIR, XDG_CACHE_HOME nor HOME is set")
			}
			base = filepath.Join(home, ".cache")
		}
		dir = filepath.Join(base, "calicoctl")
	}
	return filepath.Join(dir, "kube-apiserver-"+version), nil
}

// locateBinary returns an existing kube-apiserver without building:
// $KUBE_APISERVER_BIN if set (it must then be executable), else the build
// cache. found is false when neither applies.
func locateBinary(getenv func(string) string) (path string, found bool, err error) {
	if p := getenv(envBinary); p != "" {
		if err := checkExecutable(p); err != nil {
			return "", false, fmt.Errorf("%s=%s: %w", envBinary, p, err)
		}
		return p, true, nil
	}
	p, err := cachePath(getenv)
	if err != nil {
		return "", false, err
	}
	if checkExecutable(p) != nil {
		return p, false, nil
	}
	return p, true, nil
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// buildScript finds e2e/kubeapiserver/build.sh from this package's source.
func buildScript() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the kubetest source directory")
	}
	p := filepath.Join(filepath.Dir(file), "..", "..", "e2e", "kubeapiserver", "build.sh")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("build script: %w", err)
	}
	return p, nil
}

// FindBinary returns the kube-apiserver to run: $KUBE_APISERVER_BIN, else the
// cached build, else (when build is true) the result of running build.sh,
// which takes a few minutes on a cold cache. logf reports the slow path.
// Errors wrap ErrNoBinary when nothing could be found or built.
func FindBinary(build bool, logf func(format string, args ...any)) (string, error) {
	p, found, err := locateBinary(os.Getenv)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoBinary, err)
	}
	if found {
		return p, nil
	}
	if !build {
		return "", fmt.Errorf("%w: %s not set and %s does not exist (run make kube-apiserver)", ErrNoBinary, envBinary, p)
	}
	script, err := buildScript()
	if err != nil {
		return "", fmt.Errorf("%w: %s not set, %s missing, and %w", ErrNoBinary, envBinary, p, err)
	}
	if logf != nil {
		logf("kubetest: %s not found; building kube-apiserver with %s (takes about 4 minutes)", p, script)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("bash", script)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s failed: %w\n%s", ErrNoBinary, script, err, tail(stderr.String(), 40))
	}
	lines := strings.Fields(strings.TrimSpace(stdout.String()))
	if len(lines) == 0 {
		return "", fmt.Errorf("%w: %s printed no path", ErrNoBinary, script)
	}
	built := lines[len(lines)-1]
	if err := checkExecutable(built); err != nil {
		return "", fmt.Errorf("%w: after %s: %w", ErrNoBinary, script, err)
	}
	return built, nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
