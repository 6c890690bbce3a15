package client

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/datastore/etcd"
	"github.com/opencalico/calicoctl/internal/etcdserver"
	"github.com/opencalico/calicoctl/resources"
)

func newClient(t *testing.T) *Client {
	t.Helper()
	srv := etcdserver.StartForTest(t)
	ds, err := etcd.New(context.Background(), etcd.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	c := New(ds)
	if err := c.EnsureInitialized(context.Background(), InitOptions{}); err != nil {
		t.Fatal(err)
	}
	return c
}

func pool(name, cidr string) *resources.IPPool {
	p := &resources.IPPool{}
	resources.SetTypeMeta(p)
	p.Name = name
	p.Spec.CIDR = cidr
	return p
}

func TestEnsureInitializedCreatesClusterInfoAndTiers(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	// Idempotent: a second run changes nothing and fails on nothing.
	if err := c.EnsureInitialized(ctx, InitOptions{CalicoVersion: "v3.32.1", ClusterType: "etcd"}); err != nil {
		t.Fatal(err)
	}
	r, err := c.Get(ctx, resources.Key{Kind: "ClusterInformation", Name: "default"})
	if err != nil {
		t.Fatal(err)
	}
	ci := r.(*resources.ClusterInformation)
	if len(ci.Spec.ClusterGUID) != 32 || ci.Spec.DatastoreReady == nil || !*ci.Spec.DatastoreReady {
		t.Errorf("ClusterInformation spec = %+v", ci.Spec)
	}
	if ci.Spec.CalicoVersion != "v3.32.1" || ci.Spec.ClusterType != "etcd" {
		t.Errorf("version/type not filled in: %+v", ci.Spec)
	}
	for _, name := range []string{"default", "kube-admin", "kube-baseline"} {
		if _, err := c.Get(ctx, resources.Key{Kind: "Tier", Name: name}); err != nil {
			t.Errorf("tier %s: %v", name, err)
		}
	}
}

func TestCreateDefaultsValidatesAndStampsMetadata(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	out, err := c.Create(ctx, pool("p1", "10.1.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	p := out.(*resources.IPPool)
	if p.UID == "" || p.CreationTimestamp.IsZero() || p.ResourceVersion == "" {
		t.Errorf("metadata not stamped: %+v", p.ObjectMeta)
	}
	if p.Spec.BlockSize != 26 || p.Spec.NodeSelector != "all()" {
		t.Errorf("defaults not applied: %+v", p.Spec)
	}
	if _, err := c.Create(ctx, pool("p2", "10.1.128.0/17")); err == nil || !strings.Contains(err.Error(), "overlaps with IPPool(p1)") {
		t.Errorf("overlapping pool: err = %v", err)
	}
	if _, err := c.Create(ctx, pool("p3", "10.2.0.0/33")); err == nil || !strings.Contains(err.Error(), "spec.cidr") {
		t.Errorf("invalid CIDR: err = %v", err)
	}
	if _, err := c.Get(ctx, resources.Key{Kind: "IPPool", Name: "p3"}); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("invalid pool was written: %v", err)
	}
	changed := pool("p1", "10.9.0.0/16")
	if _, err := c.Update(ctx, changed); err == nil || !strings.Contains(err.Error(), "cannot be modified") {
		t.Errorf("CIDR change: err = %v", err)
	}
}

func TestUpdateWithStaleRevisionIsRejected(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	out, err := c.Create(ctx, pool("p1", "10.1.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	stale := out.GetResourceVersion()
	fresh := resources.DeepCopy(out)
	fresh.SetLabels(map[string]string{"who": "first"})
	if _, err := c.Update(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	second := resources.DeepCopy(out)
	second.SetLabels(map[string]string{"who": "second"})
	second.SetResourceVersion(stale)
	_, err = c.Update(ctx, second)
	var ood *OutOfDateError
	if !errors.As(err, &ood) || !errors.Is(err, datastore.ErrConflict) || ood.Given != stale {
		t.Fatalf("stale update: err = %v", err)
	}
	got, _ := c.Get(ctx, resources.Key{Kind: "IPPool", Name: "p1"})
	if got.GetLabels()["who"] != "first" {
		t.Errorf("first write lost: labels = %v", got.GetLabels())
	}
}

func TestConcurrentReplacesFromSameRevisionOneWins(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	out, err := c.Create(ctx, pool("p1", "10.1.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			r := resources.DeepCopy(out)
			r.SetLabels(map[string]string{"writer": string(rune('a' + i))})
			_, errs[i] = c.Update(ctx, r)
		})
	}
	wg.Wait()
	ok := 0
	for _, e := range errs {
		if e == nil {
			ok++
		} else if !errors.Is(e, datastore.ErrConflict) {
			t.Errorf("unexpected error: %v", e)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d racing replaces succeeded, want exactly 1", ok, n)
	}
}

func TestKubernetesPoliciesAndClusterInfoAreProtected(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	np := &resources.NetworkPolicy{}
	resources.SetTypeMeta(np)
	np.Name, np.Namespace = "knp.default.allow", "default"
	if _, err := c.Create(ctx, np); !errors.Is(err, datastore.ErrNotSupported) {
		t.Errorf("knp create: %v", err)
	}
	if _, err := c.Delete(ctx, resources.Key{Kind: "NetworkPolicy", Namespace: "default", Name: "knp.default.allow"}, ""); !errors.Is(err, datastore.ErrNotSupported) {
		t.Errorf("knp delete: %v", err)
	}
	ci := &resources.ClusterInformation{}
	resources.SetTypeMeta(ci)
	ci.Name = "default"
	_, err := c.Apply(ctx, ci)
	if err == nil || err.Error() != "operation apply is not supported on ClusterInformation(default): resource is readonly" {
		t.Errorf("apply ClusterInformation: %v", err)
	}
}

func TestPolicyInMissingTierIsRejected(t *testing.T) {
	c := newClient(t)
	gnp := &resources.GlobalNetworkPolicy{}
	resources.SetTypeMeta(gnp)
	gnp.Name = "security.allow"
	gnp.Spec.Tier = "security"
	_, err := c.Create(context.Background(), gnp)
	if err == nil || !strings.Contains(err.Error(), "tier 'security' does not exist") {
		t.Errorf("err = %v", err)
	}
}

// A file holding a Tier and then a policy in it is written as upstream
// writes it, one document after another: the policy finds its tier. A
// policy in a tier that is neither stored nor in the batch still fails.
func TestCreateManyPolicyAfterItsTier(t *testing.T) {
	c := newClient(t)
	tier := &resources.Tier{}
	tier.Name = "security"
	order := 100.0
	tier.Spec.Order = &order
	gnp := func(name, tier string) *resources.GlobalNetworkPolicy {
		g := &resources.GlobalNetworkPolicy{}
		g.Name, g.Spec.Tier = name, tier
		return g
	}
	rs := []resources.Resource{gnp("security.gate", "security"), tier, gnp("lost.x", "lost"), gnp("plain", "")}
	for _, r := range rs {
		resources.SetTypeMeta(r)
	}
	_, errs := c.CreateMany(context.Background(), rs)
	for i, want := range []string{"", "", "tier 'lost' does not exist", ""} {
		switch {
		case want == "" && errs[i] != nil:
			t.Errorf("document %d: %v", i, errs[i])
		case want != "" && (errs[i] == nil || !strings.Contains(errs[i].Error(), want)):
			t.Errorf("document %d: err %v, want %q", i, errs[i], want)
		}
	}
	if _, err := c.Get(context.Background(), resources.Key{Kind: "GlobalNetworkPolicy", Name: "security.gate"}); err != nil {
		t.Errorf("the policy in the batch's tier was not written: %v", err)
	}
}

func TestClusterTypes(t *testing.T) {
	for _, tc := range []struct{ cur, add, want string }{
		{"", "kdd", "kdd"},
		{"k8s,bgp", "kdd", "k8s,bgp,kdd"},
		{"k8s,bgp,kdd", "kdd", "k8s,bgp,kdd"},
		{"etcd", "", "etcd"},
		{"k8s, bgp,", "bgp,typha", "k8s,bgp,typha"},
	} {
		if got := MergeClusterTypes(tc.cur, tc.add); got != tc.want {
			t.Errorf("MergeClusterTypes(%q, %q) = %q, want %q", tc.cur, tc.add, got, tc.want)
		}
	}
	if got := KDDClusterType("k8s,bgp,"); got != "k8s,bgp,kdd" {
		t.Errorf("KDDClusterType = %q", got)
	}
	if got := KDDClusterType(""); got != "kdd" {
		t.Errorf("KDDClusterType(\"\") = %q", got)
	}
}
