package guest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Paths inside the VM's initramfs (overridable to run on a host whose kernel
// has ipip).
var (
	binPath = envOr("CALICOCTL_BIN", "/bin/calicoctl")
	cniDir  = envOr("CNI_BIN_DIR", "/opt/cni/bin")
)

// failedFile collects the names of failed scenarios for /init's result line.
const failedFile = "/tmp/vm-failed"

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// requireGuest skips outside the VM and reports the scenario's verdict on
// the console (VM-SCENARIO: <name> PASS|FAIL) when it ends.
func requireGuest(t *testing.T) {
	t.Helper()
	if os.Getenv("CALICO_VM_GUEST") != "1" {
		t.Skip("runs inside the IPIP VM only (make e2e-vm); CALICO_VM_GUEST is not 1")
	}
	start := time.Now()
	t.Cleanup(func() {
		verdict := "PASS"
		if t.Failed() {
			verdict = "FAIL"
			if f, err := os.OpenFile(failedFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
				fmt.Fprintln(f, t.Name())
				f.Close()
			}
		}
		fmt.Printf("VM-SCENARIO: %s %s %.1fs\n", t.Name(), verdict, time.Since(start).Seconds())
	})
}

// Cluster is a hub namespace (datastore, bridges br0 10.99.0.0/24 and br1
// 10.99.1.0/24, routing between them) and node namespaces.
type Cluster struct {
	t       *testing.T
	dir     string
	hub     string
	etcdURL string
	Nodes   []*Node
	mu      sync.Mutex
	procs   []*exec.Cmd
	nss     []string
	seq     int
}

// Node is a namespace running `calicoctl node run`.
type Node struct {
	Name, NS, IP string
	c            *Cluster
	env          []string
	logf         string
	pods         []*Pod
}

// Pod is a namespace wired by the CNI plugin.
type Pod struct {
	Name, NS, ContainerID, IP string
	Node                      *Node
}

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

// NewCluster creates the hub and starts the datastore in it.
func NewCluster(t *testing.T) *Cluster {
	t.Helper()
	requireGuest(t)
	c := &Cluster{t: t, dir: t.TempDir(), hub: "hub"}
	t.Cleanup(c.cleanup)
	c.addNS(c.hub)
	for i, br := range []string{"br0", "br1"} {
		c.run("ip", "-n", c.hub, "link", "add", br, "type", "bridge")
		c.run("ip", "-n", c.hub, "addr", "add", fmt.Sprintf("10.99.%d.1/24", i), "dev", br)
		c.run("ip", "-n", c.hub, "link", "set", br, "up")
	}
	// The hub routes between the two subnets (CrossSubnet).
	c.run("ip", "netns", "exec", c.hub, "sysctl", "-w", "net.ipv4.ip_forward=1")
	c.etcdURL = "http://10.99.0.1:2379"
	c.start(c.hub, filepath.Join(c.dir, "datastore.log"), nil,
		"datastore", "serve", "--data-dir", filepath.Join(c.dir, "etcd"), "--listen", "10.99.0.1:2379", "--listen-peer", "127.0.0.1:2380")
	c.waitFor("the datastore", 90*time.Second, func() bool {
		_, err := c.calicoctl("get", "clusterinformation")
		return err == nil
	})
	return c
}

func (c *Cluster) start(ns, logFile string, env []string, args ...string) *exec.Cmd {
	c.t.Helper()
	lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, binPath}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.dir}, env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", strings.Join(args, " "), err)
	}
	lf.Close()
	c.mu.Lock()
	c.procs = append(c.procs, cmd)
	c.mu.Unlock()
	return cmd
}

// calicoctl runs the CLI in the hub against the datastore.
func (c *Cluster) calicoctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", c.hub, binPath}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.dir, "ETCD_ENDPOINTS=" + c.etcdURL, "DATASTORE_TYPE=etcdv3"}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("calicoctl %s: %w: %s", strings.Join(args, " "), err, errb.String())
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
			c.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// AddNode creates a node namespace on subnet 10.99.<subnet>.0/24 (bridge
// br<subnet>) at host octet `octet` and starts the agent in it with env.
func (c *Cluster) AddNode(name string, subnet, octet int, env ...string) *Node {
	c.t.Helper()
	n := &Node{Name: name, NS: "node-" + name, IP: fmt.Sprintf("10.99.%d.%d", subnet, octet), c: c, env: env}
	c.addNS(n.NS)
	hubSide := "veth-" + name
	c.run("ip", "link", "add", hubSide, "netns", c.hub, "type", "veth", "peer", "name", "eth0", "netns", n.NS)
	c.run("ip", "-n", c.hub, "link", "set", hubSide, "master", fmt.Sprintf("br%d", subnet), "up")
	c.run("ip", "-n", n.NS, "addr", "add", n.IP+"/24", "dev", "eth0")
	c.run("ip", "-n", n.NS, "link", "set", "eth0", "up")
	c.run("ip", "-n", n.NS, "route", "add", "default", "via", fmt.Sprintf("10.99.%d.1", subnet))
	c.Nodes = append(c.Nodes, n)
	n.startAgent()
	return n
}

func (n *Node) startAgent() {
	c := n.c
	c.t.Helper()
	n.logf = filepath.Join(c.dir, n.Name+"-agent.log")
	env := append([]string{"NODENAME=" + n.Name, "ETCD_ENDPOINTS=" + c.etcdURL, "DATASTORE_TYPE=etcdv3",
		"CALICO_NODENAME_FILE=" + filepath.Join(c.dir, n.Name+".nodename"), "IP=autodetect"}, n.env...)
	c.start(n.NS, n.logf, env, "node", "run", "--sync-interval", "500ms")
	c.waitFor(n.Name+" agent in sync", 120*time.Second, func() bool {
		b, _ := os.ReadFile(n.logf)
		return bytes.Contains(b, []byte("dataplane in sync"))
	})
}

// Log is the agent's log so far.
func (n *Node) Log() string {
	b, _ := os.ReadFile(n.logf)
	return string(b)
}

func (n *Node) cni(command string, p *Pod) (string, error) {
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"calico","datastore_type":"etcdv3",`+
		`"etcd_endpoints":%q,"nodename":%q,"mtu":1400,"ipam":{"type":"calico-ipam"}}`, n.c.etcdURL, n.Name)
	cmd := exec.Command("ip", "netns", "exec", n.NS, filepath.Join(cniDir, "calico"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "CNI_COMMAND=" + command, "CNI_CONTAINERID=" + p.ContainerID,
		"CNI_NETNS=/var/run/netns/" + p.NS, "CNI_IFNAME=eth0", "CNI_PATH=" + cniDir}
	cmd.Stdin = strings.NewReader(conf)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("CNI %s %s: %w\nstdout: %s\nstderr: %s", command, p.Name, err, out.String(), errb.String())
	}
	return out.String(), nil
}

// AddPod creates a pod namespace and runs CNI ADD for it.
func (n *Node) AddPod(name string) *Pod {
	c := n.c
	c.t.Helper()
	c.seq++
	p := &Pod{Name: name, NS: "pod-" + n.Name + "-" + name, ContainerID: fmt.Sprintf("c%d%s%s", c.seq, n.Name, name), Node: n}
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
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.IPs) == 0 {
		c.t.Fatalf("no address in CNI result (%v): %s", err, out)
	}
	p.IP, _, _ = strings.Cut(res.IPs[0].Address, "/")
	n.pods = append(n.pods, p)
	return p
}

// Ping retries `ping -c 1` from a namespace until it succeeds or times out.
func (c *Cluster) Ping(fromNS, ip string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		out, err := exec.Command("ip", "netns", "exec", fromNS, "ping", "-c", "1", "-W", "1", ip).CombinedOutput()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ping %s from %s: %w\n%s", ip, fromNS, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// PingAll checks every ordered pair of pods, in parallel.
func (c *Cluster) PingAll(pods []*Pod, timeout time.Duration) {
	c.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(pods)*len(pods))
	for _, from := range pods {
		for _, to := range pods {
			if from == to {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.Ping(from.NS, to.IP, timeout); err != nil {
					errs <- fmt.Errorf("%s/%s -> %s/%s: %w", from.Node.Name, from.Name, to.Node.Name, to.Name, err)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		c.t.Error(err)
	}
}

// Routes is `ip route` in a namespace.
func (c *Cluster) Routes(ns string) string {
	out, _ := exec.Command("ip", "-n", ns, "route").CombinedOutput()
	return string(out)
}

// RoutesVia are the lines of `ip route` in ns with "via <gw>".
func (c *Cluster) RoutesVia(ns, gw string) []string {
	var lines []string
	for _, l := range strings.Split(c.Routes(ns), "\n") {
		if strings.Contains(l, "via "+gw+" ") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	return lines
}

func (c *Cluster) cleanup() {
	if c.t.Failed() {
		c.dump()
	}
	c.mu.Lock()
	procs := append([]*exec.Cmd(nil), c.procs...)
	nss := append([]string(nil), c.nss...)
	c.mu.Unlock()
	for _, p := range procs {
		_ = p.Process.Signal(os.Interrupt)
	}
	for _, p := range procs {
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	for i := len(nss) - 1; i >= 0; i-- {
		_ = exec.Command("ip", "netns", "del", nss[i]).Run()
	}
}

func (c *Cluster) dump() {
	files, _ := filepath.Glob(filepath.Join(c.dir, "*.log"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		c.t.Logf("--- %s ---\n%s", filepath.Base(f), b)
	}
	for _, n := range c.Nodes {
		out, _ := exec.Command("ip", "-n", n.NS, "-d", "link").CombinedOutput()
		c.t.Logf("--- %s: ip route ---\n%s--- ip -d link ---\n%s", n.Name, c.Routes(n.NS), out)
		for _, p := range n.pods {
			pd, _ := exec.Command("ip", "-n", p.NS, "addr").CombinedOutput()
			c.t.Logf("--- pod %s/%s (%s) ---\n%s%s", n.Name, p.Name, p.IP, pd, c.Routes(p.NS))
		}
	}
}
