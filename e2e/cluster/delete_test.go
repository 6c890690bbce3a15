package cluster

import (
	"strings"
	"testing"
)

// Pod delete frees the address and its routes on every node, including a
// borrowed address (a /32 in another node's block, routed by /32 on the
// block's owner). Affine blocks stay with their node once emptied of pods
// (upstream's behaviour: affinity is released only with the node), so
// their routes stay too.
func TestPrivilegedPodDelete(t *testing.T) {
	c := NewCluster(t)
	// A /29 pool of two /30 blocks: n1's block fills up (tunnel address +
	// three pods), so n1's fourth pod borrows from n2's block.
	env := poolEnv("10.244.0.0/29", "Always", "CALICO_IPV4POOL_BLOCK_SIZE=30")
	n1 := c.AddNode("n1", 11, env...)
	n2 := c.AddNode("n2", 12, env...)
	pods := []*Pod{n1.AddPod("a"), n1.AddPod("b"), n1.AddPod("c")}
	x := n2.AddPod("x")
	d := n1.AddPod("d")
	blockA, blockB := blockOf(pods[0].IP, 30), blockOf(x.IP, 30)
	if blockA == blockB {
		t.Fatalf("n1 and n2 share block %s", blockA)
	}
	if blockOf(d.IP, 30) != blockB {
		t.Fatalf("d (%s) did not borrow from n2's block %s; the scenario needs it", d.IP, blockB)
	}
	// n2 routes the borrowed /32 to n1; n1 has d's workload route.
	c.WaitRoute(n2.NS, d.IP+"/32", "dev vxlan.calico proto 80 onlink")
	c.WaitRoute(n1.NS, d.IP+"/32", "dev cali")
	c.MustPing([2]*Pod{d, x}, [2]*Pod{x, d}, [2]*Pod{x, pods[0]})
	c.EchoServer(x)
	c.MustEcho(x, d)

	n1.DeletePod(d)
	c.WaitRoute(n1.NS, d.IP+"/32", "")
	c.WaitRoute(n2.NS, d.IP+"/32", "")
	if out := c.MustCalicoctl("ipam", "show", "--ip="+d.IP); !strings.Contains(out, "not assigned") {
		t.Errorf("d's address still assigned: %s", out)
	}
	// n1's block is still full: a new pod on n1 borrows from n2's block
	// again (d's freed address or the one after it).
	e := n1.AddPod("e")
	if blockOf(e.IP, 30) != blockB {
		t.Errorf("e got %s, want a borrowed address in %s", e.IP, blockB)
	}
	c.WaitRoute(n2.NS, e.IP+"/32", "dev vxlan.calico")
	c.MustPing([2]*Pod{x, e})
	n1.DeletePod(e)
	c.WaitRoute(n2.NS, e.IP+"/32", "")

	// Emptying n1's block of pods frees every address; the block stays
	// affine to n1 (it still holds the VXLAN tunnel address) and routed.
	for _, p := range pods {
		n1.DeletePod(p)
		c.WaitRoute(n1.NS, p.IP+"/32", "")
		if out := c.MustCalicoctl("ipam", "show", "--ip="+p.IP); !strings.Contains(out, "not assigned") {
			t.Errorf("%s's address still assigned: %s", p.Name, out)
		}
	}
	c.WaitRoute(n2.NS, blockA, "dev vxlan.calico")
	c.WaitRoute(n1.NS, blockA, "blackhole")
	if out := c.MustCalicoctl("ipam", "show", "--show-blocks"); !strings.Contains(out, blockA) {
		t.Errorf("n1's block %s vanished:\n%s", blockA, out)
	}
	if r := c.Routes(n1.NS); strings.Contains(r, " dev cali") {
		t.Errorf("n1 kept a workload route with no pods:\n%s", r)
	}
}
