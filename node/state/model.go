// Package state follows the datastore for the node agent: it lists Nodes,
// IPPools, FelixConfigurations, WorkloadEndpoints and IPAM blocks once,
// then watches each from its list revision (client-go's Reflector), and
// keeps an in-memory Model with the indexes the agent's components need.
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
// shared and must not be modified.
type Model struct {
	nodes  map[string]*resources.Node
	pools  map[string]*resources.IPPool
	felix  map[string]*resources.FelixConfiguration
	weps   map[resources.Key]*resources.WorkloadEndpoint
	blocks map[netip.Prefix]*ipam.Block
	bgp    bgpObjects // BGPPeers, BGPConfigurations, BGPFilters (model_bgp.go)

	// Indexes.
	wepsByNode map[string]map[resources.Key]struct{}
	// wepsByAddr finds the endpoints using an address (usually one).
	wepsByAddr   map[netip.Addr][]resources.Key
	blocksByNode map[string]map[netip.Prefix]struct{}
	// blockBits counts blocks per (family, prefix length), so the block
	// containing an address is found with one map lookup per length.
	blockBits map[blockLen]int

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
		felix: map[string]*resources.FelixConfiguration{}, weps: map[resources.Key]*resources.WorkloadEndpoint{},
		blocks: map[netip.Prefix]*ipam.Block{}, wepsByNode: map[string]map[resources.Key]struct{}{},
		blocksByNode: map[string]map[netip.Prefix]struct{}{}, blockBits: map[blockLen]int{},
		wepsByAddr: map[netip.Addr][]resources.Key{},
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
func (m *Model) Blocks() []*ipam.Block {
	out := slices.Collect(maps.Values(m.blocks))
	slices.SortFunc(out, func(a, b *ipam.Block) int {
		return cmp.Or(a.CIDR.Addr().Compare(b.CIDR.Addr()), cmp.Compare(a.CIDR.Bits(), b.CIDR.Bits()))
	})
	return out
}

// Block returns the block with this CIDR (nil if absent).
func (m *Model) Block(cidr netip.Prefix) *ipam.Block { return m.blocks[cidr] }

// BlockContaining returns the block that contains a (nil if none).
func (m *Model) BlockContaining(a netip.Addr) *ipam.Block {
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

// BlocksAffineTo returns the CIDRs of the blocks affine to host:node.
func (m *Model) BlocksAffineTo(node string) []netip.Prefix {
	return slices.SortedFunc(maps.Keys(m.blocksByNode[node]), func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
}

// WorkloadEndpoints returns every workload endpoint, by key.
func (m *Model) WorkloadEndpoints() map[resources.Key]*resources.WorkloadEndpoint { return m.weps }

// WorkloadEndpoint returns the workload endpoint with this key (nil if
// absent).
func (m *Model) WorkloadEndpoint(k resources.Key) *resources.WorkloadEndpoint {
	k.Kind = "WorkloadEndpoint"
	return m.weps[k]
}

// WorkloadEndpointsOn returns the workload endpoints of one node.
func (m *Model) WorkloadEndpointsOn(node string) []*resources.WorkloadEndpoint {
	out := make([]*resources.WorkloadEndpoint, 0, len(m.wepsByNode[node]))
	for k := range m.wepsByNode[node] {
		out = append(out, m.weps[k])
	}
	return out
}

// Counts is the number of objects of each kind (for logs and tests).
type Counts struct{ Nodes, Pools, FelixConfigurations, WorkloadEndpoints, Blocks int }

// Counts returns how many objects of each kind the model holds.
func (m *Model) Counts() Counts {
	return Counts{len(m.nodes), len(m.pools), len(m.felix), len(m.weps), len(m.blocks)}
}

// BlockHost is the node a block is affine to ("" for none or a virtual owner).
func BlockHost(b *ipam.Block) string {
	h, _ := strings.CutPrefix(b.Affinity, "host:")
	if h == b.Affinity {
		return ""
	}
	return h
}

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

func wepKey(w *resources.WorkloadEndpoint) resources.Key {
	return resources.Key{Kind: "WorkloadEndpoint", Namespace: w.Namespace, Name: w.Name}
}

// SetWorkloadEndpoint adds or replaces a workload endpoint.
func (m *Model) SetWorkloadEndpoint(w *resources.WorkloadEndpoint) bool {
	k := wepKey(w)
	old := m.weps[k]
	if old != nil {
		if reflect.DeepEqual(old.Spec, w.Spec) && reflect.DeepEqual(old.Labels, w.Labels) {
			m.weps[k] = w
			return false
		}
		m.unindexWEP(k, old)
	}
	m.weps[k] = w
	set := m.wepsByNode[w.Spec.Node]
	if set == nil {
		set = map[resources.Key]struct{}{}
		m.wepsByNode[w.Spec.Node] = set
	}
	set[k] = struct{}{}
	for _, a := range wepAddrs(w) {
		m.wepsByAddr[a] = append(m.wepsByAddr[a], k)
	}
	return m.changed(true, Change{Kind: ChangedWorkloadEndpoint, Key: k})
}

// DeleteWorkloadEndpoint removes a workload endpoint.
func (m *Model) DeleteWorkloadEndpoint(k resources.Key) bool {
	k.Kind = "WorkloadEndpoint"
	old, ok := m.weps[k]
	if !ok {
		return false
	}
	m.unindexWEP(k, old)
	delete(m.weps, k)
	return m.changed(true, Change{Kind: ChangedWorkloadEndpoint, Key: k})
}

// wepAddrs are the addresses of w's IPNetworks (the unparsable left out).
func wepAddrs(w *resources.WorkloadEndpoint) []netip.Addr {
	out := make([]netip.Addr, 0, len(w.Spec.IPNetworks))
	for _, n := range w.Spec.IPNetworks {
		if p, err := netip.ParsePrefix(n); err == nil && !slices.Contains(out, p.Addr()) {
			out = append(out, p.Addr())
		}
	}
	return out
}

// WorkloadEndpointsIn returns the keys of the workload endpoints with an
// address in cidr (in no order; an endpoint with several there appears
// once per address).
func (m *Model) WorkloadEndpointsIn(cidr netip.Prefix) []resources.Key {
	var out []resources.Key
	cidr = cidr.Masked()
	if n := cidr.Addr().BitLen() - cidr.Bits(); n <= 12 {
		// Small (a block is 64 addresses by default): look each address up.
		for a, i := cidr.Addr(), 0; i < 1<<n; a, i = a.Next(), i+1 {
			out = append(out, m.wepsByAddr[a]...)
		}
		return out
	}
	for a, keys := range m.wepsByAddr {
		if cidr.Contains(a) {
			out = append(out, keys...)
		}
	}
	return out
}

func (m *Model) unindexWEP(k resources.Key, w *resources.WorkloadEndpoint) {
	for _, a := range wepAddrs(w) {
		keys := slices.DeleteFunc(m.wepsByAddr[a], func(x resources.Key) bool { return x == k })
		if len(keys) == 0 {
			delete(m.wepsByAddr, a)
		} else {
			m.wepsByAddr[a] = keys
		}
	}
	if set := m.wepsByNode[w.Spec.Node]; set != nil {
		delete(set, k)
		if len(set) == 0 {
			delete(m.wepsByNode, w.Spec.Node)
		}
	}
}

// SetBlock adds or replaces a block.
func (m *Model) SetBlock(b *ipam.Block) bool {
	if old := m.blocks[b.CIDR]; old != nil {
		m.unindexBlock(old)
	}
	m.blocks[b.CIDR] = b
	m.blockBits[blockLen{b.CIDR.Addr().Is4(), b.CIDR.Bits()}]++
	if h := BlockHost(b); h != "" {
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

func (m *Model) unindexBlock(b *ipam.Block) {
	l := blockLen{b.CIDR.Addr().Is4(), b.CIDR.Bits()}
	if m.blockBits[l]--; m.blockBits[l] <= 0 {
		delete(m.blockBits, l)
	}
	if h := BlockHost(b); h != "" {
		if set := m.blocksByNode[h]; set != nil {
			delete(set, b.CIDR)
			if len(set) == 0 {
				delete(m.blocksByNode, h)
			}
		}
	}
}
