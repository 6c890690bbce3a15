package printer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opencalico/calicoctl/resources"
)

// Both structured printers stream: each item is marshalled on its own into a
// reused buffer and written out before the next, so memory stays flat in the
// number of items.

const outputBufferSize = 64 << 10

// itemEncoder marshals items to compact JSON into one reused buffer, with
// the same escaping as json.Marshal.
type itemEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

func newItemEncoder() *itemEncoder {
	e := &itemEncoder{}
	e.enc = json.NewEncoder(&e.buf)
	return e
}

func (e *itemEncoder) encode(v any) ([]byte, error) {
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		return nil, fmt.Errorf("marshalling %s: %w", describe(v), err)
	}
	return bytes.TrimSuffix(e.buf.Bytes(), []byte{'\n'}), nil
}

func describe(v any) string {
	if r, ok := v.(resources.Resource); ok {
		return resources.KeyOf(r).String()
	}
	return fmt.Sprintf("%T", v)
}

// yamlPrinter writes -o yaml: a <Kind>List for list queries, the object for
// one named result, a sequence of objects for several.
type yamlPrinter struct{}

func (yamlPrinter) Print(w io.Writer, res Result) error {
	bw := bufio.NewWriterSize(w, outputBufferSize)
	e := newYAMLEmitter(bw)
	enc := newItemEncoder()
	e.beginDocument()
	switch {
	case res.IsList:
		l := NewList(res)
		e.mapKey(0, "apiVersion")
		e.stringScalar([]byte(l.APIVersion), yamlBestIndent, false)
		e.mapKey(0, "items")
		if len(l.Items) == 0 {
			e.emptyFlow("[", "]")
		}
		if err := e.sequenceItems(bw, l.Items); err != nil {
			return err
		}
		e.mapKey(0, "kind")
		e.stringScalar([]byte(l.Kind), yamlBestIndent, false)
		e.mapKey(0, "metadata")
		js, err := enc.encode(&l.ListMeta)
		if err != nil {
			return err
		}
		if err := e.node(js, 0, true); err != nil {
			return err
		}
	case len(res.Items) == 1:
		js, err := enc.encode(res.Items[0])
		if err != nil {
			return err
		}
		if err := e.node(js, -1, false); err != nil {
			return err
		}
	case len(res.Items) == 0:
		e.emptyFlow("[", "]")
	default:
		if err := e.sequenceItems(bw, res.Items); err != nil {
			return err
		}
	}
	e.endDocument()
	return bw.Flush()
}

// cursor is the part of the emitter state that carries over between items.
type cursor struct {
	col                   int
	whitespace, indention bool
}

// sequenceItems writes items as a block sequence at indent 0 (the items of a
// list, or a root sequence), rendering batches of items in parallel. Each
// batch starts as if something had been written on the current line; the
// line break that puts in front of its first item is dropped when the
// previous item already ended its line.
func (e *yamlEmitter) sequenceItems(bw *bufio.Writer, items []resources.Resource) error {
	render := func(lo, hi int, out *bytes.Buffer) (cursor, error) {
		w := bufio.NewWriterSize(out, 16<<10)
		be := newYAMLEmitter(w)
		enc := newItemEncoder()
		be.col, be.whitespace, be.indention = 1, false, false
		for _, it := range items[lo:hi] {
			js, err := enc.encode(it)
			if err != nil {
				return cursor{}, err
			}
			be.seqItem(0)
			if err := be.node(js, 0, false); err != nil {
				return cursor{}, err
			}
		}
		return cursor{be.col, be.whitespace, be.indention}, w.Flush()
	}
	emit := func(out []byte, st cursor) error {
		if e.indention && e.col == 0 && e.whitespace {
			out = bytes.TrimPrefix(out, []byte{'\n'})
		}
		if _, err := bw.Write(out); err != nil {
			return err
		}
		e.col, e.whitespace, e.indention = st.col, st.whitespace, st.indention
		return nil
	}
	return renderInOrder(len(items), render, emit)
}

// jsonPrinter writes -o json: like yaml, 2-space indented, with no newline
// after the closing bracket.
type jsonPrinter struct{}

func (jsonPrinter) Print(w io.Writer, res Result) error {
	bw := bufio.NewWriterSize(w, outputBufferSize)
	enc := newItemEncoder()
	var ind bytes.Buffer
	// writeIndented writes v indented as a value that starts at a line
	// with the given prefix.
	writeIndented := func(v any, prefix string) error {
		js, err := enc.encode(v)
		if err != nil {
			return err
		}
		ind.Reset()
		if err := json.Indent(&ind, js, prefix, "  "); err != nil {
			return fmt.Errorf("indenting %s: %w", describe(v), err)
		}
		_, err = bw.Write(ind.Bytes())
		return err
	}
	writeItems := func(items []resources.Resource, prefix string) error {
		if len(items) == 0 {
			_, _ = bw.WriteString("[]")
			return nil
		}
		_, _ = bw.WriteString("[\n")
		render := func(lo, hi int, out *bytes.Buffer) (struct{}, error) {
			enc := newItemEncoder()
			for i := lo; i < hi; i++ {
				if i > 0 {
					out.WriteString(",\n")
				}
				out.WriteString(prefix + "  ")
				js, err := enc.encode(items[i])
				if err != nil {
					return struct{}{}, err
				}
				if err := json.Indent(out, js, prefix+"  ", "  "); err != nil {
					return struct{}{}, fmt.Errorf("indenting %s: %w", describe(items[i]), err)
				}
			}
			return struct{}{}, nil
		}
		emit := func(out []byte, _ struct{}) error {
			_, err := bw.Write(out)
			return err
		}
		if err := renderInOrder(len(items), render, emit); err != nil {
			return err
		}
		_, _ = bw.WriteString("\n" + prefix + "]")
		return nil
	}
	var err error
	switch {
	case res.IsList:
		l := NewList(res)
		var tm []byte
		if tm, err = json.Marshal(l.Kind); err == nil {
			fmt.Fprintf(bw, "{\n  \"kind\": %s,\n  \"apiVersion\": %q,\n  \"metadata\": ", tm, l.APIVersion)
			if err = writeIndented(metav1.ListMeta{ResourceVersion: l.ResourceVersion}, "  "); err == nil {
				_, _ = bw.WriteString(",\n  \"items\": ")
				if err = writeItems(l.Items, "  "); err == nil {
					_, _ = bw.WriteString("\n}")
				}
			}
		}
	case len(res.Items) == 1:
		err = writeIndented(res.Items[0], "")
	default:
		err = writeItems(res.Items, "")
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}
