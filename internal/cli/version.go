package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/opencalico/calicoctl/internal/version"
	"github.com/opencalico/calicoctl/resources"
)

// VersionOptions drive `calicoctl version`.
type VersionOptions struct {
	f          *Factory
	ClientOnly bool
}

func newVersionCommand(f *Factory) *cobra.Command {
	o := &VersionOptions{f: f}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client version and the cluster's Calico version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().BoolVar(&o.ClientOnly, "client", false, "print only the client version")
	return cmd
}

// Run prints the version lines; an unreachable cluster is reported, not fatal.
func (o *VersionOptions) Run(ctx context.Context) error {
	info := version.Info{ClientOnly: o.ClientOnly}
	if !o.ClientOnly {
		info.ClusterVersion, info.ClusterType, info.ClusterErr = o.cluster(ctx)
	}
	version.WriteVersion(o.f.Streams.Out, info)
	return nil
}

func (o *VersionOptions) cluster(ctx context.Context) (ver, typ string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := o.f.Client(ctx)
	if err != nil {
		return "", "", err
	}
	defer c.DS.Close()
	r, err := c.Get(ctx, resources.Key{Kind: "ClusterInformation", Name: "default"})
	if err != nil {
		return "", "", err
	}
	ci := r.(*resources.ClusterInformation)
	return ci.Spec.CalicoVersion, ci.Spec.ClusterType, nil
}
