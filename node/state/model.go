// Package state follows the datastore for the node agent: it lists Nodes,
// IPPools, FelixConfigurations, WorkloadEndpoints, IPAM blocks, the BGP
// kinds and the policy kinds once, then watches each from its list
// revision (client-go's Reflector), and keeps an in-memory Model with the indexes the agent's components need.
// A failed watch (compaction, a lost connection) relists that source only,
// keeping the model until the relist succeeds, so an outage never empties
// it. Changes are signalled through a coalescing notification.
package state

import (
	"cmp"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"

	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/resources"
)

// Model is the followed datastore state with its indexes. Read it only
// inside Follower.Read (or own it, as ReadSnapshot does); its objects are
// shared and must not be modified. Workload endpoints and IPAM blocks are
// kept as compact records (records.go).
type Model struct {
	nodes  map[string]*resources.Node
	pools  map[string]*resources.IPPool
	felix  map[string]*resources.FelixConfiguration
	weps   map[resources.Key]*Endpoint
	blocks map[netip.Prefix]*Block
	bgp    bgpObjects    // BGPPeers, BGPConfigurations, BGPFilters (model_bgp.go)
	policy policyObjects // tiers, policies, profiles, sets, host endpoints (model_policy.go)

	// Indexes.
	wepsByNode map[string]map[*Endpoint]struct{}
	// wepsByAddr finds the endpoint using an address; the rare further
	// endpoints using the same address are in wepsByAddrMore.
	wepsByAddr     map[netip.Addr]*Endpoint
	wepsByAddrMore map[netip.Addr][]*Endpoint
	blocksByNode   map[string]map[netip.Prefix]struct{}
	// blockBits counts blocks per (family, prefix length), so the block
	// containing an address is found with one map lookup per length.
	blockBits map[blockLen]int

	// Interned label sets and profile lists of the endpoints.
	labelSets    internTable[map[string]string]
	profileLists internTable[[]string]

	// changes records what changed, for readers that follow the model
	// incrementally (changes.go).
	changes changeLog
}

type blockLen struct {
	is4  bool
	bits int
}

// NewModel returns an empty model.
func NewModel() *Model {
	return &Model{
		nodes: map[string]*resources.Node{}, pools: map[string]*resources.IPPool{},
		felix: map[string]*resources.FelixConfiguration{}, weps: map[resources.Key]*Endpoint{},
		blocks: map[netip.Prefix]*Block{}, wepsByNode: map[string]map[*Endpoint]struct{}{},
		blocksByNode: map[string]map[netip.Prefix]struct{}{}, blockBits: map[blockLen]int{},
		wepsByAddr: map[netip.Addr]*Endpoint{}, wepsByAddrMore: map[netip.Addr][]*Endpoint{},
		labelSets: internTable[map[string]string]{}, profileLists: internTable[[]string]{},
	}
}

// Node returns the named node (nil if absent).
func (m *Model) Node(name string) *resources.Node { return m.nodes[name] }

// Nodes returns every node, by name.
func (m *Model) Nodes() map[string]*resources.Node { return m.nodes }

// Pools returns every IP pool, in name order.
func (m *Model) Pools() []*resources.IPPool { return sortedValues(m.pools) }

// FelixConfiguration returns the named FelixConfiguration (nil if absent).
func (m *Model) FelixConfiguration(name string) *resources.FelixConfiguration { return m.felix[name] }

// Blocks returns every IPAM block, in CIDR order.
func (m *Model) Blocks() []*Block {
	out := slices.Collect(maps.Values(m.blocks))
	slices.SortFunc(out, func(a, b *Block) int {
		return cmp.Or(a.CIDR.Addr().Compare(b.CIDR.Addr()), cmp.Compare(a.CIDR.Bits(), b.CIDR.Bits()))
	})
	return out
}

// Block returns the block with this CIDR (nil if absent).
func (m *Model) Block(cidr netip.Prefix) *Block { return m.blocks[cidr] }

// BlockContaining returns the block that contains a (nil if none).
func (m *Model) BlockContaining(a netip.Addr) *Block {
	for l := range m.blockBits {
		if l.is4 != a.Is4() {
			continue
		}
		if p, err := a.Prefix(l.bits); err == nil {
			if b := m.blocks[p]; b != nil {
				return b
			}
		}
	}
	return nil
}

// TunnelHandle is the handle of the tunnel address allocated at a ("" when
// a is not allocated to a tunnel in a known block): what
// startup.TunnelsSettled checks.
func (m *Model) TunnelHandle(a netip.Addr) string {
	if b := m.BlockContaining(a); b != nil {
		for _, t := range b.Tunnels {
			if t.Addr == a {
				return t.Handle
			}
		}
	}
	return ""
}

// BlocksAffineTo returns the CIDRs of the blocks affine to host:node.
func (m *Model) BlocksAffineTo(node string) []netip.Prefix {
	return slices.SortedFunc(maps.Keys(m.blocksByNode[node]), func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
}

// WorkloadEndpoints returns every workload endpoint, by key.
func (m *Model) WorkloadEndpoints() map[resources.Key]*Endpoint { return m.weps }

// WorkloadEndpoint returns the workload endpoint with this key (nil if
// absent).
func (m *Model) WorkloadEndpoint(k resources.Key) *Endpoint {
	k.Kind = "WorkloadEndpoint"
	return m.weps[k]
}

// WorkloadEndpointsOn returns the workload endpoints of one node (in no
// order).
func (m *Model) WorkloadEndpointsOn(node string) []*Endpoint {
	return slices.Collect(maps.Keys(m.wepsByNode[node]))
}

// Counts is the number of objects of each kind (for logs and tests).
type Counts struct{ Nodes, Pools, FelixConfigurations, WorkloadEndpoints, Blocks int }

// Counts returns how many objects of each kind the model holds.
func (m *Model) Counts() Counts {
	return Counts{len(m.nodes), len(m.pools), len(m.felix), len(m.weps), len(m.blocks)}
}

// BlockHost is the node a block is affine to ("" for none or a virtual
// owner).
func BlockHost(b *Block) string { return b.Host() }

func sortedValues[T any](m map[string]T) []T {
	out := make([]T, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out
}

// Mutations: each returns whether the model changed in a way readers can
// see (a status-only update of a Node or a pod is not a change).

// SetNode adds or replaces a node.
func (m *Model) SetNode(n *resources.Node) bool {
	old := m.nodes[n.Name]
	m.nodes[n.Name] = n
	return m.changed(old == nil || !reflect.DeepEqual(old.Spec, n.Spec) || !reflect.DeepEqual(old.Labels, n.Labels), Change{Kind: ChangedNode, Name: n.Name})
}

// changed records c when ok, and returns ok.
func (m *Model) changed(ok bool, c Change) bool {
	if ok {
		m.record(c)
	}
	return ok
}

// DeleteNode removes a node.
func (m *Model) DeleteNode(name string) bool {
	_, ok := m.nodes[name]
	delete(m.nodes, name)
	return m.changed(ok, Change{Kind: ChangedNode, Name: name})
}

// SetPool adds or replaces a pool.
func (m *Model) SetPool(p *resources.IPPool) bool {
	old := m.pools[p.Name]
	m.pools[p.Name] = p
	return m.changed(old == nil || !reflect.DeepEqual(old.Spec, p.Spec), Change{Kind: ChangedPool, Name: p.Name})
}

// DeletePool removes a pool.
func (m *Model) DeletePool(name string) bool {
	_, ok := m.pools[name]
	delete(m.pools, name)
	return m.changed(ok, Change{Kind: ChangedPool, Name: name})
}

// SetFelixConfiguration adds or replaces a FelixConfiguration.
func (m *Model) SetFelixConfiguration(f *resources.FelixConfiguration) bool {
	old := m.felix[f.Name]
	m.felix[f.Name] = f
	return m.changed(old == nil || !reflect.DeepEqual(old.Spec, f.Spec), Change{Kind: ChangedFelixConfiguration, Name: f.Name})
}

// DeleteFelixConfiguration removes a FelixConfiguration.
func (m *Model) DeleteFelixConfiguration(name string) bool {
	_, ok := m.felix[name]
	delete(m.felix, name)
	return m.changed(ok, Change{Kind: ChangedFelixConfiguration, Name: name})
}

// SetWorkloadEndpoint adds or replaces a workload endpoint.
func (m *Model) SetWorkloadEndpoint(w *resources.WorkloadEndpoint) bool {
	return m.setEndpoint(EndpointOf(w))
}

// setEndpoint adds or replaces the record of a workload endpoint; it
// takes e (and interns its labels and profiles).
func (m *Model) setEndpoint(e *Endpoint) bool {
	e.Key.Kind = "WorkloadEndpoint"
	old := m.weps[e.Key]
	if old != nil && old.equal(e) {
		return false
	}
	m.intern(e)
	if old != nil {
		m.unindexEndpoint(old)
	}
	m.weps[e.Key] = e
	set := m.wepsByNode[e.Node]
	if set == nil {
		set = map[*Endpoint]struct{}{}
		m.wepsByNode[e.Node] = set
	}
	set[e] = struct{}{}
	for _, a := range e.Addrs() {
		if m.wepsByAddr[a] == nil {
			m.wepsByAddr[a] = e
		} else {
			m.wepsByAddrMore[a] = append(m.wepsByAddrMore[a], e)
		}
	}
	return m.changed(true, Change{Kind: ChangedWorkloadEndpoint, Key: e.Key})
}

// intern replaces e's labels and profiles with the model's shared copies.
func (m *Model) intern(e *Endpoint) {
	if len(e.Labels) > 0 {
		e.labelsRef = m.labelSets.acquire(labelsKey(e.Labels), e.Labels)
		if e.labelsRef.refs == 1 {
			// The first holder: own a copy, so the decoded resource is free.
			e.labelsRef.v = maps.Clone(e.Labels)
		}
		e.Labels = e.labelsRef.v
	} else {
		e.Labels = nil
	}
	if len(e.Profiles) > 0 {
		e.profilesRef = m.profileLists.acquire(strings.Join(e.Profiles, "\x00"), e.Profiles)
		if e.profilesRef.refs == 1 {
			p := make([]string, len(e.Profiles))
			for i, s := range e.Profiles {
				p[i] = intern(s)
			}
			e.profilesRef.v = p
		}
		e.Profiles = e.profilesRef.v
	} else {
		e.Profiles = nil
	}
}

// DeleteWorkloadEndpoint removes a workload endpoint.
func (m *Model) DeleteWorkloadEndpoint(k resources.Key) bool {
	k.Kind = "WorkloadEndpoint"
	old, ok := m.weps[k]
	if !ok {
		return false
	}
	m.unindexEndpoint(old)
	delete(m.weps, k)
	return m.changed(true, Change{Kind: ChangedWorkloadEndpoint, Key: k})
}

// WorkloadEndpointsIn returns the workload endpoints with an address in
// cidr (in no order; an endpoint with several there appears once per
// address).
func (m *Model) WorkloadEndpointsIn(cidr netip.Prefix) []*Endpoint {
	var out []*Endpoint
	cidr = cidr.Masked()
	if n := cidr.Addr().BitLen() - cidr.Bits(); n <= 12 {
		// Small (a block is 64 addresses by default): look each address up.
		for a, i := cidr.Addr(), 0; i < 1<<n; a, i = a.Next(), i+1 {
			if e := m.wepsByAddr[a]; e != nil {
				out = append(out, e)
				out = append(out, m.wepsByAddrMore[a]...)
			}
		}
		return out
	}
	for a, e := range m.wepsByAddr {
		if cidr.Contains(a) {
			out = append(out, e)
			out = append(out, m.wepsByAddrMore[a]...)
		}
	}
	return out
}

// unindexEndpoint removes e from the indexes and releases its interned
// labels and profiles.
func (m *Model) unindexEndpoint(e *Endpoint) {
	for _, a := range e.Addrs() {
		more := m.wepsByAddrMore[a]
		if m.wepsByAddr[a] == e {
			if len(more) == 0 {
				delete(m.wepsByAddr, a)
				continue
			}
			m.wepsByAddr[a], more = more[0], more[1:]
		} else {
			more = slices.DeleteFunc(more, func(x *Endpoint) bool { return x == e })
		}
		if len(more) == 0 {
			delete(m.wepsByAddrMore, a)
		} else {
			m.wepsByAddrMore[a] = more
		}
	}
	if set := m.wepsByNode[e.Node]; set != nil {
		delete(set, e)
		if len(set) == 0 {
			delete(m.wepsByNode, e.Node)
		}
	}
	m.labelSets.release(e.labelsRef)
	m.profileLists.release(e.profilesRef)
	e.labelsRef, e.profilesRef = nil, nil
}

// SetBlock adds or replaces a block.
func (m *Model) SetBlock(b *ipam.Block) bool { return m.setBlock(BlockOf(b)) }

// setBlock adds or replaces the record of a block.
func (m *Model) setBlock(b *Block) bool {
	if old := m.blocks[b.CIDR]; old != nil {
		if old.equal(b) {
			return false // e.g. only its pods' allocations changed
		}
		m.unindexBlock(old)
	}
	m.blocks[b.CIDR] = b
	m.blockBits[blockLen{b.CIDR.Addr().Is4(), b.CIDR.Bits()}]++
	if h := b.Host(); h != "" {
		set := m.blocksByNode[h]
		if set == nil {
			set = map[netip.Prefix]struct{}{}
			m.blocksByNode[h] = set
		}
		set[b.CIDR] = struct{}{}
	}
	return m.changed(true, Change{Kind: ChangedBlock, CIDR: b.CIDR})
}

// DeleteBlock removes a block.
func (m *Model) DeleteBlock(cidr netip.Prefix) bool {
	old, ok := m.blocks[cidr]
	if !ok {
		return false
	}
	m.unindexBlock(old)
	delete(m.blocks, cidr)
	return m.changed(true, Change{Kind: ChangedBlock, CIDR: cidr})
}

func (m *Model) unindexBlock(b *Block) {
	l := blockLen{b.CIDR.Addr().Is4(), b.CIDR.Bits()}
	if m.blockBits[l]--; m.blockBits[l] <= 0 {
		delete(m.blockBits, l)
	}
	if h := b.Host(); h != "" {
		if set := m.blocksByNode[h]; set != nil {
			delete(set, b.CIDR)
			if len(set) == 0 {
				delete(m.blocksByNode, h)
			}
		}
	}
}
