package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/e2e/clitest"
	"github.com/opencalico/calicoctl/internal/netnstest"
)

// haMember is one member of a three-member datastore run by a test.
type haMember struct {
	name, dataDir, clientURL string
	args                     []string
	proc                     *dsProc
}

// haCluster sets up a shared CA, issues the members' certificates with
// `datastore certs init/issue-member` and an operator certificate with
// `certs issue`, for members whose client and peer addresses are given.
type haCluster struct {
	home string
	// run runs calicoctl where the members are reachable.
	run     func(t *testing.T, e env, stdin string, args ...string) result
	members []*haMember
	env     env
}

func newHACluster(t *testing.T, home string, clientAddrs, peerAddrs []string, sans []string) *haCluster {
	t.Helper()
	caDir := filepath.Join(home, "ca")
	mustExec(t, home, nil, "", "datastore", "certs", "init", "--ca-dir", caDir)
	var ic, eps []string
	for i := range clientAddrs {
		ic = append(ic, fmt.Sprintf("m%d=https://%s", i+1, peerAddrs[i]))
		eps = append(eps, "https://"+clientAddrs[i])
	}
	c := &haCluster{home: home, run: func(t *testing.T, e env, stdin string, args ...string) result {
		return clitest.Exec(t, binPath, home, e, stdin, args...)
	}}
	for i := range clientAddrs {
		m := &haMember{name: fmt.Sprintf("m%d", i+1), dataDir: filepath.Join(home, fmt.Sprintf("m%d", i+1)), clientURL: eps[i]}
		mustExec(t, home, nil, "", "datastore", "certs", "issue-member", m.name, "--ca-dir", caDir, "--out", m.dataDir, "--san", sans[i])
		m.args = []string{"--data-dir", m.dataDir, "--name", m.name, "--listen", clientAddrs[i],
			"--initial-cluster", strings.Join(ic, ","), "--initial-cluster-token", "e2e-ha"}
		c.members = append(c.members, m)
	}
	opDir := filepath.Join(home, "op")
	mustExec(t, home, nil, "", "datastore", "certs", "issue", "operator", "--ca-dir", caDir, "--out", opDir)
	c.env = tlsEnv(strings.Join(eps, ","), filepath.Join(opDir, "ca.crt"), filepath.Join(opDir, "operator.crt"), filepath.Join(opDir, "operator.key"))
	return c
}

// leader returns the index of the member that leads, from `calicoctl
// datastore status`.
func (c *haCluster) leader(t *testing.T) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		r := c.run(t, c.env, "", "datastore", "status")
		last = r.Stdout + r.Stderr
		for line := range strings.Lines(r.Stdout) {
			f := strings.Fields(line)
			if len(f) >= 3 && f[2] == "true" {
				for i, m := range c.members {
					if m.clientURL == f[0] {
						return i
					}
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no member reports being the leader:\n%s", last)
	return -1
}

// mustRun runs calicoctl where the members are reachable and fails the
// test unless it succeeds.
func (c *haCluster) mustRun(t *testing.T, e env, args ...string) string {
	t.Helper()
	r := c.run(t, e, "", args...)
	if r.Code != 0 {
		t.Fatalf("calicoctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// startAll starts every member at once (a new cluster needs a quorum to
// become ready) and waits for each.
func (c *haCluster) startAll(t *testing.T, wrap func(i int, args []string) []string) {
	t.Helper()
	for i, m := range c.members {
		m.proc = startServeWith(t, c.home, wrap(i, m.args))
	}
	for _, m := range c.members {
		m.proc.wait(t)
	}
}

// applyEventually applies a pool, retrying for up to 15 s (an election
// takes a moment after the leader dies), and reports how many tries failed.
func (c *haCluster) applyEventually(t *testing.T, name, cidr string) {
	t.Helper()
	start := time.Now()
	for try := 1; ; try++ {
		r := c.run(t, c.env, poolYAML(name, cidr), "apply", "-f", "-")
		if r.Code == 0 {
			if try > 1 {
				t.Logf("apply %s succeeded on try %d after %s", name, try, time.Since(start).Round(time.Millisecond))
			}
			return
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("apply %s: exit %d: %s", name, r.Code, r.Stderr)
		}
		t.Logf("apply %s try %d: %s", name, try, strings.TrimSpace(r.Stderr))
		time.Sleep(500 * time.Millisecond)
	}
}

// exercise kills a follower, then the leader, writing and reading after
// each loss and after each member comes back.
func (c *haCluster) exercise(t *testing.T, wrap func(i int, args []string) []string) {
	t.Helper()
	c.applyEventually(t, "ha-0", "10.31.0.0/16")
	l := c.leader(t)
	follower := (l + 1) % len(c.members)
	t.Logf("leader %s; killing follower %s", c.members[l].name, c.members[follower].name)
	c.members[follower].proc.kill()
	c.applyEventually(t, "ha-1", "10.32.0.0/16")
	clitest.WantContains(t, "get after follower loss", c.mustRun(t, c.env, "get", "ippool"), "ha-0", "ha-1")
	c.members[follower].proc = startServeWith(t, c.home, wrap(follower, c.members[follower].args))
	c.members[follower].proc.wait(t)

	l = c.leader(t)
	t.Logf("killing leader %s", c.members[l].name)
	c.members[l].proc.kill()
	c.applyEventually(t, "ha-2", "10.33.0.0/16")
	clitest.WantContains(t, "get after leader loss", c.mustRun(t, c.env, "get", "ippool"), "ha-0", "ha-1", "ha-2")
	c.members[l].proc = startServeWith(t, c.home, wrap(l, c.members[l].args))
	c.members[l].proc.wait(t)
	// The member that came back serves everything written while it was down.
	only := clitest.Env{}
	for k, v := range c.env {
		only[k] = v
	}
	only["ETCD_ENDPOINTS"] = c.members[l].clientURL
	clitest.WantContains(t, "get from the returned leader", c.mustRun(t, only, "get", "ippool"), "ha-0", "ha-1", "ha-2")
	// A snapshot of the cluster can be taken from the member list.
	c.mustRun(t, c.env, "datastore", "snapshot", "save", filepath.Join(c.home, "ha.db"))
}

// TestDatastoreHALoopback: three TLS members on distinct 127.0.0.1 ports
// share one CA; the CLI, given all endpoints, keeps working while a
// follower and then the leader are killed, and each comes back.
func TestDatastoreHALoopback(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	ports := freePorts(t, 6)
	var clients, peers, sans []string
	for i := range 3 {
		clients = append(clients, fmt.Sprintf("127.0.0.1:%d", ports[i]))
		peers = append(peers, fmt.Sprintf("127.0.0.1:%d", ports[3+i]))
		sans = append(sans, "127.0.0.1")
	}
	c := newHACluster(t, home, clients, peers, sans)
	wrap := func(i int, args []string) []string {
		return append([]string{binPath, "datastore", "serve", "--tls"}, args...)
	}
	c.startAll(t, wrap)
	c.exercise(t, wrap)
}

// TestPrivilegedDatastoreHA: three members, each in its own network
// namespace on a bridge (10.77.0.1-3), serve TLS because they listen off
// loopback (no --tls given); the CLI runs in a fourth namespace with all
// three endpoints and keeps working while a follower and then the leader
// are killed and come back. Needs root; the namespaces go when it ends.
func TestPrivilegedDatastoreHA(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create network namespaces")
	}
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("skipping: needs iproute2's ip")
	}
	home := t.TempDir()
	sw := netnstest.NewNamed(t, "dssw")
	ipCmd := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ipPath, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ipCmd("-n", sw.Name, "link", "add", "br0", "type", "bridge")
	ipCmd("-n", sw.Name, "link", "set", "br0", "up")
	attach := func(ns netnstest.Named, port, addr string) {
		ipCmd("-n", sw.Name, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns.Name)
		ipCmd("-n", sw.Name, "link", "set", port, "master", "br0", "up")
		ipCmd("-n", ns.Name, "addr", "add", addr+"/24", "dev", "eth0")
		ipCmd("-n", ns.Name, "link", "set", "eth0", "up")
	}
	var nss []netnstest.Named
	var clients, peers, ips []string
	for i := range 3 {
		ns := netnstest.NewNamed(t, fmt.Sprintf("dsm%d", i+1))
		ip := fmt.Sprintf("10.77.0.%d", i+1)
		attach(ns, fmt.Sprintf("p%d", i+1), ip)
		nss = append(nss, ns)
		ips = append(ips, ip)
		clients = append(clients, ip+":2379")
		peers = append(peers, ip+":2380")
	}
	cli := netnstest.NewNamed(t, "dscli")
	attach(cli, "p9", "10.77.0.9")

	c := newHACluster(t, home, clients, peers, ips)
	c.run = func(t *testing.T, e env, stdin string, args ...string) result {
		return clitest.Exec(t, ipPath, home, e, stdin, append([]string{"netns", "exec", cli.Name, binPath}, args...)...)
	}
	wrap := func(i int, args []string) []string {
		return append([]string{ipPath, "netns", "exec", nss[i].Name, binPath, "datastore", "serve"}, args...)
	}
	c.startAll(t, wrap)
	// Off loopback, serve chose TLS by itself and printed the https URL.
	for _, m := range c.members {
		if m.proc.url != m.clientURL {
			t.Errorf("%s serves %s, want %s", m.name, m.proc.url, m.clientURL)
		}
	}
	// The members refuse a client without a certificate.
	r := c.run(t, env{"DATASTORE_TYPE": "etcdv3", "ETCD_ENDPOINTS": c.env["ETCD_ENDPOINTS"], "ETCD_CA_CERT_FILE": c.env["ETCD_CA_CERT_FILE"]}, "", "get", "ippool")
	if r.Code == 0 {
		t.Error("a client without a certificate was served")
	}
	c.exercise(t, wrap)
}

// TestDatastoreRestoreHA: a snapshot restored as member m1 of a planned
// three-member cluster is served, m2 and m3 are added with `datastore
// member add` and started with --initial-cluster-state existing, and the
// restored objects survive the loss of m1.
func TestDatastoreRestoreHA(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	src := startServe(t, home, "--data-dir", filepath.Join(home, "src"), "--listen", "127.0.0.1:0", "--listen-peer", "127.0.0.1:0")
	srcEnv := env{"DATASTORE_TYPE": "etcdv3", "ETCD_ENDPOINTS": src.wait(t)}
	mustExec(t, home, srcEnv, poolYAML("restored-pool", "10.41.0.0/16"), "create", "-f", "-")
	snap := filepath.Join(home, "snap.db")
	mustExec(t, home, srcEnv, "", "datastore", "snapshot", "save", snap)
	src.stop(t)

	ports := freePorts(t, 6)
	var clients, peers, sans []string
	for i := range 3 {
		clients = append(clients, fmt.Sprintf("127.0.0.1:%d", ports[i]))
		peers = append(peers, fmt.Sprintf("127.0.0.1:%d", ports[3+i]))
		sans = append(sans, "127.0.0.1")
	}
	c := newHACluster(t, home, clients, peers, sans)
	var ic []string
	for i, m := range c.members {
		ic = append(ic, fmt.Sprintf("%s=https://%s", m.name, peers[i]))
	}
	mustExec(t, home, nil, "", "datastore", "snapshot", "restore", snap, "--data-dir", c.members[0].dataDir,
		"--name", "m1", "--initial-cluster", strings.Join(ic, ","), "--initial-cluster-token", "e2e-ha")
	serveArgs := func(i int, state string) []string {
		m := c.members[i]
		return []string{binPath, "datastore", "serve", "--tls", "--data-dir", m.dataDir, "--name", m.name, "--listen", clients[i],
			"--initial-cluster", strings.Join(ic[:i+1], ","), "--initial-cluster-state", state, "--initial-cluster-token", "e2e-ha"}
	}
	c.members[0].proc = startServeWith(t, home, serveArgs(0, "new"))
	c.members[0].proc.wait(t)
	first := clitest.Env{}
	for k, v := range c.env {
		first[k] = v
	}
	first["ETCD_ENDPOINTS"] = c.members[0].clientURL
	for i := 1; i < 3; i++ {
		out := c.mustRun(t, first, "datastore", "member", "add", c.members[i].name, "--peer-url", "https://"+peers[i])
		clitest.WantContains(t, "member add", out, "--initial-cluster "+strings.Join(ic[:i+1], ","), "--initial-cluster-state existing")
		c.members[i].proc = startServeWith(t, home, serveArgs(i, "existing"))
		c.members[i].proc.wait(t)
	}
	clitest.WantContains(t, "get from the grown cluster", c.mustRun(t, c.env, "get", "ippool"), "restored-pool")
	status := c.mustRun(t, c.env, "datastore", "status")
	clitest.WantContains(t, "status", status, "m1", "m2", "m3")
	c.members[0].proc.kill()
	clitest.WantContains(t, "get without m1", c.mustRun(t, c.env, "get", "ippool"), "restored-pool")
	c.applyEventually(t, "after-restore", "10.42.0.0/16")
}
