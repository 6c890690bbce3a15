package printer

import (
	"bufio"
	"fmt"
	"io"

	"github.com/opencalico/calicoctl/resources"
)

// Pager yields the items of a list query a page at a time; it returns a nil
// page (and nil error) when the list is exhausted.
type Pager func() ([]resources.Resource, error)

// PagePrinter is a Printer that can also print a list query page by page,
// keeping only the cells it has computed, not the objects: `get wep -A` over
// 10,000 endpoints then holds one page of objects at a time.
type PagePrinter interface {
	Printer
	// CanPrintPages reports whether a list of kind k prints correctly from
	// pages (a kind whose rows are sorted by object fields needs them all).
	CanPrintPages(k *resources.Kind) bool
	// PrintPages prints a list query of kind k whose items come from next.
	PrintPages(w io.Writer, k *resources.Kind, next Pager) error
}

var _ PagePrinter = (*tablePrinter)(nil)

func (p *tablePrinter) CanPrintPages(k *resources.Kind) bool {
	return ColumnsFor(k).Less == nil
}

func (p *tablePrinter) PrintPages(w io.Writer, k *resources.Kind, next Pager) error {
	if !p.CanPrintPages(k) {
		return fmt.Errorf("a %s table cannot be printed page by page", k.Kind)
	}
	cols, err := p.columns(k)
	if err != nil {
		return err
	}
	ctx := &Context{GlobalASNumber: p.opts.GlobalASNumber}
	bw := bufio.NewWriterSize(w, outputBufferSize)
	tw := newTableWriter(bw, headers(cols))
	for {
		page, err := next()
		if err != nil {
			return err
		}
		if page == nil {
			break
		}
		pt, err := BuildTable(cols, page, ctx)
		if err != nil {
			return err
		}
		for _, r := range pt.Rows {
			tw.row(r)
		}
	}
	if err := tw.close(); err != nil {
		return err
	}
	return bw.Flush()
}

func headers(cols []Column) []string {
	h := make([]string, len(cols))
	for i, c := range cols {
		h[i] = c.Header
	}
	return h
}
