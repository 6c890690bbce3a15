// Package nscluster runs multi-node Calico clusters made of network
// namespaces, for end-to-end tests: a hub namespace holds one bridge per
// subnet (10.99.<subnet>.0/24, the hub at .1 routing between them) and the
// datastore (`calicoctl datastore serve`), each node is a namespace on a
// bridge running `calicoctl node run`, and pods are namespaces wired by the
// CNI plugin exactly as a container runtime would call it. Only addresses
// inside these namespaces are used; the host's namespace is never touched.
//
// Only test code imports it (e2e/cluster on the build host, e2e/vm/guest
// inside the IPIP VM).
package nscluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Config is what differs between the places a cluster runs.
type Config struct {
	// Bin is the calicoctl binary (required).
	Bin string
	// CNIDir holds the calico and calico-ipam plugins; "" is Bin's directory.
	CNIDir string
	// SyncInterval is the agents' --sync-interval; "" is 200ms.
	SyncInterval string
	// Datastore, Agent and Command bound the wait for the datastore, for an
	// agent to report the dataplane in sync and for one calicoctl command;
	// zero values are 30s, 60s and 30s.
	Datastore, Agent, Command time.Duration
	// Stop is how long a process may take to exit after SIGINT/SIGTERM
	// before it is killed; zero is 10s.
	Stop time.Duration
	// Poll is the interval of WaitFor; zero is 100ms.
	Poll time.Duration
}

func (cfg *Config) defaults() {
	if cfg.CNIDir == "" {
		cfg.CNIDir = filepath.Dir(cfg.Bin)
	}
	if cfg.SyncInterval == "" {
		cfg.SyncInterval = "200ms"
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&cfg.Datastore, 30 * time.Second}, {&cfg.Agent, 60 * time.Second}, {&cfg.Command, 30 * time.Second},
		{&cfg.Stop, 10 * time.Second}, {&cfg.Poll, 100 * time.Millisecond}} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
}

// Cluster is a hub with the datastore and a set of nodes.
type Cluster struct {
	t       testing.TB
	cfg     Config
	id      string
	dir     string
	hub     string
	etcdURL string
	Nodes   []*Node
	mu      sync.Mutex
	procs   []*exec.Cmd
	nss     []string
	// subnets holds the hub bridges by third octet (0 -> br0, 10.99.0.0/24).
	subnets map[int]bool
}

// Node is one host namespace running the agent.
type Node struct {
	Name  string
	NS    string
	IP    string // 10.99.<subnet>.<octet>
	c     *Cluster
	env   []string
	agent *exec.Cmd
	logf  string
	pods  []*Pod
}

// Pod is a namespace wired by the CNI plugin.
type Pod struct {
	Name, NS, ContainerID, IP string
	Node                      *Node
}

// RequireRoot skips the test unless it runs as root with iproute2.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, veths and routes")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip)")
	}
}

// New creates the hub with a bridge on 10.99.0.0/24, starts the datastore in
// it and waits until it answers. Everything is torn down when the test ends.
func New(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	RequireRoot(t)
	cfg.defaults()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	c := &Cluster{t: t, cfg: cfg, id: hex.EncodeToString(b), dir: t.TempDir(), subnets: map[int]bool{0: true}}
	t.Cleanup(c.cleanup)
	c.hub = c.nsName("hub")
	c.addNS(c.hub)
	// A bridge without an explicit address takes the lowest MAC of its
	// ports, so plugging in a later namespace could change the hub's MAC
	// under the nodes' ARP caches and cut them off the datastore for a
	// while: pin it.
	c.Run("ip", "-n", c.hub, "link", "add", "br0", "address", "02:99:00:00:00:01", "type", "bridge")
	c.Run("ip", "-n", c.hub, "addr", "add", "10.99.0.1/24", "dev", "br0")
	c.Run("ip", "-n", c.hub, "link", "set", "br0", "up")
	// Off loopback the embedded datastore serves TLS and requires client
	// certificates: every agent, CNI call and CLI of the cluster uses the
	// client certificate it created (issue 13).
	c.etcdURL = "https://10.99.0.1:2379"
	c.start(c.hub, filepath.Join(c.dir, "datastore.log"), nil,
		"datastore", "serve", "--data-dir", filepath.Join(c.dir, "etcd"), "--listen", "10.99.0.1:2379", "--listen-peer", "127.0.0.1:2380")
	c.WaitFor("the datastore", cfg.Datastore, func() bool {
		_, err := c.Calicoctl("get", "clusterinformation")
		return err == nil
	})
	return c
}

// ID is the random tag in every namespace and hub-side link name.
func (c *Cluster) ID() string { return c.id }

// Dir is the cluster's scratch directory (logs, datastore, files).
func (c *Cluster) Dir() string { return c.dir }

// nsName is the namespace name for a cluster member.
func (c *Cluster) nsName(member string) string { return "ct" + c.id + "-" + member }

// Run executes a command and fails the test on error.
func (c *Cluster) Run(args ...string) string {
	c.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Track has cleanup stop cmd (SIGINT, then kill) if it still runs.
func (c *Cluster) Track(cmd *exec.Cmd) {
	c.mu.Lock()
	c.procs = append(c.procs, cmd)
	c.mu.Unlock()
}

func (c *Cluster) addNS(name string) {
	c.t.Helper()
	c.Run("ip", "netns", "add", name)
	c.mu.Lock()
	c.nss = append(c.nss, name)
	c.mu.Unlock()
	c.Run("ip", "-n", name, "link", "set", "lo", "up")
}

// env is the base environment of every process the cluster runs.
func (c *Cluster) env(extra ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.dir}, extra...)
}

// pki is where the datastore keeps its certificates.
func (c *Cluster) pki(file string) string { return filepath.Join(c.dir, "etcd", "pki", file) }

// etcdEnv is the datastore settings of an agent or CLI of the cluster.
func (c *Cluster) etcdEnv() []string {
	return []string{"ETCD_ENDPOINTS=" + c.etcdURL, "DATASTORE_TYPE=etcdv3",
		"ETCD_CA_CERT_FILE=" + c.pki("ca.crt"), "ETCD_CERT_FILE=" + c.pki("client.crt"), "ETCD_KEY_FILE=" + c.pki("client.key")}
}

// start runs calicoctl in a namespace in the background, appending its
// output to logFile.
func (c *Cluster) start(ns, logFile string, env []string, args ...string) *exec.Cmd {
	c.t.Helper()
	lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer lf.Close()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, c.cfg.Bin}, args...)...)
	cmd.Env = c.env(env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", strings.Join(args, " "), err)
	}
	c.Track(cmd)
	return cmd
}

// Calicoctl runs the CLI in the hub against the datastore.
func (c *Cluster) Calicoctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Command)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", c.hub, c.cfg.Bin}, args...)...)
	cmd.Env = c.env(c.etcdEnv()...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("calicoctl %s: %w: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// MustCalicoctl is Calicoctl that fails the test on error.
func (c *Cluster) MustCalicoctl(args ...string) string {
	c.t.Helper()
	out, err := c.Calicoctl(args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// WaitFor polls ok until it holds, failing the test (with the logs) after
// timeout.
func (c *Cluster) WaitFor(what string, timeout time.Duration, ok func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			c.dumpLogs()
			c.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(c.cfg.Poll)
	}
}

// AddNode creates a node namespace on subnet 10.99.<subnet>.0/24 at host
// octet `octet` and starts `calicoctl node run` in it with env
// (CALICO_IPV4POOL_* etc.). Nodes on different subnets reach each other
// only through the hub's routing.
func (c *Cluster) AddNode(name string, subnet, octet int, env ...string) *Node {
	c.t.Helper()
	n := &Node{Name: name, NS: c.nsName(name), IP: fmt.Sprintf("10.99.%d.%d", subnet, octet), c: c, env: env}
	c.attach(n.NS, name, subnet, n.IP)
	c.Nodes = append(c.Nodes, n)
	n.StartAgent()
	return n
}

// AddOutside creates a namespace on the first subnet that is no node and
// lies outside every pool (a server "on the internet"), and returns it.
func (c *Cluster) AddOutside(name, ip string) string {
	c.t.Helper()
	ns := c.nsName(name)
	c.attach(ns, name, 0, ip)
	return ns
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
	c.Run("ip", "link", "add", hubSide, "netns", c.hub, "type", "veth", "peer", "name", "eth0", "netns", ns)
	c.Run("ip", "-n", c.hub, "link", "set", hubSide, "master", br, "up")
	c.Run("ip", "-n", ns, "addr", "add", ip+"/24", "dev", "eth0")
	c.Run("ip", "-n", ns, "link", "set", "eth0", "up")
	// Like a real host: a default route (proxy ARP for the pods' gateway
	// 169.254.1.1 answers only when the host has a route to it).
	c.Run("ip", "-n", ns, "route", "add", "default", "via", fmt.Sprintf("10.99.%d.1", subnet))
}

// bridge returns the hub bridge for a subnet, creating it (and turning the
// hub into a router) the first time.
func (c *Cluster) bridge(subnet int) string {
	c.t.Helper()
	br := fmt.Sprintf("br%d", subnet)
	if c.subnets[subnet] {
		return br
	}
	c.Run("ip", "-n", c.hub, "link", "add", br, "address", fmt.Sprintf("02:99:00:00:%02x:01", subnet), "type", "bridge")
	c.Run("ip", "-n", c.hub, "addr", "add", fmt.Sprintf("10.99.%d.1/24", subnet), "dev", br)
	c.Run("ip", "-n", c.hub, "link", "set", br, "up")
	c.Run("ip", "netns", "exec", c.hub, "sysctl", "-w", "net.ipv4.ip_forward=1")
	c.subnets[subnet] = true
	return br
}
