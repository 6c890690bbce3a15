package ipam

import (
	"context"
	"fmt"
	"math"
	"net/netip"
)

// capacity is an upper bound on how many addresses of one family a request
// could get, computed from one read of the host's affinities and of the
// blocks, before anything is claimed: the free addresses of the host's
// affine blocks, the addresses of the unclaimed blocks it may still claim
// (within max blocks per host, when blocks are auto-allocated), and the free
// addresses of other blocks it may borrow from (unless strict affinity).
type capacity struct {
	HostBlocks int // blocks of this family affine to the host
	Limit      int // max blocks per host for this request
	AffineFree int // free, unreserved addresses in the host's blocks
	NewBlocks  int // blocks the host may still claim
	NewFree    int // addresses in those blocks
	// CapHit is true when more unclaimed blocks exist than the cap lets the
	// host claim.
	CapHit bool
	Borrow int // free addresses in other blocks the host may borrow
	// Elsewhere is the free addresses in other blocks (borrowable or not).
	Elsewhere int
}

// Total is the bound (saturating).
func (c capacity) Total() int { return satAdd(satAdd(c.AffineFree, c.NewFree), c.Borrow) }

func satAdd(a, b int) int {
	if a > math.MaxInt-b {
		return math.MaxInt
	}
	return a + b
}

func satMul(a, b int) int {
	if a != 0 && b > math.MaxInt/a {
		return math.MaxInt
	}
	return a * b
}

// capacityFor computes the bound for one family over the eligible pools.
func (a *Allocator) capacityFor(ctx context.Context, e *env, args *AutoAssignArgs, fam int, pools []*Pool) (capacity, error) {
	c := capacity{Limit: a.maxBlocks(e, args)}
	affs, err := a.store.ListAffinities(ctx, e.host)
	if err != nil {
		return c, fmt.Errorf("list affinities: %w", err)
	}
	for _, aff := range affs {
		if aff.Host == e.host && familyOf(aff.CIDR) == fam && aff.State != StatePendingDeletion {
			c.HostBlocks++
		}
	}
	blocks, err := a.store.ListBlocks(ctx)
	if err != nil {
		return c, fmt.Errorf("list blocks: %w", err)
	}
	mine := hostAffinity(e.host)
	existing := make([]int, len(pools)) // blocks of each pool that exist
	for _, b := range blocks {
		if familyOf(b.CIDR) != fam || !inPools(pools, b.CIDR) {
			continue
		}
		for i, p := range pools {
			if p.CIDR.Contains(b.CIDR.Addr()) && p.BlockSize == b.CIDR.Bits() {
				existing[i]++
				break
			}
		}
		free := countFree(b, reservedIn(b.CIDR, e.reservations))
		if b.Affinity == mine {
			c.AffineFree = satAdd(c.AffineFree, free)
			continue
		}
		c.Elsewhere = satAdd(c.Elsewhere, free)
	}
	if !e.cfg.StrictAffinity {
		c.Borrow = c.Elsewhere
	}
	if !e.cfg.AutoAllocateBlocks {
		return c, nil
	}
	allowed := max(c.Limit-c.HostBlocks, 0)
	res := disjoint(e.reservations)
	for i, p := range pools {
		size := BlockCapacity(blockOf(p))
		if size == 0 {
			continue
		}
		unclaimed := math.MaxInt
		if bits := p.BlockSize - p.CIDR.Bits(); bits < 62 {
			total := float64(int(1)<<bits) - reservedBlocks(*p, res) - float64(existing[i])
			unclaimed = max(int(total), 0)
		}
		unclaimed = min(unclaimed, maxWalk)
		take := min(unclaimed, allowed-c.NewBlocks)
		if unclaimed > take {
			c.CapHit = true
		}
		c.NewBlocks += take
		c.NewFree = satAdd(c.NewFree, satMul(take, size))
	}
	return c, nil
}

// blockOf is the first block-sized prefix of a pool.
func blockOf(p *Pool) netip.Prefix { return netip.PrefixFrom(p.CIDR.Addr(), p.BlockSize) }

// capacityError is the error for a request of n addresses that c cannot
// satisfy: the limit that binds, naming n and what is available.
func capacityError(e *env, fam, n int, c capacity, pools []*Pool) error {
	avail := c.Total()
	switch {
	case c.CapHit:
		return &MaxBlocksError{Host: e.host, Blocks: c.HostBlocks, Max: c.Limit, Requested: n, Available: avail, Borrowable: c.Borrow}
	case e.cfg.StrictAffinity && c.Elsewhere > 0:
		return &StrictAffinityError{Host: e.host, Free: c.Elsewhere, Requested: n, Available: avail}
	}
	labels := make([]string, len(pools))
	for i, p := range pools {
		labels[i] = p.label()
	}
	if !e.cfg.AutoAllocateBlocks {
		labels = append(labels, "autoAllocateBlocks=false")
	}
	return &PoolFullError{Family: fam, Pools: labels, Requested: n, Free: avail}
}
