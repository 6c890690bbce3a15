package guest

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pingTimeout is generous: the VM is emulated (TCG) and routes converge
// asynchronously.
const pingTimeout = 30 * time.Second

// tunlTX is tunl0's transmitted-packet counter in a node namespace.
func tunlTX(t *testing.T, ns string) int {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "cat", "/sys/class/net/tunl0/statistics/tx_packets").CombinedOutput()
	if err != nil {
		t.Fatalf("tunl0 counters in %s: %v: %s", ns, err, out)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("tunl0 tx_packets in %s: %v", ns, err)
	}
	return n
}

// wantRoutes checks every route in ns via gw: there is at least one, and each
// contains all of want and none of unwanted.
func wantRoutes(t *testing.T, c *Cluster, ns, gw string, want, unwanted []string) {
	t.Helper()
	lines := c.RoutesVia(ns, gw)
	if len(lines) == 0 {
		t.Errorf("%s: no route via %s:\n%s", ns, gw, c.Routes(ns))
		return
	}
	for _, l := range lines {
		for _, w := range want {
			if !strings.Contains(l, w) {
				t.Errorf("%s: route %q lacks %q", ns, l, w)
			}
		}
		for _, u := range unwanted {
			if strings.Contains(l, u) {
				t.Errorf("%s: route %q has %q", ns, l, u)
			}
		}
	}
}

// waitRoutes waits until some route in ns via gw contains all of want.
func waitRoutes(c *Cluster, ns, gw string, timeout time.Duration, want ...string) {
	c.t.Helper()
	c.WaitFor("a route in "+ns+" via "+gw+" with "+strings.Join(want, ", "), timeout, func() bool {
		for _, l := range c.RoutesVia(ns, gw) {
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(l, w)
			}
			if ok {
				return true
			}
		}
		return false
	})
}

// The VM's kernel has the ipip device type: a new namespace gets tunl0.
func TestKernelHasIPIP(t *testing.T) {
	requireGuest(t)
	// Not through `sh -c`: busybox's shell prefers its own (limited) ip applet.
	if out, err := exec.Command("ip", "netns", "add", "ipipcheck").CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	defer func() { _ = exec.Command("ip", "netns", "del", "ipipcheck").Run() }()
	out, err := exec.Command("ip", "-n", "ipipcheck", "-d", "link", "show", "tunl0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ipip") {
		t.Fatalf("no ipip tunl0 in a new namespace: %v\n%s", err, out)
	}
}

// IPIP Always: pods on two nodes reach each other through tunl0; remote
// blocks are routed `via <node IP> dev tunl0 onlink`; the tunnel carries the
// traffic.
func TestIPIPAlways(t *testing.T) {
	c := NewCluster(t)
	pool := []string{"CALICO_IPV4POOL_CIDR=10.244.0.0/16", "CALICO_IPV4POOL_IPIP=Always", "CALICO_IPV4POOL_VXLAN=Never"}
	n1 := c.AddNode("n1", 0, 11, pool...)
	n2 := c.AddNode("n2", 0, 12, pool...)
	a, b := n1.AddPod("a"), n1.AddPod("b")
	x := n2.AddPod("x")
	waitRoutes(c, n1.NS, n2.IP, 60*time.Second, "tunl0")
	waitRoutes(c, n2.NS, n1.IP, 60*time.Second, "tunl0")
	before := tunlTX(t, n1.NS)
	c.PingAll([]*Pod{a, b, x}, pingTimeout)
	if after := tunlTX(t, n1.NS); after <= before {
		t.Errorf("tunl0 on n1 sent no packets during the pings (tx %d -> %d)", before, after)
	}
	wantRoutes(t, c, n1.NS, n2.IP, []string{"dev tunl0", "onlink"}, []string{"vxlan.calico"})
	wantRoutes(t, c, n2.NS, n1.IP, []string{"dev tunl0", "onlink"}, []string{"vxlan.calico"})
	if r := c.Routes(n1.NS); !strings.Contains(r, "blackhole 10.244.") || !strings.Contains(r, a.IP+" dev cali") {
		t.Errorf("n1 lacks its blackhole or workload routes:\n%s", r)
	}
	if out, _ := exec.Command("ip", "-n", n1.NS, "-4", "addr", "show", "tunl0").CombinedOutput(); !strings.Contains(string(out), "inet 10.244.") {
		t.Errorf("tunl0 on n1 has no tunnel address from the pool:\n%s", out)
	}
}

// IPIP CrossSubnet: nodes on one subnet route directly; a node behind the
// hub router (another subnet) is reached through tunl0.
func TestIPIPCrossSubnet(t *testing.T) {
	c := NewCluster(t)
	pool := []string{"CALICO_IPV4POOL_CIDR=10.244.0.0/16", "CALICO_IPV4POOL_IPIP=CrossSubnet", "CALICO_IPV4POOL_VXLAN=Never"}
	n1 := c.AddNode("n1", 0, 11, pool...)
	n2 := c.AddNode("n2", 0, 12, pool...)
	n3 := c.AddNode("n3", 1, 13, pool...)
	pods := []*Pod{n1.AddPod("a"), n2.AddPod("b"), n3.AddPod("c")}
	waitRoutes(c, n1.NS, n2.IP, 60*time.Second, "dev eth0")
	waitRoutes(c, n1.NS, n3.IP, 60*time.Second, "dev tunl0")
	waitRoutes(c, n3.NS, n1.IP, 60*time.Second, "dev tunl0")
	before := tunlTX(t, n3.NS)
	c.PingAll(pods, pingTimeout)
	if after := tunlTX(t, n3.NS); after <= before {
		t.Errorf("tunl0 on n3 sent no packets during the pings (tx %d -> %d)", before, after)
	}
	// Same subnet: direct; other subnet: encapsulated.
	wantRoutes(t, c, n1.NS, n2.IP, []string{"dev eth0"}, []string{"tunl0", "vxlan.calico"})
	wantRoutes(t, c, n2.NS, n1.IP, []string{"dev eth0"}, []string{"tunl0", "vxlan.calico"})
	wantRoutes(t, c, n1.NS, n3.IP, []string{"dev tunl0", "onlink"}, nil)
	wantRoutes(t, c, n3.NS, n1.IP, []string{"dev tunl0", "onlink"}, nil)
	wantRoutes(t, c, n3.NS, n2.IP, []string{"dev tunl0", "onlink"}, nil)
}

// VXLAN -> IPIP live: a VXLAN Always pool is switched to IPIP Always with
// `calicoctl patch`; every node converges on tunl0 routes and the pods still
// reach each other.
// TestVXLANToIPIPSwitch switches the pool VXLAN -> IPIP -> VXLAN live.
func TestVXLANToIPIPSwitch(t *testing.T) {
	c := NewCluster(t)
	pool := []string{"CALICO_IPV4POOL_CIDR=10.244.0.0/16", "CALICO_IPV4POOL_VXLAN=Always", "CALICO_IPV4POOL_IPIP=Never"}
	n1 := c.AddNode("n1", 0, 11, pool...)
	n2 := c.AddNode("n2", 0, 12, pool...)
	pods := []*Pod{n1.AddPod("a"), n1.AddPod("b"), n2.AddPod("x")}
	c.PingAll(pods, pingTimeout)
	if r := c.Routes(n1.NS); !strings.Contains(r, "dev vxlan.calico") {
		t.Fatalf("before the switch n1 has no VXLAN routes:\n%s", r)
	}

	c.MustCalicoctl("patch", "ippool", "default-ipv4-ippool", "-p", `{"spec":{"vxlanMode":"Never","ipipMode":"Always"}}`)
	if out := c.MustCalicoctl("get", "ippool", "default-ipv4-ippool", "-o", "yaml"); !strings.Contains(out, "ipipMode: Always") {
		t.Fatalf("pool not switched:\n%s", out)
	}
	waitRoutes(c, n1.NS, n2.IP, 60*time.Second, "dev tunl0", "onlink")
	waitRoutes(c, n2.NS, n1.IP, 60*time.Second, "dev tunl0", "onlink")
	c.WaitFor("VXLAN routes gone", 60*time.Second, func() bool {
		return !strings.Contains(c.Routes(n1.NS), "dev vxlan.calico") && !strings.Contains(c.Routes(n2.NS), "dev vxlan.calico")
	})
	before := tunlTX(t, n2.NS)
	c.PingAll(pods, pingTimeout)
	if after := tunlTX(t, n2.NS); after <= before {
		t.Errorf("tunl0 on n2 sent no packets after the switch (tx %d -> %d)", before, after)
	}

	// And back, IPIP -> VXLAN (seed 000's switch): every node converges
	// again and the pods keep reaching each other.
	c.MustCalicoctl("patch", "ippool", "default-ipv4-ippool", "-p", `{"spec":{"vxlanMode":"Always","ipipMode":"Never"}}`)
	c.WaitFor("VXLAN routes back, tunl0 routes gone", 60*time.Second, func() bool {
		r1, r2 := c.Routes(n1.NS), c.Routes(n2.NS)
		return strings.Contains(r1, "dev vxlan.calico") && strings.Contains(r2, "dev vxlan.calico") &&
			!strings.Contains(r1, "dev tunl0") && !strings.Contains(r2, "dev tunl0")
	})
	c.PingAll(pods, pingTimeout)
}
