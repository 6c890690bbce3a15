package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/resources"
)

// writeVerb names one of the write commands and its message words.
type writeVerb struct {
	name string // create | apply | replace
	past string // created | applied | replaced
}

var (
	verbCreate  = writeVerb{"create", "created"}
	verbApply   = writeVerb{"apply", "applied"}
	verbReplace = writeVerb{"replace", "replaced"}
)

// WriteOptions drive create, apply and replace.
type WriteOptions struct {
	f          *Factory
	verb       writeVerb
	files      fileFlags
	Namespace  string
	SkipExists bool
}

func newWriteCommand(f *Factory, verb writeVerb, short string) *cobra.Command {
	o := &WriteOptions{f: f, verb: verb}
	o.files.compact = true
	cmd := &cobra.Command{
		Use:   verb.name + " -f FILENAME",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.Run(cmd.Context())
		},
	}
	o.files.add(cmd, true)
	cmd.Flags().StringVarP(&o.Namespace, "namespace", "n", "", "namespace for namespaced resources that do not name one")
	if verb == verbCreate {
		cmd.Flags().BoolVar(&o.SkipExists, "skip-exists", false, "treat resources that already exist as created")
	}
	return cmd
}

func newCreateCommand(f *Factory) *cobra.Command {
	return newWriteCommand(f, verbCreate, "Create resources from a file or stdin")
}

func newApplyCommand(f *Factory) *cobra.Command {
	return newWriteCommand(f, verbApply, "Create or update resources from a file or stdin")
}

func newReplaceCommand(f *Factory) *cobra.Command {
	return newWriteCommand(f, verbReplace, "Replace existing resources from a file or stdin")
}

// itemResult is the outcome for one input document. The object itself is
// dropped once written: a bulk apply keeps only what its report needs.
type itemResult struct {
	doc resources.Document
	key resources.Key
	err error
}

// writeChunk is how many objects one bulk write sends: each chunk is
// written, then its objects are let go, so an apply of 10,000 objects never
// holds them all in every encoded form at once.
const writeChunk = 500

// Run reads the input, checks every object before writing any, writes the
// valid ones (in bulk where the datastore allows) and reports per object.
func (o *WriteOptions) Run(ctx context.Context) error {
	out, errOut := o.f.Streams.Out, o.f.Streams.ErrOut
	if _, set := o.f.Env("GOGC"); !set {
		// A bulk write's live data is small (checked JSON, one chunk of
		// objects) but decoding makes much garbage: collect it sooner, for
		// a lower peak (apply -f of 10,000 endpoints: 83 -> 75 MiB).
		defer debug.SetGCPercent(debug.SetGCPercent(50))
	}
	docs, err := o.files.read(o.f.Streams.In)
	if err != nil {
		return fmt.Errorf("failed to execute command: %w", err)
	}
	if len(docs) == 0 {
		fmt.Fprintln(out, "No resources specified")
		return nil
	}
	results := make([]itemResult, len(docs))
	for i, d := range docs {
		results[i].doc = d
	}
	docs = nil
	c, err := o.f.connectForWrite(ctx)
	if err != nil {
		return err
	}
	defer c.DS.Close()
	// Once the datastore stops answering, the remaining objects fail at once
	// (each named) instead of each waiting out its own timeout.
	c.DS = datastore.FailFast(c.DS)
	for lo := 0; lo < len(results); lo += writeChunk {
		// Objects are decoded from their checked JSON a chunk at a time.
		var todo []int
		for i := lo; i < min(lo+writeChunk, len(results)); i++ {
			r, err := results[i].doc.Object()
			if err == nil {
				err = applyNamespace(r, o.Namespace)
			}
			if err != nil {
				results[i].err = err
				results[i].settle()
				continue
			}
			todo = append(todo, i)
		}
		o.write(ctx, c, results, todo) // settles every result it writes
	}
	err = report(out, errOut, o.verb, results)
	warnBGPMesh(ctx, c, errOut, results)
	return err
}

// warnBGPMesh prints client.MeshOffWarning after a BGPConfiguration was
// written.
func warnBGPMesh(ctx context.Context, c *client.Client, errOut io.Writer, results []itemResult) {
	for _, r := range results {
		if r.err == nil && r.key.Kind == "BGPConfiguration" {
			if w := c.MeshOffWarning(ctx); w != "" {
				fmt.Fprintln(errOut, w)
			}
			return
		}
	}
}

// settle keeps the object's key and lets the object go.
func (r *itemResult) settle() {
	if k := r.doc.Key(); k.Kind != "" {
		r.key = k
	}
	r.doc = resources.Document{Source: r.doc.Source}
}

func (o *WriteOptions) write(ctx context.Context, c *client.Client, results []itemResult, todo []int) {
	batch := make([]resources.Resource, len(todo))
	for j, i := range todo {
		batch[j] = results[i].doc.Resource
	}
	var errs []error
	switch o.verb {
	case verbCreate:
		_, errs = c.CreateMany(ctx, batch)
		if o.SkipExists {
			for j := range errs {
				if errors.Is(errs[j], datastore.ErrExists) {
					errs[j] = nil
				}
			}
		}
	case verbApply:
		_, errs = c.ApplyMany(ctx, batch)
	case verbReplace:
		errs = make([]error, len(batch))
		parallel(len(batch), 16, func(j int) {
			_, errs[j] = c.Update(ctx, batch[j])
		})
	}
	for j, i := range todo {
		results[i].err = errs[j]
		results[i].settle()
	}
}

// report prints upstream's summary line and one line per failure, and returns
// ErrSilent when anything failed. Objects whose write outcome is unknown (the
// datastore stopped answering and could not be re-read) are neither counted
// as written nor as failed: they get their own header and lines.
func report(out, errOut interface{ Write([]byte) (int, error) }, verb writeVerb, results []itemResult) error {
	kind := commonKind(results)
	quoted := ""
	if kind != "" {
		quoted = "'" + kind + "' "
	}
	var failed, unknown []itemResult
	for _, r := range results {
		switch {
		case r.err == nil:
		case errors.Is(r.err, datastore.ErrUnknownOutcome):
			unknown = append(unknown, r)
		default:
			failed = append(failed, r)
		}
	}
	ok := len(results) - len(failed) - len(unknown)
	switch {
	case len(failed) == 0 && len(unknown) == 0:
		fmt.Fprintf(out, "Successfully %s %d %sresource(s)\n", verb.past, ok, quoted)
		return nil
	case ok > 0:
		fmt.Fprintf(out, "Partial success: %s %d out of %d %sresources:\n", verb.past, ok, len(results), quoted)
		if len(failed) > 0 {
			fmt.Fprintf(errOut, "hit error(s) on %d %sresource(s):\n", len(failed), quoted)
		}
	case len(results) == 1 && len(failed) == 1:
		fmt.Fprintf(errOut, "failed to %s %sresource: [%s]\n", verb.name, quoted, describeFailure(failed[0]))
		return ErrSilent
	case len(failed) > 0:
		fmt.Fprintf(errOut, "failed to %s any %sresources:\n", verb.name, quoted)
	}
	for _, r := range failed {
		fmt.Fprintf(errOut, "  %s\n", describeFailure(r))
	}
	if len(unknown) > 0 {
		fmt.Fprintf(errOut, "outcome unknown for %d %sresource(s): the datastore did not answer; run the command again to converge:\n", len(unknown), quoted)
		for _, r := range unknown {
			fmt.Fprintf(errOut, "  %s\n", describeFailure(r))
		}
	}
	return ErrSilent
}

// describeFailure renders one failed object on one line: which object, from
// where, and why.
func describeFailure(r itemResult) string {
	key := r.key
	msg := strings.ReplaceAll(r.err.Error(), "\n", " ")
	if key.Name != "" && strings.Contains(msg, key.String()) {
		// The error already names the object.
		return fmt.Sprintf("%s [%s]", msg, r.doc.Source)
	}
	if key.Name == "" {
		return fmt.Sprintf("%s [%s]: %s", key.Kind, r.doc.Source, msg)
	}
	return fmt.Sprintf("%s [%s]: %s", key, r.doc.Source, msg)
}

func commonKind(results []itemResult) string {
	kind := ""
	for i, r := range results {
		k := r.key.Kind
		if i == 0 {
			kind = k
		} else if k != kind {
			return ""
		}
	}
	return kind
}

// parallel runs fn(0..n-1) on up to workers goroutines.
func parallel(n, workers int, fn func(i int)) {
	var wg sync.WaitGroup
	ch := make(chan int)
	for range min(workers, n) {
		wg.Go(func() {
			for i := range ch {
				fn(i)
			}
		})
	}
	for i := range n {
		ch <- i
	}
	close(ch)
	wg.Wait()
}
