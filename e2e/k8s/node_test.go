package k8s

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A node is a network namespace and a mount namespace of its own, holding a
// containerd and a kubelet. The mount namespace gives each node its own
// /etc/cni, /opt/cni, /var/lib/calico, /var/lib/kubelet ... (bind mounts of
// per-node directories), so the manifests' hostPath volumes mean what they
// mean on a real host and nothing is written to this machine's.
type node struct {
	c      *cluster
	name   string
	netns  string
	dir    string
	ip     string // InternalIP, on eth0 (the node-to-node link)
	upIP   string // on vethup, the link to this host
	hostIP string // this host's end of vethup
	sock   string
	cgroup string // kubelet's cgroupRoot

	holder, containerd, kubelet *proc
}

// perNodeDirs are the host paths each node sees as its own directory.
var perNodeDirs = []string{
	"/etc/cni", "/opt/cni", "/var/lib/cni", "/var/lib/calico", "/run/calico", "/var/log/calico",
	"/var/log/containers", "/var/log/pods", "/var/lib/kubelet", "/run/containerd", "/run/netns",
}

// cgroupHierarchies are the v1 hierarchies kubelet's cgroupRoot must exist
// in; withUnified adds the cgroup2 one of a hybrid host (kubelet creates its
// tree there too, so it is cleaned up as well).
func cgroupHierarchies(withUnified bool) []string {
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	var out []string
	for _, e := range entries {
		if e.IsDir() && (withUnified || e.Name() != "unified") {
			out = append(out, filepath.Join("/sys/fs/cgroup", e.Name()))
		}
	}
	return out
}

// nsenter runs bin inside the node's namespaces (network and mount).
func (n *node) nsenterArgs(bin string, args ...string) []string {
	return append([]string{"--target", strconv.Itoa(n.holder.pid()), "--mount", "--net", "--", bin}, args...)
}

func (c *cluster) addNode(t *testing.T, idx int) *node {
	t.Helper()
	n := &node{
		c: c, name: fmt.Sprintf("node-%d", idx), netns: fmt.Sprintf("k8se%s-n%d", c.id, idx),
		dir:    filepath.Join(c.dir, fmt.Sprintf("node-%d", idx)),
		ip:     fmt.Sprintf("%s.0.%d", c.prefix, 10+idx),
		upIP:   fmt.Sprintf("%s.%d.2", c.prefix, idx),
		hostIP: fmt.Sprintf("%s.%d.1", c.prefix, idx),
		cgroup: fmt.Sprintf("/k8se%s-n%d", c.id, idx),
	}
	n.sock = filepath.Join(n.dir, "containerd.sock")
	must(t, os.MkdirAll(n.dir, 0o755))
	c.nodes = append(c.nodes, n)

	// Network: vethup (named veth* so that first-found autodetection skips it) to this host (the API server at c.apiIP), a route back to
	// the node's InternalIP for kube-apiserver -> kubelet (exec, logs).
	c.sh(t, "ip", "netns", "add", n.netns)
	t.Cleanup(func() { _, _ = run("ip", "netns", "del", n.netns) })
	hostLink := fmt.Sprintf("k8se%sh%d", c.id, idx)
	c.sh(t, "ip", "link", "add", hostLink, "type", "veth", "peer", "name", "vethup", "netns", n.netns)
	t.Cleanup(func() { _, _ = run("ip", "link", "del", hostLink) })
	c.sh(t, "ip", "addr", "add", n.hostIP+"/24", "dev", hostLink)
	c.sh(t, "ip", "link", "set", hostLink, "up")
	c.sh(t, "ip", "-n", n.netns, "addr", "add", n.upIP+"/24", "dev", "vethup")
	c.sh(t, "ip", "-n", n.netns, "link", "set", "vethup", "up")
	c.sh(t, "ip", "-n", n.netns, "link", "set", "lo", "up")
	// A default route, as on any host: the API server is behind it, and
	// pods' proxy-ARP gateway (169.254.1.1) needs a route to answer for.
	c.sh(t, "ip", "-n", n.netns, "route", "add", "default", "via", n.hostIP, "dev", "vethup")
	c.sh(t, "ip", "route", "add", n.ip+"/32", "via", n.upIP, "dev", hostLink)

	// The mount namespace, held by a sleeping process.
	for _, d := range perNodeDirs {
		must(t, os.MkdirAll(filepath.Join(n.dir, "root", d), 0o755))
	}
	// containerd 1.6 wires every sandbox's lo with the reference loopback
	// plugin, which real nodes get with their CNI plugins package.
	lo, err := os.ReadFile(loopbackPlugin)
	must(t, err)
	must(t, os.MkdirAll(filepath.Join(n.dir, "root/opt/cni/bin"), 0o755))
	must(t, os.WriteFile(filepath.Join(n.dir, "root/opt/cni/bin/loopback"), lo, 0o755))
	n.holder, err = startProc("holder", filepath.Join(n.dir, "holder.log"), nil, "nsenter",
		"--net=/run/netns/"+n.netns, "unshare", "--mount", "--propagation", "slave", "sleep", "infinity")
	must(t, err)
	t.Cleanup(func() { n.holder.stop(time.Second) })
	waitFor(t, "the mount namespace of "+n.name, 10*time.Second, func() error {
		self, _ := os.Readlink("/proc/self/ns/mnt")
		theirs, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", n.holder.pid()))
		if err != nil || theirs == self {
			return fmt.Errorf("not yet unshared (%v)", err)
		}
		return nil
	})
	for _, d := range perNodeDirs {
		c.sh(t, "nsenter", n.nsenterArgs("mount", "--bind", filepath.Join(n.dir, "root", d), d)...)
	}

	// kubelet's cgroupRoot, in every v1 hierarchy.
	for _, h := range cgroupHierarchies(false) {
		p := filepath.Join(h, n.cgroup)
		must(t, os.MkdirAll(p, 0o755))
		if strings.HasSuffix(h, "/cpuset") {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				b, _ := os.ReadFile(filepath.Join(h, f))
				_ = os.WriteFile(filepath.Join(p, f), b, 0o644)
			}
		}
	}
	t.Cleanup(func() { removeCgroups(t, n.cgroup) })

	t.Cleanup(n.stop)
	return n
}

// start runs the node's containerd (with the images imported) and kubelet.
func (n *node) start(t *testing.T) {
	t.Helper()
	n.startContainerd(t)
	n.startKubelet(t)
}

// linkNodes joins two nodes with a veth pair: eth0 on one subnet.
func (c *cluster) linkNodes(t *testing.T, a, b *node) {
	t.Helper()
	c.sh(t, "ip", "link", "add", "eth0", "netns", a.netns, "type", "veth", "peer", "name", "eth0", "netns", b.netns)
	for _, n := range []*node{a, b} {
		c.sh(t, "ip", "-n", n.netns, "addr", "add", n.ip+"/24", "dev", "eth0")
		c.sh(t, "ip", "-n", n.netns, "link", "set", "eth0", "up")
	}
}

func (n *node) startContainerd(t *testing.T) {
	t.Helper()
	cfg := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.tracing"]
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[6]q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = %[7]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
`, filepath.Join(n.dir, "containerd/root"), filepath.Join(n.dir, "containerd/state"), n.sock,
		n.sock+".ttrpc", filepath.Join(n.dir, "containerd/opt"), pauseImage, filepath.Join(n.dir, "runc"))
	conf := filepath.Join(n.dir, "containerd.toml")
	must(t, os.WriteFile(conf, []byte(cfg), 0o644))
	var err error
	n.containerd, err = startProc("containerd", filepath.Join(n.dir, "containerd.log"), nil, "nsenter",
		n.nsenterArgs("containerd", "--config", conf)...)
	must(t, err)
	waitFor(t, "containerd on "+n.name, 30*time.Second, func() error {
		_, err := n.ctr("version")
		return err
	})
	for _, img := range n.c.images {
		if out, err := n.ctr("images", "import", img); err != nil {
			t.Fatalf("importing %s on %s: %v\n%s", img, n.name, err, out)
		}
	}
}

// ctr runs ctr against this node's containerd (namespace k8s.io).
func (n *node) ctr(args ...string) (string, error) {
	return run("ctr", append([]string{"--address", n.sock, "-n", "k8s.io"}, args...)...)
}

func (n *node) startKubelet(t *testing.T) {
	t.Helper()
	kc := n.c.api.KubeconfigFor(t, "system:node:"+n.name, "system:nodes")
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: 10250
healthzBindAddress: 127.0.0.1
healthzPort: 10248
readOnlyPort: 0
cgroupDriver: cgroupfs
cgroupRoot: %[2]s
failSwapOn: false
containerRuntimeEndpoint: unix://%[3]s
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%%"
  nodefs.inodesFree: "1%%"
  imagefs.available: "1%%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
volumePluginDir: %[4]s
podLogsDir: %[5]s
resolvConf: ""
syncFrequency: 10s
fileCheckFrequency: 10s
nodeStatusUpdateFrequency: 5s
serializeImagePulls: false
`, n.ip, n.cgroup, n.sock, filepath.Join(n.dir, "volume-plugins"), filepath.Join(n.dir, "pod-logs"))
	conf := filepath.Join(n.dir, "kubelet.yaml")
	must(t, os.WriteFile(conf, []byte(cfg), 0o644))
	var err error
	n.kubelet, err = startProc("kubelet", filepath.Join(n.dir, "kubelet.log"), nil, "nsenter",
		n.nsenterArgs(n.c.bins["kubelet"], "--config="+conf, "--kubeconfig="+kc,
			"--root-dir="+filepath.Join(n.dir, "kubelet"), "--cert-dir="+filepath.Join(n.dir, "pki"),
			"--node-ip="+n.ip, "--hostname-override="+n.name, "--v=1")...)
	must(t, err)
}

// stop kills kubelet, every container of the node (through its cgroups),
// the runc shims serving this containerd, containerd and the holder: then
// the node's mount namespace and its pods' network namespaces are gone.
func (n *node) stop() {
	if n.kubelet != nil {
		n.kubelet.stop(5 * time.Second)
	}
	for range 3 {
		killCgroup(filepath.Join("/sys/fs/cgroup/pids", n.cgroup))
		time.Sleep(200 * time.Millisecond)
	}
	killShims(n.sock)
	if n.containerd != nil {
		n.containerd.stop(5 * time.Second)
	}
	if n.holder != nil {
		n.holder.stop(time.Second)
	}
}

// killCgroup SIGKILLs every process under a cgroup directory.
func killCgroup(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		return nil
	})
}

// killShims SIGKILLs the containerd-shim-runc-v2 processes of one containerd
// (their command line names its socket).
func killShims(sock string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, "containerd-shim") && strings.Contains(cmd, sock) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// removeCgroups removes a cgroup tree from every hierarchy, deepest first.
func removeCgroups(t *testing.T, root string) {
	for _, h := range cgroupHierarchies(true) {
		base := filepath.Join(h, root)
		var dirs []string
		_ = filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			for try := 0; try < 20; try++ {
				if err := syscall.Rmdir(dirs[i]); err == nil || os.IsNotExist(err) {
					break
				}
				killCgroup(dirs[i])
				time.Sleep(100 * time.Millisecond)
			}
		}
		if _, err := os.Stat(base); err == nil {
			t.Errorf("cgroup %s left behind", base)
		}
	}
}
