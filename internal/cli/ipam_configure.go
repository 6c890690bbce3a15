package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/ipam"
)

// IPAMConfigureOptions drive `ipam configure`.
type IPAMConfigureOptions struct {
	f                *Factory
	StrictAffinity   string
	MaxBlocksPerHost int
	KubeVirt         string
	Cooldown         int

	strict                                  bool
	setStrict, setMax, setKubeVirt, setCool bool
}

func newIPAMConfigureCommand(f *Factory) *cobra.Command {
	o := &IPAMConfigureOptions{f: f}
	cmd := &cobra.Command{
		Use:   "configure",
		Short: "Change the IPAM configuration",
		Long: "Change the cluster-wide IPAM configuration. Strict affinity stops nodes borrowing addresses\n" +
			"from other nodes' blocks; a block limit per host needs strict affinity.",
		Example: "  calicoctl ipam configure --strictaffinity=true --max-blocks-per-host=4",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			o.setStrict, o.setMax = fl.Changed("strictaffinity"), fl.Changed("max-blocks-per-host")
			o.setKubeVirt, o.setCool = fl.Changed("kubevirt-ip-persistence"), fl.Changed("ip-cooldown-seconds")
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.StrictAffinity, "strictaffinity", "", "true: nodes may only use addresses of their own blocks")
	fl.IntVar(&o.MaxBlocksPerHost, "max-blocks-per-host", 0, "the most blocks one node may claim (0 = no limit)")
	fl.StringVar(&o.KubeVirt, "kubevirt-ip-persistence", "", "Enabled or Disabled: keep KubeVirt VM addresses across restarts")
	fl.IntVar(&o.Cooldown, "ip-cooldown-seconds", 0, "seconds a released address waits before reuse")
	return cmd
}

// Validate parses the flags; at least one is required.
func (o *IPAMConfigureOptions) Validate() error {
	if !o.setStrict && !o.setMax && !o.setKubeVirt && !o.setCool {
		return errors.New("at least one of --strictaffinity, --max-blocks-per-host, --kubevirt-ip-persistence and --ip-cooldown-seconds is required")
	}
	if o.setStrict {
		b, err := strconv.ParseBool(o.StrictAffinity)
		if err != nil {
			return fmt.Errorf("invalid value %q for --strictaffinity: want true or false", o.StrictAffinity)
		}
		o.strict = b
	}
	if o.setMax && o.MaxBlocksPerHost < 0 {
		return fmt.Errorf("invalid value %d for --max-blocks-per-host: it may not be negative", o.MaxBlocksPerHost)
	}
	if o.setCool && o.Cooldown < 0 {
		return fmt.Errorf("invalid value %d for --ip-cooldown-seconds: it may not be negative", o.Cooldown)
	}
	if o.setKubeVirt && o.KubeVirt != "Enabled" && o.KubeVirt != "Disabled" {
		return fmt.Errorf("invalid value %q for --kubevirt-ip-persistence: want Enabled or Disabled", o.KubeVirt)
	}
	return nil
}

// apply changes c as the flags say and checks the result.
func (o *IPAMConfigureOptions) apply(c *ipam.Config) error {
	if o.setStrict {
		c.StrictAffinity = o.strict
	}
	if o.setMax {
		c.MaxBlocksPerHost = o.MaxBlocksPerHost
	}
	if o.setKubeVirt {
		c.KubeVirtVMAddressPersistence = o.KubeVirt
	}
	if o.setCool {
		c.IPCooldownSeconds = o.Cooldown
	}
	if c.MaxBlocksPerHost > 0 && !c.StrictAffinity {
		return fmt.Errorf("max blocks per host (%d) requires strict affinity: also pass --strictaffinity=true", c.MaxBlocksPerHost)
	}
	if !c.StrictAffinity && !c.AutoAllocateBlocks {
		return errors.New("strict affinity may not be turned off while automatic block allocation is disabled")
	}
	return nil
}

// Run writes the configuration (compare-and-swap, retried on conflict).
func (o *IPAMConfigureOptions) Run(ctx context.Context) error {
	s, err := o.f.openIPAM(ctx, true)
	if err != nil {
		return err
	}
	defer s.Close()
	var last error
	for range 10 {
		c, err := s.store.GetConfig(ctx)
		if err != nil {
			return fmt.Errorf("reading the IPAM configuration: %w", err)
		}
		if err := o.apply(c); err != nil {
			return err
		}
		if _, err := s.store.SetConfig(ctx, c); err != nil {
			if errors.Is(err, datastore.ErrConflict) || errors.Is(err, datastore.ErrExists) {
				last = err
				continue
			}
			return fmt.Errorf("writing the IPAM configuration: %w", err)
		}
		o.report()
		return nil
	}
	return fmt.Errorf("writing the IPAM configuration: %w", last)
}

func (o *IPAMConfigureOptions) report() {
	out := o.f.Streams.Out
	if o.setStrict {
		fmt.Fprintf(out, "Successfully set StrictAffinity to: %t\n", o.strict)
	}
	if o.setMax {
		fmt.Fprintf(out, "Successfully set MaxBlocksPerHost to: %d\n", o.MaxBlocksPerHost)
	}
	if o.setKubeVirt {
		fmt.Fprintf(out, "Successfully set KubeVirtVMAddressPersistence to: %s\n", o.KubeVirt)
	}
	if o.setCool {
		fmt.Fprintf(out, "Successfully set IPCooldownSeconds to: %d\n", o.Cooldown)
	}
}
