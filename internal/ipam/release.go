package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/opencalico/calicoctl/datastore"
)

// ReleaseOptions names one address to release. Handle and SequenceNumber,
// when set, must match the allocation, so a release that arrives after the
// address was freed and handed out again never frees the new owner's address.
type ReleaseOptions struct {
	Address        netip.Addr
	Handle         string
	SequenceNumber *uint64
	// Guard, when set, is shown the allocation as the block holds it just
	// before it is freed, inside the compare-and-swap that frees it; an
	// error refuses the release of this address (ReleaseIPs returns it,
	// wrapped in a ReleaseRefusedError).
	Guard func(Allocation) error
}

// Allocation is one allocated address as its block records it.
type Allocation struct {
	IP             netip.Addr
	Handle         *string
	Attrs          AllocationAttribute
	SequenceNumber uint64
}

// ReleaseRefusedError: a release Guard refused to free an address.
type ReleaseRefusedError struct {
	IP  netip.Addr
	Err error
}

func (e *ReleaseRefusedError) Error() string {
	return fmt.Sprintf("release of %s refused: %v", e.IP, e.Err)
}

// Unwrap exposes the guard's error.
func (e *ReleaseRefusedError) Unwrap() error { return e.Err }

// allocationAt describes ordinal ord of b (which must be allocated).
func allocationAt(b *Block, ord int) Allocation {
	al := Allocation{IP: addrIn(b.CIDR, ord), SequenceNumber: b.SequenceNumberForAllocation[OrdinalKey(ord)]}
	if i := *b.Allocations[ord]; i >= 0 && i < len(b.Attributes) {
		at := b.Attributes[i]
		al.Attrs = AllocationAttribute{ActiveOwnerAttrs: cloneMap(at.ActiveOwnerAttrs), AlternateOwnerAttrs: cloneMap(at.AlternateOwnerAttrs)}
		if at.HandleID != nil {
			h := *at.HandleID
			al.Handle, al.Attrs.HandleID = &h, &h
		}
		if at.ReleasedAt != nil {
			t := *at.ReleasedAt
			al.Attrs.ReleasedAt = &t
		}
	}
	return al
}

// blockLocator finds the block holding an address: through the pools' block
// sizes, falling back to the stored blocks (for pools since deleted).
type blockLocator struct {
	store  Store
	pools  []Pool
	blocks []*Block
	listed bool
}

func (a *Allocator) newLocator(ctx context.Context) (*blockLocator, error) {
	pools, err := a.pools.Pools(ctx)
	if err != nil {
		return nil, fmt.Errorf("read IP pools: %w", err)
	}
	return &blockLocator{store: a.store, pools: pools}, nil
}

// cidrOf returns the block CIDR for ip; ok is false when no block holds it.
func (l *blockLocator) cidrOf(ctx context.Context, ip netip.Addr) (netip.Prefix, bool, error) {
	if p := poolFor(l.pools, ip); p != nil && p.BlockSize >= p.CIDR.Bits() {
		return BlockFor(ip, p.BlockSize), true, nil
	}
	if !l.listed {
		bs, err := l.store.ListBlocks(ctx)
		if err != nil {
			return netip.Prefix{}, false, fmt.Errorf("list blocks: %w", err)
		}
		l.blocks, l.listed = bs, true
	}
	for _, b := range l.blocks {
		if b.CIDR.Contains(ip) {
			return b.CIDR, true, nil
		}
	}
	return netip.Prefix{}, false, nil
}

// ReleaseIPs releases addresses. Addresses that were not allocated are
// returned in unallocated. A release refused for one address (handle or
// sequence-number mismatch) does not stop the others; the errors are joined.
func (a *Allocator) ReleaseIPs(ctx context.Context, opts ...ReleaseOptions) (unallocated []netip.Addr, err error) {
	loc, err := a.newLocator(ctx)
	if err != nil {
		return nil, fmt.Errorf("release IPs: %w", err)
	}
	byBlock := map[netip.Prefix][]ReleaseOptions{}
	var order []netip.Prefix
	for _, o := range opts {
		o.Address = o.Address.Unmap()
		if !o.Address.IsValid() {
			return nil, fmt.Errorf("release IPs: %w: empty address", ErrInvalidArgument)
		}
		cidr, ok, err := loc.cidrOf(ctx, o.Address)
		if err != nil {
			return nil, fmt.Errorf("release IPs: %w", err)
		}
		if !ok {
			unallocated = append(unallocated, o.Address)
			continue
		}
		if _, seen := byBlock[cidr]; !seen {
			order = append(order, cidr)
		}
		byBlock[cidr] = append(byBlock[cidr], o)
	}
	var errs []error
	for _, cidr := range order {
		un, counts, err := a.releaseFromBlock(ctx, cidr, byBlock[cidr])
		unallocated = append(unallocated, un...)
		if err != nil {
			errs = append(errs, err)
		}
		for h, n := range counts {
			if err := a.adjustHandle(ctx, h, map[string]int{cidr.String(): -n}); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return unallocated, errors.Join(errs...)
}

// ReleaseIP releases one address, whoever holds it. It fails with a
// NotAssignedError (errors.Is datastore.ErrNotFound) when the address was
// not allocated.
func (a *Allocator) ReleaseIP(ctx context.Context, ip netip.Addr) error {
	un, err := a.ReleaseIPs(ctx, ReleaseOptions{Address: ip})
	if err != nil {
		return err
	}
	if len(un) > 0 {
		return &NotAssignedError{IP: un[0]}
	}
	return nil
}

// releaseFromBlock frees the addresses of one block in a compare-and-swap
// loop. counts says how many addresses each handle gave up.
func (a *Allocator) releaseFromBlock(ctx context.Context, cidr netip.Prefix, opts []ReleaseOptions) ([]netip.Addr, map[string]int, error) {
	var last error
	for attempt := 0; attempt < a.retries; attempt++ {
		b, err := a.store.GetBlock(ctx, cidr)
		if errors.Is(err, datastore.ErrNotFound) {
			un := make([]netip.Addr, len(opts))
			for i, o := range opts {
				un[i] = o.Address
			}
			return un, nil, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read block %s: %w", cidr, err)
		}
		nb := cloneBlock(b)
		var un []netip.Addr
		var refused []error
		counts := map[string]int{}
		for _, o := range opts {
			ord := ordinalIn(cidr, o.Address)
			h, taken := handleAt(nb, ord)
			if !taken {
				un = append(un, o.Address)
				continue
			}
			if o.Handle != "" && o.Handle != h {
				refused = append(refused, &HandleMismatchError{IP: o.Address, Requested: o.Handle, Current: h})
				continue
			}
			if o.SequenceNumber != nil {
				cur := nb.SequenceNumberForAllocation[OrdinalKey(ord)]
				if cur != *o.SequenceNumber {
					refused = append(refused, &StaleReleaseError{IP: o.Address, Requested: *o.SequenceNumber, Current: cur})
					continue
				}
			}
			if o.Guard != nil {
				if err := o.Guard(allocationAt(nb, ord)); err != nil {
					refused = append(refused, &ReleaseRefusedError{IP: o.Address, Err: err})
					continue
				}
			}
			free(nb, ord)
			if h != "" {
				counts[h]++
			}
		}
		if len(un)+len(refused) == len(opts) {
			return un, nil, errors.Join(refused...)
		}
		lost, err := a.storeReleased(ctx, b, nb)
		if lost {
			last = err
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		return un, counts, errors.Join(refused...)
	}
	return nil, nil, &RetriesExhaustedError{Op: "release from block " + cidr.String(), Attempts: a.retries, Last: last}
}

// ReleaseByHandle releases every address recorded under the handle, then the
// handle itself.
func (a *Allocator) ReleaseByHandle(ctx context.Context, handleID string) error {
	h, err := a.store.GetHandle(ctx, handleID)
	if err != nil {
		return fmt.Errorf("release handle %s: %w", handleID, err)
	}
	var errs []error
	for key := range h.Block {
		cidr, perr := netip.ParsePrefix(key)
		if perr != nil {
			errs = append(errs, fmt.Errorf("release handle %s: bad block %q: %w", handleID, key, perr))
			continue
		}
		n, err := a.releaseHandleFromBlock(ctx, cidr, handleID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// Every address of the handle in this block is free now: drop the
		// entry, even if it over-counted (an assignment interrupted after
		// the handle was written but before the block was).
		delta := -max(n, h.Block[key])
		if err := a.adjustHandle(ctx, handleID, map[string]int{key: delta}); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("release handle %s: %w", handleID, err)
	}
	return nil
}

// ReleaseHandleEverywhere releases every address any block records under
// the handle, then deletes the handle object. Unlike ReleaseByHandle it
// does not trust the handle object (which lists the blocks): it reads every
// block, so it also frees addresses whose handle object is missing or
// under-counts them. It returns the addresses freed, and an error wrapping
// datastore.ErrNotFound when there was neither an address nor a handle.
func (a *Allocator) ReleaseHandleEverywhere(ctx context.Context, handleID string) ([]netip.Addr, error) {
	blocks, err := a.store.ListBlocks(ctx)
	if err != nil {
		return nil, fmt.Errorf("release handle %s: list blocks: %w", handleID, err)
	}
	var freed []netip.Addr
	var errs []error
	for _, b := range blocks {
		if !holdsHandle(b, handleID) {
			continue
		}
		ips, err := a.releaseHandleAddrs(ctx, b.CIDR, handleID)
		if err != nil {
			errs = append(errs, err)
		}
		freed = append(freed, ips...)
	}
	if err := errors.Join(errs...); err != nil {
		return freed, fmt.Errorf("release handle %s: %w", handleID, err)
	}
	found, err := a.deleteHandle(ctx, handleID)
	if err != nil {
		return freed, fmt.Errorf("release handle %s: %w", handleID, err)
	}
	if !found && len(freed) == 0 {
		return nil, fmt.Errorf("release handle %s: %w", handleID, datastore.ErrNotFound)
	}
	slices.SortFunc(freed, netip.Addr.Compare)
	return freed, nil
}

func holdsHandle(b *Block, handle string) bool {
	for ord := range b.Allocations {
		if h, taken := handleAt(b, ord); taken && h == handle {
			return true
		}
	}
	return false
}

// releaseHandleAddrs frees the handle's addresses in one block and returns them.
func (a *Allocator) releaseHandleAddrs(ctx context.Context, cidr netip.Prefix, handle string) ([]netip.Addr, error) {
	var last error
	for attempt := 0; attempt < a.retries; attempt++ {
		b, err := a.store.GetBlock(ctx, cidr)
		if errors.Is(err, datastore.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read block %s: %w", cidr, err)
		}
		nb := cloneBlock(b)
		var ips []netip.Addr
		for ord := range nb.Allocations {
			if h, taken := handleAt(nb, ord); taken && h == handle {
				free(nb, ord)
				ips = append(ips, addrIn(cidr, ord))
			}
		}
		if len(ips) == 0 {
			return nil, nil
		}
		lost, err := a.storeReleased(ctx, b, nb)
		if lost {
			last = err
			continue
		}
		if err != nil {
			return nil, err
		}
		return ips, nil
	}
	return nil, &RetriesExhaustedError{Op: "release handle from block " + cidr.String(), Attempts: a.retries, Last: last}
}

// deleteHandle deletes the handle object; found is false when there was none.
func (a *Allocator) deleteHandle(ctx context.Context, id string) (found bool, err error) {
	var last error
	for attempt := 0; attempt < a.retries; attempt++ {
		h, err := a.store.GetHandle(ctx, id)
		if errors.Is(err, datastore.ErrNotFound) {
			return found, nil
		}
		if err != nil {
			return found, fmt.Errorf("read handle %s: %w", id, err)
		}
		found = true
		err = a.store.DeleteHandle(ctx, h)
		if err == nil || errors.Is(err, datastore.ErrNotFound) {
			return true, nil
		}
		if !errors.Is(err, datastore.ErrConflict) {
			return true, fmt.Errorf("delete handle %s: %w", id, err)
		}
		last = err
	}
	return found, &RetriesExhaustedError{Op: "delete handle " + id, Attempts: a.retries, Last: last}
}

// releaseHandleFromBlock frees every ordinal of the block held by handle.
func (a *Allocator) releaseHandleFromBlock(ctx context.Context, cidr netip.Prefix, handle string) (int, error) {
	var last error
	for attempt := 0; attempt < a.retries; attempt++ {
		b, err := a.store.GetBlock(ctx, cidr)
		if errors.Is(err, datastore.ErrNotFound) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read block %s: %w", cidr, err)
		}
		nb := cloneBlock(b)
		n := 0
		for ord := range nb.Allocations {
			if h, taken := handleAt(nb, ord); taken && h == handle {
				free(nb, ord)
				n++
			}
		}
		if n == 0 {
			return 0, nil
		}
		lost, err := a.storeReleased(ctx, b, nb)
		if lost {
			last = err
			continue
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
	return 0, &RetriesExhaustedError{Op: "release handle from block " + cidr.String(), Attempts: a.retries, Last: last}
}

// storeReleased writes back nb, the copy of b that addresses were freed
// from: it compacts the attributes, bumps the sequence number and deletes the
// block instead when it is now empty and affine to no host. lost reports a
// lost compare-and-swap (the block changed or vanished since b was read), to
// be retried after reading the block again; err is then that conflict.
func (a *Allocator) storeReleased(ctx context.Context, b, nb *Block) (lost bool, err error) {
	compactAttributes(nb)
	nb.SequenceNumber++
	if isEmpty(nb) && nb.Affinity == "" {
		err = a.store.DeleteBlock(ctx, b)
	} else {
		_, err = a.store.UpdateBlock(ctx, nb)
	}
	if errors.Is(err, datastore.ErrConflict) || errors.Is(err, datastore.ErrNotFound) {
		return true, err
	}
	if err != nil {
		return false, fmt.Errorf("write block %s: %w", b.CIDR, err)
	}
	return false, nil
}

// GetAssignmentAttributes returns the active owner attributes and handle of
// an allocated address (NotAssignedError when it is free).
func (a *Allocator) GetAssignmentAttributes(ctx context.Context, ip netip.Addr) (map[string]string, *string, error) {
	ip = ip.Unmap()
	b, err := a.blockHolding(ctx, ip)
	if err != nil {
		return nil, nil, err
	}
	ord := ordinalIn(b.CIDR, ip)
	if ord >= len(b.Allocations) || b.Allocations[ord] == nil {
		return nil, nil, &NotAssignedError{IP: ip}
	}
	i := *b.Allocations[ord]
	if i < 0 || i >= len(b.Attributes) {
		return nil, nil, nil
	}
	at := b.Attributes[i]
	var h *string
	if at.HandleID != nil {
		s := *at.HandleID
		h = &s
	}
	return cloneMap(at.ActiveOwnerAttrs), h, nil
}

func (a *Allocator) blockHolding(ctx context.Context, ip netip.Addr) (*Block, error) {
	loc, err := a.newLocator(ctx)
	if err != nil {
		return nil, err
	}
	cidr, ok, err := loc.cidrOf(ctx, ip)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &NotAssignedError{IP: ip}
	}
	b, err := a.store.GetBlock(ctx, cidr)
	if errors.Is(err, datastore.ErrNotFound) {
		return nil, &NotAssignedError{IP: ip}
	}
	if err != nil {
		return nil, fmt.Errorf("read block %s: %w", cidr, err)
	}
	return b, nil
}

// IPsByHandle lists the addresses held by a handle, sorted.
func (a *Allocator) IPsByHandle(ctx context.Context, handle string) ([]netip.Addr, error) {
	h, err := a.store.GetHandle(ctx, handle)
	if err != nil {
		return nil, fmt.Errorf("handle %s: %w", handle, err)
	}
	var out []netip.Addr
	for key := range h.Block {
		cidr, err := netip.ParsePrefix(key)
		if err != nil {
			return nil, fmt.Errorf("handle %s: bad block %q: %w", handle, key, err)
		}
		b, err := a.store.GetBlock(ctx, cidr)
		if errors.Is(err, datastore.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read block %s: %w", cidr, err)
		}
		for ord := range b.Allocations {
			if id, taken := handleAt(b, ord); taken && id == handle {
				out = append(out, addrIn(cidr, ord))
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}
