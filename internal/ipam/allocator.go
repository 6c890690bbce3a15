package ipam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
	"github.com/opencalico/calicoctl/resources/selector"
)

// Allowed uses and assignment modes of a pool (the IPPool spec's values).
const (
	UseWorkload     = "Workload"
	UseTunnel       = "Tunnel"
	UseLoadBalancer = "LoadBalancer"

	ModeAutomatic = "Automatic"
	ModeManual    = "Manual"
)

// Limits.
const (
	// DefaultMaxBlocksPerHost applies when neither the IPAM config nor the
	// request sets a cap.
	DefaultMaxBlocksPerHost = 20
	// DefaultRetries bounds every compare-and-swap loop.
	DefaultRetries = 100
)

// Pool is the part of an IPPool the allocator needs.
type Pool struct {
	Name           string
	CIDR           netip.Prefix
	BlockSize      int
	Disabled       bool
	NodeSelector   string
	AllowedUses    []string // empty = [Workload, Tunnel]
	AssignmentMode string   // "" = Automatic
}

func (p *Pool) label() string { return fmt.Sprintf("%s (%s)", p.Name, p.CIDR) }

func (p *Pool) allows(use string) bool {
	if len(p.AllowedUses) == 0 {
		return use == UseWorkload || use == UseTunnel
	}
	return slices.Contains(p.AllowedUses, use)
}

// PoolSource supplies the pools and the reserved ranges (IPReservations).
type PoolSource interface {
	Pools(ctx context.Context) ([]Pool, error)
	Reservations(ctx context.Context) ([]netip.Prefix, error)
}

// NodeLabelsFunc returns a node's labels (nil, nil for an unknown node).
type NodeLabelsFunc func(ctx context.Context, node string) (map[string]string, error)

// Allocator hands out addresses from blocks kept in a Store. It keeps no
// state between calls beyond a search-order hint and takes no locks: every
// write is a compare-and-swap,
// so any number of allocators (in any number of processes) may share a store.
type Allocator struct {
	store      Store
	pools      PoolSource
	nodeLabels NodeLabelsFunc
	retries    int
	log        *slog.Logger
	// hints maps hintKey to the block a host last assigned from. It is only
	// a search order: correctness never depends on it.
	hints sync.Map
}

type hintKey struct {
	host string
	fam  int
}

// Option configures an Allocator.
type Option func(*Allocator)

// WithNodeLabels sets how node labels are found for nodeSelector matching.
// By default a PoolSource that can tell (PoolsFromDatastore) is asked;
// otherwise nodes have no labels.
func WithNodeLabels(fn NodeLabelsFunc) Option { return func(a *Allocator) { a.nodeLabels = fn } }

// WithMaxRetries bounds each compare-and-swap loop (default 100).
func WithMaxRetries(n int) Option {
	return func(a *Allocator) {
		if n > 0 {
			a.retries = n
		}
	}
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(a *Allocator) {
		if l != nil {
			a.log = l
		}
	}
}

// New returns an allocator over store, taking pools from pools.
func New(store Store, pools PoolSource, opts ...Option) *Allocator {
	a := &Allocator{store: store, pools: pools, retries: DefaultRetries, log: slog.Default()}
	if l, ok := pools.(interface {
		NodeLabels(ctx context.Context, node string) (map[string]string, error)
	}); ok {
		a.nodeLabels = l.NodeLabels
	}
	for _, o := range opts {
		o(a)
	}
	return a
}

// PoolsFromDatastore reads IPPool and IPReservation resources from ds, and
// node labels from its Node resources (a missing node has no labels).
func PoolsFromDatastore(ds datastore.Interface) PoolSource { return &dsPools{ds: ds} }

type dsPools struct{ ds datastore.Interface }

func (p *dsPools) Pools(ctx context.Context) ([]Pool, error) {
	res, err := p.ds.List(ctx, datastore.ListOptions{Kind: "IPPool"})
	if err != nil {
		return nil, fmt.Errorf("list IP pools: %w", err)
	}
	out := make([]Pool, 0, len(res.Items))
	for _, item := range res.Items {
		ip, ok := item.(*resources.IPPool)
		if !ok {
			continue
		}
		pool, err := PoolFromResource(ip)
		if err != nil {
			slog.Warn("ipam: skipping unusable IP pool", "pool", ip.Name, "err", err)
			continue
		}
		out = append(out, pool)
	}
	return out, nil
}

// PoolFromResource converts an IPPool resource, applying its defaults.
func PoolFromResource(r *resources.IPPool) (Pool, error) {
	c := *r
	c.Spec.AllowedUses = slices.Clone(r.Spec.AllowedUses)
	c.Default()
	cidr, err := netip.ParsePrefix(c.Spec.CIDR)
	if err != nil {
		return Pool{}, fmt.Errorf("IP pool %s: %w", r.Name, err)
	}
	p := Pool{
		Name:         c.Name,
		CIDR:         cidr.Masked(),
		BlockSize:    c.Spec.BlockSize,
		Disabled:     c.Spec.Disabled,
		NodeSelector: c.Spec.NodeSelector,
	}
	for _, u := range c.Spec.AllowedUses {
		p.AllowedUses = append(p.AllowedUses, string(u))
	}
	if c.Spec.AssignmentMode != nil {
		p.AssignmentMode = string(*c.Spec.AssignmentMode)
	}
	return p, nil
}

func (p *dsPools) Reservations(ctx context.Context) ([]netip.Prefix, error) {
	res, err := p.ds.List(ctx, datastore.ListOptions{Kind: "IPReservation"})
	if err != nil {
		return nil, fmt.Errorf("list IP reservations: %w", err)
	}
	var out []netip.Prefix
	for _, item := range res.Items {
		r, ok := item.(*resources.IPReservation)
		if !ok {
			continue
		}
		for _, s := range r.Spec.ReservedCIDRs {
			// As the validator reads it: a bare address is a host prefix, and
			// a prefix length may have leading zeros ("10.0.0.0/024").
			pfx, err := resources.ParseCIDR(s)
			if err != nil {
				slog.Warn("ipam: skipping bad reserved CIDR", "reservation", r.Name, "cidr", s)
				continue
			}
			out = append(out, pfx.Masked())
		}
	}
	return out, nil
}

func (p *dsPools) NodeLabels(ctx context.Context, node string) (map[string]string, error) {
	r, err := p.ds.Get(ctx, resources.Key{Kind: "Node", Name: node})
	if errors.Is(err, datastore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read node %s: %w", node, err)
	}
	return r.GetLabels(), nil
}

// env is what one call reads once: config, pools, reservations, node labels.
type env struct {
	host         string
	cfg          *Config
	pools        []Pool
	reservations []netip.Prefix
	labels       map[string]string
	labelsRead   bool
}

func (a *Allocator) readEnv(ctx context.Context, host string) (*env, error) {
	cfg, err := a.store.GetConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("read IPAM config: %w", err)
	}
	pools, err := a.pools.Pools(ctx)
	if err != nil {
		return nil, fmt.Errorf("read IP pools: %w", err)
	}
	res, err := a.pools.Reservations(ctx)
	if err != nil {
		return nil, fmt.Errorf("read IP reservations: %w", err)
	}
	return &env{host: host, cfg: cfg, pools: pools, reservations: res}, nil
}

func (a *Allocator) nodeSelects(ctx context.Context, e *env, p *Pool) (bool, error) {
	sel, err := selector.Parse(p.NodeSelector)
	if err != nil {
		return false, fmt.Errorf("IP pool %s: bad nodeSelector: %w", p.Name, err)
	}
	if sel.IsAll() {
		return true, nil
	}
	if !e.labelsRead {
		if a.nodeLabels != nil {
			l, err := a.nodeLabels(ctx, e.host)
			if err != nil {
				return false, fmt.Errorf("node labels of %s: %w", e.host, err)
			}
			e.labels = l
		}
		e.labelsRead = true
	}
	return sel.Evaluate(e.labels), nil
}

// poolFor returns the pool containing addr, preferring an enabled one.
func poolFor(pools []Pool, addr netip.Addr) *Pool {
	var found *Pool
	for i := range pools {
		if pools[i].CIDR.Contains(addr) {
			if !pools[i].Disabled {
				return &pools[i]
			}
			found = &pools[i]
		}
	}
	return found
}

func familyOf(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 4
	}
	return 6
}

// ---- block arithmetic (on top of blockmath.go) ----

// blockLen is the number of addresses in a block.
func blockLen(cidr netip.Prefix) int { return BlockCapacity(cidr) }

// ordinalIn is addr's index in the block (addr must be inside it).
func ordinalIn(cidr netip.Prefix, addr netip.Addr) int {
	o, _ := OrdinalOf(&Block{CIDR: cidr}, addr)
	return o
}

// addrIn is the address at ordinal ord of the block.
func addrIn(cidr netip.Prefix, ord int) netip.Addr {
	a, _ := IPAt(&Block{CIDR: cidr}, ord)
	return a
}

// reservedIn marks the block's reserved ordinals (nil when none are).
func reservedIn(cidr netip.Prefix, reservations []netip.Prefix) []bool {
	var marks []bool
	for _, r := range reservations {
		r = r.Masked()
		if !r.Overlaps(cidr) {
			continue
		}
		if marks == nil {
			marks = make([]bool, blockLen(cidr))
		}
		if r.Bits() <= cidr.Bits() {
			for i := range marks {
				marks[i] = true
			}
			return marks
		}
		first := ordinalIn(cidr, r.Addr())
		for i := 0; i < 1<<(r.Addr().BitLen()-r.Bits()); i++ {
			marks[first+i] = true
		}
	}
	return marks
}

func fullyReserved(cidr netip.Prefix, reservations []netip.Prefix) bool {
	marks := reservedIn(cidr, reservations)
	if marks == nil {
		return false
	}
	for _, m := range marks {
		if !m {
			return false
		}
	}
	return true
}

// ---- block mutation (on a private copy) ----

func cloneBlock(b *Block) *Block {
	c := *b
	c.Allocations = make([]*int, len(b.Allocations))
	for i, p := range b.Allocations {
		if p != nil {
			v := *p
			c.Allocations[i] = &v
		}
	}
	c.Unallocated = slices.Clone(b.Unallocated)
	c.Attributes = make([]AllocationAttribute, len(b.Attributes))
	for i, at := range b.Attributes {
		c.Attributes[i] = AllocationAttribute{
			ActiveOwnerAttrs:    cloneMap(at.ActiveOwnerAttrs),
			AlternateOwnerAttrs: cloneMap(at.AlternateOwnerAttrs),
		}
		if at.HandleID != nil {
			h := *at.HandleID
			c.Attributes[i].HandleID = &h
		}
		if at.ReleasedAt != nil {
			t := *at.ReleasedAt
			c.Attributes[i].ReleasedAt = &t
		}
	}
	c.SequenceNumberForAllocation = make(map[string]uint64, len(b.SequenceNumberForAllocation))
	for k, v := range b.SequenceNumberForAllocation {
		c.SequenceNumberForAllocation[k] = v
	}
	if b.AffinityClaimTime != nil {
		t := *b.AffinityClaimTime
		c.AffinityClaimTime = &t
	}
	return &c
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// freeOrdinals returns up to n free, unreserved ordinals in hand-out order.
func freeOrdinals(b *Block, reserved []bool, n int) []int {
	var out []int
	for _, o := range b.Unallocated {
		if len(out) == n {
			break
		}
		if o < 0 || o >= len(b.Allocations) || b.Allocations[o] != nil || (reserved != nil && reserved[o]) {
			continue
		}
		out = append(out, o)
	}
	return out
}

// countFree counts free, unreserved ordinals.
func countFree(b *Block, reserved []bool) int {
	n := 0
	for _, o := range b.Unallocated {
		if o >= 0 && o < len(b.Allocations) && b.Allocations[o] == nil && (reserved == nil || !reserved[o]) {
			n++
		}
	}
	return n
}

// allocate records ords as one allocation with one attributes entry.
func allocate(b *Block, ords []int, handle string, attrs map[string]string) {
	at := AllocationAttribute{ActiveOwnerAttrs: cloneMap(attrs)}
	if handle != "" {
		h := handle
		at.HandleID = &h
	}
	idx := len(b.Attributes)
	b.Attributes = append(b.Attributes, at)
	taken := make(map[int]bool, len(ords))
	for _, o := range ords {
		i := idx
		b.Allocations[o] = &i
		taken[o] = true
		if b.SequenceNumberForAllocation == nil {
			b.SequenceNumberForAllocation = map[string]uint64{}
		}
		b.SequenceNumberForAllocation[OrdinalKey(o)] = b.SequenceNumber
	}
	b.Unallocated = slices.DeleteFunc(b.Unallocated, func(o int) bool { return taken[o] })
}

// handleAt is the handle of ordinal o ("" for none or free).
func handleAt(b *Block, o int) (string, bool) {
	if o < 0 || o >= len(b.Allocations) || b.Allocations[o] == nil {
		return "", false
	}
	i := *b.Allocations[o]
	if i < 0 || i >= len(b.Attributes) || b.Attributes[i].HandleID == nil {
		return "", true
	}
	return *b.Attributes[i].HandleID, true
}

// free releases ordinal o (it goes to the back of the hand-out queue).
func free(b *Block, o int) {
	b.Allocations[o] = nil
	b.Unallocated = append(b.Unallocated, o)
	delete(b.SequenceNumberForAllocation, OrdinalKey(o))
}

// compactAttributes drops attribute entries no allocation refers to.
func compactAttributes(b *Block) {
	used := make([]bool, len(b.Attributes))
	for _, p := range b.Allocations {
		if p != nil && *p >= 0 && *p < len(used) {
			used[*p] = true
		}
	}
	remap := make([]int, len(b.Attributes))
	kept := make([]AllocationAttribute, 0, len(b.Attributes))
	for i, at := range b.Attributes {
		if used[i] {
			remap[i] = len(kept)
			kept = append(kept, at)
		}
	}
	for _, p := range b.Allocations {
		if p != nil && *p >= 0 && *p < len(remap) {
			*p = remap[*p]
		}
	}
	b.Attributes = kept
}

func isEmpty(b *Block) bool {
	for _, p := range b.Allocations {
		if p != nil {
			return false
		}
	}
	return true
}

func hostAffinity(host string) string { return "host:" + host }

// ---- handles ----

// adjustHandle adds delta[blockCIDR] to the handle's per-block counts,
// creating the handle when needed and deleting it when every count is zero.
func (a *Allocator) adjustHandle(ctx context.Context, id string, delta map[string]int) error {
	if id == "" || len(delta) == 0 {
		return nil
	}
	var last error
	// Most handles are new (one per pod): try creating first, saving a read.
	tryCreate := true
	for _, d := range delta {
		tryCreate = tryCreate && d > 0
	}
	for attempt := 0; attempt < a.retries; attempt++ {
		var h *Handle
		err := datastore.ErrNotFound
		if !tryCreate {
			h, err = a.store.GetHandle(ctx, id)
		}
		tryCreate = false
		if errors.Is(err, datastore.ErrNotFound) {
			nh := &Handle{ID: id, Block: map[string]int{}}
			for k, d := range delta {
				if d > 0 {
					nh.Block[k] = d
				}
			}
			if len(nh.Block) == 0 {
				return nil
			}
			_, err = a.store.CreateHandle(ctx, nh)
			if errors.Is(err, datastore.ErrExists) {
				last = err
				continue
			}
			if err != nil {
				return fmt.Errorf("create handle %s: %w", id, err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("read handle %s: %w", id, err)
		}
		if h.Block == nil {
			h.Block = map[string]int{}
		}
		for k, d := range delta {
			if n := h.Block[k] + d; n > 0 {
				h.Block[k] = n
			} else {
				delete(h.Block, k)
			}
		}
		if len(h.Block) == 0 {
			err = a.store.DeleteHandle(ctx, h)
		} else {
			_, err = a.store.UpdateHandle(ctx, h)
		}
		if errors.Is(err, datastore.ErrConflict) || errors.Is(err, datastore.ErrNotFound) {
			last = err
			continue
		}
		if err != nil {
			return fmt.Errorf("write handle %s: %w", id, err)
		}
		return nil
	}
	return &RetriesExhaustedError{Op: "update handle " + id, Attempts: a.retries, Last: last}
}
