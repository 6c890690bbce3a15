package kdd

import (
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/opencalico/calicoctl/e2e/clitest"
)

// table renders rows the way calicoctl prints ps/wide tables (text/tabwriter,
// minwidth 5, padding 3, every cell tab-terminated, then an empty line), so
// expectations can be written as cells rather than padded strings.
func table(rows ...[]string) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 5, 1, 3, ' ', 0)
	for _, r := range rows {
		for _, c := range r {
			w.Write([]byte(c + "\t"))
		}
		w.Write([]byte("\n"))
	}
	w.Flush()
	return b.String() + "\n"
}

// tableRows splits a printed table into whitespace-separated cells per
// line, skipping blank lines (empty cells disappear, so use it only where
// every cell is filled).
func tableRows(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows = append(rows, f)
		}
	}
	return rows
}

// rowWith returns the first row whose column col equals v.
func rowWith(rows [][]string, col int, v string) ([]string, bool) {
	for _, r := range rows {
		if len(r) > col && r[col] == v {
			return r, true
		}
	}
	return nil, false
}

func TestTableHelper(t *testing.T) {
	got := table([]string{"NAME", "CIDR", "SELECTOR"}, []string{"default-ipv4-ippool", "192.168.0.0/16", "all()"})
	want := "NAME                  CIDR             SELECTOR   \ndefault-ipv4-ippool   192.168.0.0/16   all()      \n\n"
	clitest.WantExact(t, "table", got, want)
	rows := tableRows(got)
	if r, ok := rowWith(rows, 0, "default-ipv4-ippool"); !ok || r[2] != "all()" {
		t.Errorf("rowWith: %v %v", r, ok)
	}
}
