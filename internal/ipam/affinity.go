package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/opencalico/calicoctl/datastore"
)

// maxWalk bounds how many candidate blocks one pool walk inspects.
const maxWalk = 1 << 20

// claimBlock makes cidr's block affine to host: a pending affinity first,
// then the block created with the host's affinity (the create is the
// arbiter between hosts), then the affinity confirmed. It reports false,
// with the pending affinity removed, when the block already belongs to
// someone else.
func (a *Allocator) claimBlock(ctx context.Context, host string, cidr netip.Prefix) (bool, error) {
	aff, err := a.pendingAffinity(ctx, host, cidr)
	if err != nil {
		return false, err
	}

	b := NewBlock(cidr, hostAffinity(host), time.Now())
	_, err = a.store.CreateBlock(ctx, b)
	if errors.Is(err, datastore.ErrExists) {
		cur, gerr := a.store.GetBlock(ctx, cidr)
		switch {
		case gerr == nil && cur.Affinity == hostAffinity(host):
			// Ours already (a concurrent claim from the same host won).
		case gerr == nil || errors.Is(gerr, datastore.ErrNotFound):
			a.dropAffinity(ctx, aff)
			return false, nil
		default:
			return false, fmt.Errorf("claim block %s for %s: %w", cidr, host, gerr)
		}
	} else if err != nil {
		a.dropAffinity(ctx, aff)
		return false, fmt.Errorf("claim block %s for %s: create block: %w", cidr, host, err)
	}

	if err := a.confirmAffinity(ctx, aff); err != nil {
		return false, err
	}
	a.log.Debug("ipam: claimed block", "block", cidr, "host", host)
	return true, nil
}

// pendingAffinity creates host's pending affinity for cidr, or reads the one
// a concurrent claim from the same host made (which may vanish under us:
// then try again).
func (a *Allocator) pendingAffinity(ctx context.Context, host string, cidr netip.Prefix) (*Affinity, error) {
	var last error
	for attempt := 0; attempt < a.retries; attempt++ {
		aff, err := a.store.CreateAffinity(ctx, &Affinity{Host: host, Type: "host", CIDR: cidr, State: StatePending})
		if errors.Is(err, datastore.ErrExists) {
			aff, err = a.store.GetAffinity(ctx, host, cidr)
			if errors.Is(err, datastore.ErrNotFound) {
				last = err
				continue
			}
		}
		if err != nil {
			return nil, fmt.Errorf("claim block %s for %s: affinity: %w", cidr, host, err)
		}
		return aff, nil
	}
	return nil, &RetriesExhaustedError{Op: "claim affinity " + cidr.String(), Attempts: a.retries, Last: last}
}

func (a *Allocator) confirmAffinity(ctx context.Context, aff *Affinity) error {
	for attempt := 0; attempt < a.retries; attempt++ {
		if aff.State == StateConfirmed {
			return nil
		}
		aff.State = StateConfirmed
		_, err := a.store.UpdateAffinity(ctx, aff)
		if err == nil {
			return nil
		}
		if !errors.Is(err, datastore.ErrConflict) && !errors.Is(err, datastore.ErrNotFound) {
			return fmt.Errorf("confirm affinity of %s to %s: %w", aff.CIDR, aff.Host, err)
		}
		cur, gerr := a.store.GetAffinity(ctx, aff.Host, aff.CIDR)
		if errors.Is(gerr, datastore.ErrNotFound) {
			// Deleted under us: recreate it confirmed.
			_, cerr := a.store.CreateAffinity(ctx, &Affinity{Host: aff.Host, Type: aff.Type, CIDR: aff.CIDR, State: StateConfirmed})
			if cerr == nil || errors.Is(cerr, datastore.ErrExists) {
				continue
			}
			return fmt.Errorf("confirm affinity of %s to %s: %w", aff.CIDR, aff.Host, cerr)
		}
		if gerr != nil {
			return fmt.Errorf("confirm affinity of %s to %s: %w", aff.CIDR, aff.Host, gerr)
		}
		aff = cur
	}
	return &RetriesExhaustedError{Op: "confirm affinity " + aff.CIDR.String(), Attempts: a.retries}
}

// dropAffinity deletes a pending affinity we no longer want (best effort).
func (a *Allocator) dropAffinity(ctx context.Context, aff *Affinity) {
	err := a.store.DeleteAffinity(ctx, aff)
	if errors.Is(err, datastore.ErrConflict) {
		// Changed since we read it: a concurrent claim from the same host
		// owns it now and cleans it up itself.
		return
	}
	if err != nil && !errors.Is(err, datastore.ErrNotFound) {
		a.log.Warn("ipam: could not remove pending affinity", "block", aff.CIDR, "host", aff.Host, "err", err)
	}
}

// claimNewBlock claims the first unclaimed, not fully reserved block of the
// pools (walked in a host-seeded order). ok is false when none is left.
func (a *Allocator) claimNewBlock(ctx context.Context, e *env, pools []*Pool) (netip.Prefix, bool, error) {
	blocks, err := a.store.ListBlocks(ctx)
	if err != nil {
		return netip.Prefix{}, false, fmt.Errorf("list blocks: %w", err)
	}
	taken := make(map[netip.Prefix]bool, len(blocks))
	for _, b := range blocks {
		taken[b.CIDR] = true
	}
	for _, p := range pools {
		if BlockCapacity(netip.PrefixFrom(p.CIDR.Addr(), p.BlockSize)) == 0 {
			continue // not a usable block size
		}
		walked := 0
		for cidr := range BlocksOf(p.CIDR, p.BlockSize, e.host) {
			if walked++; walked > maxWalk {
				break
			}
			if taken[cidr] || fullyReserved(cidr, e.reservations) {
				continue
			}
			won, err := a.claimBlock(ctx, e.host, cidr)
			if err != nil {
				return netip.Prefix{}, false, err
			}
			if won {
				return cidr, true, nil
			}
			taken[cidr] = true
		}
	}
	return netip.Prefix{}, false, nil
}

// ClaimAffinity makes every block inside cidr affine to host, creating the
// blocks. cidr must lie in a pool and be no smaller than the pool's blocks.
func (a *Allocator) ClaimAffinity(ctx context.Context, cidr netip.Prefix, host string) error {
	if host == "" {
		return fmt.Errorf("claim affinity: %w: host is required", ErrInvalidArgument)
	}
	cidr = cidr.Masked()
	pools, err := a.pools.Pools(ctx)
	if err != nil {
		return fmt.Errorf("claim affinity: %w", err)
	}
	p := poolFor(pools, cidr.Addr())
	if p == nil || !p.CIDR.Contains(cidr.Addr()) || p.CIDR.Bits() > cidr.Bits() {
		return fmt.Errorf("claim affinity for %s: %w", cidr, &NotInPoolError{IP: cidr.Addr()})
	}
	if cidr.Bits() > p.BlockSize {
		return fmt.Errorf("claim affinity: %w: %s is smaller than a block of pool %s (/%d)", ErrInvalidArgument, cidr, p.Name, p.BlockSize)
	}
	if p.BlockSize-cidr.Bits() > 16 {
		return fmt.Errorf("claim affinity: %w: %s holds more than 65536 blocks", ErrInvalidArgument, cidr)
	}
	var lost []string
	for b := range BlocksOf(cidr, p.BlockSize, host) {
		won, err := a.claimBlock(ctx, host, b)
		if err != nil {
			return err
		}
		if !won {
			lost = append(lost, b.String())
		}
	}
	if len(lost) > 0 {
		return fmt.Errorf("claim affinity for host %q: %w: block(s) %s belong to another host", host, datastore.ErrConflict, strings.Join(lost, ", "))
	}
	return nil
}

// ReleaseAffinity removes host's affinity for the block cidr. The affinity
// goes to pendingDeletion, the block loses its affinity (and is deleted if
// empty), then the affinity is deleted.
func (a *Allocator) ReleaseAffinity(ctx context.Context, cidr netip.Prefix, host string) error {
	cidr = cidr.Masked()
	aff, err := a.store.GetAffinity(ctx, host, cidr)
	if err != nil {
		return fmt.Errorf("release affinity of %s to %s: %w", cidr, host, err)
	}
	return a.releaseAffinity(ctx, aff)
}

func (a *Allocator) releaseAffinity(ctx context.Context, aff *Affinity) error {
	host, cidr := aff.Host, aff.CIDR
	for attempt := 0; aff.State != StatePendingDeletion; attempt++ {
		if attempt >= a.retries {
			return &RetriesExhaustedError{Op: "release affinity " + cidr.String(), Attempts: a.retries}
		}
		next := *aff
		next.State = StatePendingDeletion
		upd, err := a.store.UpdateAffinity(ctx, &next)
		if err == nil {
			aff = upd
			break
		}
		if !errors.Is(err, datastore.ErrConflict) {
			return fmt.Errorf("release affinity of %s to %s: %w", cidr, host, err)
		}
		if aff, err = a.store.GetAffinity(ctx, host, cidr); err != nil {
			return fmt.Errorf("release affinity of %s to %s: %w", cidr, host, err)
		}
	}

	if err := a.unbindBlock(ctx, cidr, hostAffinity(host)); err != nil {
		return err
	}

	for attempt := 0; attempt < a.retries; attempt++ {
		err := a.store.DeleteAffinity(ctx, aff)
		if err == nil || errors.Is(err, datastore.ErrNotFound) {
			return nil
		}
		if !errors.Is(err, datastore.ErrConflict) {
			return fmt.Errorf("delete affinity of %s to %s: %w", cidr, host, err)
		}
		if aff, err = a.store.GetAffinity(ctx, host, cidr); err != nil {
			if errors.Is(err, datastore.ErrNotFound) {
				return nil
			}
			return fmt.Errorf("delete affinity of %s to %s: %w", cidr, host, err)
		}
	}
	return &RetriesExhaustedError{Op: "delete affinity " + cidr.String(), Attempts: a.retries}
}

// unbindBlock clears owner's affinity from the block, deleting it if empty.
func (a *Allocator) unbindBlock(ctx context.Context, cidr netip.Prefix, owner string) error {
	var last error
	for attempt := 0; attempt < a.retries; attempt++ {
		b, err := a.store.GetBlock(ctx, cidr)
		if errors.Is(err, datastore.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("release block %s: %w", cidr, err)
		}
		if b.Affinity != owner {
			return nil
		}
		if isEmpty(b) {
			err = a.store.DeleteBlock(ctx, b)
		} else {
			nb := cloneBlock(b)
			nb.Affinity = ""
			nb.AffinityClaimTime = nil
			nb.SequenceNumber++
			_, err = a.store.UpdateBlock(ctx, nb)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, datastore.ErrConflict) && !errors.Is(err, datastore.ErrNotFound) {
			return fmt.Errorf("release block %s: %w", cidr, err)
		}
		last = err
	}
	return &RetriesExhaustedError{Op: "release block " + cidr.String(), Attempts: a.retries, Last: last}
}

// ReleaseHostAffinities releases every block affinity of host.
func (a *Allocator) ReleaseHostAffinities(ctx context.Context, host string) error {
	if host == "" {
		return fmt.Errorf("release host affinities: %w: host is required", ErrInvalidArgument)
	}
	affs, err := a.store.ListAffinities(ctx, host)
	if err != nil {
		return fmt.Errorf("list affinities of %s: %w", host, err)
	}
	var errs []error
	for _, aff := range affs {
		if aff.Host != host {
			continue
		}
		if err := a.releaseAffinity(ctx, aff); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
