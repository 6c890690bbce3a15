package plan

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/opencalico/calicoctl/node/nat"
	"github.com/opencalico/calicoctl/node/routes"
)

// Globals are the inputs of a plan whose change recomputes all of it: the
// pools (every route depends on its pool), the NAT pool sets and the Felix
// settings. The local node's NodeInfo is one too (every remote route
// depends on its subnet), but it arrives through SetNode like any node.
type Globals struct {
	// Pools in the order the Snapshot lists them.
	Pools     []routes.PoolInfo
	MasqPools []netip.Prefix
	AllPools  []netip.Prefix
	Felix     FelixSettings
}

// Endpoint is what one workload endpoint contributes: the routes of its
// addresses when local (Workloads) and its floating IPs (FloatingIPs), or
// the addresses it uses outside its node's blocks when remote (Borrowed).
type Endpoint struct {
	Workloads   []routes.WorkloadRoute
	Borrowed    []routes.BlockInfo
	FloatingIPs []nat.FloatingNAT
}

func (e Endpoint) local() bool { return len(e.Workloads) > 0 || len(e.FloatingIPs) > 0 }

// Incremental keeps a Snapshot and its plan up to date one object at a
// time: the route of one block, borrowed address or workload, the VTEP of
// one node. Plan(facts) equals Plan(Snapshot(), facts) at every step; a
// change costs the objects it touches (and a copy of the sorted route and
// VTEP slices when they change), not a pass over the cluster. A change of
// the Globals or of the local node recomputes everything.
//
// An Incremental is not safe for concurrent use. The slices of the Desired
// it returns are never modified afterwards, so they may be handed to
// writers running elsewhere.
type Incremental struct {
	localNode string
	g         Globals
	ipip      bool
	vxlan     bool
	vxlanV6   bool
	router    routes.Router

	nodes     map[string]routes.NodeInfo
	blocks    map[netip.Prefix]string // block CIDR -> affinity node ("" none)
	endpoints map[string]Endpoint
	local     map[string]struct{} // endpoints with a local contribution

	// dsts are every destination something wants a route to, with what
	// wants it; byNode the destinations routed via a node (its blocks and
	// the addresses it borrows).
	dsts   map[netip.Prefix]*dstInputs
	byNode map[string]map[netip.Prefix]struct{}

	// The route intent: the winning route per destination, and the same
	// sorted (shared with the plans handed out: replaced, never modified).
	won    map[netip.Prefix]routes.Route
	sorted []routes.Route
	dirty  map[netip.Prefix]struct{}

	// VTEPs per remote node, counted (nodes may share an entry), and sorted.
	vteps        map[string]nodeVTEPs
	fdbCount     map[routes.FDBEntry]int
	neighCount   map[routes.NeighEntry]int
	fdb          []routes.FDBEntry
	neigh        []routes.NeighEntry
	dirtyVTEPs   map[string]struct{}
	recomputeAll bool
}

type nodeVTEPs struct {
	fdb   []routes.FDBEntry
	neigh []routes.NeighEntry
}

// dstInputs is what wants a route to one destination: the block with that
// CIDR (its affinity node), the nodes borrowing it and the local devices
// of workloads with that address (each counted).
type dstInputs struct {
	block     string
	hasBlock  bool
	borrowed  map[string]int
	workloads map[string]int
}

func (d *dstInputs) empty() bool { return !d.hasBlock && len(d.borrowed) == 0 && len(d.workloads) == 0 }

// NewIncremental returns the empty plan input of localNode.
func NewIncremental(localNode string) *Incremental {
	p := &Incremental{
		localNode: localNode, nodes: map[string]routes.NodeInfo{}, blocks: map[netip.Prefix]string{},
		endpoints: map[string]Endpoint{}, local: map[string]struct{}{},
		dsts: map[netip.Prefix]*dstInputs{}, byNode: map[string]map[netip.Prefix]struct{}{},
		won: map[netip.Prefix]routes.Route{}, dirty: map[netip.Prefix]struct{}{},
		vteps: map[string]nodeVTEPs{}, fdbCount: map[routes.FDBEntry]int{}, neighCount: map[routes.NeighEntry]int{},
		dirtyVTEPs: map[string]struct{}{},
	}
	p.SetGlobals(Globals{})
	return p
}

// LocalNode is the node the plan is for.
func (p *Incremental) LocalNode() string { return p.localNode }

// SetGlobals replaces the pools, NAT pool sets and Felix settings, and
// recomputes everything at the next Plan.
func (p *Incremental) SetGlobals(g Globals) {
	p.g = g
	p.ipip, p.vxlan, p.vxlanV6 = EncapsInUse(g.Pools)
	p.recomputeAll = true
}

// Globals returns the current globals.
func (p *Incremental) Globals() Globals { return p.g }

// SetNode adds or replaces a node. The local node recomputes everything.
func (p *Incremental) SetNode(n routes.NodeInfo) {
	if old, ok := p.nodes[n.Name]; ok && old == n {
		return
	}
	p.nodes[n.Name] = n
	p.nodeChanged(n.Name)
}

// DeleteNode removes a node.
func (p *Incremental) DeleteNode(name string) {
	if _, ok := p.nodes[name]; !ok {
		return
	}
	delete(p.nodes, name)
	p.nodeChanged(name)
}

func (p *Incremental) nodeChanged(name string) {
	if name == p.localNode {
		p.recomputeAll = true
		return
	}
	for dst := range p.byNode[name] {
		p.dirty[dst] = struct{}{}
	}
	p.dirtyVTEPs[name] = struct{}{}
}

// SetBlock adds or replaces the block with this CIDR, affine to node ("":
// none).
func (p *Incremental) SetBlock(cidr netip.Prefix, node string) {
	if old, ok := p.blocks[cidr]; ok {
		if old == node {
			return
		}
		p.DeleteBlock(cidr)
	}
	p.blocks[cidr] = node
	d := p.dst(cidr.Masked())
	d.block, d.hasBlock = node, true
	p.index(node, cidr.Masked())
}

// Block returns the affinity node of the block with this CIDR; false when
// there is no such block.
func (p *Incremental) Block(cidr netip.Prefix) (string, bool) {
	node, ok := p.blocks[cidr]
	return node, ok
}

// DeleteBlock removes the block with this CIDR.
func (p *Incremental) DeleteBlock(cidr netip.Prefix) {
	node, ok := p.blocks[cidr]
	if !ok {
		return
	}
	delete(p.blocks, cidr)
	dst := cidr.Masked()
	if d := p.dsts[dst]; d != nil {
		d.block, d.hasBlock = "", false
	}
	p.unindex(node, dst)
	p.dirty[dst] = struct{}{}
}

// SetEndpoint adds or replaces what the endpoint with this key contributes.
func (p *Incremental) SetEndpoint(key string, e Endpoint) {
	p.DeleteEndpoint(key)
	if len(e.Workloads)+len(e.Borrowed)+len(e.FloatingIPs) == 0 {
		return
	}
	p.endpoints[key] = e
	if e.local() {
		p.local[key] = struct{}{}
	}
	for _, b := range e.Borrowed {
		d := p.dst(b.CIDR)
		d.borrowed = count(d.borrowed, b.Node, 1)
		p.index(b.Node, b.CIDR)
	}
	for _, w := range e.Workloads {
		if !w.Addr.IsValid() {
			continue
		}
		d := p.dst(hostPrefix(w.Addr.Addr()))
		d.workloads = count(d.workloads, w.Iface, 1)
	}
}

// DeleteEndpoint removes what the endpoint with this key contributes.
func (p *Incremental) DeleteEndpoint(key string) {
	e, ok := p.endpoints[key]
	if !ok {
		return
	}
	delete(p.endpoints, key)
	delete(p.local, key)
	for _, b := range e.Borrowed {
		if d := p.dsts[b.CIDR]; d != nil {
			d.borrowed = count(d.borrowed, b.Node, -1)
			if d.borrowed[b.Node] == 0 {
				p.unindex(b.Node, b.CIDR)
			}
		}
		p.dirty[b.CIDR] = struct{}{}
	}
	for _, w := range e.Workloads {
		if !w.Addr.IsValid() {
			continue
		}
		dst := hostPrefix(w.Addr.Addr())
		if d := p.dsts[dst]; d != nil {
			d.workloads = count(d.workloads, w.Iface, -1)
		}
		p.dirty[dst] = struct{}{}
	}
}

func count(m map[string]int, k string, n int) map[string]int {
	if m == nil {
		m = map[string]int{}
	}
	if m[k] += n; m[k] <= 0 {
		delete(m, k)
	}
	return m
}

// dst returns the inputs of a destination (made on first use) and marks
// it for recomputation.
func (p *Incremental) dst(dst netip.Prefix) *dstInputs {
	p.dirty[dst] = struct{}{}
	d := p.dsts[dst]
	if d == nil {
		d = &dstInputs{}
		p.dsts[dst] = d
	}
	return d
}

func (p *Incremental) index(node string, dst netip.Prefix) {
	if node == "" {
		return
	}
	set := p.byNode[node]
	if set == nil {
		set = map[netip.Prefix]struct{}{}
		p.byNode[node] = set
	}
	set[dst] = struct{}{}
}

// unindex drops dst from node's set unless node still routes it.
func (p *Incremental) unindex(node string, dst netip.Prefix) {
	set := p.byNode[node]
	if set == nil {
		return
	}
	if d := p.dsts[dst]; d != nil && ((d.hasBlock && d.block == node) || d.borrowed[node] > 0) {
		return
	}
	delete(set, dst)
	if len(set) == 0 {
		delete(p.byNode, node)
	}
}

// UsesIPIP says whether an enabled pool uses IPIP.
func (p *Incremental) UsesIPIP() bool { return p.ipip }

// Plan brings the route intent and VTEPs up to date with the changes since
// the last call and returns the node's dataplane intent: equal to
// Plan(p.Snapshot(), facts).
func (p *Incremental) Plan(facts HostFacts) Desired {
	p.update()
	return planWith(p.light(), facts, routes.Desired{Routes: p.sorted, FDB: p.fdb, Neighbors: p.neigh})
}

var _ Input = (*Incremental)(nil)

// update recomputes the dirty destinations and VTEPs.
func (p *Incremental) update() {
	if p.recomputeAll {
		p.recomputeAll = false
		local := p.nodes[p.localNode]
		p.router = routes.NewRouter(p.localNode, local, p.g.Pools, routes.Options{})
		for dst := range p.dsts {
			p.dirty[dst] = struct{}{}
		}
		for dst := range p.won {
			p.dirty[dst] = struct{}{}
		}
		clear(p.vteps)
		clear(p.fdbCount)
		clear(p.neighCount)
		clear(p.dirtyVTEPs)
		p.fdb, p.neigh = nil, nil
		for name := range p.nodes {
			p.addVTEPs(name)
		}
		p.fdb = sortedKeys(p.fdbCount, routes.CompareFDB)
		p.neigh = sortedKeys(p.neighCount, routes.CompareNeigh)
	}
	p.updateRoutes()
	p.updateVTEPs()
}

func (p *Incremental) updateRoutes() {
	if len(p.dirty) == 0 {
		return
	}
	var put []routes.Route
	var del []netip.Prefix
	for dst := range p.dirty {
		r, ok := p.route(dst)
		old, had := p.won[dst]
		switch {
		case ok && (!had || old != r):
			p.won[dst] = r
			put = append(put, r)
		case !ok && had:
			delete(p.won, dst)
			del = append(del, dst)
		}
		if d := p.dsts[dst]; d != nil && d.empty() {
			delete(p.dsts, dst)
		}
	}
	clear(p.dirty)
	byDst := func(a, b routes.Route) int { return routes.ComparePrefix(a.Dst, b.Dst) }
	if len(put)+len(del) > len(p.sorted)/8 {
		p.sorted = sortedValues(p.won, byDst)
		return
	}
	dels := make([]routes.Route, len(del))
	for i, d := range del {
		dels[i] = routes.Route{Dst: d}
	}
	p.sorted = patch(p.sorted, put, dels, byDst)
}

// route is the route Compute would give dst: in its order (block,
// borrowed by node, workloads by device), a later want of at least the
// same rank replaces an earlier one.
func (p *Incremental) route(dst netip.Prefix) (routes.Route, bool) {
	d := p.dsts[dst]
	if d == nil {
		return routes.Route{}, false
	}
	var best routes.Route
	bestRank, found := 0, false
	put := func(r routes.Route, rank int, ok bool) {
		if ok && (!found || rank >= bestRank) {
			best, bestRank, found = r, rank, true
		}
	}
	if d.hasBlock {
		n, known := p.nodes[d.block]
		put(p.router.Block(routes.BlockInfo{CIDR: dst, Node: d.block}, false, n, known))
	}
	for _, node := range sortedNames(d.borrowed) {
		n, known := p.nodes[node]
		put(p.router.Block(routes.BlockInfo{CIDR: dst, Node: node}, true, n, known))
	}
	for _, iface := range sortedNames(d.workloads) {
		put(p.router.Workload(routes.WorkloadRoute{Addr: dst, Iface: iface}))
	}
	return best, found
}

func sortedNames(m map[string]int) []string {
	switch len(m) {
	case 0:
		return nil
	case 1:
		for k := range m {
			return []string{k}
		}
	}
	return slices.Sorted(maps.Keys(m))
}

// addVTEPs counts the VTEP entries of a remote node.
func (p *Incremental) addVTEPs(name string) {
	n, ok := p.nodes[name]
	if !ok || name == p.localNode {
		return
	}
	var v nodeVTEPs
	for _, fam := range []struct{ v4, on bool }{{true, p.vxlanInUse(true)}, {false, p.vxlanInUse(false)}} {
		if !fam.on {
			continue
		}
		if f, nb, ok := routes.VTEPEntries(n, fam.v4); ok {
			v.fdb = append(v.fdb, f)
			v.neigh = append(v.neigh, nb)
			p.fdbCount[f]++
			p.neighCount[nb]++
		}
	}
	if len(v.fdb) > 0 {
		p.vteps[name] = v
	}
}

func (p *Incremental) vxlanInUse(v4 bool) bool { return routes.VXLANInUse(p.g.Pools, v4) }

func (p *Incremental) updateVTEPs() {
	if len(p.dirtyVTEPs) == 0 {
		return
	}
	var putF, delF []routes.FDBEntry
	var putN, delN []routes.NeighEntry
	for name := range p.dirtyVTEPs {
		old := p.vteps[name]
		delete(p.vteps, name)
		for _, f := range old.fdb {
			if p.fdbCount[f]--; p.fdbCount[f] <= 0 {
				delete(p.fdbCount, f)
				delF = append(delF, f)
			}
		}
		for _, nb := range old.neigh {
			if p.neighCount[nb]--; p.neighCount[nb] <= 0 {
				delete(p.neighCount, nb)
				delN = append(delN, nb)
			}
		}
		p.addVTEPs(name)
		for _, f := range p.vteps[name].fdb {
			if p.fdbCount[f] == 1 {
				putF = append(putF, f)
			}
		}
		for _, nb := range p.vteps[name].neigh {
			if p.neighCount[nb] == 1 {
				putN = append(putN, nb)
			}
		}
	}
	clear(p.dirtyVTEPs)
	// An entry deleted and put back is simply kept.
	delF = slices.DeleteFunc(delF, func(f routes.FDBEntry) bool { return p.fdbCount[f] > 0 })
	delN = slices.DeleteFunc(delN, func(nb routes.NeighEntry) bool { return p.neighCount[nb] > 0 })
	p.fdb = patch(p.fdb, putF, delF, routes.CompareFDB)
	p.neigh = patch(p.neigh, putN, delN, routes.CompareNeigh)
}

// patch returns sorted (ordered by cmp, no two elements equal under it)
// with del removed and put inserted or replacing its equal; a new slice
// when anything changes (sorted is shared), nil when empty.
func patch[T any](sorted, put, del []T, cmp func(a, b T) int) []T {
	if len(put)+len(del) == 0 {
		return sorted
	}
	out := make([]T, len(sorted), len(sorted)+len(put))
	copy(out, sorted)
	for _, d := range del {
		if i, ok := slices.BinarySearchFunc(out, d, cmp); ok {
			out = slices.Delete(out, i, i+1)
		}
	}
	for _, v := range put {
		if i, ok := slices.BinarySearchFunc(out, v, cmp); ok {
			out[i] = v
		} else {
			out = slices.Insert(out, i, v)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func sortedKeys[K comparable, V any](m map[K]V, cmp func(a, b K) int) []K {
	if len(m) == 0 {
		return nil
	}
	return slices.SortedFunc(maps.Keys(m), cmp)
}

func sortedValues[K comparable, V any](m map[K]V, cmp func(a, b V) int) []V {
	if len(m) == 0 {
		return nil
	}
	return slices.SortedFunc(maps.Values(m), cmp)
}

// light is the Snapshot without the remote parts (nodes, blocks, borrowed
// addresses), which only the route intent needs and p keeps itself.
func (p *Incremental) light() *Snapshot {
	s := &Snapshot{Local: p.nodes[p.localNode], IPIP: p.ipip, VXLAN: p.vxlan, VXLANv6: p.vxlanV6, Felix: p.g.Felix}
	s.Routes = routes.State{LocalNode: p.localNode, Pools: p.g.Pools}
	s.NAT = nat.Desired{MasqPools: p.g.MasqPools, AllPools: p.g.AllPools}
	for key := range p.local {
		e := p.endpoints[key]
		s.Routes.Workloads = append(s.Routes.Workloads, e.Workloads...)
		s.NAT.FloatingIPs = append(s.NAT.FloatingIPs, e.FloatingIPs...)
	}
	SortSnapshot(s)
	return s
}

// Snapshot returns the whole Snapshot p stands for (a pass over
// everything: for tests and diagnostics).
func (p *Incremental) Snapshot() *Snapshot {
	s := p.light()
	s.Routes.Nodes = maps.Clone(p.nodes)
	for cidr, node := range p.blocks {
		s.Routes.Blocks = append(s.Routes.Blocks, routes.BlockInfo{CIDR: cidr, Node: node})
	}
	for _, e := range p.endpoints {
		s.Routes.Borrowed = append(s.Routes.Borrowed, e.Borrowed...)
	}
	slices.SortFunc(s.Routes.Blocks, func(a, b routes.BlockInfo) int { return routes.ComparePrefix(a.CIDR, b.CIDR) })
	SortSnapshot(s)
	return s
}

func hostPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
