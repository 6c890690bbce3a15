// Package cluster runs multi-node Calico clusters made of network
// namespaces (e2e/nscluster) on the build host, with the calicoctl binary
// built from this checkout.
package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/opencalico/calicoctl/e2e/nscluster"
)

var (
	binPath    string
	moduleRoot string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if mode := os.Getenv(helperEnv); mode != "" {
		// Re-executed inside a pod namespace as a TCP echo server/client.
		return helperMain(mode)
	}
	if os.Geteuid() != 0 {
		// Every test here is TestPrivileged* and skips; no binary needed.
		return m.Run()
	}
	root, _ := filepath.Abs("../..")
	moduleRoot = root
	dir, err := os.MkdirTemp("", "calico-cluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "calicoctl")
	if prebuilt := os.Getenv("CALICO_E2E_BIN"); prebuilt != "" {
		// `make demo` hands us the binary it just built.
		abs, err := filepath.Abs(prebuilt)
		if err == nil {
			err = os.Symlink(abs, binPath)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "CALICO_E2E_BIN:", err)
			return 1
		}
	} else {
		build := exec.Command("go", "build", "-o", binPath, "./cmd/calicoctl")
		build.Dir = moduleRoot
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building calicoctl:", err)
			return 1
		}
	}
	for _, name := range []string{"calico", "calico-ipam"} {
		if err := os.Symlink(binPath, filepath.Join(dir, name)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}

// Cluster is the shared namespace cluster plus this package's helpers
// (util_test.go, helper_test.go).
type Cluster struct {
	*nscluster.Cluster
	t *testing.T
}

// Node and Pod are the shared harness's.
type (
	Node = nscluster.Node
	Pod  = nscluster.Pod
)

// NewCluster creates the hub with a bridge on 10.99.0.0/24 and starts the
// datastore in it.
func NewCluster(t *testing.T) *Cluster {
	t.Helper()
	nscluster.RequireRoot(t)
	return &Cluster{Cluster: nscluster.New(t, nscluster.Config{Bin: binPath}), t: t}
}

// AddNode creates a node on the first subnet at 10.99.0.<hostOctet>.
func (c *Cluster) AddNode(name string, hostOctet int, env ...string) *Node {
	c.t.Helper()
	return c.Cluster.AddNode(name, 0, hostOctet, env...)
}

// AddNodeOn is AddNode on subnet 10.99.<subnet>.0/24.
func (c *Cluster) AddNodeOn(name string, subnet, hostOctet int, env ...string) *Node {
	c.t.Helper()
	return c.Cluster.AddNode(name, subnet, hostOctet, env...)
}
