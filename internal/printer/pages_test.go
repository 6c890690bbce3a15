package printer

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/opencalico/calicoctl/resources"
)

func testWEPs(n int) []resources.Resource {
	var items []resources.Resource
	for i := range n {
		w := &resources.WorkloadEndpoint{}
		w.Name = fmt.Sprintf("node%d-k8s-pod%d-eth0", i%3, i)
		w.Namespace = fmt.Sprintf("ns%d", i%4)
		w.Spec.Node = fmt.Sprintf("node%d", i%3)
		w.Spec.Pod = fmt.Sprintf("pod%d", i)
		w.Spec.InterfaceName = fmt.Sprintf("cali%011d", i)
		w.Spec.IPNetworks = []string{fmt.Sprintf("10.0.%d.%d/32", i/256, i%256)}
		items = append(items, w)
	}
	return items
}

// pagesOf serves items in pages of size n.
func pagesOf(items []resources.Resource, n int) Pager {
	return func() ([]resources.Resource, error) {
		if len(items) == 0 {
			return nil, nil
		}
		page := items[:min(n, len(items))]
		items = items[len(page):]
		return page, nil
	}
}

// TestPrintPagesMatchesPrint checks that a table printed page by page is
// byte for byte the table printed from the whole list, whatever the page
// size (widths depend on every row, including ones in later pages).
func TestPrintPagesMatchesPrint(t *testing.T) {
	k, _ := resources.LookupKind("WorkloadEndpoint")
	items := testWEPs(1200)
	// A long cell on the last page must widen the column for every row.
	items[len(items)-1].(*resources.WorkloadEndpoint).Spec.Node = "a-node-with-a-much-longer-name"
	for _, format := range []string{"ps", "wide", "custom-columns=NAME,NODE"} {
		for _, showNS := range []bool{false, true} {
			p, err := New(format, Options{ShowNamespace: showNS})
			if err != nil {
				t.Fatal(err)
			}
			var whole bytes.Buffer
			if err := p.Print(&whole, Result{Kind: k, Items: items, IsList: true}); err != nil {
				t.Fatal(err)
			}
			pp := p.(PagePrinter)
			if !pp.CanPrintPages(k) {
				t.Fatalf("WorkloadEndpoint tables should print page by page")
			}
			for _, size := range []int{1, 7, 500, 5000} {
				var paged bytes.Buffer
				if err := pp.PrintPages(&paged, k, pagesOf(items, size)); err != nil {
					t.Fatal(err)
				}
				if paged.String() != whole.String() {
					t.Errorf("%s ns=%v page %d: paged table differs from the whole table", format, showNS, size)
				}
			}
		}
	}
}

func TestPrintPagesEmptyAndErrors(t *testing.T) {
	k, _ := resources.LookupKind("WorkloadEndpoint")
	p, _ := New("ps", Options{})
	pp := p.(PagePrinter)
	var empty, whole bytes.Buffer
	if err := pp.PrintPages(&empty, k, pagesOf(nil, 10)); err != nil {
		t.Fatal(err)
	}
	if err := p.Print(&whole, Result{Kind: k, IsList: true}); err != nil {
		t.Fatal(err)
	}
	if empty.String() != whole.String() || empty.Len() == 0 {
		t.Errorf("empty list: paged %q, whole %q", empty.String(), whole.String())
	}
	boom := errors.New("datastore went away")
	calls := 0
	err := pp.PrintPages(&bytes.Buffer{}, k, func() ([]resources.Resource, error) {
		calls++
		if calls == 2 {
			return nil, boom
		}
		return testWEPs(3), nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("a failing page: got %v, want %v", err, boom)
	}
	tier, _ := resources.LookupKind("Tier")
	if pp.CanPrintPages(tier) {
		t.Errorf("Tier tables are sorted by order: they cannot print page by page")
	}
}
