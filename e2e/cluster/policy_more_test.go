package cluster

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// More of issue 11's policy scenarios, enforced by the agents' nftables
// with real TCP. Every "denied" is preceded by a control showing the same
// connection worked before the policy, so a broken network cannot pass for
// enforcement.

// conn is one expected TCP connection outcome.
type conn struct {
	name     string
	fromNS   string
	ip, port string
	want     bool
}

// expectConns fails the test for every connection whose outcome differs.
func (c *Cluster) expectConns(t *testing.T, conns ...conn) {
	t.Helper()
	for _, cn := range conns {
		if got := c.canConnect(cn.fromNS, cn.ip, cn.port); got != cn.want {
			t.Errorf("%s: connected=%v, want %v", cn.name, got, cn.want)
		}
	}
}

// serve starts TCP echo servers on ip:port for each port in ns and waits
// until they listen.
func (c *Cluster) serve(name, ns, ip string, ports ...string) {
	c.t.Helper()
	for _, port := range ports {
		h := c.startHelper(name+"-"+port, ns, "serve", net.JoinHostPort(ip, port))
		c.WaitFor(fmt.Sprintf("%s listening on %s", name, port), 10*time.Second, func() bool {
			return strings.Contains(h.Output(), "listening")
		})
	}
}

// policyNode is a cluster of one node enforcing policy.
func policyNode(t *testing.T) (*Cluster, *Node) {
	c := NewCluster(t)
	return c, c.AddNode("n1", 11, poolEnv("10.244.0.0/16", "Always", "CALICO_POLICY=enforce")...)
}

// label sets labels on a pod's WorkloadEndpoint.
func (c *Cluster) label(t *testing.T, p *Pod, labels ...string) {
	t.Helper()
	for _, l := range labels {
		c.MustCalicoctl("label", "workloadendpoint", wepName(t, p), l, "-n", "default")
	}
}

// A tier with Pass: tier security (order 100) passes TCP 80 to app=web and
// denies 23; a port no rule of the tier mentions meets the tier's end-of-tier
// drop (although the network's profile would allow it), and a passed packet
// is decided by the default tier's policies.
func TestPrivilegedPolicyTierPass(t *testing.T) {
	c, n1 := policyNode(t)
	client, other, web := n1.AddPod("client"), n1.AddPod("other"), n1.AddPod("web")
	c.label(t, web, "app=web")
	c.label(t, client, "app=client")
	c.serve("web", web.NS, web.IP, "80", "23", "8080")
	// Control: the network's profile admits everything from the network.
	c.WaitFor("client -> web:80 through the network's profile", 20*time.Second, func() bool {
		return c.canConnect(client.NS, web.IP, "80")
	})
	c.expectConns(t,
		conn{"control client -> web:23", client.NS, web.IP, "23", true},
		conn{"control client -> web:8080", client.NS, web.IP, "8080", true},
		conn{"control other -> web:80", other.NS, web.IP, "80", true},
	)
	if t.Failed() {
		t.FailNow()
	}

	c.Apply(`apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
`)
	// A separate apply: ours writes a file's documents in parallel, so the
	// policy could be checked before its tier exists.
	c.Apply(`apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.gate}
spec:
  tier: security
  selector: app == 'web'
  types: [Ingress]
  ingress:
  - action: Pass
    protocol: TCP
    destination: {ports: [80]}
  - action: Deny
    protocol: TCP
    destination: {ports: [23]}
`)
	c.WaitFor("client -> web:23 denied by the security tier", 20*time.Second, func() bool {
		return !c.canConnect(client.NS, web.IP, "23")
	})
	c.expectConns(t,
		// Passed; no default-tier policy applies, so the profile decides.
		conn{"client -> web:80 (Pass, then the profile)", client.NS, web.IP, "80", true},
		conn{"other -> web:80 (Pass, then the profile)", other.NS, web.IP, "80", true},
		// No rule of the security tier matches: end-of-tier drop.
		conn{"client -> web:8080 (end of tier security)", client.NS, web.IP, "8080", false},
	)

	// The default tier now has a policy for web allowing 80 from the
	// client only: a passed packet from another pod meets the default
	// tier's end-of-tier drop.
	c.Apply(`apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: web-80}
spec:
  selector: app == 'web'
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    source: {selector: app == 'client'}
    destination: {ports: [80]}
`)
	c.WaitFor("other -> web:80 denied by the default tier", 20*time.Second, func() bool {
		return !c.canConnect(other.NS, web.IP, "80")
	})
	c.expectConns(t,
		conn{"client -> web:80 (Pass, then default-tier Allow)", client.NS, web.IP, "80", true},
		conn{"client -> web:23 (security Deny)", client.NS, web.IP, "23", false},
		conn{"client -> web:8080 (end of tier security)", client.NS, web.IP, "8080", false},
	)
}

// A GlobalNetworkSet's labels as a source selector: only the address in the
// set (a pod whose own endpoint has no such label) is admitted, and
// changing the set's nets or labels moves the permission, on another node
// than the sources'. Then namespaceSelector global(), which matches the set
// but no workload endpoint.
func TestPrivilegedPolicySetSource(t *testing.T) {
	c := NewCluster(t)
	env := poolEnv("10.244.0.0/16", "Always", "CALICO_POLICY=enforce")
	n1 := c.AddNode("n1", 11, env...)
	n2 := c.AddNode("n2", 12, env...)
	a, b, web := n1.AddPod("a"), n1.AddPod("b"), n2.AddPod("web")
	c.label(t, web, "app=web")
	c.serve("web", web.NS, web.IP, "80")
	c.WaitFor("a -> web:80 through the network's profile", 20*time.Second, func() bool {
		return c.canConnect(a.NS, web.IP, "80")
	})
	c.expectConns(t, conn{"control b -> web:80", b.NS, web.IP, "80", true})
	if t.Failed() {
		t.FailNow()
	}

	c.Apply(fmt.Sprintf(`apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata:
  name: trusted
  labels: {role: trusted}
spec:
  nets: [%s/32]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: web-from-trusted}
spec:
  selector: app == 'web'
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    source: {selector: role == 'trusted'}
    destination: {ports: [80]}
`, a.IP))
	c.WaitFor("b -> web:80 denied (not in the set)", 20*time.Second, func() bool {
		return !c.canConnect(b.NS, web.IP, "80")
	})
	c.expectConns(t, conn{"a -> web:80 (in the set)", a.NS, web.IP, "80", true})

	c.Apply(fmt.Sprintf(`apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata:
  name: trusted
  labels: {role: trusted}
spec:
  nets: [%s/32]
`, b.IP))
	c.WaitFor("b -> web:80 allowed once the set holds b", 20*time.Second, func() bool {
		return c.canConnect(b.NS, web.IP, "80")
	})
	c.expectConns(t, conn{"a -> web:80 (no longer in the set)", a.NS, web.IP, "80", false})

	// The set's label, not its name, is what the selector matches.
	c.MustCalicoctl("label", "globalnetworkset", "trusted", "role", "--remove")
	c.WaitFor("b -> web:80 denied once the set lost its label", 20*time.Second, func() bool {
		return !c.canConnect(b.NS, web.IP, "80")
	})

	// namespaceSelector global() matches non-namespaced objects only: the
	// set (whatever its labels) admits b, while a's namespaced endpoint
	// does not match.
	c.Apply(`apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: web-from-trusted}
spec:
  selector: app == 'web'
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    source: {namespaceSelector: global()}
    destination: {ports: [80]}
`)
	c.WaitFor("b -> web:80 allowed through namespaceSelector global()", 20*time.Second, func() bool {
		return c.canConnect(b.NS, web.IP, "80")
	})
	c.expectConns(t, conn{"a -> web:80 (a namespaced endpoint, not global())", a.NS, web.IP, "80", false})
}

// Named ports: a policy allows destination port http-alt, which the web
// workload's endpoint names (TCP 8080); 8081 is denied. Renaming the port
// in the endpoint moves the permission.
func TestPrivilegedPolicyNamedPort(t *testing.T) {
	c, n1 := policyNode(t)
	client, web := n1.AddPod("client"), n1.AddPod("web")
	c.label(t, web, "app=web")
	c.serve("web", web.NS, web.IP, "8080", "8081")
	c.WaitFor("client -> web:8080 through the network's profile", 20*time.Second, func() bool {
		return c.canConnect(client.NS, web.IP, "8080")
	})
	c.expectConns(t, conn{"control client -> web:8081", client.NS, web.IP, "8081", true})
	if t.Failed() {
		t.FailNow()
	}

	c.MustCalicoctl("patch", "workloadendpoint", wepName(t, web), "-n", "default", "-p",
		`{"spec":{"ports":[{"name":"http-alt","protocol":"TCP","port":8080}]}}`)
	c.Apply(`apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: web-http-alt}
spec:
  selector: app == 'web'
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    destination: {ports: [http-alt]}
`)
	c.WaitFor("client -> web:8081 denied", 20*time.Second, func() bool {
		return !c.canConnect(client.NS, web.IP, "8081")
	})
	c.expectConns(t, conn{"client -> web:8080 (http-alt)", client.NS, web.IP, "8080", true})

	c.MustCalicoctl("patch", "workloadendpoint", wepName(t, web), "-n", "default", "-p",
		`{"spec":{"ports":[{"name":"http-alt","protocol":"TCP","port":8081}]}}`)
	c.WaitFor("client -> web:8081 allowed once http-alt is 8081", 20*time.Second, func() bool {
		return c.canConnect(client.NS, web.IP, "8081")
	})
	c.expectConns(t, conn{"client -> web:8080 (no longer http-alt)", client.NS, web.IP, "8080", false})
}

// A host endpoint for the node's eth0 under a deny-all policy: the
// failsafe inbound TCP 22 still reaches the node from outside while 8000
// is denied, and the agent, restarted under the policy, reconnects to etcd
// (outbound failsafe 2379) and keeps enforcing changes.
func TestPrivilegedPolicyHostEndpointFailsafe(t *testing.T) {
	c, n1 := policyNode(t)
	outside := c.AddOutside("client", "10.99.0.200")
	c.serve("n1", n1.NS, n1.IP, "22", "8000")
	c.WaitFor("outside -> n1:22 before any host endpoint", 20*time.Second, func() bool {
		return c.canConnect(outside, n1.IP, "22")
	})
	c.expectConns(t, conn{"control outside -> n1:8000", outside, n1.IP, "8000", true})
	if t.Failed() {
		t.FailNow()
	}

	c.Apply(hostDenyAll(n1))
	c.WaitFor("outside -> n1:8000 denied by the host policy", 20*time.Second, func() bool {
		return !c.canConnect(outside, n1.IP, "8000")
	})
	c.expectConns(t, conn{"outside -> n1:22 (failsafe)", outside, n1.IP, "22", true})

	// A fresh connection from the agent to etcd (10.99.0.1:2379) needs the
	// outbound failsafe: restart the agent under the deny-all policy; it
	// must get in sync again and follow a change.
	n1.StopAgent()
	n1.StartAgent()
	c.Apply(`apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: hosts-allow-8000}
spec:
  order: 10
  selector: has(hep)
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    destination: {ports: [8000]}
`)
	c.WaitFor("outside -> n1:8000 allowed by a policy the restarted agent followed", 20*time.Second, func() bool {
		return c.canConnect(outside, n1.IP, "8000")
	})
	c.expectConns(t, conn{"outside -> n1:22 (failsafe)", outside, n1.IP, "22", true})
}

// hostDenyAll is a host endpoint for n's eth0 (label hep=<node>) and a
// policy denying everything in and out of it (order 100).
func hostDenyAll(n *Node) string {
	return fmt.Sprintf(`apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata:
  name: %[1]s-eth0
  labels: {hep: %[1]s}
spec:
  node: %[1]s
  interfaceName: eth0
  expectedIPs: [%[2]s]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: hosts-deny-all}
spec:
  order: 100
  selector: has(hep)
  types: [Ingress, Egress]
  ingress:
  - action: Deny
  egress:
  - action: Deny
`, n.Name, n.IP)
}
