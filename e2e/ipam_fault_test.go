package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/e2e/clitest"
)

// killableEtcd is an etcd server the test kills with SIGKILL and restarts
// on the same data directory and ports: Debian's etcd when installed, else
// `calicoctl datastore serve`.
type killableEtcd struct {
	t                  *testing.T
	dir                string
	clientPort, peerPt int
	cmd                *exec.Cmd
	done               chan struct{}
	log                bytes.Buffer
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startKillableEtcd(t *testing.T) *killableEtcd {
	t.Helper()
	e := &killableEtcd{t: t, dir: t.TempDir(), clientPort: freePort(t), peerPt: freePort(t)}
	e.start()
	t.Cleanup(e.kill)
	return e
}

func (e *killableEtcd) endpoint() string { return fmt.Sprintf("http://127.0.0.1:%d", e.clientPort) }

func (e *killableEtcd) start() {
	t := e.t
	t.Helper()
	client, peer := e.endpoint(), fmt.Sprintf("http://127.0.0.1:%d", e.peerPt)
	if path, err := exec.LookPath("etcd"); err == nil {
		e.cmd = exec.Command(path, "--name=fault", "--data-dir="+filepath.Join(e.dir, "data"),
			"--listen-client-urls="+client, "--advertise-client-urls="+client,
			"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer, "--initial-cluster=fault="+peer)
	} else {
		e.cmd = exec.Command(binPath, "datastore", "serve", "--data-dir", filepath.Join(e.dir, "data"),
			"--listen", fmt.Sprintf("127.0.0.1:%d", e.clientPort), "--listen-peer", fmt.Sprintf("127.0.0.1:%d", e.peerPt))
	}
	e.log.Reset()
	e.cmd.Stdout, e.cmd.Stderr = &e.log, &e.log
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	e.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(e.cmd, e.done)
	// Ready when it answers a read.
	c := &cluster{Endpoint: client, home: e.dir}
	deadline := time.Now().Add(clitest.CommandTimeout)
	for {
		r := c.runEnv(t, nil, "", "get", "ippools")
		if r.Code == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd did not come up: %s\n%s", r.Stderr, e.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *killableEtcd) kill() {
	if e.cmd == nil || e.cmd.Process == nil {
		return
	}
	_ = e.cmd.Process.Kill()
	<-e.done
	e.cmd = nil
}

// etcd dies while `ipam assign` writes: whatever the moment, every
// allocation left behind has a handle object (the handle is written before
// the block, and a write whose fate is unknown is not undone), and
// `ipam release --handle` frees everything the blocks record, so the check
// ends with no leak and no orphaned allocation.
func TestIPAMAssignSurvivesEtcdKill(t *testing.T) {
	e := startKillableEtcd(t)
	c := &cluster{Endpoint: e.endpoint(), home: e.dir}
	c.mustRun(t, "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/8, blockSize: 29}\n---\n"+
		"apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: n1}\n", "create", "-f", "-")
	c.mustRun(t, "", "ipam", "configure", "--strictaffinity=true", "--max-blocks-per-host=100000")
	for i, delay := range []time.Duration{100 * time.Millisecond, 400 * time.Millisecond, 900 * time.Millisecond} {
		handle := fmt.Sprintf("vm-%d", i)
		assign := exec.Command(binPath, "ipam", "assign", "--node=n1", "--handle="+handle, "--num=1600")
		assign.Env = clitest.BaseEnv(e.dir, c.env())
		var out bytes.Buffer
		assign.Stdout, assign.Stderr = &out, &out
		if err := assign.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- assign.Wait() }()
		time.Sleep(delay)
		e.kill()
		e.start()
		select {
		case err := <-exited:
			t.Logf("round %d: assign exited (%v) after etcd was killed at %s: %d addresses reported", i, err, delay,
				strings.Count(out.String(), "Successfully assigned"))
		case <-time.After(2 * clitest.CommandTimeout):
			_ = assign.Process.Kill()
			t.Fatalf("round %d: ipam assign hung after etcd restarted:\n%s", i, out.String())
		}

		out1 := c.mustRun(t, "", "ipam", "check")
		clitest.WantContains(t, "check after the kill", out1,
			"Found 0 handles mentioned in blocks with no matching handle resource.")
		r := c.runEnv(t, nil, "", "ipam", "release", "--handle="+handle)
		if r.Code != 0 && !strings.Contains(r.Stderr, `handle "`+handle+`" does not exist`) {
			t.Fatalf("round %d: release --handle: exit %d\n%s%s", i, r.Code, r.Stdout, r.Stderr)
		}
		out2 := c.mustRun(t, "", "ipam", "check")
		clitest.WantContains(t, "check after the release", out2, "IPAM blocks record 0 allocations.",
			"Found 0 handles with no matching IPs", "Found 0 handles mentioned in blocks with no matching handle resource.",
			"Check complete; found 0 problems.")
	}
}
