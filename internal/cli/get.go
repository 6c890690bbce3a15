package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/internal/printer"
	"github.com/opencalico/calicoctl/resources"
)

// GetOptions drive `calicoctl get`.
type GetOptions struct {
	f             *Factory
	files         fileFlags
	Output        string
	Namespace     string
	AllNamespaces bool
	Export        bool

	kinds []*resources.Kind
	names []string
}

func newGetCommand(f *Factory) *cobra.Command {
	o := &GetOptions{f: f}
	cmd := &cobra.Command{
		Use:   "get (KIND [NAME...] | -f FILENAME)",
		Short: "Display one or many resources",
		Long: "Display one or many resources. KIND may be a comma-separated list (e.g. ippool,bgppeer);\n" +
			"kind names are case-insensitive and accept plurals and short forms (pool, gnp, wep, hep...).",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
		ValidArgsFunction: completeKinds,
	}
	o.files.add(cmd, false)
	fl := cmd.Flags()
	fl.StringVarP(&o.Output, "output", "o", "ps", "output format: ps|wide|yaml|json|custom-columns=...|go-template=...|go-template-file=...")
	fl.StringVarP(&o.Namespace, "namespace", "n", "", "namespace of namespaced resources")
	fl.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "list namespaced resources in every namespace")
	fl.BoolVar(&o.Export, "export", false, "strip cluster-specific metadata (only with a resource name)")
	return cmd
}

// Complete parses KIND[,KIND] [NAME...].
func (o *GetOptions) Complete(args []string) error {
	if o.files.Filename != "" {
		if len(args) > 0 {
			return errors.New("cannot give both -f and KIND/NAME arguments")
		}
		return nil
	}
	if len(args) == 0 {
		return errors.New("you must specify the type of resource to get, e.g. `calicoctl get ippools`")
	}
	for _, w := range strings.Split(args[0], ",") {
		k, err := resources.Lookup(w)
		if err != nil {
			return err
		}
		o.kinds = append(o.kinds, k)
	}
	o.names = args[1:]
	for _, n := range o.names {
		if n == "" {
			return errors.New("resource name may not be empty")
		}
	}
	return nil
}

// Validate checks flag combinations.
func (o *GetOptions) Validate() error {
	if o.Namespace != "" && o.AllNamespaces {
		return errors.New("cannot use --namespace and --all-namespaces together")
	}
	if o.AllNamespaces && len(o.names) > 0 {
		return errors.New("cannot use --all-namespace flag for getting a single resource")
	}
	if o.Export && len(o.names) == 0 && o.files.Filename == "" {
		return errors.New("--export can only be used with a resource name")
	}
	for _, k := range o.kinds {
		if !k.Namespaced && (o.Namespace != "" || o.AllNamespaces) {
			return fmt.Errorf("%s is not namespaced", k.Kind)
		}
	}
	_, err := printer.New(o.Output, printer.Options{})
	return err
}

// Run reads and prints. Objects that were found are printed even when others
// were not; each error then gets its own line and the exit code is 1.
func (o *GetOptions) Run(ctx context.Context) error {
	type query struct {
		kind *resources.Kind
		keys []resources.Key // empty: list
	}
	var queries []query
	if o.files.Filename != "" {
		docs, err := o.files.read(o.f.Streams.In)
		if err != nil {
			return fmt.Errorf("failed to execute command: %w", err)
		}
		for _, d := range docs {
			if err := applyNamespace(d.Resource, o.Namespace); err != nil {
				return err
			}
			k := resources.KindOf(d.Resource)
			queries = append(queries, query{kind: k, keys: []resources.Key{resources.KeyOf(d.Resource)}})
		}
	} else {
		for _, k := range o.kinds {
			q := query{kind: k}
			for _, n := range o.names {
				key := resources.Key{Kind: k.Kind, Name: n}
				if k.Namespaced {
					key.Namespace = o.namespace()
				}
				q.keys = append(q.keys, key)
			}
			queries = append(queries, q)
		}
	}
	c, err := o.f.connect(ctx)
	if err != nil {
		return err
	}
	defer c.DS.Close()

	var errs []error
	for _, q := range queries {
		res := printer.Result{Kind: q.kind, IsList: len(q.keys) == 0}
		p, err := printer.New(o.Output, printer.Options{
			ShowNamespace:  q.kind.Namespaced && (o.Namespace != "" || o.AllNamespaces),
			GlobalASNumber: globalASNumber(ctx, c),
		})
		if err != nil {
			return err
		}
		ns := ""
		if q.kind.Namespaced && !o.AllNamespaces {
			ns = o.namespace()
		}
		if pp, ok := p.(printer.PagePrinter); ok && res.IsList && pp.CanPrintPages(q.kind) {
			// Tables of a list keep cells, not objects: read a page at a
			// time so a large list never sits in memory whole.
			if err := pp.PrintPages(o.f.Streams.Out, q.kind, listPager(ctx, c, datastore.ListOptions{Kind: q.kind.Kind, Namespace: ns})); err != nil {
				return err
			}
			continue
		}
		if res.IsList {
			l, err := c.List(ctx, datastore.ListOptions{Kind: q.kind.Kind, Namespace: ns})
			if err != nil {
				return err
			}
			res.Items, res.Revision = l.Items, l.Revision
		} else {
			for _, key := range q.keys {
				r, err := c.Get(ctx, key)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if o.Export {
					export(r)
				}
				res.Items = append(res.Items, r)
			}
			if len(res.Items) == 0 {
				continue
			}
		}
		if err := p.Print(o.f.Streams.Out, res); err != nil {
			return err
		}
	}
	if len(errs) == 0 {
		return nil
	}
	for _, e := range errs {
		fmt.Fprintln(o.f.Streams.ErrOut, e)
	}
	return ErrSilent
}

// listPageSize is how many objects a paged `get` table reads per request.
const listPageSize = 500

// listPager reads opts a page at a time, every page at the revision of the
// first, so the table is one consistent snapshot.
func listPager(ctx context.Context, c *client.Client, opts datastore.ListOptions) printer.Pager {
	done := false
	return func() ([]resources.Resource, error) {
		if done {
			return nil, nil
		}
		opts.Limit = listPageSize
		l, err := c.List(ctx, opts)
		if err != nil {
			return nil, err
		}
		opts.Continue = l.Continue
		done = l.Continue == ""
		if l.Items == nil {
			l.Items = []resources.Resource{}
		}
		return l.Items, nil
	}
}

func (o *GetOptions) namespace() string {
	if o.Namespace != "" {
		return o.Namespace
	}
	return "default"
}

// export clears what ties an object to one cluster.
func export(r resources.Resource) {
	r.SetNamespace("")
	r.SetUID("")
	r.SetResourceVersion("")
	r.SetCreationTimestamp(metaTimeZero)
	r.SetDeletionTimestamp(nil)
	r.SetDeletionGracePeriodSeconds(nil)
}

// globalASNumber returns a lazy lookup of the cluster-wide AS number (the
// default BGPConfiguration's asNumber, else 64512) for the Node ASN column.
func globalASNumber(ctx context.Context, c *client.Client) func() string {
	var cached string
	return func() string {
		if cached != "" {
			return cached
		}
		cached = "64512"
		if r, err := c.Get(ctx, resources.Key{Kind: "BGPConfiguration", Name: "default"}); err == nil {
			if bc, ok := r.(*resources.BGPConfiguration); ok && bc.Spec.ASNumber != nil {
				cached = fmt.Sprint(*bc.Spec.ASNumber)
			}
		}
		return cached
	}
}

func completeKinds(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var words []string
	for _, k := range resources.Kinds() {
		words = append(words, k.Plural)
	}
	return words, cobra.ShellCompDirectiveNoFileComp
}
