package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// VXLAN CrossSubnet: n1 and n2 share 10.99.0.0/24, n3 sits on 10.99.1.0/24
// behind the hub router. Same-subnet blocks are routed directly, the other
// subnet's through vxlan.calico; pods reach each other by ping and TCP.
func TestPrivilegedVXLANCrossSubnet(t *testing.T) {
	c := NewCluster(t)
	env := poolEnv("10.244.0.0/16", "CrossSubnet")
	n1 := c.AddNodeOn("n1", 0, 11, env...)
	n2 := c.AddNodeOn("n2", 0, 12, env...)
	n3 := c.AddNodeOn("n3", 1, 13, env...)
	a, b, x := n1.AddPod("a"), n2.AddPod("b"), n3.AddPod("x")
	blk := func(p *Pod) string { return blockOf(p.IP, 26) }

	for _, tc := range []struct {
		name      string
		on        *Node
		dst       string
		want, not string
	}{
		{"n1 to n2 (same subnet): direct", n1, blk(b), "via 10.99.0.12 dev eth0 proto 80", "vxlan.calico"},
		{"n2 to n1 (same subnet): direct", n2, blk(a), "via 10.99.0.11 dev eth0 proto 80", "vxlan.calico"},
		{"n1 to n3 (other subnet): vxlan", n1, blk(x), "dev vxlan.calico proto 80 onlink", "eth0"},
		{"n3 to n1 (other subnet): vxlan", n3, blk(a), "dev vxlan.calico proto 80 onlink", "eth0"},
		{"n3 to n2 (other subnet): vxlan", n3, blk(b), "dev vxlan.calico proto 80 onlink", "eth0"},
	} {
		got := c.WaitRoute(tc.on.NS, tc.dst, tc.want)
		if strings.Contains(got, tc.not) {
			t.Errorf("%s: route %q mentions %s", tc.name, got, tc.not)
		}
	}
	c.MustPing([2]*Pod{a, b}, [2]*Pod{b, a}, [2]*Pod{a, x}, [2]*Pod{x, a}, [2]*Pod{b, x}, [2]*Pod{x, b})
	c.EchoServer(x)
	c.EchoServer(a)
	c.MustEcho(x, a, b)
	c.MustEcho(a, x, b)
}

// No encapsulation on one subnet: remote blocks are routed via the remote
// node's address on eth0, no tunnel is involved, pods reach each other.
func TestPrivilegedNoEncap(t *testing.T) {
	c := NewCluster(t)
	env := poolEnv("10.244.0.0/16", "Never")
	n1 := c.AddNode("n1", 11, env...)
	n2 := c.AddNode("n2", 12, env...)
	a, b, x := n1.AddPod("a"), n1.AddPod("b"), n2.AddPod("x")

	want := map[*Node]struct{ dst, route string }{
		n1: {blockOf(x.IP, 26), blockOf(x.IP, 26) + " via 10.99.0.12 dev eth0 proto 80"},
		n2: {blockOf(a.IP, 26), blockOf(a.IP, 26) + " via 10.99.0.11 dev eth0 proto 80"},
	}
	for n, w := range want {
		c.WaitRoute(n.NS, w.dst, w.route)
		if r := c.Routes(n.NS); strings.Contains(r, "vxlan.calico") || strings.Contains(r, "tunl0") {
			t.Errorf("%s routes through a tunnel with encapsulation off:\n%s", n.Name, r)
		}
	}
	c.MustPing([2]*Pod{a, x}, [2]*Pod{x, a}, [2]*Pod{a, b}, [2]*Pod{x, b})
	c.EchoServer(x)
	c.MustEcho(x, a, b)
}

// Live pool change VXLAN Always -> Never -> Always: every node converges
// and pods keep reaching each other. Then an IPIP pool on this kernel
// (no ipip device type): the agents say so and keep serving the VXLAN pool.
func TestPrivilegedPoolModeChange(t *testing.T) {
	c := NewCluster(t)
	env := poolEnv("10.244.0.0/16", "Always")
	n1 := c.AddNode("n1", 11, env...)
	n2 := c.AddNode("n2", 12, env...)
	a, x := n1.AddPod("a"), n2.AddPod("x")
	c.EchoServer(x)
	c.MustEcho(x, a)
	// A TCP stream runs through every change: the route swaps must not
	// reset it.
	stream := c.startHelper("stream-a-x", a.NS, "stream", net.JoinHostPort(x.IP, echoPort))

	steps := []struct {
		name   string
		patch  string // "" = initial state
		n1, n2 string
	}{
		{"initial VXLAN Always", "", "dev vxlan.calico proto 80 onlink", "dev vxlan.calico proto 80 onlink"},
		{"to Never", `{"vxlanMode":"Never"}`, "via 10.99.0.12 dev eth0 proto 80", "via 10.99.0.11 dev eth0 proto 80"},
		{"back to Always", `{"vxlanMode":"Always"}`, "dev vxlan.calico proto 80 onlink", "dev vxlan.calico proto 80 onlink"},
		{"to CrossSubnet (same subnet: direct)", `{"vxlanMode":"CrossSubnet"}`, "via 10.99.0.12 dev eth0 proto 80", "via 10.99.0.11 dev eth0 proto 80"},
	}
	for _, s := range steps {
		if s.patch != "" {
			c.PatchPool(defaultPool, s.patch)
		}
		r1 := c.WaitRoute(n1.NS, blockOf(x.IP, 26), s.n1)
		r2 := c.WaitRoute(n2.NS, blockOf(a.IP, 26), s.n2)
		t.Logf("%s: n1 %q; n2 %q", s.name, r1, r2)
		c.MustPing([2]*Pod{a, x}, [2]*Pod{x, a})
		c.MustEcho(x, a)
	}
	sum, err := StopStream(stream)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stream across the mode changes: %+v", sum)
	if sum.Err != "<nil>" || sum.Recv == 0 || sum.Sent-sum.Recv > 10 {
		t.Errorf("the stream suffered from the mode changes: %+v", sum)
	}

	// An IPIP pool on a kernel without IPIP.
	c.PatchPool(defaultPool, `{"vxlanMode":"Always"}`)
	c.WaitRoute(n1.NS, blockOf(x.IP, 26), "dev vxlan.calico")
	c.Apply(`apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: ipip-pool
spec:
  cidr: 10.245.0.0/16
  ipipMode: Always
  vxlanMode: Never
  natOutgoing: true
`)
	ipipLine := "cannot make IPIP tunnels"
	if ok, _ := ipipAvailable(); ok {
		t.Log("this kernel has IPIP: not checking the missing-IPIP log line")
	} else {
		t.Log("this kernel has no IPIP: expecting the agents to say so")
		for _, n := range []*Node{n1, n2} {
			c.WaitFor(n.Name+" logging the missing IPIP support", 15*time.Second, func() bool {
				return strings.Contains(n.AgentLog(), ipipLine)
			})
		}
	}
	c.MustPing([2]*Pod{a, x}, [2]*Pod{x, a})
	c.MustEcho(x, a)
	if r := c.RouteTo(n1.NS, blockOf(x.IP, 26)); !strings.Contains(r, "vxlan.calico") {
		t.Errorf("n1 lost the VXLAN route after the IPIP pool appeared: %q", r)
	}
}

// ipipAvailable reports whether this kernel can make an ipip device, probed
// in a scratch namespace.
func ipipAvailable() (bool, string) {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	ns := "ctprobe" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return false, string(out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	if _, err := exec.Command("ip", "-n", ns, "link", "show", "tunl0").CombinedOutput(); err == nil {
		return true, "tunl0 exists"
	}
	out, err := exec.Command("ip", "-n", ns, "link", "add", "probe0", "type", "ipip", "remote", "192.0.2.1").CombinedOutput()
	return err == nil, string(out)
}
