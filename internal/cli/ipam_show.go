package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/spf13/cobra"
)

// IPAMShowOptions drive `ipam show`.
type IPAMShowOptions struct {
	f                 *Factory
	IP                string
	ShowBlocks        bool
	ShowBorrowed      bool
	ShowConfiguration bool
	Node              string

	ip netip.Addr
}

func newIPAMShowCommand(f *Factory) *cobra.Command {
	o := &IPAMShowOptions{f: f}
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show IP address utilization, one address, borrowed addresses or the IPAM configuration",
		Long: "Show how full each IP pool is. With --show-blocks also each block; with --ip one address;\n" +
			"with --show-borrowed the addresses nodes borrowed from other nodes' blocks; with\n" +
			"--show-configuration the IPAM configuration.\n\n" +
			"Beyond upstream: --node=<name> shows one node's blocks and addresses, and the pool table is\n" +
			"followed by a line per pool saying how many more nodes it can give a block to.",
		Args: cobra.NoArgs,
		RunE: validateThenRun(o),
	}
	fl := cmd.Flags()
	fl.StringVar(&o.IP, "ip", "", "report whether this address is in use, and by whom")
	fl.BoolVar(&o.ShowBlocks, "show-blocks", false, "show the utilization of each block too")
	fl.BoolVar(&o.ShowBorrowed, "show-borrowed", false, "show addresses borrowed from other nodes' blocks")
	fl.BoolVar(&o.ShowConfiguration, "show-configuration", false, "show the IPAM configuration")
	fl.StringVar(&o.Node, "node", "", "show the blocks and addresses of this node (addition to upstream)")
	return cmd
}

// Validate parses --ip and refuses combinations that make no sense.
func (o *IPAMShowOptions) Validate() error {
	if countSet(o.IP != "", o.ShowBorrowed, o.ShowConfiguration, o.Node != "") > 1 {
		return errors.New("only one of --ip, --show-borrowed, --show-configuration and --node may be given")
	}
	return parseIPFlag("ip", o.IP, &o.ip)
}

// Run prints the requested view.
func (o *IPAMShowOptions) Run(ctx context.Context) error {
	s, err := o.f.openIPAM(ctx, false)
	if err != nil {
		return err
	}
	defer s.Close()
	out := o.f.Streams.Out
	if o.ShowConfiguration {
		cfg, err := s.store.GetConfig(ctx)
		if err != nil {
			return fmt.Errorf("reading the IPAM configuration: %w", err)
		}
		renderTable(out, configRows(cfg))
		return nil
	}
	switch {
	case o.ip.IsValid():
		info, err := s.alloc.Lookup(ctx, o.ip)
		if err != nil {
			return err
		}
		for _, l := range ipLines(info) {
			fmt.Fprintln(out, l)
		}
		return nil
	case o.ShowBorrowed:
		rep, err := s.alloc.Borrowed(ctx)
		if err != nil {
			return err
		}
		renderTable(out, borrowedRows(rep))
		if rep.Unknown > 0 {
			fmt.Fprintf(out, "Note: found %d IP allocations without an explicit node association. Unable to determine if they are borrowed.\n", rep.Unknown)
		}
		return nil
	}
	rep, err := s.alloc.Usage(ctx)
	if err != nil {
		return err
	}
	if o.Node != "" {
		blocks, err := s.store.ListBlocks(ctx)
		if err != nil {
			return fmt.Errorf("listing IPAM blocks: %w", err)
		}
		bt, at := nodeRows(o.Node, rep, blocks)
		if len(bt.Rows) == 0 {
			fmt.Fprintf(out, "No blocks are affine to node %s.\n", o.Node)
		} else {
			fmt.Fprintf(out, "Blocks affine to node %s:\n", o.Node)
			renderTable(out, bt)
		}
		if len(at.Rows) == 0 {
			fmt.Fprintf(out, "No addresses are assigned to node %s.\n", o.Node)
		} else {
			fmt.Fprintf(out, "Addresses assigned to node %s:\n", o.Node)
			renderTable(out, at)
		}
		return nil
	}
	renderTable(out, utilizationRows(rep, o.ShowBlocks))
	for _, l := range capacityLines(rep) {
		fmt.Fprintln(out, l)
	}
	return nil
}
