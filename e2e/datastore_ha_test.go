package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.uber.org/zap"

	"github.com/opencalico/calicoctl/e2e/clitest"
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
	home    string
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
	c := &haCluster{home: home}
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

// leader returns the index of the member that leads, asking the members
// that answer.
func (c *haCluster) leader(t *testing.T) int {
	t.Helper()
	info := transport.TLSInfo{CertFile: c.env["ETCD_CERT_FILE"], KeyFile: c.env["ETCD_KEY_FILE"], TrustedCAFile: c.env["ETCD_CA_CERT_FILE"]}
	tc, err := info.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for i, m := range c.members {
			if m.proc == nil || m.proc.exited {
				continue
			}
			cl, err := clientv3.New(clientv3.Config{Endpoints: []string{m.clientURL}, TLS: tc, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
			if err != nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := cl.Status(ctx, m.clientURL)
			cancel()
			cl.Close()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return i
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("no member reports being the leader")
	return -1
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
		r := clitest.Exec(t, binPath, c.home, c.env, poolYAML(name, cidr), "apply", "-f", "-")
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
	clitest.WantContains(t, "get after follower loss", mustExec(t, c.home, c.env, "", "get", "ippool"), "ha-0", "ha-1")
	c.members[follower].proc = startServeWith(t, c.home, wrap(follower, c.members[follower].args))
	c.members[follower].proc.wait(t)

	l = c.leader(t)
	t.Logf("killing leader %s", c.members[l].name)
	c.members[l].proc.kill()
	c.applyEventually(t, "ha-2", "10.33.0.0/16")
	clitest.WantContains(t, "get after leader loss", mustExec(t, c.home, c.env, "", "get", "ippool"), "ha-0", "ha-1", "ha-2")
	c.members[l].proc = startServeWith(t, c.home, wrap(l, c.members[l].args))
	c.members[l].proc.wait(t)
	// The member that came back serves everything written while it was down.
	only := clitest.Env{}
	for k, v := range c.env {
		only[k] = v
	}
	only["ETCD_ENDPOINTS"] = c.members[l].clientURL
	clitest.WantContains(t, "get from the returned leader", mustExec(t, c.home, only, "", "get", "ippool"), "ha-0", "ha-1", "ha-2")
	// A snapshot of the cluster can be taken from the member list.
	mustExec(t, c.home, c.env, "", "datastore", "snapshot", "save", filepath.Join(c.home, "ha.db"))
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
