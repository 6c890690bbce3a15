package cli

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/spf13/cobra"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/ipamstore"
)

func newIPAMCommand(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ipam",
		Short: "IP address management",
		Long: "Show, check, assign, release and configure Calico IP address management:\n" +
			"pools are cut into blocks that are affine to nodes, and addresses are handed out from them.",
	}
	cmd.AddCommand(
		newIPAMShowCommand(f),
		newIPAMReleaseCommand(f),
		newIPAMCheckCommand(f),
		newIPAMSplitCommand(f),
		newIPAMConfigureCommand(f),
		newIPAMAssignCommand(f),
	)
	return cmd
}

// ipamSession is what every ipam command works with: the Calico client, the
// IPAM store of the same datastore and an allocator over both.
type ipamSession struct {
	c     *client.Client
	ds    datastore.Interface
	store ipam.Store
	pools ipam.PoolSource
	alloc *ipam.Allocator
}

func (s *ipamSession) Close() { s.ds.Close() }

// openIPAM connects (with the version check) and opens the IPAM store.
func (f *Factory) openIPAM(ctx context.Context, write bool) (*ipamSession, error) {
	var c *client.Client
	var err error
	if write {
		c, err = f.connectForWrite(ctx)
	} else {
		c, err = f.connect(ctx)
	}
	if err != nil {
		return nil, err
	}
	st, err := ipamstore.Open(c.DS)
	if err != nil {
		c.DS.Close()
		return nil, err
	}
	pools := ipam.PoolsFromDatastore(c.DS)
	return &ipamSession{c: c, ds: c.DS, store: st, pools: pools, alloc: ipam.New(st, pools)}, nil
}

// validateThenRun is the RunE of a command whose options validate, then run.
func validateThenRun(o interface {
	Validate() error
	Run(context.Context) error
}) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
}

// countSet says how many of the mutually exclusive flags were given.
func countSet(given ...bool) int {
	n := 0
	for _, g := range given {
		if g {
			n++
		}
	}
	return n
}

// parseIPFlag parses the address given to flag into dst, naming both in the
// error; an empty value (the flag not given) leaves dst alone.
func parseIPFlag(flag, value string, dst *netip.Addr) error {
	if value == "" {
		return nil
	}
	a, err := netip.ParseAddr(strings.TrimSpace(value))
	if err != nil {
		return fmt.Errorf("invalid IP address %q given to --%s", value, flag)
	}
	*dst = a.Unmap()
	return nil
}

// renderTable writes rows under header in upstream's table layout
// (tablewriter v0.0.5 defaults: +---+ borders, centred upper-case header,
// numeric cells right-aligned, other cells left-aligned).
func renderTable(w io.Writer, t tableRows) {
	tw := tablewriter.NewWriter(w)
	tw.SetHeader(t.Header)
	tw.AppendBulk(t.Rows)
	tw.Render()
}

// tableRows is a table before rendering.
type tableRows struct {
	Header []string
	Rows   [][]string
}

// listPools lists the pools ordered by name (as upstream lists them).
func listPools(ctx context.Context, src ipam.PoolSource) ([]ipam.Pool, error) {
	pools, err := src.Pools(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(pools, func(a, b ipam.Pool) int { return strings.Compare(a.Name, b.Name) })
	return pools, nil
}
