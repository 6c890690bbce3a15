package cluster

import (
	"strings"
	"testing"
	"time"
)

// Two nodes on one subnet, VXLAN Always: pods reach each other across
// nodes and on the same node; routes read as seed 000 shows them.
func TestPrivilegedVXLANAlways(t *testing.T) {
	c := NewCluster(t)
	pool := []string{"CALICO_IPV4POOL_CIDR=10.244.0.0/16", "CALICO_IPV4POOL_VXLAN=Always"}
	n1 := c.AddNode("n1", 11, pool...)
	n2 := c.AddNode("n2", 12, pool...)
	a := n1.AddPod("a")
	b := n1.AddPod("b")
	x := n2.AddPod("x")
	for _, tc := range []struct{ from, to *Pod }{{a, x}, {x, a}, {a, b}, {x, b}} {
		if err := c.Ping(tc.from.NS, tc.to.IP, 5*time.Second); err != nil {
			t.Errorf("%s -> %s: %v", tc.from.Name, tc.to.Name, err)
		}
	}
	r := c.Routes(n1.NS)
	if !strings.Contains(r, "vxlan.calico") || !strings.Contains(r, "onlink") || !strings.Contains(r, "blackhole 10.244.") {
		t.Errorf("n1 routes lack the VXLAN/blackhole routes:\n%s", r)
	}
	if !strings.Contains(r, a.IP+" dev cali") {
		t.Errorf("n1 has no workload route for %s:\n%s", a.IP, r)
	}
	out := c.MustCalicoctl("ipam", "show", "--show-blocks")
	if strings.Count(out, "| Block ") != 2 {
		t.Errorf("want two blocks:\n%s", out)
	}
	// Pod delete frees the address and the routes on every node.
	n2.DeletePod(x)
	c.WaitFor("x's route gone from n2", 10*time.Second, func() bool {
		return !strings.Contains(c.Routes(n2.NS), x.IP+" dev cali")
	})
	if out := c.MustCalicoctl("ipam", "show", "--ip="+x.IP); !strings.Contains(out, "not assigned") {
		t.Errorf("x's address still assigned: %s", out)
	}
}
