package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDemo is `make demo`: two nodes with two pods each, then what an
// operator would look at. It runs only with CALICO_DEMO=1.
func TestDemo(t *testing.T) {
	if os.Getenv("CALICO_DEMO") != "1" {
		t.Skip("the demo runs with CALICO_DEMO=1 (make demo)")
	}
	say := func(title, body string) {
		fmt.Printf("\n=== %s ===\n%s", title, body)
		if !strings.HasSuffix(body, "\n") {
			fmt.Println()
		}
	}
	start := time.Now()
	c := NewCluster(t)
	env := poolEnv("10.244.0.0/16", "Always")
	n1 := c.AddNode("node1", 11, env...)
	n2 := c.AddNode("node2", 12, env...)
	pods := []*Pod{n1.AddPod("pod1"), n1.AddPod("pod2"), n2.AddPod("pod3"), n2.AddPod("pod4")}
	c.MustPing([2]*Pod{pods[0], pods[2]})
	say("cluster up", fmt.Sprintf("datastore on 10.99.0.1:2379, node1 at %s, node2 at %s, 4 pods, in %s",
		n1.IP, n2.IP, time.Since(start).Round(time.Millisecond)))

	say("calicoctl get nodes -o wide", c.MustCalicoctl("get", "nodes", "-o", "wide"))
	say("ip route on node1", c.Routes(n1.NS))
	say("calicoctl ipam show --show-blocks", c.MustCalicoctl("ipam", "show", "--show-blocks"))
	say("calicoctl get wep -o wide", c.MustCalicoctl("get", "wep", "--all-namespaces", "-o", "wide"))
	for _, pr := range [][2]*Pod{{pods[0], pods[2]}, {pods[3], pods[1]}, {pods[0], pods[1]}} {
		out, err := exec.Command("ip", "netns", "exec", pr[0].NS, "ping", "-c", "3", "-i", "0.2", pr[1].IP).CombinedOutput()
		say(fmt.Sprintf("ping from %s (%s, %s) to %s (%s, %s)", pr[0].Name, pr[0].Node.Name, pr[0].IP, pr[1].Name, pr[1].Node.Name, pr[1].IP), string(out))
		if err != nil {
			t.Errorf("ping %s -> %s: %v", pr[0].Name, pr[1].Name, err)
		}
	}
	say("tearing down", "stopping the agents and the datastore, deleting the namespaces")
}
