package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/resources"
)

func newMigrateCommand(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Lock or unlock the datastore for a migration",
	}
	cmd.AddCommand(newLockCommand(f, true), newLockCommand(f, false))
	return cmd
}

// LockOptions drive `datastore migrate lock` and `unlock`: they set
// ClusterInformation "default" spec.datastoreReady to false (locked) or true.
type LockOptions struct {
	f    *Factory
	Lock bool
}

func newLockCommand(f *Factory, lock bool) *cobra.Command {
	o := &LockOptions{f: f, Lock: lock}
	use, short := "unlock", "Unlock the datastore so Calico components resume"
	if lock {
		use, short = "lock", "Lock the datastore (datastoreReady: false) so Calico components pause"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.Run(cmd.Context())
		},
	}
}

// Run updates ClusterInformation and prints "Datastore locked." or
// "Datastore unlocked.".
func (o *LockOptions) Run(ctx context.Context) error {
	c, err := o.f.connectForWrite(ctx)
	if err != nil {
		return err
	}
	defer c.DS.Close()
	if err := setDatastoreReady(ctx, c, !o.Lock); err != nil {
		if o.Lock {
			return fmt.Errorf("Datastore lock failed: %w", err)
		}
		return fmt.Errorf("Datastore unlock failed: %w", err)
	}
	if o.Lock {
		fmt.Fprintln(o.f.Streams.Out, "Datastore locked.")
	} else {
		fmt.Fprintln(o.f.Streams.Out, "Datastore unlocked.")
	}
	return nil
}

var clusterInfoKey = resources.Key{Kind: "ClusterInformation", Name: "default"}

// setDatastoreReady writes spec.datastoreReady, retrying on conflicts.
func setDatastoreReady(ctx context.Context, c *client.Client, ready bool) error {
	var last error
	for range 5 {
		r, err := c.DS.Get(ctx, clusterInfoKey)
		if err != nil {
			return err
		}
		ci, ok := r.(*resources.ClusterInformation)
		if !ok {
			return fmt.Errorf("unexpected ClusterInformation type %T", r)
		}
		ci.Spec.DatastoreReady = &ready
		if _, err := c.DS.Update(ctx, ci); err != nil {
			if errors.Is(err, datastore.ErrConflict) {
				last = err
				continue
			}
			return err
		}
		return nil
	}
	return last
}

// clusterInformation reads ClusterInformation "default".
func clusterInformation(ctx context.Context, ds datastore.Interface) (*resources.ClusterInformation, error) {
	r, err := ds.Get(ctx, clusterInfoKey)
	if err != nil {
		return nil, err
	}
	ci, ok := r.(*resources.ClusterInformation)
	if !ok {
		return nil, fmt.Errorf("unexpected ClusterInformation type %T", r)
	}
	return ci, nil
}

// datastoreLocked reports whether the datastore is locked (datastoreReady
// false). A missing ClusterInformation or an unset field counts as unlocked.
func datastoreLocked(ctx context.Context, ds datastore.Interface) (bool, error) {
	ci, err := clusterInformation(ctx, ds)
	if errors.Is(err, datastore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading ClusterInformation: %w", err)
	}
	return ci.Spec.DatastoreReady != nil && !*ci.Spec.DatastoreReady, nil
}
