package agent

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/node/config"
	"github.com/opencalico/calicoctl/node/policy"
	"github.com/opencalico/calicoctl/resources"
)

// fakePolicyWriter records the compiled tables (the real writer is tested
// against nftables in node/policy; enforcement with real connections in
// the netns cluster e2e).
type fakePolicyWriter struct {
	mu      sync.Mutex
	applied []policy.Desired
	resyncs int
}

func (f *fakePolicyWriter) Apply(_ context.Context, d policy.Desired) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, d)
	return nil
}

func (f *fakePolicyWriter) ForceResync() { f.mu.Lock(); f.resyncs++; f.mu.Unlock() }

func (f *fakePolicyWriter) wait(t *testing.T, what string, pred func(policy.Desired) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		f.mu.Lock()
		ok := len(f.applied) > 0 && pred(f.applied[len(f.applied)-1])
		n := len(f.applied)
		f.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the policy writer never got %s (%d tables applied)", what, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The agent compiles policy from the followed state and hands it to the
// writer on every change: a local endpoint gets its chains, a policy that
// selects it its own, and a policy change reaches the writer.
func TestRunCompilesPolicy(t *testing.T) {
	e := newEnv(t)
	envCfg, err := config.FromEnviron([]string{"NODENAME=node-a", "IP=10.0.0.5/24", "CALICO_IPV4POOL_CIDR=10.244.0.0/16", "CALICO_POLICY=enforce"})
	if err != nil {
		t.Fatal(err)
	}
	if envCfg.Policy != config.PolicyEnforce {
		t.Fatalf("CALICO_POLICY=enforce read as %q", envCfg.Policy)
	}
	w := &fakePolicyWriter{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			Env: envCfg, NodeName: "node-a", Datastore: e.ds, IPAM: e.store, ClusterType: "etcd", CalicoVersion: "test",
			Host:      staticHost{{Name: "eth0", Up: true, Addrs: []netip.Prefix{pfx("10.0.0.5/24")}}},
			Dataplane: newFakeDataplane(), SyncInterval: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler), Policy: w,
		})
	}()
	t.Cleanup(func() { cancel(); <-done })

	w.wait(t, "the base chains", func(d policy.Desired) bool { return d.Chain(policy.ChainForward) != nil })
	e.wep(t, "node-a", "db", "calidb0000001", []string{"10.244.0.9/32"})
	w.wait(t, "the endpoint's chains", func(d policy.Desired) bool { return d.Chain("cali-tw-calidb0000001") != nil })

	g := &resources.GlobalNetworkPolicy{}
	g.Name = "db-3306"
	g.Spec.Selector = "all()"
	tcp := resources.ProtocolFromString("TCP")
	port, err := resources.ParsePort("3306")
	if err != nil {
		t.Fatal(err)
	}
	g.Spec.Ingress = []resources.Rule{{Action: resources.ActionAllow, Protocol: &tcp,
		Destination: resources.EntityRule{Ports: []resources.Port{port}}}}
	e.create(t, g)
	w.wait(t, "the policy's chain", func(d policy.Desired) bool {
		for _, c := range d.Chains {
			if strings.HasPrefix(c.Name, "cali-pi-") && strings.Contains(c.Name, "db-3306") {
				for _, r := range c.Rules {
					if strings.Contains(r.Rule, "3306") {
						return true
					}
				}
			}
		}
		return false
	})
}
