package client

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

// checkPool enforces the IPPool rules that need the datastore: on create the
// CIDR may not overlap another pool; on update the CIDR and block size may not
// change.
func (c *Client) checkPool(ctx context.Context, r resources.Resource, existing resources.Resource) error {
	pool, ok := r.(*resources.IPPool)
	if !ok {
		return nil
	}
	p, err := netip.ParsePrefix(pool.Spec.CIDR)
	if err != nil {
		return nil // Validate reports it
	}
	if existing != nil {
		old := existing.(*resources.IPPool)
		if old.Spec.CIDR != pool.Spec.CIDR {
			return &resources.FieldError{Field: "spec.cidr", Value: pool.Spec.CIDR,
				Reason: fmt.Sprintf("IPPool CIDR cannot be modified (currently %s); create a new pool instead", old.Spec.CIDR)}
		}
		if old.Spec.BlockSize != 0 && old.Spec.BlockSize != pool.Spec.BlockSize {
			return &resources.FieldError{Field: "spec.blockSize", Value: pool.Spec.BlockSize,
				Reason: fmt.Sprintf("IPPool blockSize cannot be modified (currently %d)", old.Spec.BlockSize)}
		}
		return nil
	}
	l, err := c.DS.List(ctx, datastore.ListOptions{Kind: "IPPool"})
	if err != nil {
		return err
	}
	for _, item := range l.Items {
		other := item.(*resources.IPPool)
		if other.Name == pool.Name {
			continue
		}
		q, err := netip.ParsePrefix(other.Spec.CIDR)
		if err == nil && q.Overlaps(p) {
			return &resources.FieldError{Field: "spec.cidr", Value: pool.Spec.CIDR,
				Reason: fmt.Sprintf("IPPool(%s) CIDR overlaps with IPPool(%s) CIDR %s", pool.Name, other.Name, other.Spec.CIDR)}
		}
	}
	return nil
}
