package printer

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/opencalico/calicoctl/resources"
)

// Context carries what column values need besides the object.
type Context struct {
	// GlobalASNumber returns the cluster-wide AS number.
	GlobalASNumber func() string
}

// Column is one table column: its heading and how to compute a cell.
type Column struct {
	Header string
	Value  func(r resources.Resource, ctx *Context) string
}

// ColumnSet is the table layout of one kind.
type ColumnSet struct {
	// PS and Wide are the headings of -o ps and -o wide, in order.
	PS, Wide []string
	// Columns holds every heading custom-columns accepts, PS and Wide
	// included.
	Columns map[string]Column
	// Less, when set, orders the rows of a list table.
	Less func(a, b resources.Resource) int
}

// Headings returns the sorted keys of Columns.
func (cs *ColumnSet) Headings() []string {
	hs := make([]string, 0, len(cs.Columns))
	for h := range cs.Columns {
		hs = append(hs, h)
	}
	slices.Sort(hs)
	return hs
}

// ColumnsFor returns the table layout of kind k. Kinds without their own
// layout get NAME (and NAMESPACE when namespaced).
func ColumnsFor(k *resources.Kind) *ColumnSet {
	if k != nil {
		if cs, ok := columnSets[k.Kind]; ok {
			return cs
		}
	}
	cs := &ColumnSet{PS: []string{"NAME"}, Wide: []string{"NAME"}, Columns: map[string]Column{"NAME": nameColumn}}
	if k != nil && k.Namespaced {
		cs.Columns["NAMESPACE"] = namespaceColumn
	}
	return cs
}

var (
	nameColumn = Column{Header: "NAME", Value: func(r resources.Resource, _ *Context) string {
		return r.GetName()
	}}
	namespaceColumn = Column{Header: "NAMESPACE", Value: func(r resources.Resource, _ *Context) string {
		return r.GetNamespace()
	}}
)

// col adapts a typed cell function to a Column; objects of another type give
// an empty cell.
func col[T resources.Resource](header string, f func(T, *Context) string) Column {
	return Column{Header: header, Value: func(r resources.Resource, ctx *Context) string {
		t, ok := r.(T)
		if !ok {
			return ""
		}
		return f(t, ctx)
	}}
}

// Table is a rendered-to-be table: headings and rows of cells.
type Table struct {
	Header []string
	Rows   [][]string
}

// SelectColumns resolves headings against cs, prepending NAMESPACE when
// showNamespace is set and the kind has that column.
func SelectColumns(cs *ColumnSet, headings []string, showNamespace bool) ([]Column, error) {
	var cols []Column
	if showNamespace {
		if c, ok := cs.Columns["NAMESPACE"]; ok && !slices.ContainsFunc(headings, func(h string) bool { return strings.EqualFold(h, "NAMESPACE") }) {
			cols = append(cols, c)
		}
	}
	for _, h := range headings {
		c, ok := cs.Columns[strings.ToUpper(h)]
		if !ok {
			return nil, fmt.Errorf("unknown heading %s, valid values are: %s", h, strings.Join(cs.Headings(), ", "))
		}
		cols = append(cols, c)
	}
	return cols, nil
}

// BuildTable computes the cells of items under cols. It is pure: no I/O.
// A cell function that panics yields an error, not a crash.
func BuildTable(cols []Column, items []resources.Resource, ctx *Context) (t Table, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("failed to build table row: %v", r)
		}
	}()
	t.Header = headers(cols)
	for _, it := range items {
		row := make([]string, len(cols))
		for i, c := range cols {
			row[i] = c.Value(it, ctx)
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}

// cellReplacer keeps a cell on one line and in one column.
var cellReplacer = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ")

// RenderTable writes t through text/tabwriter (minwidth 5, tabwidth 1,
// padding 3, padded with spaces) with every cell tab-terminated, then an
// empty line.
func RenderTable(w io.Writer, t Table) error {
	tw := newTableWriter(w, t.Header)
	for _, r := range t.Rows {
		tw.row(r)
	}
	return tw.close()
}

// tableWriter renders a table row by row; the column widths are known, and
// the text written, only at close.
type tableWriter struct {
	w  io.Writer
	tw *tabwriter.Writer
}

func newTableWriter(w io.Writer, header []string) *tableWriter {
	t := &tableWriter{w: w, tw: tabwriter.NewWriter(w, 5, 1, 3, ' ', 0)}
	t.row(header)
	return t
}

func (t *tableWriter) row(cells []string) {
	for _, c := range cells {
		_, _ = io.WriteString(t.tw, cellReplacer.Replace(c))
		_, _ = io.WriteString(t.tw, "\t")
	}
	_, _ = io.WriteString(t.tw, "\n")
}

func (t *tableWriter) close() error {
	if err := t.tw.Flush(); err != nil {
		return fmt.Errorf("writing table: %w", err)
	}
	_, err := io.WriteString(t.w, "\n")
	return err
}

// tablePrinter writes -o ps, -o wide and -o custom-columns=...: one table
// for a list query, one table per object for a named query.
type tablePrinter struct {
	opts     Options
	wide     bool
	headings []string // custom columns
}

// columns resolves the printer's headings for kind k.
func (p *tablePrinter) columns(k *resources.Kind) ([]Column, error) {
	cs := ColumnsFor(k)
	headings := p.headings
	if headings == nil {
		headings = cs.PS
		if p.wide {
			headings = cs.Wide
		}
	}
	showNS := p.opts.ShowNamespace && k != nil && k.Namespaced
	return SelectColumns(cs, headings, showNS)
}

func (p *tablePrinter) Print(w io.Writer, res Result) error {
	cs := ColumnsFor(res.Kind)
	cols, err := p.columns(res.Kind)
	if err != nil {
		return err
	}
	ctx := &Context{GlobalASNumber: p.opts.GlobalASNumber}
	groups := [][]resources.Resource{res.Items}
	if res.IsList {
		if cs.Less != nil {
			groups[0] = slices.Clone(res.Items)
			slices.SortStableFunc(groups[0], cs.Less)
		}
	} else {
		groups = groups[:0]
		for _, it := range res.Items {
			groups = append(groups, []resources.Resource{it})
		}
	}
	bw := bufio.NewWriterSize(w, outputBufferSize)
	for _, g := range groups {
		t, err := BuildTable(cols, g, ctx)
		if err != nil {
			return err
		}
		if err := RenderTable(bw, t); err != nil {
			return err
		}
	}
	return bw.Flush()
}
