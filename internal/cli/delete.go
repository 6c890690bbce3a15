package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

// DeleteOptions drive `calicoctl delete`.
type DeleteOptions struct {
	f             *Factory
	files         fileFlags
	Namespace     string
	SkipNotExists bool

	targets []deleteTarget
}

type deleteTarget struct {
	key      resources.Key
	revision string
	source   string
}

func newDeleteCommand(f *Factory) *cobra.Command {
	o := &DeleteOptions{f: f}
	cmd := &cobra.Command{
		Use:   "delete (-f FILENAME | KIND NAME...)",
		Short: "Delete resources by file or by kind and name",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
		ValidArgsFunction: completeKinds,
	}
	o.files.add(cmd, false)
	cmd.Flags().StringVarP(&o.Namespace, "namespace", "n", "", "namespace of namespaced resources")
	cmd.Flags().BoolVarP(&o.SkipNotExists, "skip-not-exists", "s", false, "treat resources that do not exist as deleted")
	return cmd
}

// Complete turns the file or the KIND NAME... arguments into targets.
func (o *DeleteOptions) Complete(args []string) error {
	if o.files.Filename != "" {
		if len(args) > 0 {
			return errors.New("cannot give both -f and KIND/NAME arguments")
		}
		docs, err := o.files.read(o.f.Streams.In)
		if err != nil {
			return fmt.Errorf("failed to execute command: %w", err)
		}
		for _, d := range docs {
			if err := applyNamespace(d.Resource, o.Namespace); err != nil {
				return fmt.Errorf("%s: %w", d.Source, err)
			}
			o.targets = append(o.targets, deleteTarget{key: resources.KeyOf(d.Resource), revision: d.Resource.GetResourceVersion(), source: d.Source})
		}
		return nil
	}
	if len(args) < 2 {
		return errors.New("specify -f FILENAME or KIND and at least one NAME, e.g. `calicoctl delete ippool pool-a`")
	}
	k, err := resources.Lookup(args[0])
	if err != nil {
		return err
	}
	if !k.Namespaced && o.Namespace != "" {
		return fmt.Errorf("%s is not namespaced", k.Kind)
	}
	for _, n := range args[1:] {
		if n == "" {
			return errors.New("resource name may not be empty")
		}
		key := resources.Key{Kind: k.Kind, Name: n}
		if k.Namespaced {
			key.Namespace = o.Namespace
			if key.Namespace == "" {
				key.Namespace = "default"
			}
		}
		o.targets = append(o.targets, deleteTarget{key: key})
	}
	return nil
}

// Run deletes every target, reporting each failure on its own line.
func (o *DeleteOptions) Run(ctx context.Context) error {
	if len(o.targets) == 0 {
		fmt.Fprintln(o.f.Streams.Out, "No resources specified")
		return nil
	}
	c, err := o.f.connect(ctx)
	if err != nil {
		return err
	}
	defer c.DS.Close()
	errs := make([]error, len(o.targets))
	parallel(len(o.targets), 16, func(i int) {
		t := o.targets[i]
		_, errs[i] = c.Delete(ctx, t.key, t.revision)
		if o.SkipNotExists && errors.Is(errs[i], datastore.ErrNotFound) {
			errs[i] = nil
		}
	})
	kind := o.targets[0].key.Kind
	for _, t := range o.targets {
		if t.key.Kind != kind {
			kind = ""
			break
		}
	}
	quoted := ""
	if kind != "" {
		quoted = "'" + kind + "' "
	}
	ok := 0
	for _, e := range errs {
		if e == nil {
			ok++
		}
	}
	if ok > 0 {
		fmt.Fprintf(o.f.Streams.Out, "Successfully deleted %d %sresource(s)\n", ok, quoted)
	}
	if ok == len(errs) {
		return nil
	}
	for i, e := range errs {
		if e != nil {
			fmt.Fprintf(o.f.Streams.ErrOut, "Failed to delete '%s' resource: %v\n", o.targets[i].key.Kind, e)
		}
	}
	return ErrSilent
}
