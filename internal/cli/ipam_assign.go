package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/spf13/cobra"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/resources"
)

// quoteName quotes a bad name for an error message, shortening a long one
// and giving its length.
func quoteName(s string) string {
	if len(s) > 64 {
		return fmt.Sprintf("%q (%d characters)", s[:61]+"...", len(s))
	}
	return fmt.Sprintf("%q", s)
}

// IPAMAssignOptions drive `ipam assign` (an addition to upstream): assign
// addresses to a handle on a node, for hosts and VMs outside any
// orchestrator.
type IPAMAssignOptions struct {
	f      *Factory
	Node   string
	Handle string
	IP     string
	Num    int
	Pool   string

	ip   netip.Addr
	pool netip.Prefix
}

func newIPAMAssignCommand(f *Factory) *cobra.Command {
	o := &IPAMAssignOptions{f: f}
	cmd := &cobra.Command{
		Use:   "assign --node=<node> --handle=<id> (--ip=<addr> | --num=<k>) [--pool=<cidr>]",
		Short: "Assign addresses to a handle on a node (addition to upstream)",
		Long: "Assign one address (--ip) or k addresses (--num) to a handle on a node, from the node's blocks\n" +
			"(claiming a new block when needed), for hosts and VMs that no orchestrator manages.\n" +
			"Release them with `calicoctl ipam release --handle=<id>`.",
		Example: "  calicoctl ipam assign --node=vm-host-1 --handle=vm-web-1 --num=2\n" +
			"  calicoctl ipam assign --node=vm-host-1 --handle=vm-db-1 --ip=10.244.3.10",
		Args: cobra.NoArgs,
		RunE: validateThenRun(o),
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Node, "node", "", "the node the addresses are for (required)")
	fl.StringVar(&o.Handle, "handle", "", "the handle recording the owner (required)")
	fl.StringVar(&o.IP, "ip", "", "assign this address")
	fl.IntVar(&o.Num, "num", 0, "assign this many addresses")
	fl.StringVar(&o.Pool, "pool", "", "with --num: take the addresses from this pool's CIDR")
	return cmd
}

// Validate checks the flags.
func (o *IPAMAssignOptions) Validate() error {
	if o.Node == "" {
		return errors.New("--node is required")
	}
	if !resources.IsDNS1123Subdomain(o.Node) {
		return fmt.Errorf("invalid node name %s given to --node: it must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', at most 253 characters)", quoteName(o.Node))
	}
	if o.Handle == "" {
		return errors.New("--handle is required")
	}
	if (o.IP == "") == (o.Num == 0) {
		return errors.New("exactly one of --ip and --num is required")
	}
	if o.Num < 0 {
		return fmt.Errorf("invalid value %d for --num: it must be positive", o.Num)
	}
	if o.IP != "" && o.Pool != "" {
		return errors.New("--pool applies only to --num")
	}
	if err := parseIPFlag("ip", o.IP, &o.ip); err != nil {
		return err
	}
	if o.Pool != "" {
		p, err := netip.ParsePrefix(o.Pool)
		if err != nil {
			return fmt.Errorf("invalid CIDR %q given to --pool", o.Pool)
		}
		o.pool = p.Masked()
	}
	return nil
}

// Run assigns and prints one line per address.
func (o *IPAMAssignOptions) Run(ctx context.Context) error {
	s, err := o.f.openIPAM(ctx, true)
	if err != nil {
		return err
	}
	defer s.Close()
	// Addresses are only assigned to a node that exists: a typo must not
	// claim a block for a node nobody will ever release it from.
	if _, err := s.ds.Get(ctx, resources.Key{Kind: "Node", Name: o.Node}); errors.Is(err, datastore.ErrNotFound) {
		return fmt.Errorf("node %q does not exist: create the Node before assigning addresses to it", o.Node)
	} else if err != nil {
		return fmt.Errorf("reading node %q: %w", o.Node, err)
	}
	// The owner attribute marks the addresses as assigned on purpose:
	// `ipam check` never reports them as leaks.
	attrs := map[string]string{ipam.AttrNode: o.Node, ipam.AttrOwner: ipam.OwnerIPAMAssign}
	var ips []netip.Addr
	if o.ip.IsValid() {
		err := s.alloc.AssignIP(ctx, ipam.AssignIPArgs{IP: o.ip, HandleID: o.Handle, Attrs: attrs, Hostname: o.Node})
		if err != nil {
			return err
		}
		ips = append(ips, o.ip)
	} else {
		args := ipam.AutoAssignArgs{HandleID: o.Handle, Attrs: attrs, Hostname: o.Node}
		switch {
		case o.pool.IsValid() && o.pool.Addr().Is6():
			args.Num6, args.IPv6Pools = o.Num, []netip.Prefix{o.pool}
		case o.pool.IsValid():
			args.Num4, args.IPv4Pools = o.Num, []netip.Prefix{o.pool}
		default:
			args.Num4 = o.Num
		}
		res, err := s.alloc.AutoAssign(ctx, args)
		if err != nil {
			return err
		}
		for _, p := range append(res.IPv4, res.IPv6...) {
			ips = append(ips, p.Addr())
		}
	}
	for _, ip := range ips {
		fmt.Fprintf(o.f.Streams.Out, "Successfully assigned IP address %s to handle %s on node %s\n", ip, o.Handle, o.Node)
	}
	return nil
}
