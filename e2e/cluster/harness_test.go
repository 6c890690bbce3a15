// Package cluster runs multi-node Calico clusters made of network
// namespaces: a hub namespace holds a bridge and the datastore (`calicoctl
// datastore serve`), each node is a namespace on the bridge running
// `calicoctl node run`, and pods are namespaces wired by the CNI plugin
// exactly as a container runtime would call it. Only addresses inside these
// namespaces are used; the host's namespace is never touched.
package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, veths and routes")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip)")
	}
}

// Cluster is a hub with the datastore and a set of nodes.
type Cluster struct {
	t       *testing.T
	id      string
	dir     string
	hub     string
	etcdURL string
	Nodes   map[string]*Node
	procs   []*exec.Cmd
	mu      sync.Mutex
	nss     []string
	// subnets holds the hub bridges by third octet (0 -> br0, 10.99.0.0/24).
	subnets map[int]bool
}

// Node is one host namespace running the agent.
type Node struct {
	Name   string
	NS     string
	IP     string // 10.99.0.x
	agent  *exec.Cmd
	logf   string
	pods   map[string]*Pod
	extra  []string
	c      *Cluster
	nodeFn string
}

// Pod is a namespace wired by the CNI plugin.
type Pod struct {
	Name, NS, ContainerID, IP string
	Node                      *Node
}

// run executes a command and fails the test on error.
func (c *Cluster) run(args ...string) string {
	c.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (c *Cluster) addNS(name string) {
	c.t.Helper()
	c.run("ip", "netns", "add", name)
	c.mu.Lock()
	c.nss = append(c.nss, name)
	c.mu.Unlock()
	c.run("ip", "-n", name, "link", "set", "lo", "up")
}

// NewCluster creates the hub with a bridge on 10.99.0.0/24 and starts the
// datastore in it.
func NewCluster(t *testing.T) *Cluster {
	t.Helper()
	requireRoot(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	c := &Cluster{t: t, id: hex.EncodeToString(b), dir: t.TempDir(), Nodes: map[string]*Node{}, subnets: map[int]bool{0: true}}
	t.Cleanup(c.cleanup)
	c.hub = "ct" + c.id + "-hub"
	c.addNS(c.hub)
	c.run("ip", "-n", c.hub, "link", "add", "br0", "type", "bridge")
	c.run("ip", "-n", c.hub, "addr", "add", "10.99.0.1/24", "dev", "br0")
	c.run("ip", "-n", c.hub, "link", "set", "br0", "up")
	c.etcdURL = "http://10.99.0.1:2379"
	c.start("datastore", c.hub, filepath.Join(c.dir, "datastore.log"), nil,
		"datastore", "serve", "--data-dir", filepath.Join(c.dir, "etcd"), "--listen", "10.99.0.1:2379", "--listen-peer", "127.0.0.1:2380")
	c.waitFor("the datastore", 30*time.Second, func() bool {
		_, err := c.calicoctl("get", "clusterinformation")
		return err == nil
	})
	return c
}

// start runs the binary in a namespace in the background.
func (c *Cluster) start(what, ns, logFile string, env []string, args ...string) *exec.Cmd {
	c.t.Helper()
	lf, err := os.Create(logFile)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, binPath}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.dir}, env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", what, err)
	}
	c.mu.Lock()
	c.procs = append(c.procs, cmd)
	c.mu.Unlock()
	return cmd
}

// calicoctl runs the CLI from the hub against the datastore.
func (c *Cluster) calicoctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", c.hub, binPath}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.dir, "ETCD_ENDPOINTS=" + c.etcdURL, "DATASTORE_TYPE=etcdv3"}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("calicoctl %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// MustCalicoctl is calicoctl that fails the test on error.
func (c *Cluster) MustCalicoctl(args ...string) string {
	c.t.Helper()
	out, err := c.calicoctl(args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

func (c *Cluster) waitFor(what string, timeout time.Duration, ok func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			c.dumpLogs()
			c.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *Cluster) dumpLogs() {
	files, _ := filepath.Glob(filepath.Join(c.dir, "*.log"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if len(b) > 6000 {
			b = b[len(b)-6000:]
		}
		c.t.Logf("--- %s ---\n%s", filepath.Base(f), b)
	}
}

// AddNode creates a node namespace on the first subnet at 10.99.0.<hostOctet>
// and starts `calicoctl node run` in it with env (CALICO_IPV4POOL_* etc.).
func (c *Cluster) AddNode(name string, hostOctet int, env ...string) *Node {
	c.t.Helper()
	return c.AddNodeOn(name, 0, hostOctet, env...)
}

// AddNodeOn is AddNode on subnet 10.99.<subnet>.0/24. Every subnet is a
// bridge in the hub, which routes between them (10.99.<subnet>.1), so nodes
// on different subnets reach each other only through that router.
func (c *Cluster) AddNodeOn(name string, subnet, hostOctet int, env ...string) *Node {
	c.t.Helper()
	n := &Node{Name: name, NS: "ct" + c.id + "-" + name, IP: fmt.Sprintf("10.99.%d.%d", subnet, hostOctet), pods: map[string]*Pod{}, c: c, extra: env}
	c.attach(n.NS, name, subnet, n.IP)
	c.Nodes[name] = n
	n.StartAgent()
	return n
}

// attach creates ns and plugs its eth0 into the hub bridge of subnet with
// address ip/24 and a default route via the hub.
func (c *Cluster) attach(ns, short string, subnet int, ip string) {
	c.t.Helper()
	c.addNS(ns)
	br := c.bridge(subnet)
	hubSide := "v" + c.id + short
	if len(hubSide) > 15 {
		hubSide = hubSide[:15]
	}
	c.run("ip", "link", "add", hubSide, "netns", c.hub, "type", "veth", "peer", "name", "eth0", "netns", ns)
	c.run("ip", "-n", c.hub, "link", "set", hubSide, "master", br, "up")
	c.run("ip", "-n", ns, "addr", "add", ip+"/24", "dev", "eth0")
	c.run("ip", "-n", ns, "link", "set", "eth0", "up")
	// Like a real host: a default route (proxy ARP for the pods' gateway
	// 169.254.1.1 answers only when the host has a route to it).
	c.run("ip", "-n", ns, "route", "add", "default", "via", fmt.Sprintf("10.99.%d.1", subnet))
}

// bridge returns the hub bridge for a subnet, creating it (and turning the
// hub into a router) the first time.
func (c *Cluster) bridge(subnet int) string {
	c.t.Helper()
	br := fmt.Sprintf("br%d", subnet)
	if c.subnets[subnet] {
		return br
	}
	c.run("ip", "-n", c.hub, "link", "add", br, "type", "bridge")
	c.run("ip", "-n", c.hub, "addr", "add", fmt.Sprintf("10.99.%d.1/24", subnet), "dev", br)
	c.run("ip", "-n", c.hub, "link", "set", br, "up")
	c.run("ip", "netns", "exec", c.hub, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	c.subnets[subnet] = true
	return br
}

// AddOutside creates a namespace on the first subnet that is no node and
// lies outside every pool (a server "on the internet").
func (c *Cluster) AddOutside(name, ip string) string {
	c.t.Helper()
	ns := "ct" + c.id + "-" + name
	c.attach(ns, name, 0, ip)
	return ns
}

// AgentLog is everything the node's agent logged so far.
func (n *Node) AgentLog() string {
	b, _ := os.ReadFile(n.logf)
	return string(b)
}

// StartAgent (re)starts the node agent and waits until it is in sync.
func (n *Node) StartAgent() {
	c := n.c
	c.t.Helper()
	n.logf = filepath.Join(c.dir, n.Name+"-agent.log")
	n.nodeFn = filepath.Join(c.dir, n.Name+".nodename")
	before := 0
	if b, err := os.ReadFile(n.logf); err == nil {
		before = strings.Count(string(b), "dataplane in sync")
	}
	env := append([]string{"NODENAME=" + n.Name, "ETCD_ENDPOINTS=" + c.etcdURL, "DATASTORE_TYPE=etcdv3",
		"CALICO_NODENAME_FILE=" + n.nodeFn, "IP=autodetect",
		// Keep the pod MTU file out of the host's /var/lib/calico.
		"CALICO_MTU_FILE=" + filepath.Join(c.dir, n.Name+".mtu")}, n.extra...)
	lf := n.logf
	// Append to the log across restarts.
	f, err := os.OpenFile(lf, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", n.NS, binPath, "node", "run", "--sync-interval", "200ms")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.dir}, env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	n.agent = cmd
	c.mu.Lock()
	c.procs = append(c.procs, cmd)
	c.mu.Unlock()
	c.waitFor(n.Name+" agent in sync", 60*time.Second, func() bool {
		b, _ := os.ReadFile(lf)
		return strings.Count(string(b), "dataplane in sync") > before
	})
}

// StopAgent stops the agent (SIGTERM) and waits for it.
func (n *Node) StopAgent() {
	if n.agent != nil && n.agent.Process != nil {
		_ = n.agent.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = n.agent.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = n.agent.Process.Kill()
			<-done
		}
		n.agent = nil
	}
}

// cniConf is the network configuration the runtime hands the plugin.
func (n *Node) cniConf() string {
	return fmt.Sprintf(`{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"calico","datastore_type":"etcdv3",`+
		`"etcd_endpoints":%q,"nodename":%q,"mtu":1400,"ipam":{"type":"calico-ipam"}}`, n.c.etcdURL, n.Name)
}

// cni invokes the plugin in the node's namespace as a runtime would.
func (n *Node) cni(command string, p *Pod) (string, error) {
	c := n.c
	cmd := exec.Command("ip", "netns", "exec", n.NS, filepath.Join(filepath.Dir(binPath), "calico"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "CNI_COMMAND=" + command, "CNI_CONTAINERID=" + p.ContainerID,
		"CNI_NETNS=/var/run/netns/" + p.NS, "CNI_IFNAME=eth0", "CNI_PATH=" + filepath.Dir(binPath)}
	cmd.Stdin = strings.NewReader(n.cniConf())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("CNI %s %s: %v\nstdout: %s\nstderr: %s", command, p.Name, err, out.String(), errb.String())
	}
	_ = c
	return out.String(), nil
}

// AddPod creates a pod namespace and runs CNI ADD for it.
func (n *Node) AddPod(name string) *Pod {
	c := n.c
	c.t.Helper()
	// A 64-hex container ID as a runtime makes: the plugin names the host
	// veth after its first 11 characters, so IDs must differ early.
	sum := sha256.Sum256([]byte(c.id + "/" + n.Name + "/" + name))
	p := &Pod{Name: name, NS: "ct" + c.id + "-" + n.Name + "-" + name, ContainerID: hex.EncodeToString(sum[:]), Node: n}
	c.addNS(p.NS)
	out, err := n.cni("ADD", p)
	if err != nil {
		c.t.Fatal(err)
	}
	var res struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	_ = json.Unmarshal([]byte(out), &res)
	ip := ""
	if len(res.IPs) > 0 {
		ip, _, _ = strings.Cut(res.IPs[0].Address, "/")
	}
	if ip == "" {
		c.t.Fatalf("no address in CNI result: %s", out)
	}
	p.IP = ip
	n.pods[name] = p
	return p
}

// DeletePod runs CNI DEL and removes the namespace.
func (n *Node) DeletePod(p *Pod) {
	c := n.c
	c.t.Helper()
	if _, err := n.cni("DEL", p); err != nil {
		c.t.Fatal(err)
	}
	delete(n.pods, p.Name)
}

// Ping reports whether from can ping ip within the timeout (retrying, as
// routes converge asynchronously).
func (c *Cluster) Ping(fromNS, ip string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last []byte
	for {
		out, err := exec.Command("ip", "netns", "exec", fromNS, "ping", "-c", "1", "-W", "1", ip).CombinedOutput()
		if err == nil {
			return nil
		}
		last = out
		if time.Now().After(deadline) {
			return fmt.Errorf("ping %s from %s: %v\n%s", ip, fromNS, err, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Routes is `ip route` in a namespace.
func (c *Cluster) Routes(ns string) string {
	out, _ := exec.Command("ip", "-n", ns, "route").CombinedOutput()
	return string(out)
}

func (c *Cluster) cleanup() {
	c.mu.Lock()
	procs := append([]*exec.Cmd(nil), c.procs...)
	nss := append([]string(nil), c.nss...)
	c.mu.Unlock()
	if c.t.Failed() {
		c.dumpLogs()
		for _, n := range c.Nodes {
			c.t.Logf("--- ip route in %s ---\n%s", n.Name, c.Routes(n.NS))
			diag, _ := exec.Command("ip", "netns", "exec", n.NS, "sh", "-c",
				"sysctl net.ipv4.ip_forward net.ipv4.conf.all.rp_filter; for f in /proc/sys/net/ipv4/conf/cali*/proxy_arp /proc/sys/net/ipv4/conf/cali*/forwarding /proc/sys/net/ipv4/conf/cali*/rp_filter; do echo $f $(cat $f); done; ip neigh").CombinedOutput()
			c.t.Logf("--- diagnostics of %s ---\n%s", n.Name, diag)
			for _, p := range n.pods {
				pd, _ := exec.Command("ip", "netns", "exec", p.NS, "sh", "-c", "ip addr; ip route; ip neigh").CombinedOutput()
				c.t.Logf("--- pod %s ---\n%s", p.Name, pd)
			}
		}
	}
	for _, p := range procs {
		if p.Process != nil && p.ProcessState == nil {
			_ = p.Process.Signal(os.Interrupt)
		}
	}
	for _, p := range procs {
		if p.Process == nil || p.ProcessState != nil {
			continue
		}
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	for i := len(nss) - 1; i >= 0; i-- {
		_ = exec.Command("ip", "netns", "del", nss[i]).Run()
	}
}
