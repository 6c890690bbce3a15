package cluster

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

const outsideIP = "10.99.0.200"

// NAT outgoing: a pod connecting to an address outside every pool is seen
// there as its node's address; with natOutgoing false, as itself.
func TestPrivilegedNATOutgoing(t *testing.T) {
	c := NewCluster(t)
	env := poolEnv("10.244.0.0/16", "Always", "CALICO_IPV4POOL_NAT_OUTGOING=true")
	n1 := c.AddNode("n1", 11, env...)
	n2 := c.AddNode("n2", 12, env...)
	a, x := n1.AddPod("a"), n2.AddPod("x")
	out := c.AddOutside("out", outsideIP)
	srv := c.startHelper("echo-outside", out, "serve", net.JoinHostPort(outsideIP, echoPort))
	c.WaitFor("the outside echo server", 10*time.Second, func() bool { return strings.Contains(srv.Output(), "listening") })

	for _, p := range []*Pod{a, x} {
		peer, err := c.Dial(p.NS, outsideIP, 10*time.Second)
		if err != nil {
			t.Fatalf("%s -> outside: %v", p.Name, err)
		}
		if peer != p.Node.IP {
			t.Errorf("natOutgoing true: outside saw %s from %s, want its node's %s", peer, p.Name, p.Node.IP)
		}
	}

	// natOutgoing off: the outside sees the pod's own address (it routes
	// the pool back through the nodes, as an unencapsulated network would).
	c.PatchPool(defaultPool, `{"natOutgoing":false}`)
	for _, p := range []*Pod{a, x} {
		c.Run("ip", "-n", out, "route", "replace", blockOf(p.IP, 26), "via", p.Node.IP)
	}
	for _, p := range []*Pod{a, x} {
		var last string
		c.WaitFor(p.Name+" reaching the outside unmasqueraded (last peer "+last+")", 15*time.Second, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			b, err := helperCmd(ctx, p.NS, "dial", net.JoinHostPort(outsideIP, echoPort), "m").Output()
			if err != nil {
				return false
			}
			if m := dialRE.FindStringSubmatch(string(b)); m != nil {
				last = m[1]
			}
			return last == p.IP
		})
	}
	// Pod to pod never masquerades, whatever natOutgoing says.
	c.PatchPool(defaultPool, `{"natOutgoing":true}`)
	c.WaitFor("masquerading again", 15*time.Second, func() bool {
		peer, err := c.Dial(a.NS, outsideIP, time.Second)
		return err == nil && peer == n1.IP
	})
	c.EchoServer(x)
	c.MustEcho(x, a)
}
