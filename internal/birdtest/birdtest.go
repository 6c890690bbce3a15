// Package birdtest runs Debian's BIRD 2 as a foreign BGP peer for
// privileged tests: the test process re-runs itself in a fresh network
// namespace (Isolate), and BIRD runs in a namespace of its own joined to
// it by a veth pair (Start). Only test code imports it.
package birdtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/internal/netnstest"
)

const isolatedEnv = "BIRDTEST_ISOLATED"

// Isolate re-runs the calling top-level test in a new network namespace
// (unshare --net) and reports true in the parent, whose test is then
// done: it passes, fails or skips as the child did. In the child it sets
// lo up and reports false; the test goes on there. It skips unless root
// with unshare and bird installed.
func Isolate(t *testing.T) bool {
	t.Helper()
	if os.Getenv(isolatedEnv) == "1" {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			t.Fatalf("lo up: %v: %s", err, out)
		}
		return false
	}
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root for network namespaces")
	}
	for _, bin := range []string{"unshare", "ip", "bird", "birdc"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("skipping: needs %s (BIRD 2 is Debian's bird2)", bin)
		}
	}
	args := []string{"--net", "--", os.Args[0], "-test.run", "^" + t.Name() + "$", "-test.v", "-test.count=1"}
	if d, ok := t.Deadline(); ok {
		args = append(args, "-test.timeout", time.Until(d).Round(time.Second).String())
	}
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), isolatedEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Log("in a new network namespace:\n" + out.String())
	switch {
	case err != nil:
		t.Fatalf("isolated run: %v", err)
	case strings.Contains(out.String(), "--- SKIP: "+t.Name()):
		t.Skip("skipped in the isolated run")
	case !strings.Contains(out.String(), "--- PASS: "+t.Name()):
		t.Fatal("the isolated run did not report a pass")
	}
	return true
}

// BIRD is one BIRD daemon in its own namespace.
type BIRD struct {
	NS   netnstest.Named
	dir  string
	cmd  *exec.Cmd
	t    testing.TB
	sock string
}

// Link joins the caller's namespace to a new BIRD namespace with a veth
// pair: ours gets local (CIDR form, e.g. "10.250.0.1/24",
// "fd00:250::1/64"), BIRD's side (eth0) gets remote. Call it in an
// isolated test.
func Link(t testing.TB, local, remote []string) *BIRD {
	t.Helper()
	if os.Getenv(isolatedEnv) != "1" {
		t.Fatal("birdtest.Link outside an isolated test (call Isolate first)")
	}
	ns := netnstest.NewNamed(t, "bird")
	b := &BIRD{NS: ns, dir: t.TempDir(), t: t}
	b.sock = filepath.Join(b.dir, "bird.ctl")
	run(t, "ip", "link", "add", "veth0", "type", "veth", "peer", "name", "eth0", "netns", ns.Name)
	for _, a := range local {
		run(t, "ip", "addr", "add", a, "dev", "veth0", "nodad")
	}
	for _, a := range remote {
		run(t, "ip", "-n", ns.Name, "addr", "add", a, "dev", "eth0", "nodad")
	}
	run(t, "ip", "link", "set", "veth0", "up")
	run(t, "ip", "-n", ns.Name, "link", "set", "eth0", "up")
	return b
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// Start (re)starts BIRD with config and waits until birdc answers.
func (b *BIRD) Start(config string) {
	t := b.t
	t.Helper()
	b.Stop()
	cfg := filepath.Join(b.dir, "bird.conf")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	lf, err := os.OpenFile(filepath.Join(b.dir, "bird.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	b.cmd = exec.Command("ip", "netns", "exec", b.NS.Name, "bird", "-f", "-c", cfg, "-s", b.sock)
	b.cmd.Stdout, b.cmd.Stderr = lf, lf
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start bird: %v", err)
	}
	t.Cleanup(b.Stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := b.Birdc("show", "status"); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("BIRD did not answer; log:\n%s", b.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop kills BIRD (if running).
func (b *BIRD) Stop() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
	b.cmd = nil
}

// Birdc runs a birdc command.
func (b *BIRD) Birdc(args ...string) (string, error) {
	out, err := exec.Command("birdc", append([]string{"-s", b.sock}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Log is BIRD's log so far.
func (b *BIRD) Log() string {
	out, _ := os.ReadFile(filepath.Join(b.dir, "bird.log"))
	return string(out)
}
