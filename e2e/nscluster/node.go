package nscluster

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// AgentLog is everything the node's agent logged so far (across restarts).
func (n *Node) AgentLog() string {
	b, _ := os.ReadFile(n.logf)
	return string(b)
}

// StartAgent (re)starts the node agent and waits until it reports the
// dataplane in sync once more than before.
func (n *Node) StartAgent() {
	c := n.c
	c.t.Helper()
	n.logf = filepath.Join(c.dir, n.Name+"-agent.log")
	before := strings.Count(n.AgentLog(), "dataplane in sync")
	env := append(append([]string{"NODENAME=" + n.Name}, c.etcdEnv()...),
		"CALICO_NODENAME_FILE="+filepath.Join(c.dir, n.Name+".nodename"), "IP=autodetect",
		// Keep the pod MTU file out of the host's /var/lib/calico.
		"CALICO_MTU_FILE="+filepath.Join(c.dir, n.Name+".mtu"),
		// Every namespace shares the filesystem: the BGP speaker's restart
		// marker and status socket are per node.
		"CALICO_BGP_STATE_DIR="+n.StateDir())
	env = append(env, n.env...)
	n.agent = c.start(n.NS, n.logf, env, "node", "run", "--sync-interval", c.cfg.SyncInterval)
	c.WaitFor(n.Name+" agent in sync", c.cfg.Agent, func() bool {
		return strings.Count(n.AgentLog(), "dataplane in sync") > before
	})
}

// StateDir is the node's /var/run/calico (the BGP status socket,
// bgp.sock, and the speaker's restart marker).
func (n *Node) StateDir() string {
	d := filepath.Join(n.c.dir, n.Name+"-run")
	_ = os.MkdirAll(d, 0o755)
	return d
}

// NodeStatus runs `calicoctl node status` (with args) against the node's
// status socket, as an operator on that host would.
func (n *Node) NodeStatus(args ...string) (string, error) {
	c := n.c
	cmd := exec.Command(c.cfg.Bin, append([]string{"node", "status"}, args...)...)
	cmd.Env = c.env(append(c.etcdEnv(),
		"CALICO_BGP_STATUS_SOCKET="+filepath.Join(n.StateDir(), "bgp.sock"))...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// StopAgent stops the agent (SIGTERM) and waits for it.
func (n *Node) StopAgent() {
	if n.agent == nil || n.agent.Process == nil {
		return
	}
	_ = n.agent.Process.Signal(syscall.SIGTERM)
	n.c.wait(n.agent)
	n.agent = nil
}

// cni invokes the plugin in the node's namespace as a runtime would.
func (n *Node) cni(command string, p *Pod) (string, error) {
	c := n.c
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"calico","datastore_type":"etcdv3",`+
		`"etcd_endpoints":%q,"etcd_ca_cert_file":%q,"etcd_cert_file":%q,"etcd_key_file":%q,`+
		`"nodename":%q,"mtu":1400,"ipam":{"type":"calico-ipam"}}`, c.etcdURL, c.pki("ca.crt"), c.pki("client.crt"), c.pki("client.key"), n.Name)
	cmd := exec.Command("ip", "netns", "exec", n.NS, filepath.Join(c.cfg.CNIDir, "calico"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "CNI_COMMAND=" + command, "CNI_CONTAINERID=" + p.ContainerID,
		"CNI_NETNS=/var/run/netns/" + p.NS, "CNI_IFNAME=eth0", "CNI_PATH=" + c.cfg.CNIDir}
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
	// A 64-hex container ID as a runtime makes: the plugin names the host
	// veth after its first 11 characters, so IDs must differ early.
	sum := sha256.Sum256([]byte(c.id + "/" + n.Name + "/" + name))
	p := &Pod{Name: name, NS: c.nsName(n.Name + "-" + name), ContainerID: hex.EncodeToString(sum[:]), Node: n}
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
	if p.IP == "" {
		c.t.Fatalf("no address in CNI result: %s", out)
	}
	n.pods = append(n.pods, p)
	return p
}

// DeletePod runs CNI DEL for a pod (its namespace goes at cleanup).
func (n *Node) DeletePod(p *Pod) {
	c := n.c
	c.t.Helper()
	if _, err := n.cni("DEL", p); err != nil {
		c.t.Fatal(err)
	}
	n.pods = slices.DeleteFunc(n.pods, func(q *Pod) bool { return q == p })
}
