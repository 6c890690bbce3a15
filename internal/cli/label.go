package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/opencalico/calicoctl/resources"
)

// LabelOptions drive `calicoctl label KIND NAME key=value | key- | key --remove`.
type LabelOptions struct {
	f         *Factory
	Overwrite bool
	Remove    bool
	Namespace string

	key        resources.Key
	kindWord   string // KIND as typed: upstream's messages echo it
	labelKey   string
	labelValue string
}

func newLabelCommand(f *Factory) *cobra.Command {
	o := &LabelOptions{f: f}
	cmd := &cobra.Command{
		Use:   "label KIND NAME (key=value | key- | key --remove)",
		Short: "Add, change or remove a label on a resource",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
		ValidArgsFunction: completeKinds,
	}
	cmd.Flags().BoolVar(&o.Overwrite, "overwrite", false, "replace the value of an existing label")
	cmd.Flags().BoolVar(&o.Remove, "remove", false, "remove the label KEY")
	cmd.Flags().StringVarP(&o.Namespace, "namespace", "n", "", "namespace of a namespaced resource")
	return cmd
}

// Complete parses the arguments.
func (o *LabelOptions) Complete(args []string) error {
	if len(args) != 3 {
		return errors.New("label takes KIND NAME and one of key=value, key- or key --remove")
	}
	_, key, err := namedKey(args[0], args[1], o.Namespace)
	if err != nil {
		return err
	}
	o.key = key
	o.kindWord = args[0]
	arg := args[2]
	switch {
	case o.Remove:
		o.labelKey = arg
	case strings.HasSuffix(arg, "-") && !strings.Contains(arg, "="):
		o.Remove, o.labelKey = true, strings.TrimSuffix(arg, "-")
	default:
		key, value, found := strings.Cut(arg, "=")
		if !found || key == "" {
			return fmt.Errorf("invalid label %s", arg)
		}
		o.labelKey, o.labelValue = key, value
	}
	if !resources.IsLabelKey(o.labelKey) {
		return fmt.Errorf("invalid label key %q", o.labelKey)
	}
	return nil
}

// Run reads the object, changes its labels and writes it back at the same
// revision, retrying on a concurrent change.
func (o *LabelOptions) Run(ctx context.Context) error {
	c, err := o.f.connect(ctx)
	if err != nil {
		return err
	}
	defer c.DS.Close()
	kindWord := o.kindWord
	var msg string
	err = retryOnConflict(ctx, func() error {
		r, err := c.Get(ctx, o.key)
		if err != nil {
			return &patchError{err}
		}
		labels := r.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		old, present := labels[o.labelKey]
		switch {
		case o.Remove && !present:
			return &patchError{fmt.Errorf("cannot remove label of %s %s, key %s does not exist", kindWord, o.key.Name, o.labelKey)}
		case o.Remove:
			delete(labels, o.labelKey)
			msg = fmt.Sprintf("Successfully removed label %s from %s %s", o.labelKey, kindWord, o.key.Name)
		case present && !o.Overwrite && old != o.labelValue:
			return &patchError{fmt.Errorf("failed to update label of %s %s, key %s is already present. please use '--overwrite' to set a new value", kindWord, o.key.Name, o.labelKey)}
		case present:
			labels[o.labelKey] = o.labelValue
			msg = fmt.Sprintf("Successfully updated label %s on %s %s", o.labelKey, kindWord, o.key.Name)
		default:
			labels[o.labelKey] = o.labelValue
			msg = fmt.Sprintf("Successfully set label %s on %s %s", o.labelKey, kindWord, o.key.Name)
		}
		r.SetLabels(labels)
		_, err = c.Update(ctx, r)
		return err
	})
	var pe *patchError
	switch {
	case err == nil:
		fmt.Fprintln(o.f.Streams.Out, msg)
		return nil
	case errors.As(err, &pe):
		return pe.err
	default:
		return fmt.Errorf("failed to update %s %s, label not changed: %w", kindWord, o.key.Name, err)
	}
}
