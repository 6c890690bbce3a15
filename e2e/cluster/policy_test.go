package cluster

import (
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/resources"
)

// canConnect reports whether a TCP echo from ns to ip:port completes
// within 3 s (a dropped SYN times out).
func (c *Cluster) canConnect(ns, ip, port string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	out, err := helperCmd(ctx, ns, "dial", net.JoinHostPort(ip, port), "hi").CombinedOutput()
	return err == nil && strings.Contains(string(out), "echo=hi")
}

// wepName is the WorkloadEndpoint the CNI plugin wrote for a pod of the
// netns cluster (orchestrator cni, the container is the workload).
func wepName(t *testing.T, p *Pod) string {
	t.Helper()
	name, err := resources.WEPIdentifiers{Node: p.Node.Name, Orchestrator: "cni", Workload: p.ContainerID, ContainerID: p.ContainerID, Endpoint: "eth0"}.Name()
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// Seed 001's tenant, enforced in nftables by the agents with real TCP:
// frontend x2 and another workload on n1, the database on n2; the
// database's profile admits TCP 3306 from the frontends only. Then the
// seed's pitfall (a NetworkPolicy whose first ingress rule denies
// everything) cuts the frontends off too, and `calicoctl policy explain`
// names the rule. An unrelated policy change does not cut an allowed
// stream.
func TestPrivilegedPolicySeed001(t *testing.T) {
	c := NewCluster(t)
	env := poolEnv("10.244.0.0/16", "Always", "CALICO_POLICY=enforce")
	n1 := c.AddNode("n1", 11, env...)
	n2 := c.AddNode("n2", 12, env...)
	fe1, fe2, other, db := n1.AddPod("frontend1"), n1.AddPod("frontend2"), n1.AddPod("other"), n2.AddPod("database")
	for _, pl := range []struct {
		p     *Pod
		label string
	}{{fe1, "app=frontend"}, {fe2, "app=frontend"}, {other, "app=other"}, {db, "app=database"}} {
		c.MustCalicoctl("label", "workloadendpoint", wepName(t, pl.p), pl.label, "-n", "default")
	}
	// With the network's profile (created by the CNI plugin) pods of the
	// network reach each other.
	for _, port := range []string{"3306", "3307"} {
		c.startHelper("db-"+port, db.NS, "serve", net.JoinHostPort(db.IP, port))
	}
	c.WaitFor("other -> database:3306 through the network's profile", 20*time.Second, func() bool {
		return c.canConnect(other.NS, db.IP, "3306")
	})

	c.Apply(`apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: profile-database}
spec:
  ingress:
  - action: Allow
    protocol: TCP
    source: {selector: app == 'frontend'}
    destination: {ports: [3306]}
  egress:
  - action: Allow
`)
	c.MustCalicoctl("patch", "workloadendpoint", wepName(t, db), "-n", "default", "-p", `{"spec":{"profiles":["profile-database"]}}`)
	c.WaitFor("other -> database:3306 denied by the database's profile", 20*time.Second, func() bool {
		return !c.canConnect(other.NS, db.IP, "3306")
	})
	for _, tc := range []struct {
		name string
		from *Pod
		port string
		want bool
	}{
		{"frontend1 -> database:3306", fe1, "3306", true},
		{"frontend2 -> database:3306", fe2, "3306", true},
		{"frontend1 -> database:3307", fe1, "3307", false},
		{"other -> database:3306", other, "3306", false},
	} {
		if got := c.canConnect(tc.from.NS, db.IP, tc.port); got != tc.want {
			t.Errorf("%s: connected=%v, want %v", tc.name, got, tc.want)
		}
	}

	// The rule counters on the database's node: the profile's allow rule
	// counted the frontends' packets, the endpoint's final drop the others'.
	out, err := exec.Command("ip", "netns", "exec", n2.NS, binPath, "node", "status", "--policy", "-o", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("node status --policy on n2: %v\n%s", err, out)
	}
	var counters []struct {
		Chain, Comment string
		Packets        uint64
	}
	if err := json.Unmarshal(out, &counters); err != nil {
		t.Fatalf("node status --policy -o json: %v\n%s", err, out)
	}
	counted := map[string]bool{}
	for _, c := range counters {
		if c.Packets > 0 {
			counted[strings.SplitN(c.Chain, "-", 3)[0]+"-"+strings.SplitN(c.Chain, "-", 3)[1]] = true
		}
	}
	if !counted["cali-pri"] || !counted["cali-tw"] {
		t.Errorf("node status --policy: want packets counted in the profile's chain and the endpoint's chain, got %v\n%s", counted, out)
	}

	// An allowed stream survives an unrelated policy change.
	stream := c.startHelper("stream-fe2-db", fe2.NS, "stream", net.JoinHostPort(db.IP, "3306"))
	c.WaitFor("the stream to pass 20 echoes", 20*time.Second, func() bool { return StreamProgress(stream) >= 20 })
	c.Apply(`apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: others-no-egress}
spec:
  selector: app == 'other'
  types: [Egress]
  egress:
  - action: Deny
`)
	c.WaitFor("other's egress denied", 20*time.Second, func() bool { return !c.canConnect(other.NS, fe1.IP, "3306") })
	before := StreamProgress(stream)
	c.WaitFor("the stream to go on", 20*time.Second, func() bool { return StreamProgress(stream) >= before+20 })
	sum, err := StopStream(stream)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Err != "<nil>" || sum.MaxGap > 2*time.Second {
		t.Errorf("the allowed stream was disturbed by an unrelated policy: %+v", sum)
	}

	// Seed 001's pitfall: deny first, then allow the frontends: the deny
	// decides for everyone.
	c.Apply(`apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: namespace-default, namespace: default}
spec:
  selector: app == 'database'
  ingress:
  - action: Deny
  - action: Allow
    source: {selector: app == 'frontend'}
`)
	c.WaitFor("frontend1 -> database:3306 denied by the deny-first policy", 20*time.Second, func() bool {
		return !c.canConnect(fe1.NS, db.IP, "3306")
	})
	out = []byte(c.MustCalicoctl("policy", "explain", "--from", wepName(t, fe1), "--to", wepName(t, db), "--protocol", "tcp", "--port", "3306", "-n", "default"))
	if !strings.Contains(string(out), "namespace-default") || !strings.Contains(strings.ToLower(string(out)), "deny") {
		t.Errorf("policy explain does not name the deny-first rule:\n%s", out)
	}
}
