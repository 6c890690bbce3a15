package state

import (
	"reflect"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

// The BGP kinds the agent follows for its planner (node/bgp): BGPPeers,
// BGPConfigurations ("default" and "node.<name>") and BGPFilters. They are
// few and small, so they are kept as plain maps by name, without indexes.

// bgpObjects holds the followed BGP resources by name. The maps are made on
// first use, so the zero value is empty.
type bgpObjects struct {
	peers   map[string]*resources.BGPPeer
	configs map[string]*resources.BGPConfiguration
	filters map[string]*resources.BGPFilter
	// statuses are the CalicoNodeStatus objects the agents publish their
	// BGP state into; only a spec change is a change (the agents' own
	// status writes wake nobody).
	statuses map[string]*resources.CalicoNodeStatus
}

// CalicoNodeStatusesOf returns the CalicoNodeStatus objects of a node, in
// name order.
func (m *Model) CalicoNodeStatusesOf(node string) []*resources.CalicoNodeStatus {
	var out []*resources.CalicoNodeStatus
	for _, c := range sortedValues(m.bgp.statuses) {
		if c.Spec.Node == node {
			out = append(out, c)
		}
	}
	return out
}

// SetCalicoNodeStatus adds or replaces a CalicoNodeStatus; only a new
// object or a spec change counts as a change.
func (m *Model) SetCalicoNodeStatus(c *resources.CalicoNodeStatus) bool {
	return m.changed(setByName(&m.bgp.statuses, c.Name, c, func(a, b *resources.CalicoNodeStatus) bool { return reflect.DeepEqual(a.Spec, b.Spec) }), Change{Kind: ChangedBGP, Name: c.Name})
}

// DeleteCalicoNodeStatus removes a CalicoNodeStatus.
func (m *Model) DeleteCalicoNodeStatus(name string) bool {
	return m.changed(deleteByName(m.bgp.statuses, name), Change{Kind: ChangedBGP, Name: name})
}

func nodeStatusSource(ds datastore.Interface) *source[*resources.CalicoNodeStatus] {
	return resourceSource(ds, "CalicoNodeStatus", func(c *resources.CalicoNodeStatus) string { return c.Name },
		func(m *Model, c *resources.CalicoNodeStatus) bool { return m.SetCalicoNodeStatus(c) },
		func(m *Model, c *resources.CalicoNodeStatus) bool { return m.DeleteCalicoNodeStatus(c.Name) },
		func(m *Model) map[string]*resources.CalicoNodeStatus { return m.bgp.statuses })
}

// BGPPeers returns every BGPPeer, in name order.
func (m *Model) BGPPeers() []*resources.BGPPeer { return sortedValues(m.bgp.peers) }

// BGPConfiguration returns the named BGPConfiguration (nil if absent).
func (m *Model) BGPConfiguration(name string) *resources.BGPConfiguration {
	return m.bgp.configs[name]
}

// BGPConfigurations returns every BGPConfiguration, by name (possibly nil
// when there is none).
func (m *Model) BGPConfigurations() map[string]*resources.BGPConfiguration { return m.bgp.configs }

// BGPFilter returns the named BGPFilter (nil if absent).
func (m *Model) BGPFilter(name string) *resources.BGPFilter { return m.bgp.filters[name] }

// BGPFilters returns every BGPFilter, by name (possibly nil when there is
// none).
func (m *Model) BGPFilters() map[string]*resources.BGPFilter { return m.bgp.filters }

// BGPCounts is the number of followed BGP objects of each kind.
type BGPCounts struct{ Peers, Configurations, Filters int }

// BGPCounts returns how many BGP objects of each kind the model holds.
func (m *Model) BGPCounts() BGPCounts {
	return BGPCounts{len(m.bgp.peers), len(m.bgp.configs), len(m.bgp.filters)}
}

// SetBGPPeer adds or replaces a BGPPeer.
func (m *Model) SetBGPPeer(p *resources.BGPPeer) bool {
	return m.changed(setByName(&m.bgp.peers, p.Name, p, func(a, b *resources.BGPPeer) bool { return reflect.DeepEqual(a.Spec, b.Spec) }), Change{Kind: ChangedBGP, Name: p.Name})
}

// DeleteBGPPeer removes a BGPPeer.
func (m *Model) DeleteBGPPeer(name string) bool {
	return m.changed(deleteByName(m.bgp.peers, name), Change{Kind: ChangedBGP, Name: name})
}

// SetBGPConfiguration adds or replaces a BGPConfiguration.
func (m *Model) SetBGPConfiguration(c *resources.BGPConfiguration) bool {
	return m.changed(setByName(&m.bgp.configs, c.Name, c, func(a, b *resources.BGPConfiguration) bool { return reflect.DeepEqual(a.Spec, b.Spec) }), Change{Kind: ChangedBGP, Name: c.Name})
}

// DeleteBGPConfiguration removes a BGPConfiguration.
func (m *Model) DeleteBGPConfiguration(name string) bool {
	return m.changed(deleteByName(m.bgp.configs, name), Change{Kind: ChangedBGP, Name: name})
}

// SetBGPFilter adds or replaces a BGPFilter.
func (m *Model) SetBGPFilter(f *resources.BGPFilter) bool {
	return m.changed(setByName(&m.bgp.filters, f.Name, f, func(a, b *resources.BGPFilter) bool { return reflect.DeepEqual(a.Spec, b.Spec) }), Change{Kind: ChangedBGP, Name: f.Name})
}

// DeleteBGPFilter removes a BGPFilter.
func (m *Model) DeleteBGPFilter(name string) bool {
	return m.changed(deleteByName(m.bgp.filters, name), Change{Kind: ChangedBGP, Name: name})
}

// setByName stores v under name (making the map on first use) and reports
// whether readers see a change: a new object, or a different spec.
func setByName[T any](m *map[string]*T, name string, v *T, same func(a, b *T) bool) bool {
	if *m == nil {
		*m = map[string]*T{}
	}
	old := (*m)[name]
	(*m)[name] = v
	return old == nil || !same(old, v)
}

func deleteByName[T any](m map[string]*T, name string) bool {
	_, ok := m[name]
	delete(m, name)
	return ok
}

func bgpPeerSource(ds datastore.Interface) *source[*resources.BGPPeer] {
	return resourceSource(ds, "BGPPeer", func(p *resources.BGPPeer) string { return p.Name },
		func(m *Model, p *resources.BGPPeer) bool { return m.SetBGPPeer(p) },
		func(m *Model, p *resources.BGPPeer) bool { return m.DeleteBGPPeer(p.Name) },
		func(m *Model) map[string]*resources.BGPPeer { return m.bgp.peers })
}

func bgpConfigSource(ds datastore.Interface) *source[*resources.BGPConfiguration] {
	return resourceSource(ds, "BGPConfiguration", func(c *resources.BGPConfiguration) string { return c.Name },
		func(m *Model, c *resources.BGPConfiguration) bool { return m.SetBGPConfiguration(c) },
		func(m *Model, c *resources.BGPConfiguration) bool { return m.DeleteBGPConfiguration(c.Name) },
		func(m *Model) map[string]*resources.BGPConfiguration { return m.bgp.configs })
}

func bgpFilterSource(ds datastore.Interface) *source[*resources.BGPFilter] {
	return resourceSource(ds, "BGPFilter", func(f *resources.BGPFilter) string { return f.Name },
		func(m *Model, f *resources.BGPFilter) bool { return m.SetBGPFilter(f) },
		func(m *Model, f *resources.BGPFilter) bool { return m.DeleteBGPFilter(f.Name) },
		func(m *Model) map[string]*resources.BGPFilter { return m.bgp.filters })
}
