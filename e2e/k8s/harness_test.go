// Package k8s runs Calico in a real two-node Kubernetes cluster on this
// machine: kube-apiserver, kube-controller-manager and kube-scheduler built
// from the Go module proxy (e2e/kubeapiserver/build.sh), and per node a
// containerd (Debian's) and a kubelet in a network and mount namespace of
// its own. Our image (an OCI layout written by cmd/ociimage, no registry) is
// imported into each containerd, and manifests/crds.yaml and
// manifests/calico-node.yaml are applied as a user would. Needs root.
package k8s

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/internal/kubetest"
)

// Images imported into every node. The calico image carries the name the
// committed manifest uses, so it is applied unmodified (imagePullPolicy
// IfNotPresent finds it).
const (
	calicoImage   = "ghcr.io/opencalico/calico-node:latest"
	cliImage      = "ghcr.io/opencalico/calicoctl:latest" // manifests/calicoctl.yaml
	pauseImage    = "docker.io/opencalico/pause:e2e"
	workloadImage = "docker.io/opencalico/e2e-busybox:e2e"
)

// loopbackPlugin is Debian's reference CNI loopback plugin.
const loopbackPlugin = "/usr/lib/cni/loopback"

type cluster struct {
	id, dir    string
	moduleRoot string
	prefix     string // the first two octets of every address, e.g. 10.77
	apiIP      string // on this host's lo; the API server binds it
	bins       map[string]string
	calicoctl  string
	images     []string
	api        *kubetest.APIServer
	nodes      []*node
	kcm, sched *proc
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sh runs a command that must succeed.
func (c *cluster) sh(t testing.TB, bin string, args ...string) string {
	t.Helper()
	out, err := run(bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func waitFor(t testing.TB, what string, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// requirements skips the test unless everything a cluster needs is here.
func requirements(t *testing.T) (moduleRoot string, bins map[string]string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network and mount namespaces, cgroups, veths; runs containerd and kubelets")
	}
	if os.Getenv("CALICO_E2E_K8S") == "" && testing.Short() {
		t.Skip("-short: the real-cluster e2e takes minutes (set CALICO_E2E_K8S=1 to force)")
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ctr", "nsenter", "unshare", "ip", "mount"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s in PATH (apt-get install containerd runc): %v", b, err)
		}
	}
	if _, err := os.Stat(loopbackPlugin); err != nil {
		t.Skipf("needs the reference CNI loopback plugin for containerd (apt-get install containernetworking-plugins): %v", err)
	}
	root, err := filepath.Abs("../..")
	must(t, err)
	bins = map[string]string{}
	for _, name := range []string{"kube-apiserver", "kubectl", "kubelet", "kube-controller-manager", "kube-scheduler"} {
		env := map[string]string{"kube-apiserver": "KUBE_APISERVER_BIN", "kubectl": "KUBECTL_BIN"}[name]
		if p := os.Getenv(env); env != "" && p != "" {
			bins[name] = p
			continue
		}
		// Cached by version: a no-op after the first build (minutes, cold).
		cmd := exec.Command("bash", filepath.Join(root, "e2e/kubeapiserver/build.sh"), name)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			t.Skipf("cannot build %s with e2e/kubeapiserver/build.sh: %v", name, err)
		}
		bins[name] = strings.TrimSpace(string(out))
	}
	return root, bins
}

// newCluster brings up the control plane and two nodes, imports the images
// and applies the manifests. Everything is undone by t.Cleanup.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	root, bins := requirements(t)
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	c := &cluster{id: hex.EncodeToString(b), dir: t.TempDir(), moduleRoot: root, bins: bins, prefix: "10.77"}
	c.apiIP = c.prefix + ".255.1"
	if out, _ := run("ip", "-o", "addr"); strings.Contains(out, " "+c.prefix+".") {
		t.Skipf("addresses in %s.0.0/16 are in use on this machine (another run?)", c.prefix)
	}
	c.buildArtifacts(t)
	c.createHostDirs(t)

	// The API server binds an address on lo that the nodes route to.
	c.sh(t, "ip", "addr", "add", c.apiIP+"/32", "dev", "lo")
	t.Cleanup(func() { _, _ = run("ip", "addr", "del", c.apiIP+"/32", "dev", "lo") })
	ctx := context.Background()
	var err error
	begin := time.Now()
	must(t, os.MkdirAll(filepath.Join(c.dir, "apiserver"), 0o755))
	c.api, err = kubetest.New(ctx, kubetest.Config{
		Binary: bins["kube-apiserver"], Dir: filepath.Join(c.dir, "apiserver"), Address: c.apiIP, Cluster: true,
		Logf: t.Logf,
	})
	must(t, err)
	t.Cleanup(func() { _ = c.api.Close() })
	t.Logf("kube-apiserver ready at %s in %s", c.api.URL, time.Since(begin).Round(time.Millisecond))
	c.startControllers(t)

	n1, n2 := c.addNode(t, 1), c.addNode(t, 2)
	c.linkNodes(t, n1, n2)
	n1.start(t)
	n2.start(t)
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpState(t)
		}
	})
	waitFor(t, "both nodes registered", 90*time.Second, func() error {
		out, err := c.kubectl("get", "nodes", "-o", "name")
		if err != nil || !strings.Contains(out, "node/node-1") || !strings.Contains(out, "node/node-2") {
			return fmt.Errorf("%v %s", err, out)
		}
		return nil
	})
	t.Logf("nodes registered after %s", time.Since(begin).Round(time.Millisecond))
	return c
}

// buildArtifacts builds calicoctl and the image tool and writes the images.
func (c *cluster) buildArtifacts(t *testing.T) {
	t.Helper()
	begin := time.Now()
	c.calicoctl = filepath.Join(c.dir, "calicoctl")
	imgTool := filepath.Join(c.dir, "ociimage")
	for out, pkg := range map[string]string{c.calicoctl: "./cmd/calicoctl", imgTool: "./cmd/ociimage"} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
		cmd.Dir = c.moduleRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	for _, img := range []struct{ name, file string }{
		{calicoImage, "-file=" + c.calicoctl + ":/calicoctl"},
		{pauseImage, "-file=" + c.calicoctl + ":/calicoctl"},
		{cliImage, "-file=" + c.calicoctl + ":/calicoctl"},
		{workloadImage, "-file=/usr/bin/busybox:/bin/busybox"},
	} {
		tar := filepath.Join(c.dir, strings.NewReplacer("/", "_", ":", "_").Replace(img.name)+".tar")
		args := []string{"-o", tar, "-name", img.name, img.file}
		switch img.name {
		case calicoImage:
			// The agent programs NAT (and policy) with the nft CLI, so the
			// node image carries it and its libraries.
			nft, err := exec.LookPath("nft")
			if err != nil {
				t.Skip("needs the nft CLI to put in the node image (apt-get install nftables)")
			}
			args = append(args, "-entrypoint", "/calicoctl", "-file", nft+":/usr/sbin/nft", "-ldd")
		case cliImage:
			args = append(args, "-entrypoint", "/calicoctl")
		case pauseImage:
			args = append(args, "-entrypoint", "/calicoctl", "-cmd", "pause")
		case workloadImage:
			if _, err := os.Stat("/usr/bin/busybox"); err != nil {
				t.Skip("needs a static /usr/bin/busybox for the test pods (apt-get install busybox-static)")
			}
			args = append(args, "-entrypoint", "/bin/busybox")
		}
		c.sh(t, imgTool, args...)
		c.images = append(c.images, tar)
	}
	t.Logf("built calicoctl and 4 images in %s", time.Since(begin).Round(time.Millisecond))
}

// createHostDirs creates the mount points of the per-node directories that
// this host lacks, and removes them (empty: nothing was written through
// them here) at the end.
func (c *cluster) createHostDirs(t *testing.T) {
	t.Helper()
	var created []string
	for _, d := range perNodeDirs {
		for p := d; p != "/"; p = filepath.Dir(p) {
			if _, err := os.Stat(p); os.IsNotExist(err) {
				created = append(created, p)
			}
		}
	}
	for _, d := range perNodeDirs {
		must(t, os.MkdirAll(d, 0o755))
	}
	t.Cleanup(func() {
		// Deepest first; only empty directories go.
		for i := len(created) - 1; i >= 0; i-- {
			_ = syscall.Rmdir(created[i])
		}
		for i := len(created) - 1; i >= 0; i-- {
			_ = syscall.Rmdir(created[i])
		}
	})
}

// startControllers runs kube-controller-manager and kube-scheduler on this
// host (DaemonSets need both).
func (c *cluster) startControllers(t *testing.T) {
	t.Helper()
	var err error
	kcmConf := c.api.KubeconfigFor(t, "system:kube-controller-manager")
	c.kcm, err = startProc("kube-controller-manager", filepath.Join(c.dir, "kube-controller-manager.log"), nil,
		c.bins["kube-controller-manager"], "--kubeconfig="+kcmConf, "--authentication-kubeconfig="+kcmConf,
		"--authorization-kubeconfig="+kcmConf, "--use-service-account-credentials=true",
		"--service-account-private-key-file="+c.api.SAKeyFile, "--root-ca-file="+c.api.CAFile,
		"--leader-elect=false", "--secure-port=0", "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller",
		"--v=1")
	must(t, err)
	t.Cleanup(func() { c.kcm.stop(5 * time.Second) })
	schedConf := c.api.KubeconfigFor(t, "system:kube-scheduler")
	c.sched, err = startProc("kube-scheduler", filepath.Join(c.dir, "kube-scheduler.log"), nil,
		c.bins["kube-scheduler"], "--kubeconfig="+schedConf, "--authentication-kubeconfig="+schedConf,
		"--authorization-kubeconfig="+schedConf, "--leader-elect=false", "--secure-port=0", "--v=1")
	must(t, err)
	t.Cleanup(func() { c.sched.stop(5 * time.Second) })
}

// kubectl runs kubectl as the admin.
func (c *cluster) kubectl(args ...string) (string, error) {
	return run(c.bins["kubectl"], append([]string{"--kubeconfig", c.api.Kubeconfig}, args...)...)
}

func (c *cluster) mustKubectl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := c.kubectl(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// calicoctlCmd runs our calicoctl against the cluster (Kubernetes datastore).
func (c *cluster) calicoctlCmd(args ...string) (string, error) {
	cmd := exec.Command(c.calicoctl, args...)
	cmd.Env = append(os.Environ(), "DATASTORE_TYPE=kubernetes", "KUBECONFIG="+c.api.Kubeconfig)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("calicoctl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// dumpState logs what explains a failure.
func (c *cluster) dumpState(t *testing.T) {
	for _, args := range [][]string{
		{"get", "nodes", "-o", "wide"},
		{"get", "pods", "-A", "-o", "wide"},
		{"describe", "pods", "-n", "kube-system", "-l", "k8s-app=calico-node"},
		{"logs", "-n", "kube-system", "-l", "k8s-app=calico-node", "-c", "calico-node", "--tail=40", "--prefix"},
		{"logs", "-n", "kube-system", "-l", "k8s-app=calico-node", "-c", "install-cni", "--tail=20", "--prefix"},
		{"get", "events", "-A", "--sort-by=.lastTimestamp"},
	} {
		out, _ := c.kubectl(args...)
		t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
	}
	for _, n := range c.nodes {
		t.Logf("%s kubelet log:\n%s", n.name, n.kubelet.logTail(40))
		t.Logf("%s containerd log:\n%s", n.name, n.containerd.logTail(20))
		t.Logf("%s CNI log:\n%s", n.name, fileTail(filepath.Join(n.dir, "root/var/log/calico/cni/cni.log"), 20))
		out, _ := run("ip", "-n", n.netns, "route")
		t.Logf("%s routes:\n%s", n.name, out)
	}
	t.Logf("kube-controller-manager log:\n%s", c.kcm.logTail(20))
}
