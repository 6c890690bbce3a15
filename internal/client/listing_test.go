package client

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

func tier(name string, order *float64) *resources.Tier {
	t := &resources.Tier{}
	resources.SetTypeMeta(t)
	t.Name = name
	t.Spec.Order = order
	return t
}

func fptr(f float64) *float64 { return &f }

// TestListTiersInUpstreamOrder: tiers come back by order, unset last, ties
// by name, whatever order the datastore keeps them in.
func TestListTiersInUpstreamOrder(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	for _, tr := range []*resources.Tier{tier("security", fptr(100)), tier("platform", fptr(200)), tier("alpha", fptr(200)), tier("zz-unset", nil), tier("aa-unset", nil)} {
		if _, err := c.Create(ctx, tr); err != nil {
			t.Fatalf("create tier %s: %v", tr.Name, err)
		}
	}
	l, err := c.List(ctx, datastore.ListOptions{Kind: "Tier"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range l.Items {
		names = append(names, r.GetName())
	}
	want := "security,alpha,platform,kube-admin,default,kube-baseline,aa-unset,zz-unset"
	if got := strings.Join(names, ","); got != want {
		t.Errorf("tier order %s, want %s", got, want)
	}
}

// TestDefaultAllowProfileOnEtcd: the built-in profile is listed and got
// without being stored, and every write to it is refused naming it.
func TestDefaultAllowProfileOnEtcd(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	key := resources.Key{Kind: "Profile", Name: resources.DefaultAllowProfileName}
	r, err := c.Get(ctx, key)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	p := r.(*resources.Profile)
	if p.ResourceVersion != "1" || len(p.Spec.Ingress) != 1 || p.Spec.Ingress[0].Action != resources.ActionAllow ||
		len(p.Spec.Egress) != 1 || p.Spec.Egress[0].Action != resources.ActionAllow {
		t.Errorf("default-allow = %+v", p)
	}
	if _, err := c.DS.Get(ctx, key); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("default-allow is stored in etcd (err %v), want it served only", err)
	}
	own := &resources.Profile{}
	resources.SetTypeMeta(own)
	own.Name = "mine"
	if _, err := c.Create(ctx, own); err != nil {
		t.Fatal(err)
	}
	l, err := c.List(ctx, datastore.ListOptions{Kind: "Profile"})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 2 || l.Items[0].GetName() != resources.DefaultAllowProfileName || l.Items[1].GetName() != "mine" {
		t.Errorf("list = %v", l.Items)
	}
	if l, _ := c.List(ctx, datastore.ListOptions{Kind: "Profile", NamePrefix: "mi"}); len(l.Items) != 1 {
		t.Errorf("a name prefix that excludes it still lists default-allow: %v", l.Items)
	}

	write := func(op string, f func(r resources.Resource) error) {
		w := resources.DefaultAllowProfile()
		w.ResourceVersion = ""
		err := f(w)
		if !errors.Is(err, datastore.ErrNotSupported) || !strings.Contains(err.Error(), "Profile(projectcalico-default-allow)") || !strings.Contains(err.Error(), "read-only") {
			t.Errorf("%s: err = %v, want a read-only refusal naming the profile", op, err)
		}
	}
	write("create", func(r resources.Resource) error { _, err := c.Create(ctx, r); return err })
	write("apply", func(r resources.Resource) error { _, err := c.Apply(ctx, r); return err })
	write("update", func(r resources.Resource) error { _, err := c.Update(ctx, r); return err })
	write("delete", func(r resources.Resource) error { _, err := c.Delete(ctx, key, ""); return err })
	if _, err := c.DS.Get(ctx, key); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("a refused write stored default-allow (err %v)", err)
	}
}

// noCreate is a datastore that cannot create one kind, as the Kubernetes
// datastore cannot create Nodes.
type noCreate struct {
	datastore.Interface
	kind string
}

func (n noCreate) Create(ctx context.Context, r resources.Resource) (resources.Resource, error) {
	if resources.KindOf(r).Kind == n.kind {
		return nil, datastore.NotSupported("Create", resources.KeyOf(r), "test")
	}
	return n.Interface.Create(ctx, r)
}

// TestApplyFallsBackToUpdateWhenCreateIsNotSupported: apply of an object the
// datastore cannot create updates it when it exists, one at a time and in a
// batch; when it does not exist the update's not-found is the answer.
func TestApplyFallsBackToUpdateWhenCreateIsNotSupported(t *testing.T) {
	base := newClient(t)
	ctx := context.Background()
	for _, n := range []string{"n1", "n2"} {
		node := &resources.Node{}
		resources.SetTypeMeta(node)
		node.Name = n
		if _, err := base.Create(ctx, node); err != nil {
			t.Fatal(err)
		}
	}
	c := New(noCreate{Interface: base.DS, kind: "Node"})
	mk := func(name string) *resources.Node {
		node := &resources.Node{}
		resources.SetTypeMeta(node)
		node.Name = name
		node.Labels = map[string]string{"i-am-a-route-reflector": "true"}
		node.Spec.BGP = &resources.NodeBGPSpec{IPv4Address: "10.0.0.1/24", RouteReflectorClusterID: "224.0.0.1"}
		return node
	}
	if _, err := c.Apply(ctx, mk("n1")); err != nil {
		t.Fatalf("apply n1: %v", err)
	}
	_, errs := c.ApplyMany(ctx, []resources.Resource{mk("n2"), mk("n1")})
	for i, err := range errs {
		if err != nil {
			t.Errorf("apply batch item %d: %v", i, err)
		}
	}
	for _, n := range []string{"n1", "n2"} {
		r, err := c.Get(ctx, resources.Key{Kind: "Node", Name: n})
		if err != nil {
			t.Fatal(err)
		}
		got := r.(*resources.Node)
		if got.Labels["i-am-a-route-reflector"] != "true" || got.Spec.BGP == nil || got.Spec.BGP.RouteReflectorClusterID != "224.0.0.1" {
			t.Errorf("%s after apply: labels %v bgp %+v", n, got.Labels, got.Spec.BGP)
		}
	}
	if _, err := c.Apply(ctx, mk("missing")); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("apply of a node that does not exist: err = %v, want not found", err)
	}
}
