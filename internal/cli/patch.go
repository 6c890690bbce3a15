package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/opencalico/calicoctl/resources"
)

// PatchOptions drive `calicoctl patch KIND NAME -p PATCH`.
type PatchOptions struct {
	f         *Factory
	Patch     string
	Type      string
	Namespace string

	kind  *resources.Kind
	key   resources.Key
	patch map[string]any
}

func newPatchCommand(f *Factory) *cobra.Command {
	o := &PatchOptions{f: f}
	cmd := &cobra.Command{
		Use:   "patch KIND NAME -p PATCH",
		Short: "Update fields of a resource with a JSON merge patch",
		Example: `  calicoctl patch ippool default-ipv4-ippool -p '{"spec":{"ipipMode":"Never","vxlanMode":"Always"}}'
  calicoctl patch node node1 -p '{"spec":{"bgp":{"routeReflectorClusterID":"244.0.0.1"}}}'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
		ValidArgsFunction: completeKinds,
	}
	cmd.Flags().StringVarP(&o.Patch, "patch", "p", "", "the patch: a JSON (or YAML) merge patch document")
	cmd.Flags().StringVarP(&o.Type, "type", "t", "strategic", "accepted for compatibility; the patch is applied as a merge patch")
	cmd.Flags().StringVarP(&o.Namespace, "namespace", "n", "", "namespace of a namespaced resource")
	_ = cmd.MarkFlagRequired("patch")
	return cmd
}

// Complete parses KIND NAME and the patch document.
func (o *PatchOptions) Complete(args []string) error {
	if len(args) != 2 {
		return errors.New("patch takes exactly KIND and NAME, e.g. `calicoctl patch ippool pool-a -p '{...}'`")
	}
	k, key, err := namedKey(args[0], args[1], o.Namespace)
	if err != nil {
		return err
	}
	o.kind, o.key = k, key
	if err := yamlOrJSON([]byte(o.Patch), &o.patch); err != nil || o.patch == nil {
		return fmt.Errorf("invalid patch: must be a JSON object: %v", err)
	}
	return o.checkIdentity()
}

// checkIdentity refuses a patch that would change what the object is: its
// apiVersion, kind, name or namespace. Restating the current value is fine.
func (o *PatchOptions) checkIdentity() error {
	type field struct {
		path string
		got  any
		want string
	}
	var fields []field
	add := func(m map[string]any, key, path, want string) {
		if v, ok := m[key]; ok {
			fields = append(fields, field{path, v, want})
		}
	}
	add(o.patch, "apiVersion", "apiVersion", resources.APIVersion)
	add(o.patch, "kind", "kind", o.kind.Kind)
	if meta, ok := o.patch["metadata"].(map[string]any); ok {
		add(meta, "name", "metadata.name", o.key.Name)
		add(meta, "namespace", "metadata.namespace", o.key.Namespace)
	}
	for _, f := range fields {
		if s, ok := f.got.(string); !ok || s != f.want {
			return fmt.Errorf("hit error: %s: patch may not change %s (from %q to %s): create a new resource instead", o.key, f.path, f.want, jsonText(f.got))
		}
	}
	return nil
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// Run applies the patch to the current object and updates it, re-reading
// and re-applying on a conflict so concurrent writers are never overwritten.
func (o *PatchOptions) Run(ctx context.Context) error {
	c, err := o.f.connect(ctx)
	if err != nil {
		return err
	}
	defer c.DS.Close()
	err = retryOnConflict(ctx, func() error {
		cur, err := c.Get(ctx, o.key)
		if err != nil {
			return &patchError{err}
		}
		patched, err := o.apply(cur)
		if err != nil {
			return &patchError{fmt.Errorf("%s: %w", o.key, err)}
		}
		_, err = c.Update(ctx, patched)
		return err
	})
	var pe *patchError
	switch {
	case err == nil:
		fmt.Fprintf(o.f.Streams.Out, "Successfully patched 1 '%s' resource\n", o.kind.Kind)
		if o.kind.Kind == "BGPConfiguration" {
			if w := c.MeshOffWarning(ctx); w != "" {
				fmt.Fprintln(o.f.Streams.ErrOut, w)
			}
		}
		return nil
	case errors.As(err, &pe):
		return fmt.Errorf("hit error: %w", pe.err)
	default:
		return fmt.Errorf("hit error: updating existing resource: %w", err)
	}
}

// patchError marks a failure before the update (reading, patching), which
// is reported without upstream's "updating existing resource" prefix.
type patchError struct{ err error }

func (e *patchError) Error() string { return e.err.Error() }
func (e *patchError) Unwrap() error { return e.err }

func (o *PatchOptions) apply(cur resources.Resource) (resources.Resource, error) {
	b, err := json.Marshal(cur)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	merged := mergePatch(doc, o.patch).(map[string]any)
	// Identity cannot be patched away.
	meta, _ := merged["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		merged["metadata"] = meta
	}
	meta["name"] = cur.GetName()
	if cur.GetNamespace() != "" {
		meta["namespace"] = cur.GetNamespace()
	}
	meta["resourceVersion"] = cur.GetResourceVersion()
	merged["apiVersion"], merged["kind"] = resources.APIVersion, o.kind.Kind
	out, err := json.Marshal(merged)
	if err != nil {
		return nil, err
	}
	docs, err := resources.Decode(out, "patched object")
	if err != nil {
		return nil, err
	}
	if len(docs) != 1 {
		return nil, errors.New("patch did not produce one object")
	}
	return docs[0].Resource, nil
}

// mergePatch applies an RFC 7386 JSON merge patch.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}

// namedKey resolves KIND NAME [-n NS] for commands acting on one object:
// namespaced kinds default to "default"; -n on a global kind is an error.
func namedKey(kind, name, namespace string) (*resources.Kind, resources.Key, error) {
	k, err := resources.Lookup(kind)
	if err != nil {
		return nil, resources.Key{}, err
	}
	if name == "" {
		return nil, resources.Key{}, errors.New("resource name may not be empty")
	}
	key := resources.Key{Kind: k.Kind, Name: name}
	if k.Namespaced {
		key.Namespace = namespace
		if key.Namespace == "" {
			key.Namespace = "default"
		}
	} else if namespace != "" {
		return nil, resources.Key{}, fmt.Errorf("%s is not namespaced", k.Kind)
	}
	return k, key, nil
}
