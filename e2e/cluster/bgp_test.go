package cluster

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The core switch of seed 004, played by BIRD: one leg per rack, a LAN of
// hosts behind it. It peers (iBGP, AS 64512) with the route reflectors of
// each rack, learns every pod block and the service range from them into
// its kernel, and advertises only the LAN.
const coreBIRD = `router id 10.99.0.254;
protocol device { }
protocol direct { ipv4; interface "lan*"; }
protocol kernel { ipv4 { import none; export all; }; }
template bgp border {
  local as 64512;
  direct;
  graceful restart;
  ipv4 { import all; export where net = 192.168.100.0/24; next hop self; };
}
protocol bgp m1 from border { neighbor 10.99.0.11 as 64512; }
protocol bgp m2 from border { neighbor 10.99.1.12 as 64512; }
`

// allowLAN lets the LAN behind the core reach every pod (the agents enforce
// policy, and on etcd a pod's network profile only admits its own
// network); other traffic passes on to the profiles.
const allowLAN = `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: allow-lan}
spec:
  selector: all()
  types: [Ingress]
  ingress:
  - action: Allow
    source: {nets: [192.168.100.0/24]}
  - action: Pass
`

// BGP end to end on two racks (10.99.0.0/24: m1, w1; 10.99.1.0/24: m2,
// w2), no encapsulation: first the node-to-node mesh, then seed 004's
// route reflectors (m1, m2) peering with a core switch, the mesh off. Pods
// on different racks reach each other through the core, which learned
// their blocks from the reflectors; a host on the LAN behind the core
// reaches pods; the service range is advertised; `calicoctl node status`
// shows the sessions as upstream's does.
func TestPrivilegedBGPMeshThenRouteReflectors(t *testing.T) {
	c := NewCluster(t)
	c.Apply(allowLAN)
	env := poolEnv("10.244.0.0/16", "Never")
	core := c.AddRouter("core", 254, 0, 1)
	lanNS, _ := core.AddLAN("lan", "192.168.100")
	m1 := c.AddNodeOn("m1", 0, 11, env...)
	w1 := c.AddNodeOn("w1", 0, 21, env...)
	m2 := c.AddNodeOn("m2", 1, 12, env...)
	w2 := c.AddNodeOn("w2", 1, 22, env...)
	nodes := []*Node{m1, w1, m2, w2}
	// The core switch is every rack's gateway (the hub stays the way to
	// the datastore and the default route of the core itself).
	for _, n := range nodes {
		sn := strings.Split(n.IP, ".")[2]
		c.Run("ip", "-n", n.NS, "route", "replace", "default", "via", "10.99."+sn+".254")
	}
	pods := map[*Node]*Pod{}
	for _, n := range nodes {
		pods[n] = n.AddPod("p-" + n.Name)
	}

	// 1. The full mesh: every node has the other three Established.
	for _, n := range nodes {
		var others []string
		for _, o := range nodes {
			if o != n {
				others = append(others, o.IP)
			}
		}
		waitSessions(c, n, "node-to-node mesh", others...)
	}
	out, _ := m1.NodeStatus()
	for _, want := range []string{"Calico process is running.", "IPv4 BGP status", "PEER ADDRESS", "PEER TYPE", "STATE", "SINCE", "INFO"} {
		if !strings.Contains(out, want) {
			t.Errorf("node status on m1 lacks %q:\n%s", want, out)
		}
	}
	// Learned from the mesh: a block on the other rack is routed through
	// the core (the next hop is not on m1's subnet: resolved through the
	// kernel's route to it).
	c.WaitRoute(m1.NS, blockOf(pods[w2].IP, 26), "via 10.99.0.254 dev eth0 proto bird")
	c.WaitRoute(w2.NS, blockOf(pods[w1].IP, 26), "via 10.99.1.254 dev eth0 proto bird")

	// 2. Seed 004 in seed 000's order: m1 and m2 become route reflectors,
	// everyone peers with them, they peer with each other and with the
	// core; only then does the mesh go.
	core.StartBIRD(coreBIRD)
	for _, n := range []*Node{m1, m2} {
		c.MustCalicoctl("label", "node", n.Name, "route-reflector=true")
		c.MustCalicoctl("patch", "node", n.Name, "-p", `{"spec":{"bgp":{"routeReflectorClusterID":"224.0.0.1"}}}`)
	}
	c.Apply(`apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: peer-to-rrs}
spec:
  nodeSelector: "!has(route-reflector)"
  peerSelector: has(route-reflector)
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: rr-mesh}
spec:
  nodeSelector: has(route-reflector)
  peerSelector: has(route-reflector)
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: rr-border-rack0}
spec:
  node: m1
  peerIP: 10.99.0.254
  asNumber: 64512
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: rr-border-rack1}
spec:
  node: m2
  peerIP: 10.99.1.254
  asNumber: 64512
`)
	waitSessions(c, w1, "node specific", m1.IP, m2.IP)
	waitSessions(c, w2, "node specific", m1.IP, m2.IP)
	for _, proto := range []string{"m1", "m2"} {
		c.WaitFor("BIRD session "+proto+" Established", 60*time.Second, func() bool {
			o, _ := core.Birdc("show", "protocols", proto)
			return strings.Contains(o, "Established")
		})
	}
	// The core learned every block, into its kernel: pods on different
	// racks reach each other through it. A TCP stream runs across the
	// racks while the mesh is switched off.
	for _, n := range nodes {
		blk := blockOf(pods[n].IP, 26)
		c.WaitFor("core route to "+blk+" via "+n.IP, 30*time.Second, func() bool {
			return strings.Contains(core.Routes(), blk+" via "+n.IP)
		})
	}
	c.EchoServer(pods[w2])
	stream := c.startHelper("stream-w1-w2", pods[w1].NS, "stream", net.JoinHostPort(pods[w2].IP, echoPort))
	c.WaitFor("the stream to pass 20 echoes", 20*time.Second, func() bool { return StreamProgress(stream) >= 20 })

	c.Apply(`apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec:
  nodeToNodeMeshEnabled: false
  asNumber: 64512
  serviceClusterIPs:
  - cidr: 10.96.0.0/12
`)
	waitSessions(c, m1, "node specific", m2.IP, w1.IP, w2.IP, "10.99.0.254")
	c.WaitFor("w1 without mesh sessions", 30*time.Second, func() bool {
		out, _ := w1.NodeStatus()
		return !strings.Contains(out, "node-to-node mesh") && sessionLine(out, m1.IP, "node specific")
	})
	c.WaitFor("core learned the service range", 30*time.Second, func() bool {
		o, _ := core.Birdc("show", "route", "for", "10.96.0.1")
		return strings.Contains(o, "10.96.0.0/12")
	})
	// Nodes learned the LAN from the core through their reflectors; next
	// hops on the other rack resolve to the rack's switch, never to a
	// reflector (the service range learned over the node subnets must not
	// steer the resolution).
	c.WaitRoute(w2.NS, "192.168.100.0/24", "via 10.99.1.254 dev eth0 proto bird")
	c.WaitRoute(w2.NS, blockOf(pods[w1].IP, 26), "via 10.99.1.254 dev eth0 proto bird")
	c.WaitRoute(w1.NS, blockOf(pods[w2].IP, 26), "via 10.99.0.254 dev eth0 proto bird")
	before := StreamProgress(stream)
	c.WaitFor("the stream to go on after the switch", 20*time.Second, func() bool { return StreamProgress(stream) >= before+20 })
	sum, err := StopStream(stream)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stream across the switch: %+v", sum)
	if sum.Err != "<nil>" || sum.MaxGap > 2*time.Second || sum.Sent-sum.Recv > 10 {
		t.Errorf("the stream did not survive the mesh -> reflectors switch: %+v", sum)
	}

	// Traffic: across racks through the core, and from the LAN to pods.
	c.MustPing([2]*Pod{pods[w1], pods[w2]}, [2]*Pod{pods[w2], pods[m1]}, [2]*Pod{pods[m2], pods[w1]})
	c.MustEcho(pods[w2], pods[w1], pods[m1])
	for _, n := range nodes {
		if err := c.Ping(lanNS, pods[n].IP, 10*time.Second); err != nil {
			t.Errorf("LAN host -> pod on %s: %v", n.Name, err)
		}
	}
	// TCP from the LAN host to every pod, through the core, unencapsulated.
	for _, n := range nodes {
		if n != w2 {
			c.EchoServer(pods[n])
		}
	}
	for _, n := range nodes {
		if peer, err := c.Dial(lanNS, pods[n].IP, 15*time.Second); err != nil || peer != "192.168.100.10" {
			t.Errorf("LAN host -> pod on %s (TCP): peer %q, %v", n.Name, peer, err)
			c.tracePath(lanNS, pods[n], core.NS, m1.NS, m2.NS, n.NS)
			for _, o := range nodes {
				st, _ := o.NodeStatus("--routes")
				rg, _ := exec.Command("ip", "-n", o.NS, "route", "get", "10.99.0.254").CombinedOutput()
				rg2, _ := exec.Command("ip", "-n", o.NS, "route", "get", "10.99.0.11").CombinedOutput()
				t.Logf("--- %s: node status --routes ---\n%s--- route get ---\n%s%s", o.Name, st, rg, rg2)
			}
		}
	}

	// 3. Status from anywhere: w1 publishes into the CalicoNodeStatus an
	// operator created, and `node status --node w1` on the datastore host
	// reads it.
	c.Apply(`apiVersion: projectcalico.org/v3
kind: CalicoNodeStatus
metadata: {name: w1-status}
spec:
  node: w1
  classes: [Agent, BGP, Routes]
  updatePeriodSeconds: 1
`)
	var remote string
	c.WaitFor("node status --node w1 from the hub", 30*time.Second, func() bool {
		remote, _ = c.Calicoctl("node", "status", "--node", "w1")
		return sessionLine(remote, m1.IP, "node specific") && sessionLine(remote, m2.IP, "node specific")
	})

	// 4. An agent restart withdraws nothing: the core keeps w1's block
	// (graceful restart, no Cease) and w1 keeps its learned routes.
	mon := c.monitorRoutes(core.NS, "core")
	wMon := c.monitorRoutes(w1.NS, "w1")
	w1.StopAgent()
	if err := c.Ping(lanNS, pods[w1].IP, 5*time.Second); err != nil {
		t.Errorf("LAN host -> pod on w1 while its agent is down: %v", err)
	}
	w1.StartAgent()
	waitSessions(c, w1, "node specific", m1.IP, m2.IP)
	time.Sleep(2 * time.Second)
	if log := mon(); strings.Contains(log, "Deleted") && strings.Contains(log, blockOf(pods[w1].IP, 26)) {
		t.Errorf("the core withdrew w1's block across w1's restart:\n%s", log)
	}
	if log := wMon(); strings.Contains(log, "Deleted") && strings.Contains(log, "proto bird") {
		t.Errorf("w1 withdrew BGP-learned routes across its restart:\n%s", log)
	}
	if err := c.Ping(lanNS, pods[w1].IP, 5*time.Second); err != nil {
		t.Errorf("LAN host -> pod on w1 after its restart: %v", err)
	}
}

// monitorRoutes records `ip monitor route` in ns; the returned function
// reads what it saw so far.
func (c *Cluster) monitorRoutes(ns, name string) func() string {
	c.t.Helper()
	path := filepath.Join(c.Dir(), name+"-route-monitor.log")
	f, err := os.Create(path)
	if err != nil {
		c.t.Fatal(err)
	}
	mon := exec.Command("ip", "-n", ns, "monitor", "route")
	mon.Stdout, mon.Stderr = f, f
	if err := mon.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.Track(mon)
	c.t.Cleanup(func() { f.Close() })
	return func() string {
		b, _ := os.ReadFile(path)
		return string(b)
	}
}

// waitSessions waits until `calicoctl node status` on n lists every peer
// address with peer type typ as Established.
func waitSessions(c *Cluster, n *Node, typ string, peers ...string) {
	c.t.Helper()
	var out string
	c.WaitFor(fmt.Sprintf("%s: %s sessions to %v Established", n.Name, typ, peers), 60*time.Second, func() bool {
		out, _ = n.NodeStatus()
		for _, p := range peers {
			if !sessionLine(out, p, typ) {
				return false
			}
		}
		return true
	})
}

func sessionLine(out, peer, typ string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "| "+peer+" ") && strings.Contains(l, typ) && strings.Contains(l, "Established") {
			return true
		}
	}
	return false
}

// Seed 001's AS per rack: every rack is an AS (rack0 65001, rack1 65002),
// its nodes peer (iBGP, TCP-MD5) only with the rack's switch, the mesh is
// off from the start. One BIRD plays both racks' switches (a local AS per
// session) and reflects routes between them. Passwords come from a
// Secret's files (CALICO_BGP_SECRETS_DIR), as on an etcd cluster.
const rackBIRD = `router id 10.99.0.254;
protocol device { }
protocol direct { ipv4; interface "lan*"; }
protocol kernel { ipv4 { import none; export all; }; }
template bgp rack {
  direct;
  rr client;
  password "s3cret";
  graceful restart;
  ipv4 { import all; export all; next hop self; };
}
protocol bgp r0a from rack { local as 65001; neighbor 10.99.0.11 as 65001; }
protocol bgp r0b from rack { local as 65001; neighbor 10.99.0.21 as 65001; }
protocol bgp r1a from rack { local as 65002; neighbor 10.99.1.12 as 65002; }
protocol bgp r1b from rack { local as 65002; neighbor 10.99.1.22 as 65002; }
`

func TestPrivilegedBGPASPerRackWithPassword(t *testing.T) {
	c := NewCluster(t)
	c.Apply(allowLAN)
	secrets := filepath.Join(c.Dir(), "bgp-secrets")
	if err := os.MkdirAll(filepath.Join(secrets, "bgp-pw"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secrets, "bgp-pw", "password"), []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Apply(`apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec:
  nodeToNodeMeshEnabled: false
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: rack0-tor}
spec:
  nodeSelector: rack == 'rack0'
  peerIP: 10.99.0.254
  asNumber: 65001
  password: {secretKeyRef: {name: bgp-pw, key: password}}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: rack1-tor}
spec:
  nodeSelector: rack == 'rack1'
  peerIP: 10.99.1.254
  asNumber: 65002
  password: {secretKeyRef: {name: bgp-pw, key: password}}
`)
	core := c.AddRouter("tor", 254, 0, 1)
	lanNS, _ := core.AddLAN("lan", "192.168.100")
	core.StartBIRD(rackBIRD)
	type spec struct {
		name        string
		subnet, oct int
		as, rack    string
	}
	var nodes []*Node
	for _, s := range []spec{{"r0a", 0, 11, "65001", "rack0"}, {"r0b", 0, 21, "65001", "rack0"},
		{"r1a", 1, 12, "65002", "rack1"}, {"r1b", 1, 22, "65002", "rack1"}} {
		n := c.AddNodeOn(s.name, s.subnet, s.oct, poolEnv("10.244.0.0/16", "Never", "AS="+s.as, "CALICO_BGP_SECRETS_DIR="+secrets)...)
		c.Run("ip", "-n", n.NS, "route", "replace", "default", "via", fmt.Sprintf("10.99.%d.254", s.subnet))
		c.MustCalicoctl("label", "node", s.name, "rack="+s.rack)
		nodes = append(nodes, n)
	}
	pods := map[*Node]*Pod{}
	for _, n := range nodes {
		pods[n] = n.AddPod("p-" + n.Name)
	}
	for _, proto := range []string{"r0a", "r0b", "r1a", "r1b"} {
		c.WaitFor("BIRD session "+proto+" Established (TCP-MD5)", 60*time.Second, func() bool {
			o, _ := core.Birdc("show", "protocols", proto)
			return strings.Contains(o, "Established")
		})
	}
	waitSessions(c, nodes[0], "node specific", "10.99.0.254")
	waitSessions(c, nodes[3], "node specific", "10.99.1.254")
	for _, n := range nodes {
		blk := blockOf(pods[n].IP, 26)
		c.WaitFor("tor route to "+blk+" via "+n.IP, 30*time.Second, func() bool {
			return strings.Contains(core.Routes(), blk+" via "+n.IP)
		})
	}
	// The other rack's blocks come from the switch (next hop self).
	c.WaitRoute(nodes[0].NS, blockOf(pods[nodes[3]].IP, 26), "via 10.99.0.254 dev eth0 proto bird")
	c.WaitRoute(nodes[3].NS, blockOf(pods[nodes[1]].IP, 26), "via 10.99.1.254 dev eth0 proto bird")
	c.MustPing([2]*Pod{pods[nodes[0]], pods[nodes[3]]}, [2]*Pod{pods[nodes[2]], pods[nodes[1]]})
	for _, n := range nodes {
		if err := c.Ping(lanNS, pods[n].IP, 10*time.Second); err != nil {
			t.Errorf("LAN host -> pod on %s: %v", n.Name, err)
		}
	}
}

// tracePath logs, for a failed TCP check from fromNS to p, a packet capture
// in every namespace on the way while one more dial runs, and their routes
// and connection tracking tables.
func (c *Cluster) tracePath(fromNS string, p *Pod, nss ...string) {
	c.t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		c.t.Logf("no tcpdump for a trace: %v", err)
		return
	}
	var caps []*exec.Cmd
	var files []string
	for i, ns := range nss {
		f := filepath.Join(c.Dir(), fmt.Sprintf("trace-%d.txt", i))
		cmd := exec.Command("ip", "netns", "exec", ns, "tcpdump", "-lnni", "any", "-c", "60", "host", p.IP)
		out, err := os.Create(f)
		if err != nil {
			continue
		}
		cmd.Stdout, cmd.Stderr = out, out
		if cmd.Start() == nil {
			caps = append(caps, cmd)
			files = append(files, f)
		}
		defer out.Close()
	}
	time.Sleep(time.Second)
	_, err := c.Dial(fromNS, p.IP, 4*time.Second)
	time.Sleep(time.Second)
	for _, cmd := range caps {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	c.t.Logf("trace dial: %v", err)
	for i, f := range files {
		b, _ := os.ReadFile(f)
		ct, _ := exec.Command("ip", "netns", "exec", nss[i], "conntrack", "-L", "-d", p.IP).CombinedOutput()
		c.t.Logf("--- %s: capture ---\n%s--- routes ---\n%s--- conntrack ---\n%s", nss[i], b, c.Routes(nss[i]), ct)
	}
}
