package cli

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/resources"
)

// IPAMSplitOptions drive `ipam split NUMBER (--cidr=<cidr> | --name=<pool>)`.
type IPAMSplitOptions struct {
	f     *Factory
	CIDR  string
	Name  string
	Parts int

	cidr netip.Prefix
}

func newIPAMSplitCommand(f *Factory) *cobra.Command {
	o := &IPAMSplitOptions{f: f}
	cmd := &cobra.Command{
		Use:   "split NUMBER (--cidr=<cidr> | --name=<pool>)",
		Short: "Split an IP pool into NUMBER smaller pools (the datastore must be locked)",
		Long: "Split an IP pool into NUMBER (a power of two) equal pools named split-<pool>-<i>, copying its\n" +
			"spec. The old pool is disabled, the new ones created, then the old one deleted. Existing\n" +
			"blocks and allocations are kept. Lock the datastore first (`calicoctl datastore migrate lock`).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.CIDR, "cidr", "", "the CIDR of the pool to split")
	cmd.Flags().StringVar(&o.Name, "name", "", "the name of the pool to split")
	return cmd
}

// Complete parses NUMBER.
func (o *IPAMSplitOptions) Complete(args []string) error {
	n, err := strconv.Atoi(args[0])
	if err != nil {
		return fmt.Errorf("invalid NUMBER %q: want a power of two, e.g. 2, 4, 8", args[0])
	}
	o.Parts = n
	return nil
}

// Validate checks NUMBER and that exactly one of --cidr and --name is set.
func (o *IPAMSplitOptions) Validate() error {
	if o.Parts < 2 || o.Parts&(o.Parts-1) != 0 {
		return fmt.Errorf("invalid NUMBER %d: it must be a power of two greater than 1", o.Parts)
	}
	if (o.CIDR == "") == (o.Name == "") {
		return errors.New("exactly one of --cidr and --name is required")
	}
	if o.CIDR != "" {
		p, err := netip.ParsePrefix(o.CIDR)
		if err != nil {
			return fmt.Errorf("invalid CIDR %q given to --cidr", o.CIDR)
		}
		o.cidr = p.Masked()
	}
	return nil
}

// splitCIDR cuts cidr into parts equal prefixes, none smaller than
// blockSize (each must hold at least one block).
func splitCIDR(cidr netip.Prefix, parts, blockSize int) ([]netip.Prefix, error) {
	extra := bits.TrailingZeros(uint(parts))
	newBits := cidr.Bits() + extra
	if newBits > blockSize || newBits > cidr.Addr().BitLen() {
		return nil, fmt.Errorf("IP pool %s is too small to split into %d pools: each would be a /%d, smaller than the pool's /%d blocks",
			cidr, parts, newBits, blockSize)
	}
	out := make([]netip.Prefix, 0, parts)
	a := cidr.Masked().Addr()
	for i := 0; i < parts; i++ {
		p := netip.PrefixFrom(a, newBits)
		out = append(out, p)
		// Step to the next prefix: add 2^(bitlen-newBits).
		next, ok := addPow2(a, a.BitLen()-newBits)
		if !ok && i < parts-1 {
			return nil, fmt.Errorf("splitting %s: address overflow", cidr)
		}
		a = next
	}
	return out, nil
}

// addPow2 returns a + 2^shift (ok false on overflow).
func addPow2(a netip.Addr, shift int) (netip.Addr, bool) {
	b := a.AsSlice()
	byteIdx := len(b) - 1 - shift/8
	carry := uint16(1) << (shift % 8)
	for i := byteIdx; i >= 0 && carry > 0; i-- {
		s := uint16(b[i]) + carry
		b[i] = byte(s)
		carry = s >> 8
	}
	n, _ := netip.AddrFromSlice(b)
	return n, carry == 0
}

// splitPoolName is split-<old>-<i>, the old name cut to 245 characters.
func splitPoolName(old string, i int) string {
	if len(old) > 245 {
		old = old[:245]
	}
	return fmt.Sprintf("split-%s-%d", old, i)
}

// Run splits the pool.
func (o *IPAMSplitOptions) Run(ctx context.Context) error {
	c, err := o.f.connectForWrite(ctx)
	if err != nil {
		return err
	}
	defer c.DS.Close()
	locked, err := datastoreLocked(ctx, c.DS)
	if err != nil {
		return err
	}
	if !locked {
		return errors.New("the datastore is not locked: run `calicoctl datastore migrate lock` before splitting an IP pool, and unlock it afterwards")
	}
	pool, err := o.findPool(ctx, c)
	if err != nil {
		return err
	}
	pool.Default()
	cidr, err := netip.ParsePrefix(pool.Spec.CIDR)
	if err != nil {
		return fmt.Errorf("IP pool %s has a bad CIDR: %w", pool.Name, err)
	}
	cidrs, err := splitCIDR(cidr.Masked(), o.Parts, pool.Spec.BlockSize)
	if err != nil {
		return err
	}
	rev := pool.ResourceVersion // the old pool is deleted only at this revision
	if !pool.Spec.Disabled {
		pool.Spec.Disabled = true
		upd, err := c.Update(ctx, resources.DeepCopy(pool).(*resources.IPPool))
		if err != nil {
			return fmt.Errorf("disabling IP pool %s: %w", pool.Name, err)
		}
		rev = upd.GetResourceVersion()
	}
	var created []*resources.IPPool
	for i, p := range cidrs {
		np := &resources.IPPool{TypeMeta: pool.TypeMeta}
		np.Name = splitPoolName(pool.Name, i)
		np.Labels, np.Annotations = pool.Labels, pool.Annotations
		np.Spec = resources.DeepCopy(pool).(*resources.IPPool).Spec
		np.Spec.CIDR = p.String()
		np.Spec.Disabled = false
		if err := client.Prepare(np); err != nil {
			return fmt.Errorf("IP pool %s: %w", np.Name, err)
		}
		np.SetUID(types.UID(uuid.NewString()))
		np.SetCreationTimestamp(metav1.NewTime(time.Now().UTC().Truncate(time.Second)))
		// The new pools overlap the old (disabled) one until it is deleted, so
		// they are written without the client's overlap check.
		if _, err := c.DS.Create(ctx, np); err != nil {
			return fmt.Errorf("creating IP pool %s: %w", np.Name, err)
		}
		created = append(created, np)
	}
	if _, err := c.DS.Delete(ctx, resources.Key{Kind: "IPPool", Name: pool.Name}, rev); err != nil && !errors.Is(err, datastore.ErrNotFound) {
		return fmt.Errorf("deleting IP pool %s: %w", pool.Name, err)
	}
	out := o.f.Streams.Out
	fmt.Fprintf(out, "IP Pool %s was successfully split into %d smaller pools.\n", pool.Name, o.Parts)
	for _, np := range created {
		fmt.Fprintf(out, "Created %s with CIDR %s.\n", np.Name, np.Spec.CIDR)
	}
	return nil
}

func (o *IPAMSplitOptions) findPool(ctx context.Context, c *client.Client) (*resources.IPPool, error) {
	if o.Name != "" {
		r, err := c.Get(ctx, resources.Key{Kind: "IPPool", Name: o.Name})
		if err != nil {
			return nil, err
		}
		return r.(*resources.IPPool), nil
	}
	l, err := c.List(ctx, datastore.ListOptions{Kind: "IPPool"})
	if err != nil {
		return nil, err
	}
	for _, it := range l.Items {
		p := it.(*resources.IPPool)
		if q, err := netip.ParsePrefix(p.Spec.CIDR); err == nil && q.Masked() == o.cidr {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no IP pool has CIDR %s", o.cidr)
}
