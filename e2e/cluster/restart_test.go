package cluster

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Agent restart while a TCP stream runs between pods on two nodes: the
// kernel state stays while the agent is down, the restarted agent adopts it
// without deleting a route, and the stream sees no reset and no gap > 1 s.
func TestPrivilegedAgentRestart(t *testing.T) {
	c := NewCluster(t)
	env := poolEnv("10.244.0.0/16", "Always")
	n1 := c.AddNode("n1", 11, env...)
	n2 := c.AddNode("n2", 12, env...)
	a, b, x := n1.AddPod("a"), n1.AddPod("b"), n2.AddPod("x")
	c.MustPing([2]*Pod{a, x}, [2]*Pod{x, a}, [2]*Pod{b, x})
	c.EchoServer(x)
	stream := c.startHelper("stream-a-x", a.NS, "stream", net.JoinHostPort(x.IP, echoPort))
	progress := func(what string, beyond int) int {
		t.Helper()
		var n int
		c.WaitFor("the stream to pass "+what, 10*time.Second, func() bool {
			n = StreamProgress(stream)
			return n >= beyond
		})
		return n
	}
	n := progress("20 echoes", 20)

	routesBefore := c.Routes(n1.NS)
	vxlanBefore := linkIndex(t, n1.NS, "vxlan.calico")
	mon := exec.Command("ip", "-n", n1.NS, "monitor", "route")
	monOut, err := os.Create(filepath.Join(c.Dir(), "n1-route-monitor.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer monOut.Close()
	mon.Stdout, mon.Stderr = monOut, monOut
	if err := mon.Start(); err != nil {
		t.Fatal(err)
	}
	c.Track(mon)

	n1.StopAgent()
	// While the agent is down the dataplane stays: the stream goes on.
	n = progress("25 echoes more with n1's agent stopped", n+25)
	if r := c.Routes(n1.NS); r != routesBefore {
		t.Errorf("routes changed while the agent was down:\nbefore:\n%s\nafter:\n%s", routesBefore, r)
	}
	c.MustPing([2]*Pod{b, x})

	n1.StartAgent()
	// A few sync rounds (200 ms each) after the restarted agent is in sync.
	progress("25 echoes more after the restart", n+25)
	_ = mon.Process.Kill()
	_ = mon.Wait()
	if r := c.Routes(n1.NS); r != routesBefore {
		t.Errorf("routes differ after the restart:\nbefore:\n%s\nafter:\n%s", routesBefore, r)
	}
	if got := linkIndex(t, n1.NS, "vxlan.calico"); got != vxlanBefore {
		t.Errorf("vxlan.calico was recreated (ifindex %s -> %s)", vxlanBefore, got)
	}
	monLog, _ := os.ReadFile(monOut.Name())
	if strings.Contains(string(monLog), "Deleted") {
		t.Errorf("routes were deleted across the restart:\n%s", monLog)
	}

	sum, err := StopStream(stream)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stream: %+v", sum)
	if sum.Err != "<nil>" {
		t.Errorf("stream error: %s", sum.Err)
	}
	if sum.MaxGap > time.Second {
		t.Errorf("stream stalled for %s", sum.MaxGap)
	}
	if sum.Recv < 70 || sum.Sent-sum.Recv > 10 {
		t.Errorf("stream sent %d, got %d echoes back", sum.Sent, sum.Recv)
	}
	c.MustPing([2]*Pod{a, x}, [2]*Pod{x, b})
}

// linkIndex is the ifindex of a device in a namespace.
func linkIndex(t *testing.T, ns, dev string) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-o", "link", "show", dev).CombinedOutput()
	if err != nil {
		t.Fatalf("ip link show %s: %v\n%s", dev, err, out)
	}
	idx, _, _ := strings.Cut(string(out), ":")
	return idx
}
