package ipam

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/opencalico/calicoctl/datastore"
)

// AutoAssignArgs asks for Num4 IPv4 and Num6 IPv6 addresses for one owner.
type AutoAssignArgs struct {
	Num4, Num6 int
	// HandleID records the owner ("" = no handle).
	HandleID string
	// Attrs become the allocation's active owner attributes.
	Attrs map[string]string
	// Hostname is the node the addresses are for (required).
	Hostname string
	// IPv4Pools / IPv6Pools restrict the request to these pools, which must
	// exist and be enabled. Empty = every enabled, automatic pool whose
	// nodeSelector matches.
	IPv4Pools, IPv6Pools []netip.Prefix
	// MaxBlocksPerHost caps the host's blocks for this request (0 = config's).
	MaxBlocksPerHost int
	// IntendedUse is Workload (default) or Tunnel.
	IntendedUse string
}

// AssignResult holds the addresses assigned, each with its block's prefix
// length (as upstream returns them).
type AssignResult struct {
	IPv4, IPv6 []netip.Prefix
}

// AssignIPArgs asks for one specific address.
type AssignIPArgs struct {
	IP          netip.Addr
	HandleID    string
	Attrs       map[string]string
	Hostname    string
	IntendedUse string
}

// AutoAssign assigns the requested addresses. It is all or nothing: when
// either family cannot be satisfied, what was assigned is released again and
// the error names the limit that was hit.
func (a *Allocator) AutoAssign(ctx context.Context, args AutoAssignArgs) (*AssignResult, error) {
	if args.Hostname == "" {
		return nil, fmt.Errorf("auto-assign: %w: hostname is required", ErrInvalidArgument)
	}
	if args.Num4 < 0 || args.Num6 < 0 {
		return nil, fmt.Errorf("auto-assign: %w: negative address count", ErrInvalidArgument)
	}
	if args.IntendedUse == "" {
		args.IntendedUse = UseWorkload
	}
	e, err := a.readEnv(ctx, args.Hostname)
	if err != nil {
		return nil, fmt.Errorf("auto-assign: %w", err)
	}
	res := &AssignResult{}
	if args.Num4 > 0 {
		ips, err := a.assignFamily(ctx, e, &args, 4, args.Num4, args.IPv4Pools)
		if err != nil {
			return nil, err
		}
		res.IPv4 = ips
	}
	if args.Num6 > 0 {
		ips, err := a.assignFamily(ctx, e, &args, 6, args.Num6, args.IPv6Pools)
		if err != nil {
			a.rollback(ctx, args.HandleID, res.IPv4)
			return nil, err
		}
		res.IPv6 = ips
	}
	return res, nil
}

// rollback releases addresses this call assigned (best effort).
func (a *Allocator) rollback(ctx context.Context, handle string, ips []netip.Prefix) {
	if len(ips) == 0 {
		return
	}
	opts := make([]ReleaseOptions, len(ips))
	for i, p := range ips {
		opts[i] = ReleaseOptions{Address: p.Addr(), Handle: handle}
	}
	if _, err := a.ReleaseIPs(context.WithoutCancel(ctx), opts...); err != nil {
		a.log.Warn("ipam: rollback of partial assignment failed", "handle", handle, "err", err)
	}
}

// eligiblePools picks the pools a request of one family may use.
func (a *Allocator) eligiblePools(ctx context.Context, e *env, args *AutoAssignArgs, fam int, explicit []netip.Prefix) ([]*Pool, error) {
	var out []*Pool
	if len(explicit) > 0 {
		for _, want := range explicit {
			want = want.Masked()
			i := slices.IndexFunc(e.pools, func(p Pool) bool { return p.CIDR == want })
			if i < 0 {
				return nil, &PoolNotFoundError{CIDR: want}
			}
			p := &e.pools[i]
			switch {
			case familyOf(p.CIDR) != fam:
				return nil, fmt.Errorf("%w: pool %s requested as IPv%d", ErrInvalidArgument, p.label(), fam)
			case p.Disabled:
				return nil, &PoolDisabledError{Pool: p.Name, CIDR: p.CIDR}
			case !p.allows(args.IntendedUse):
				return nil, &PoolUseError{Pool: p.Name, CIDR: p.CIDR, Use: args.IntendedUse}
			}
			out = append(out, p)
		}
		return out, nil
	}
	var skipped []string
	for i := range e.pools {
		p := &e.pools[i]
		if familyOf(p.CIDR) != fam {
			continue
		}
		why := ""
		switch {
		case p.Disabled:
			why = "disabled"
		case p.AssignmentMode == ModeManual:
			why = "manual assignment"
		case !p.allows(args.IntendedUse):
			why = "does not allow " + args.IntendedUse
		default:
			ok, err := a.nodeSelects(ctx, e, p)
			if err != nil {
				return nil, err
			}
			if !ok {
				why = fmt.Sprintf("nodeSelector %q does not match", p.NodeSelector)
			}
		}
		if why != "" {
			skipped = append(skipped, p.label()+": "+why)
			continue
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, &NoMatchingPoolError{Family: fam, Node: e.host, Pools: skipped}
	}
	return out, nil
}

func inPools(pools []*Pool, cidr netip.Prefix) bool {
	for _, p := range pools {
		if p.CIDR.Contains(cidr.Addr()) && p.BlockSize == cidr.Bits() {
			return true
		}
	}
	return false
}

func (a *Allocator) maxBlocks(e *env, args *AutoAssignArgs) int {
	g, r := e.cfg.MaxBlocksPerHost, args.MaxBlocksPerHost
	switch {
	case g > 0 && r > 0:
		return min(g, r)
	case g > 0:
		return g
	case r > 0:
		return r
	}
	return DefaultMaxBlocksPerHost
}

// assignFamily assigns n addresses of one family: affine blocks, then new
// blocks, then (unless strict affinity) borrowing.
func (a *Allocator) assignFamily(ctx context.Context, e *env, args *AutoAssignArgs, fam, n int, explicit []netip.Prefix) ([]netip.Prefix, error) {
	pools, err := a.eligiblePools(ctx, e, args, fam, explicit)
	if err != nil {
		return nil, fmt.Errorf("auto-assign IPv%d for %s: %w", fam, e.host, err)
	}
	var got []netip.Prefix
	fail := func(err error) ([]netip.Prefix, error) {
		a.rollback(ctx, args.HandleID, got)
		return nil, fmt.Errorf("auto-assign IPv%d for %s: %w", fam, e.host, err)
	}
	// A request for more than one address is checked against what the
	// host could get before anything is claimed, so an impossible request
	// fails at once and writes nothing. (Single addresses skip the check:
	// it lists every block, and the search below claims at most one block
	// before it finds the pools full.)
	if n > 1 {
		c, err := a.capacityFor(ctx, e, args, fam, pools)
		if err != nil {
			return fail(err)
		}
		if n > c.Total() {
			return fail(capacityError(e, fam, n, c, pools))
		}
	}
	mine := hostAffinity(e.host)
	take := func(cidr netip.Prefix, snap *Block, owner func(*Block) bool) error {
		ips, err := a.assignFromBlock(ctx, e, args, cidr, snap, n-len(got), owner)
		got = append(got, ips...)
		if len(ips) > 0 && snap == nil {
			a.hints.Store(hintKey{e.host, fam}, cidr)
		}
		return err
	}

	// 1. Blocks already affine to the host.
	affs, err := a.store.ListAffinities(ctx, e.host)
	if err != nil {
		return fail(fmt.Errorf("list affinities: %w", err))
	}
	// Address order, except that the block this host last assigned from
	// (a hint kept in memory) goes first: full blocks are not re-read on
	// every request.
	hint, _ := a.hints.Load(hintKey{e.host, fam})
	slices.SortFunc(affs, func(x, y *Affinity) int {
		if hx, hy := x.CIDR == hint, y.CIDR == hint; hx != hy {
			if hx {
				return -1
			}
			return 1
		}
		return x.CIDR.Addr().Compare(y.CIDR.Addr())
	})
	hostBlocks := 0
	for _, aff := range affs {
		if aff.Host != e.host || familyOf(aff.CIDR) != fam || aff.State == StatePendingDeletion {
			continue
		}
		hostBlocks++
		if len(got) == n || !inPools(pools, aff.CIDR) {
			continue
		}
		if err := take(aff.CIDR, nil, func(b *Block) bool { return b.Affinity == mine }); err != nil {
			return fail(err)
		}
	}

	// 2. New blocks, while under the cap.
	limit := a.maxBlocks(e, args)
	capHit, exhausted := false, false
	for len(got) < n && e.cfg.AutoAllocateBlocks {
		if hostBlocks >= limit {
			capHit = true
			break
		}
		cidr, ok, err := a.claimNewBlock(ctx, e, pools)
		if err != nil {
			return fail(err)
		}
		if !ok {
			exhausted = true
			break
		}
		hostBlocks++
		if err := take(cidr, nil, func(b *Block) bool { return b.Affinity == mine }); err != nil {
			return fail(err)
		}
	}
	if len(got) == n {
		return got, nil
	}

	// 3. Borrow from any other block of the pools (random order).
	blocks, err := a.store.ListBlocks(ctx)
	if err != nil {
		return fail(fmt.Errorf("list blocks: %w", err))
	}
	rand.Shuffle(len(blocks), func(i, j int) { blocks[i], blocks[j] = blocks[j], blocks[i] })
	freeElsewhere := 0
	for _, b := range blocks {
		if b.Affinity == mine || !inPools(pools, b.CIDR) {
			continue
		}
		if e.cfg.StrictAffinity {
			freeElsewhere += countFree(b, reservedIn(b.CIDR, e.reservations))
			continue
		}
		if len(got) == n {
			break
		}
		if err := take(b.CIDR, b, func(cur *Block) bool { return cur.Affinity != mine }); err != nil {
			return fail(err)
		}
	}
	if len(got) == n {
		return got, nil
	}

	assigned := len(got)
	a.rollback(ctx, args.HandleID, got)
	got = nil
	var why error
	switch {
	case capHit && (e.cfg.StrictAffinity || freeElsewhere == 0):
		why = &MaxBlocksError{Host: e.host, Blocks: hostBlocks, Max: limit}
	case e.cfg.StrictAffinity && freeElsewhere > 0:
		why = &StrictAffinityError{Host: e.host, Free: freeElsewhere}
	default:
		labels := make([]string, len(pools))
		for i, p := range pools {
			labels[i] = p.label()
		}
		if !exhausted && !e.cfg.AutoAllocateBlocks {
			labels = append(labels, "autoAllocateBlocks=false")
		}
		why = &PoolFullError{Family: fam, Pools: labels, Requested: n, Free: assigned}
	}
	return fail(why)
}

// assignFromBlock assigns up to want free, unreserved addresses from one
// block in a compare-and-swap loop. owner says whether the (re-read) block
// may be used. snap, when set, is a recent copy tried first. The handle's
// count is raised before the block write, so a crash leaves the handle
// over-counted (recoverable) rather than an allocation nobody can release.
func (a *Allocator) assignFromBlock(ctx context.Context, e *env, args *AutoAssignArgs, cidr netip.Prefix, snap *Block, want int, owner func(*Block) bool) ([]netip.Prefix, error) {
	held := 0 // handle count already added for this block
	key := cidr.String()
	undo := func() {
		if held > 0 {
			if err := a.adjustHandle(context.WithoutCancel(ctx), args.HandleID, map[string]int{key: -held}); err != nil {
				a.log.Warn("ipam: could not undo handle count", "handle", args.HandleID, "err", err)
			}
		}
	}
	var last error
	for attempt := 0; attempt < a.retries; attempt++ {
		b := snap
		snap = nil
		if b == nil {
			var err error
			b, err = a.store.GetBlock(ctx, cidr)
			if errors.Is(err, datastore.ErrNotFound) {
				undo()
				return nil, nil
			}
			if err != nil {
				undo()
				return nil, fmt.Errorf("read block %s: %w", cidr, err)
			}
		}
		if !owner(b) {
			undo()
			return nil, nil
		}
		ords := freeOrdinals(b, reservedIn(cidr, e.reservations), want)
		if len(ords) == 0 {
			undo()
			return nil, nil
		}
		if args.HandleID != "" && len(ords) != held {
			if err := a.adjustHandle(ctx, args.HandleID, map[string]int{key: len(ords) - held}); err != nil {
				undo()
				return nil, err
			}
			held = len(ords)
		}
		nb := cloneBlock(b)
		allocate(nb, ords, args.HandleID, args.Attrs)
		nb.SequenceNumber++
		_, err := a.store.UpdateBlock(ctx, nb)
		if errors.Is(err, datastore.ErrConflict) || errors.Is(err, datastore.ErrNotFound) {
			last = err
			conflictPause(attempt)
			continue
		}
		if err != nil {
			// The write may have been applied (etcd died after committing
			// it): keep the handle's count, an over-count that a release
			// repairs, rather than leave an allocation no handle counts.
			return nil, fmt.Errorf("write block %s: %w", cidr, err)
		}
		out := make([]netip.Prefix, len(ords))
		for i, o := range ords {
			out[i] = netip.PrefixFrom(addrIn(cidr, o), cidr.Bits())
		}
		return out, nil
	}
	undo()
	return nil, &RetriesExhaustedError{Op: "assign from block " + key, Attempts: a.retries, Last: last}
}

// AssignIP assigns one specific address. The address must be in an enabled
// pool that allows the intended use; reservations do not apply. A missing
// block is claimed for the host.
func (a *Allocator) AssignIP(ctx context.Context, args AssignIPArgs) error {
	ip := args.IP.Unmap()
	if !ip.IsValid() {
		return fmt.Errorf("assign IP: %w: no address", ErrInvalidArgument)
	}
	if args.Hostname == "" {
		return fmt.Errorf("assign IP %s: %w: hostname is required", ip, ErrInvalidArgument)
	}
	if args.IntendedUse == "" {
		args.IntendedUse = UseWorkload
	}
	e, err := a.readEnv(ctx, args.Hostname)
	if err != nil {
		return fmt.Errorf("assign IP %s: %w", ip, err)
	}
	p := poolFor(e.pools, ip)
	switch {
	case p == nil:
		return fmt.Errorf("assign IP: %w", &NotInPoolError{IP: ip})
	case p.Disabled:
		return fmt.Errorf("assign IP %s: %w", ip, &PoolDisabledError{Pool: p.Name, CIDR: p.CIDR})
	case !p.allows(args.IntendedUse):
		return fmt.Errorf("assign IP %s: %w", ip, &PoolUseError{Pool: p.Name, CIDR: p.CIDR, Use: args.IntendedUse})
	}
	cidr := BlockFor(ip, p.BlockSize)
	ord := ordinalIn(cidr, ip)
	key := cidr.String()
	held := false
	undo := func() {
		if held {
			if err := a.adjustHandle(context.WithoutCancel(ctx), args.HandleID, map[string]int{key: -1}); err != nil {
				a.log.Warn("ipam: could not undo handle count", "handle", args.HandleID, "err", err)
			}
		}
	}
	var last error
	for attempt := 0; attempt < a.retries; attempt++ {
		b, err := a.store.GetBlock(ctx, cidr)
		if errors.Is(err, datastore.ErrNotFound) {
			if _, err := a.claimBlock(ctx, e.host, cidr); err != nil {
				undo()
				return fmt.Errorf("assign IP %s: %w", ip, err)
			}
			continue
		}
		if err != nil {
			undo()
			return fmt.Errorf("assign IP %s: read block: %w", ip, err)
		}
		if h, taken := handleAt(b, ord); taken {
			undo()
			return fmt.Errorf("assign IP: %w", &AlreadyAssignedError{IP: ip, Handle: h})
		}
		if e.cfg.StrictAffinity && b.Affinity != hostAffinity(e.host) {
			undo()
			return fmt.Errorf("assign IP %s in block %s (affinity %q): %w", ip, cidr, b.Affinity,
				&StrictAffinityError{Host: e.host, Free: countFree(b, nil)})
		}
		if args.HandleID != "" && !held {
			if err := a.adjustHandle(ctx, args.HandleID, map[string]int{key: 1}); err != nil {
				return fmt.Errorf("assign IP %s: %w", ip, err)
			}
			held = true
		}
		nb := cloneBlock(b)
		allocate(nb, []int{ord}, args.HandleID, args.Attrs)
		nb.SequenceNumber++
		_, err = a.store.UpdateBlock(ctx, nb)
		if errors.Is(err, datastore.ErrConflict) || errors.Is(err, datastore.ErrNotFound) {
			last = err
			continue
		}
		if err != nil {
			// Possibly applied: keep the handle's count (see assignFromBlock).
			return fmt.Errorf("assign IP %s: write block: %w", ip, err)
		}
		return nil
	}
	undo()
	return fmt.Errorf("assign IP %s: %w", ip, &RetriesExhaustedError{Op: "assign " + ip.String(), Attempts: a.retries, Last: last})
}

// conflictPause spreads out writers that lost a compare-and-swap on the same
// block: an immediate retry by everyone makes every round but one a wasted
// write. The pause is random in [0, min(attempt+1, 4)) ms.
func conflictPause(attempt int) {
	time.Sleep(time.Duration(rand.Int64N(int64(min(attempt+1, 4)) * int64(time.Millisecond))))
}
