package ipam

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"

	"github.com/opencalico/calicoctl/datastore"
)

// This file holds read-only views of the IPAM state for the CLI (`ipam show`
// and friends). They are pure functions of what the Store and PoolSource
// return; nothing is written.

// BlockUsage is one block's utilisation.
type BlockUsage struct {
	CIDR netip.Prefix
	// Affinity is the block's raw affinity ("host:n1", "virtual:x" or "").
	Affinity string
	// Host is the node of a host affinity ("" otherwise).
	Host     string
	Capacity int
	InUse    int // allocated addresses
	Reserved int // free addresses an IPReservation keeps from being handed out
	Free     int // Capacity - InUse - Reserved
}

// PoolUsage is one pool's utilisation. Address counts are float64 because
// an IPv6 pool can hold more than 2^63 addresses.
type PoolUsage struct {
	Pool     Pool
	Capacity float64
	InUse    float64
	Reserved float64 // reserved addresses not allocated
	Free     float64 // Capacity - InUse - Reserved
	// Blocks are the pool's existing blocks, sorted by address.
	Blocks []BlockUsage
	// BlocksTotal is how many blocks the pool divides into; BlocksFree how
	// many of them are neither created nor fully reserved, i.e. how many more
	// nodes the pool can give a block to.
	BlocksTotal float64
	BlocksFree  float64
}

// UsageReport is the utilisation of every pool, plus the blocks that lie in
// no pool (for example, left behind by a deleted pool).
type UsageReport struct {
	Pools   []PoolUsage  // in the PoolSource's order
	Outside []BlockUsage // sorted by address
}

// Usage reports utilisation per pool and per block.
func Usage(ctx context.Context, store Store, pools PoolSource) (*UsageReport, error) {
	ps, err := pools.Pools(ctx)
	if err != nil {
		return nil, fmt.Errorf("usage: read IP pools: %w", err)
	}
	res, err := pools.Reservations(ctx)
	if err != nil {
		return nil, fmt.Errorf("usage: read IP reservations: %w", err)
	}
	res = disjoint(res)
	blocks, err := store.ListBlocks(ctx)
	if err != nil {
		return nil, fmt.Errorf("usage: list blocks: %w", err)
	}
	slices.SortFunc(blocks, func(x, y *Block) int { return comparePrefix(x.CIDR, y.CIDR) })

	rep := &UsageReport{Pools: make([]PoolUsage, len(ps))}
	for i, p := range ps {
		pu := &rep.Pools[i]
		pu.Pool = p
		pu.Capacity = math.Exp2(float64(p.CIDR.Addr().BitLen() - p.CIDR.Bits()))
		if p.BlockSize >= p.CIDR.Bits() {
			pu.BlocksTotal = math.Exp2(float64(p.BlockSize - p.CIDR.Bits()))
			pu.BlocksFree = pu.BlocksTotal - reservedBlocks(p, res)
		}
		pu.Reserved = reservedAddrs(p.CIDR, res)
	}
	for _, b := range blocks {
		bu := blockUsage(b, res)
		i := slices.IndexFunc(ps, func(p Pool) bool { return p.CIDR.Overlaps(b.CIDR) && p.CIDR.Bits() <= b.CIDR.Bits() })
		if i < 0 {
			rep.Outside = append(rep.Outside, bu)
			continue
		}
		pu := &rep.Pools[i]
		pu.Blocks = append(pu.Blocks, bu)
		pu.InUse += float64(bu.InUse)
		// Reserved addresses that are nevertheless allocated count as in use.
		pu.Reserved -= float64(reservedAllocated(b, res))
		if b.CIDR.Bits() == pu.Pool.BlockSize && !fullyReserved(b.CIDR, res) {
			pu.BlocksFree--
		}
	}
	for i := range rep.Pools {
		pu := &rep.Pools[i]
		pu.Free = pu.Capacity - pu.InUse - pu.Reserved
		pu.BlocksFree = max(pu.BlocksFree, 0)
	}
	return rep, nil
}

func comparePrefix(x, y netip.Prefix) int {
	return cmp.Or(x.Addr().Compare(y.Addr()), cmp.Compare(x.Bits(), y.Bits()))
}

// disjoint drops prefixes contained in others (prefixes either nest or are
// disjoint, so the rest do not overlap).
func disjoint(ps []netip.Prefix) []netip.Prefix {
	ps = slices.Clone(ps)
	for i := range ps {
		ps[i] = ps[i].Masked()
	}
	slices.SortFunc(ps, func(x, y netip.Prefix) int {
		return cmp.Or(x.Addr().Compare(y.Addr()), cmp.Compare(x.Bits(), y.Bits()))
	})
	var out []netip.Prefix
	for _, p := range ps {
		if n := len(out); n > 0 && out[n-1].Overlaps(p) {
			continue // sorted: the earlier one is the larger
		}
		out = append(out, p)
	}
	return out
}

// reservedAddrs counts the addresses of cidr that res (disjoint) reserve.
func reservedAddrs(cidr netip.Prefix, res []netip.Prefix) float64 {
	n := 0.0
	for _, r := range res {
		if !r.Overlaps(cidr) {
			continue
		}
		bits := max(r.Bits(), cidr.Bits())
		n += math.Exp2(float64(cidr.Addr().BitLen() - bits))
	}
	return n
}

// reservedBlocks counts the pool's blocks that res (disjoint) fully reserve.
func reservedBlocks(p Pool, res []netip.Prefix) float64 {
	n := 0.0
	for _, r := range res {
		if r.Overlaps(p.CIDR) && r.Bits() <= p.BlockSize {
			n += math.Exp2(float64(p.BlockSize - max(r.Bits(), p.CIDR.Bits())))
		}
	}
	return n
}

// reservedAllocated counts the block's allocated addresses that are reserved.
func reservedAllocated(b *Block, res []netip.Prefix) int {
	marks := reservedIn(b.CIDR, res)
	n := 0
	for o, p := range b.Allocations {
		if p != nil && marks != nil && o < len(marks) && marks[o] {
			n++
		}
	}
	return n
}

func blockUsage(b *Block, res []netip.Prefix) BlockUsage {
	bu := BlockUsage{CIDR: b.CIDR, Affinity: b.Affinity, Host: affinityHost(b.Affinity), Capacity: len(b.Allocations)}
	marks := reservedIn(b.CIDR, res)
	for o, p := range b.Allocations {
		switch {
		case p != nil:
			bu.InUse++
		case marks != nil && o < len(marks) && marks[o]:
			bu.Reserved++
		}
	}
	bu.Free = bu.Capacity - bu.InUse - bu.Reserved
	return bu
}

// affinityHost is the node of a "host:<node>" affinity ("" otherwise).
func affinityHost(affinity string) string {
	h, ok := strings.CutPrefix(affinity, "host:")
	if !ok {
		return ""
	}
	return h
}

// IPInfo describes one address as the datastore sees it.
type IPInfo struct {
	IP netip.Addr
	// Pool is the pool holding the address (nil when none does).
	Pool *Pool
	// Reserved is true when an IPReservation covers the address.
	Reserved bool
	// Block is the CIDR of the stored block holding the address (invalid
	// when no block exists), and BlockAffinity its affinity.
	Block         netip.Prefix
	BlockAffinity string
	// Allocated is true when the address is assigned; the fields below are
	// set only then.
	Allocated bool
	Handle    *string
	// Attrs holds the active and alternate owner attributes (copies).
	Attrs AllocationAttribute
	// SequenceNumber is the allocation's sequence number, for a release
	// that must not free a later allocation of the same address.
	SequenceNumber uint64
}

// Lookup tells whether ip is allocated and to whom. A free address, or one
// outside every block, is not an error: Allocated is false.
func Lookup(ctx context.Context, store Store, pools PoolSource, ip netip.Addr) (*IPInfo, error) {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return nil, fmt.Errorf("lookup: %w: no address", ErrInvalidArgument)
	}
	ps, err := pools.Pools(ctx)
	if err != nil {
		return nil, fmt.Errorf("lookup %s: read IP pools: %w", ip, err)
	}
	res, err := pools.Reservations(ctx)
	if err != nil {
		return nil, fmt.Errorf("lookup %s: read IP reservations: %w", ip, err)
	}
	info := &IPInfo{IP: ip}
	if p := poolFor(ps, ip); p != nil {
		c := *p
		info.Pool = &c
	}
	for _, r := range res {
		if r.Contains(ip) {
			info.Reserved = true
		}
	}
	loc := &blockLocator{store: store, pools: ps}
	cidr, ok, err := loc.cidrOf(ctx, ip)
	if err != nil || !ok {
		return info, err
	}
	b, err := store.GetBlock(ctx, cidr)
	if errors.Is(err, datastore.ErrNotFound) {
		// The pool's block size says where the block would be; a block
		// left by an older pool of another block size may hold it instead.
		loc.pools = nil
		if cidr, ok, err = loc.cidrOf(ctx, ip); err != nil || !ok {
			return info, err
		}
		b, err = store.GetBlock(ctx, cidr)
		if errors.Is(err, datastore.ErrNotFound) {
			return info, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("lookup %s: read block %s: %w", ip, cidr, err)
	}
	info.Block, info.BlockAffinity = b.CIDR, b.Affinity
	ord := ordinalIn(b.CIDR, ip)
	if ord >= len(b.Allocations) || b.Allocations[ord] == nil {
		return info, nil
	}
	info.Allocated = true
	info.SequenceNumber = b.SequenceNumberForAllocation[OrdinalKey(ord)]
	if i := *b.Allocations[ord]; i >= 0 && i < len(b.Attributes) {
		at := b.Attributes[i]
		info.Attrs = AllocationAttribute{
			ActiveOwnerAttrs:    cloneMap(at.ActiveOwnerAttrs),
			AlternateOwnerAttrs: cloneMap(at.AlternateOwnerAttrs),
		}
		if at.HandleID != nil {
			h := *at.HandleID
			info.Handle, info.Attrs.HandleID = &h, &h
		}
		if at.ReleasedAt != nil {
			t := *at.ReleasedAt
			info.Attrs.ReleasedAt = &t
		}
	}
	return info, nil
}

// BorrowedIP is an address allocated to one node from a block affine to
// another (or to none).
type BorrowedIP struct {
	IP netip.Addr
	// BorrowingNode is the allocation's `node` attribute.
	BorrowingNode string
	Block         netip.Prefix
	// BlockOwner is the node of the block's host affinity ("" when the block
	// has none; BlockAffinity then tells a virtual owner).
	BlockOwner    string
	BlockAffinity string
	// Type is "pod", "vmi", or the allocation's `type` attribute.
	Type string
	// AllocatedTo is "<namespace>/<pod>" (or "<namespace>/<vmi-name>").
	AllocatedTo string
	Handle      *string
}

// BorrowedReport lists borrowed addresses, sorted, and counts allocations
// with no `node` attribute (whether those are borrowed cannot be told).
type BorrowedReport struct {
	IPs     []BorrowedIP
	Unknown int
}

// Borrowed finds every address whose `node` attribute differs from its
// block's host affinity.
func Borrowed(ctx context.Context, store Store) (*BorrowedReport, error) {
	blocks, err := store.ListBlocks(ctx)
	if err != nil {
		return nil, fmt.Errorf("borrowed IPs: list blocks: %w", err)
	}
	rep := &BorrowedReport{}
	for _, b := range blocks {
		owner := affinityHost(b.Affinity)
		for o, p := range b.Allocations {
			if p == nil || *p < 0 || *p >= len(b.Attributes) {
				continue
			}
			at := b.Attributes[*p]
			node := at.ActiveOwnerAttrs[AttrNode]
			if node == "" {
				rep.Unknown++
				continue
			}
			if node == owner {
				continue
			}
			bi := BorrowedIP{
				IP: addrIn(b.CIDR, o), BorrowingNode: node, Block: b.CIDR,
				BlockOwner: owner, BlockAffinity: b.Affinity,
			}
			bi.Type, bi.AllocatedTo = ownerKind(at.ActiveOwnerAttrs)
			if at.HandleID != nil {
				h := *at.HandleID
				bi.Handle = &h
			}
			rep.IPs = append(rep.IPs, bi)
		}
	}
	slices.SortFunc(rep.IPs, func(x, y BorrowedIP) int { return x.IP.Compare(y.IP) })
	return rep, nil
}

// Attribute keys of KubeVirt allocations.
const (
	AttrVMIName = "vmi-name"
)

// ownerKind classifies an allocation's owner for display.
func ownerKind(attrs map[string]string) (typ, to string) {
	ns := attrs[AttrNamespace]
	switch {
	case attrs[AttrVMIName] != "":
		return "vmi", ns + "/" + attrs[AttrVMIName]
	case attrs[AttrPod] != "":
		return "pod", ns + "/" + attrs[AttrPod]
	}
	return attrs[AttrType], ""
}

// Usage, Lookup and Borrowed on the allocator's store and pools.

// Usage reports utilisation (see the package function Usage).
func (a *Allocator) Usage(ctx context.Context) (*UsageReport, error) {
	return Usage(ctx, a.store, a.pools)
}

// Lookup describes one address (see the package function Lookup).
func (a *Allocator) Lookup(ctx context.Context, ip netip.Addr) (*IPInfo, error) {
	return Lookup(ctx, a.store, a.pools, ip)
}

// Borrowed lists borrowed addresses (see the package function Borrowed).
func (a *Allocator) Borrowed(ctx context.Context) (*BorrowedReport, error) {
	return Borrowed(ctx, a.store)
}
