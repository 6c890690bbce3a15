// Package version holds the build's version information, the output of
// `calicoctl version`, and the rule for how far the client's version may
// drift from the cluster's (ClusterInformation calicoVersion).
//
// Release builds set the variables with the linker:
//
//	go build -ldflags "\
//	  -X github.com/opencalico/calicoctl/internal/version.Version=v3.32.1 \
//	  -X github.com/opencalico/calicoctl/internal/version.GitCommit=$(git rev-parse HEAD) \
//	  -X github.com/opencalico/calicoctl/internal/version.BuildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
//	  ./cmd/calicoctl
//
// Our versions follow the upstream Calico line whose data and behaviour we
// match, so the mismatch check against ClusterInformation means the same as
// upstream's. Without -X, Version is that line; Commit falls back to the VCS
// revision Go stamps into the binary.
package version

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// Build variables, set with -ldflags -X (see the package doc).
var (
	Version   = "v3.32.1"
	GitCommit = ""
	BuildDate = ""
)

// Commit is GitCommit, or else the VCS revision recorded by the Go
// toolchain, or else "unknown".
func Commit() string {
	if GitCommit != "" {
		return GitCommit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// Normalize strips surrounding space, one leading "v" and everything from
// the first "-": "v3.30.2-0.dev-12" becomes "3.30.2".
func Normalize(v string) string {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if i := strings.IndexByte(v, '-'); i >= 0 {
		v = v[:i]
	}
	return v
}

// ErrMismatch is matched (errors.Is) by the error Check returns when the
// versions may not be used together.
var ErrMismatch = errors.New("version mismatch")

// MismatchError is Check's refusal. Client is the client version as given,
// Cluster the normalized cluster version.
type MismatchError struct {
	Client  string
	Cluster string
}

// Error is upstream's multi-line message.
func (e *MismatchError) Error() string {
	return "version mismatch.\n" +
		"Client Version:   " + e.Client + "\n" +
		"Cluster Version:  " + e.Cluster + "\n" +
		"Use --allow-version-mismatch to override"
}

// Is makes errors.Is(err, ErrMismatch) true.
func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }

// Check decides whether a client of version client may work on a cluster
// whose ClusterInformation says cluster:
//   - cluster empty: fine (nothing to compare against);
//   - equal x.y.z after Normalize: fine;
//   - same major.minor, different patch: fine, with a one-line warning to show;
//   - anything else: a *MismatchError.
//
// Versions that are not dotted numbers are compared as normalized strings.
func Check(client, cluster string) (warning string, err error) {
	if strings.TrimSpace(cluster) == "" {
		return "", nil
	}
	c, k := Normalize(client), Normalize(cluster)
	if c == k {
		return "", nil
	}
	cv, okc := parse(c)
	kv, okk := parse(k)
	if okc && okk {
		if cv == kv {
			return "", nil
		}
		if cv[0] == kv[0] && cv[1] == kv[1] {
			return fmt.Sprintf("Warning: client version %s and cluster version %s differ in patch level", client, k), nil
		}
	}
	return "", &MismatchError{Client: client, Cluster: k}
}

// parse reads "x.y.z" (or "x.y", patch 0) of non-negative integers.
func parse(v string) ([3]int, bool) {
	var out [3]int
	parts := strings.Split(v, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return out, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p == "" || p[0] == '+' {
			return out, false
		}
		out[i] = n
	}
	return out, true
}

// AllowMismatchFromEnv reports whether CALICO_ALLOW_VERSION_MISMATCH is
// true, 1 or yes (any case). env nil means os.LookupEnv.
func AllowMismatchFromEnv(env func(string) (string, bool)) bool {
	if env == nil {
		env = os.LookupEnv
	}
	v, ok := env("CALICO_ALLOW_VERSION_MISMATCH")
	if !ok {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1", "yes":
		return true
	}
	return false
}

// Info is what `calicoctl version` prints.
type Info struct {
	// ClientVersion and GitCommit default to Version and Commit() when empty.
	ClientVersion string
	GitCommit     string
	// ClientOnly (--client) leaves out the cluster lines.
	ClientOnly bool
	// ClusterVersion and ClusterType come from ClusterInformation "default".
	ClusterVersion string
	ClusterType    string
	// ClusterErr, when set, replaces the cluster lines with
	// "Unable to detect installed Calico version".
	ClusterErr error
}

// Current returns the client half of Info for this build.
func Current() Info {
	return Info{ClientVersion: Version, GitCommit: Commit()}
}

// valueColumn is the 1-based column where every value starts.
const valueColumn = 20

// WriteVersion prints info as upstream's `calicoctl version` does:
//
//	Client Version:    v3.32.1
//	Git commit:        0123abcd
//	Cluster Version:   v3.32.1
//	Cluster Type:      k8s,bgp,kubeadm
func WriteVersion(w io.Writer, info Info) {
	line := func(label, value string) {
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("%-*s%s", valueColumn-1, label, value), " "))
	}
	if info.ClientVersion == "" {
		info.ClientVersion = Version
	}
	if info.GitCommit == "" {
		info.GitCommit = Commit()
	}
	line("Client Version:", info.ClientVersion)
	line("Git commit:", info.GitCommit)
	if info.ClientOnly {
		return
	}
	if info.ClusterErr != nil {
		fmt.Fprintln(w, "Unable to detect installed Calico version")
		return
	}
	clusterType := info.ClusterType
	if clusterType == "" {
		clusterType = "unknown"
	}
	line("Cluster Version:", info.ClusterVersion)
	line("Cluster Type:", clusterType)
}
