package state

import (
	"maps"
	"reflect"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

// The policy kinds the agent follows for node/policy: Tiers,
// GlobalNetworkPolicies, NetworkPolicies (on the Kubernetes datastore
// including Kubernetes NetworkPolicies as knp.default.*), Profiles (there
// including kns.* and ksa.*), GlobalNetworkSets, NetworkSets and
// HostEndpoints. Policies are few next to endpoints, so they are kept as
// the datastore's objects, in maps by namespace/name, without indexes.

// policyObjects holds the followed policy resources by namespace/name
// (name alone for cluster-scoped kinds). The maps are made on first use,
// so the zero value is empty.
type policyObjects struct {
	tiers    map[string]*resources.Tier
	gnps     map[string]*resources.GlobalNetworkPolicy
	nps      map[string]*resources.NetworkPolicy
	profiles map[string]*resources.Profile
	gnsets   map[string]*resources.GlobalNetworkSet
	nsets    map[string]*resources.NetworkSet
	hostEPs  map[string]*resources.HostEndpoint
}

// Tiers returns every Tier, in name order.
func (m *Model) Tiers() []*resources.Tier { return sortedValues(m.policy.tiers) }

// GlobalNetworkPolicies returns every GlobalNetworkPolicy (staged ones
// are a different kind and not followed), in name order.
func (m *Model) GlobalNetworkPolicies() []*resources.GlobalNetworkPolicy {
	return sortedValues(m.policy.gnps)
}

// NetworkPolicies returns every NetworkPolicy, Kubernetes ones included,
// in namespace then name order.
func (m *Model) NetworkPolicies() []*resources.NetworkPolicy { return sortedValues(m.policy.nps) }

// Profiles returns every Profile, in name order.
func (m *Model) Profiles() []*resources.Profile { return sortedValues(m.policy.profiles) }

// GlobalNetworkSets returns every GlobalNetworkSet, in name order.
func (m *Model) GlobalNetworkSets() []*resources.GlobalNetworkSet {
	return sortedValues(m.policy.gnsets)
}

// NetworkSets returns every NetworkSet, in namespace then name order.
func (m *Model) NetworkSets() []*resources.NetworkSet { return sortedValues(m.policy.nsets) }

// HostEndpoints returns every HostEndpoint, in name order.
func (m *Model) HostEndpoints() []*resources.HostEndpoint { return sortedValues(m.policy.hostEPs) }

// PolicyCounts is the number of followed policy objects of each kind.
type PolicyCounts struct {
	Tiers, GlobalNetworkPolicies, NetworkPolicies, Profiles, GlobalNetworkSets, NetworkSets, HostEndpoints int
}

// PolicyCounts returns how many policy objects of each kind the model
// holds.
func (m *Model) PolicyCounts() PolicyCounts {
	p := &m.policy
	return PolicyCounts{len(p.tiers), len(p.gnps), len(p.nps), len(p.profiles), len(p.gnsets), len(p.nsets), len(p.hostEPs)}
}

// policyKind is one followed policy kind: its name and where the model
// keeps its objects.
type policyKind[T resources.Resource] struct {
	kind string
	objs func(m *Model) *map[string]T
	spec func(T) any
}

var (
	tierKind = policyKind[*resources.Tier]{"Tier",
		func(m *Model) *map[string]*resources.Tier { return &m.policy.tiers },
		func(t *resources.Tier) any { return &t.Spec }}
	gnpKind = policyKind[*resources.GlobalNetworkPolicy]{"GlobalNetworkPolicy",
		func(m *Model) *map[string]*resources.GlobalNetworkPolicy { return &m.policy.gnps },
		func(p *resources.GlobalNetworkPolicy) any { return &p.Spec }}
	npKind = policyKind[*resources.NetworkPolicy]{"NetworkPolicy",
		func(m *Model) *map[string]*resources.NetworkPolicy { return &m.policy.nps },
		func(p *resources.NetworkPolicy) any { return &p.Spec }}
	profileKind = policyKind[*resources.Profile]{"Profile",
		func(m *Model) *map[string]*resources.Profile { return &m.policy.profiles },
		func(p *resources.Profile) any { return &p.Spec }}
	gnsetKind = policyKind[*resources.GlobalNetworkSet]{"GlobalNetworkSet",
		func(m *Model) *map[string]*resources.GlobalNetworkSet { return &m.policy.gnsets },
		func(s *resources.GlobalNetworkSet) any { return &s.Spec }}
	nsetKind = policyKind[*resources.NetworkSet]{"NetworkSet",
		func(m *Model) *map[string]*resources.NetworkSet { return &m.policy.nsets },
		func(s *resources.NetworkSet) any { return &s.Spec }}
	hepKind = policyKind[*resources.HostEndpoint]{"HostEndpoint",
		func(m *Model) *map[string]*resources.HostEndpoint { return &m.policy.hostEPs },
		func(h *resources.HostEndpoint) any { return &h.Spec }}
)

// policyKey is the model's key of a policy object: namespace/name, or
// the name of a cluster-scoped one.
func policyKey(r resources.Resource) string {
	if ns := r.GetNamespace(); ns != "" {
		return ns + "/" + r.GetName()
	}
	return r.GetName()
}

// set adds or replaces obj; only a new object or a change of its spec or
// labels counts as a change (a status or metadata-only update wakes
// nobody).
func (k policyKind[T]) set(m *Model, obj T) bool {
	objs := k.objs(m)
	if *objs == nil {
		*objs = map[string]T{}
	}
	key := policyKey(obj)
	old, had := (*objs)[key]
	(*objs)[key] = obj
	same := had && maps.Equal(old.GetLabels(), obj.GetLabels()) && reflect.DeepEqual(k.spec(old), k.spec(obj))
	return m.changed(!same, k.change(obj.GetNamespace(), obj.GetName()))
}

// del removes the object namespace/name.
func (k policyKind[T]) del(m *Model, namespace, name string) bool {
	objs := *k.objs(m)
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	_, ok := objs[key]
	delete(objs, key)
	return m.changed(ok, k.change(namespace, name))
}

func (k policyKind[T]) change(namespace, name string) Change {
	return Change{Kind: ChangedPolicy, Name: name, Key: resources.Key{Kind: k.kind, Namespace: namespace, Name: name}}
}

func (k policyKind[T]) source(ds datastore.Interface) *source[T] {
	return resourceSource(ds, k.kind, func(t T) string { return policyKey(t) },
		k.set,
		func(m *Model, t T) bool { return k.del(m, t.GetNamespace(), t.GetName()) },
		func(m *Model) map[string]T { return *k.objs(m) })
}

// SetPolicyObject adds or replaces one object of a followed policy kind
// (Tier, GlobalNetworkPolicy, NetworkPolicy, Profile, GlobalNetworkSet,
// NetworkSet, HostEndpoint) and reports whether readers see a change;
// other kinds are ignored.
func (m *Model) SetPolicyObject(r resources.Resource) bool {
	switch o := r.(type) {
	case *resources.Tier:
		return tierKind.set(m, o)
	case *resources.GlobalNetworkPolicy:
		return gnpKind.set(m, o)
	case *resources.NetworkPolicy:
		return npKind.set(m, o)
	case *resources.Profile:
		return profileKind.set(m, o)
	case *resources.GlobalNetworkSet:
		return gnsetKind.set(m, o)
	case *resources.NetworkSet:
		return nsetKind.set(m, o)
	case *resources.HostEndpoint:
		return hepKind.set(m, o)
	}
	return false
}

// DeletePolicyObject removes the policy object with key k (Kind as in
// SetPolicyObject).
func (m *Model) DeletePolicyObject(k resources.Key) bool {
	switch k.Kind {
	case tierKind.kind:
		return tierKind.del(m, "", k.Name)
	case gnpKind.kind:
		return gnpKind.del(m, "", k.Name)
	case npKind.kind:
		return npKind.del(m, k.Namespace, k.Name)
	case profileKind.kind:
		return profileKind.del(m, "", k.Name)
	case gnsetKind.kind:
		return gnsetKind.del(m, "", k.Name)
	case nsetKind.kind:
		return nsetKind.del(m, k.Namespace, k.Name)
	case hepKind.kind:
		return hepKind.del(m, "", k.Name)
	}
	return false
}
