package state

import (
	"slices"
	"testing"

	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/resources"
)

func tier(name string, order float64) *resources.Tier {
	t := &resources.Tier{Spec: resources.TierSpec{Order: &order}}
	t.Name = name
	return t
}

func gnp(name, selector string) *resources.GlobalNetworkPolicy {
	p := &resources.GlobalNetworkPolicy{Spec: resources.GlobalNetworkPolicySpec{Selector: selector,
		Ingress: []resources.Rule{{Action: "Allow"}}}}
	p.Name = name
	return p
}

func netpol(ns, name, selector string) *resources.NetworkPolicy {
	p := &resources.NetworkPolicy{Spec: resources.NetworkPolicySpec{Selector: selector,
		Ingress: []resources.Rule{{Action: "Allow"}}}}
	p.Namespace, p.Name = ns, name
	return p
}

func profile(name string, labels map[string]string) *resources.Profile {
	p := &resources.Profile{Spec: resources.ProfileSpec{LabelsToApply: labels,
		Ingress: []resources.Rule{{Action: "Allow"}}, Egress: []resources.Rule{{Action: "Allow"}}}}
	p.Name = name
	return p
}

func gnset(name string, nets ...string) *resources.GlobalNetworkSet {
	s := &resources.GlobalNetworkSet{Spec: resources.GlobalNetworkSetSpec{Nets: nets}}
	s.Name = name
	s.Labels = map[string]string{"role": "external"}
	return s
}

func netset(ns, name string, nets ...string) *resources.NetworkSet {
	s := &resources.NetworkSet{Spec: resources.NetworkSetSpec{Nets: nets}}
	s.Namespace, s.Name = ns, name
	s.Labels = map[string]string{"role": "partner"}
	return s
}

func hostEP(name, node, iface string) *resources.HostEndpoint {
	h := &resources.HostEndpoint{Spec: resources.HostEndpointSpec{Node: node, InterfaceName: iface}}
	h.Name = name
	h.Labels = map[string]string{"host": node}
	return h
}

// TestModelPolicySetters: a change is a new object or a new spec or
// labels (not other metadata), recorded as ChangedPolicy with the key;
// the accessors return objects in namespace/name order.
func TestModelPolicySetters(t *testing.T) {
	m := NewModel()
	meta := func(p *resources.NetworkPolicy) *resources.NetworkPolicy {
		p.ResourceVersion = "9"
		p.Annotations = map[string]string{"a": "b"}
		return p
	}
	relabel := func(p *resources.NetworkPolicy) *resources.NetworkPolicy {
		p.Labels = map[string]string{"x": "y"}
		return p
	}
	steps := []struct {
		name string
		do   func() bool
		want bool
	}{
		{"add tier", func() bool { return m.SetPolicyObject(tier("net", 100)) }, true},
		{"same tier", func() bool { return m.SetPolicyObject(tier("net", 100)) }, false},
		{"tier new order", func() bool { return m.SetPolicyObject(tier("net", 200)) }, true},
		{"add np b/p", func() bool { return m.SetPolicyObject(netpol("b", "p", "all()")) }, true},
		{"add np a/q", func() bool { return m.SetPolicyObject(netpol("a", "q", "all()")) }, true},
		{"np metadata only", func() bool { return m.SetPolicyObject(meta(netpol("a", "q", "all()"))) }, false},
		{"np new labels", func() bool { return m.SetPolicyObject(relabel(netpol("a", "q", "all()"))) }, true},
		{"np new selector", func() bool { return m.SetPolicyObject(relabel(netpol("a", "q", "app == 'x'"))) }, true},
		{"add gnp", func() bool { return m.SetPolicyObject(gnp("g", "all()")) }, true},
		{"add profile", func() bool { return m.SetPolicyObject(profile("kns.a", map[string]string{"pcns.k": "v"})) }, true},
		{"profile new labels to apply", func() bool { return m.SetPolicyObject(profile("kns.a", map[string]string{"pcns.k": "w"})) }, true},
		{"add gnset", func() bool { return m.SetPolicyObject(gnset("ext", "1.2.3.0/24")) }, true},
		{"add nset", func() bool { return m.SetPolicyObject(netset("a", "partners", "5.6.7.0/24")) }, true},
		{"add hep", func() bool { return m.SetPolicyObject(hostEP("n1-eth0", "n1", "eth0")) }, true},
		{"not a policy kind", func() bool { return m.SetPolicyObject(pool("p", "10.0.0.0/16", false)) }, false},
		{"delete absent np", func() bool {
			return m.DeletePolicyObject(resources.Key{Kind: "NetworkPolicy", Namespace: "c", Name: "p"})
		}, false},
		{"delete np b/p", func() bool {
			return m.DeletePolicyObject(resources.Key{Kind: "NetworkPolicy", Namespace: "b", Name: "p"})
		}, true},
		{"delete hep", func() bool { return m.DeletePolicyObject(resources.Key{Kind: "HostEndpoint", Name: "n1-eth0"}) }, true},
	}
	seq := m.Seq()
	want := 0
	for _, s := range steps {
		if got := s.do(); got != s.want {
			t.Errorf("%s: changed = %v, want %v", s.name, got, s.want)
		}
		if s.want {
			want++
		}
	}
	changes, ok := m.ChangesSince(seq)
	if !ok || len(changes) != want {
		t.Fatalf("changes = %d (%v), want %d", len(changes), ok, want)
	}
	if c := changes[2]; c.Kind != ChangedPolicy || c.Key != (resources.Key{Kind: "NetworkPolicy", Namespace: "b", Name: "p"}) || c.Name != "p" {
		t.Errorf("change of np b/p = %+v", c)
	}
	if got := m.PolicyCounts(); got != (PolicyCounts{Tiers: 1, GlobalNetworkPolicies: 1, NetworkPolicies: 1, Profiles: 1, GlobalNetworkSets: 1, NetworkSets: 1}) {
		t.Errorf("counts = %+v", got)
	}
	m.SetPolicyObject(netpol("b", "a", "all()"))
	m.SetPolicyObject(netpol("a", "z", "all()"))
	var names []string
	for _, p := range m.NetworkPolicies() {
		names = append(names, p.Namespace+"/"+p.Name)
	}
	if !slices.Equal(names, []string{"a/q", "a/z", "b/a"}) {
		t.Errorf("network policies in order %v", names)
	}
	if tt := m.Tiers(); len(tt) != 1 || *tt[0].Spec.Order != 200 {
		t.Errorf("tiers = %+v", tt)
	}
	e := NewModel()
	if len(e.Tiers())+len(e.GlobalNetworkPolicies())+len(e.NetworkPolicies())+len(e.Profiles())+
		len(e.GlobalNetworkSets())+len(e.NetworkSets())+len(e.HostEndpoints()) != 0 || e.DeletePolicyObject(resources.Key{Kind: "Tier", Name: "x"}) {
		t.Error("empty model returned policy objects")
	}
}

// TestFollowerEtcdPolicy lists the policy kinds, then follows an add, a
// modification and a delete of each through the watches.
func TestFollowerEtcdPolicy(t *testing.T) {
	e := newEtcdEnv(t)
	if err := e.c.EnsureInitialized(t.Context(), client.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	e.put(t, tier("listed", 50))
	e.put(t, netpol("ns1", "listed", "all()"))
	f := start(t, Config{Datastore: e.ds, Blocks: e.store})
	waitModel(t, f, "the initial list", func(m *Model, st Status) bool {
		return st.Synced && slices.ContainsFunc(m.Tiers(), func(t *resources.Tier) bool { return t.Name == "listed" }) &&
			len(m.Tiers()) == 4 && len(m.NetworkPolicies()) == 1
	})
	has := func(objs []resources.Resource, name string, ok func(resources.Resource) bool) bool {
		for _, o := range objs {
			if policyKey(o) == name {
				return ok(o)
			}
		}
		return false
	}
	all := func(m *Model, kind string) []resources.Resource {
		var out []resources.Resource
		switch kind {
		case "Tier":
			for _, o := range m.Tiers() {
				out = append(out, o)
			}
		case "GlobalNetworkPolicy":
			for _, o := range m.GlobalNetworkPolicies() {
				out = append(out, o)
			}
		case "NetworkPolicy":
			for _, o := range m.NetworkPolicies() {
				out = append(out, o)
			}
		case "Profile":
			for _, o := range m.Profiles() {
				out = append(out, o)
			}
		case "GlobalNetworkSet":
			for _, o := range m.GlobalNetworkSets() {
				out = append(out, o)
			}
		case "NetworkSet":
			for _, o := range m.NetworkSets() {
				out = append(out, o)
			}
		case "HostEndpoint":
			for _, o := range m.HostEndpoints() {
				out = append(out, o)
			}
		}
		return out
	}
	anything := func(resources.Resource) bool { return true }
	tests := []struct {
		kind, key   string
		add, modify resources.Resource
		modified    func(resources.Resource) bool
	}{
		{"Tier", "net", tier("net", 100), tier("net", 200),
			func(r resources.Resource) bool { return *r.(*resources.Tier).Spec.Order == 200 }},
		{"GlobalNetworkPolicy", "g", gnp("g", "all()"), gnp("g", "app == 'db'"),
			func(r resources.Resource) bool {
				return r.(*resources.GlobalNetworkPolicy).Spec.Selector == "app == 'db'"
			}},
		{"NetworkPolicy", "ns1/p", netpol("ns1", "p", "all()"), netpol("ns1", "p", "app == 'db'"),
			func(r resources.Resource) bool { return r.(*resources.NetworkPolicy).Spec.Selector == "app == 'db'" }},
		{"Profile", "tenant", profile("tenant", nil), profile("tenant", map[string]string{"tenant": "a"}),
			func(r resources.Resource) bool { return r.(*resources.Profile).Spec.LabelsToApply["tenant"] == "a" }},
		{"GlobalNetworkSet", "ext", gnset("ext", "1.2.3.0/24"), gnset("ext", "1.2.4.0/24"),
			func(r resources.Resource) bool { return r.(*resources.GlobalNetworkSet).Spec.Nets[0] == "1.2.4.0/24" }},
		{"NetworkSet", "ns1/partners", netset("ns1", "partners", "5.6.7.0/24"), netset("ns1", "partners", "5.6.8.0/24"),
			func(r resources.Resource) bool { return r.(*resources.NetworkSet).Spec.Nets[0] == "5.6.8.0/24" }},
		{"HostEndpoint", "n1-eth0", hostEP("n1-eth0", "n1", "eth0"), hostEP("n1-eth0", "n1", "eth1"),
			func(r resources.Resource) bool { return r.(*resources.HostEndpoint).Spec.InterfaceName == "eth1" }},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			seq := uint64(0)
			f.Read(func(m *Model, _ uint64) { seq = m.Seq() })
			e.put(t, tt.add)
			waitModel(t, f, "the addition", func(m *Model, _ Status) bool { return has(all(m, tt.kind), tt.key, anything) })
			e.put(t, tt.modify)
			waitModel(t, f, "the modification", func(m *Model, _ Status) bool { return has(all(m, tt.kind), tt.key, tt.modified) })
			e.del(t, resources.KeyOf(tt.modify))
			waitModel(t, f, "the deletion", func(m *Model, _ Status) bool { return !has(all(m, tt.kind), tt.key, anything) })
			f.Read(func(m *Model, _ uint64) {
				cs, ok := m.ChangesSince(seq)
				n := 0
				for _, c := range cs {
					if c.Kind == ChangedPolicy && c.Key.Kind == tt.kind && c.Key.Name == tt.modify.GetName() {
						n++
					}
				}
				if !ok || n != 3 {
					t.Errorf("%d ChangedPolicy records of %s (log kept: %v), want 3", n, tt.key, ok)
				}
			})
		})
	}
	if st := f.Status(); !st.Synced || st.Relists != 0 {
		t.Errorf("status = %+v, want synced without relists", st)
	}
}
