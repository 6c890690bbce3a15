package policy

import (
	"context"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/internal/netnstest"
)

// countingElements counts the batches written through netlink.
type countingElements struct {
	inner elementWriter
	n     int
}

func (c *countingElements) WriteElements(ops []setElementOp) error {
	c.n++
	return c.inner.WriteElements(ops)
}

var _ elementWriter = (*countingElements)(nil)

// elemDesired is a small table with an IPv4 and an IPv6 interval set and
// named-port sets of both families, referenced by a rule.
func elemDesired(v4, v6, np4, np6 []string, verdict string) Desired {
	return Desired{
		Chains: []Chain{{Name: "cali-test", Rules: []Rule{
			{Rule: "ip saddr @cali40s-v4 " + verdict},
			{Rule: "ip6 saddr @cali60s-v6 " + verdict},
			{Rule: "ip daddr . meta l4proto . th dport @cali40n-np4 " + verdict},
			{Rule: "ip6 daddr . meta l4proto . th dport @cali60n-np6 " + verdict},
		}}},
		Sets: []Set{
			{Name: "cali40n-np4", Type: "ipv4_addr . inet_proto . inet_service", Elements: np4},
			{Name: "cali40s-v4", Type: "ipv4_addr", Interval: true, Elements: v4},
			{Name: "cali60n-np6", Type: "ipv6_addr . inet_proto . inet_service", Elements: np6},
			{Name: "cali60s-v6", Type: "ipv6_addr", Interval: true, Elements: v6},
		},
	}
}

// TestPrivilegedNetlinkElements: element-only changes go through netlink
// and leave the same table as the CLI writes for the same Desired (listed
// by nft in two namespaces); a later chain change through the CLI still
// works on the table netlink changed.
func TestPrivilegedNetlinkElements(t *testing.T) {
	requirePrivileged(t)
	ctx := context.Background()
	nlNS, cliNS := netnstest.NewNamed(t, "calpolnl").Name, netnstest.NewNamed(t, "calpolcli").Name
	var w, ref *Writer
	var counter *countingElements
	inNS(t, nlNS, func() {
		var err error
		if w, err = NewWriter(nil, nil); err != nil {
			t.Fatal(err)
		}
	})
	if w.elems == nil {
		t.Fatal("no netlink element writer on the CLI")
	}
	counter = &countingElements{inner: w.elems}
	w.elems = counter
	inNS(t, cliNS, func() {
		var err error
		if ref, err = NewWriter(nil, nil); err != nil {
			t.Fatal(err)
		}
	})
	ref.elems = nil // always the CLI
	apply := func(d Desired) {
		t.Helper()
		inNS(t, nlNS, func() {
			if err := w.Apply(ctx, d); err != nil {
				t.Fatal(err)
			}
		})
		inNS(t, cliNS, func() {
			if err := ref.Apply(ctx, d); err != nil {
				t.Fatal(err)
			}
		})
		got := nsRun(t, nlNS, "", "nft", "list", "table", "inet", TableName)
		want := nsRun(t, cliNS, "", "nft", "list", "table", "inet", TableName)
		if got != want {
			t.Fatalf("table after netlink updates:\n%s\nwant (the CLI's):\n%s", got, want)
		}
	}

	apply(elemDesired([]string{"10.0.0.1", "10.0.1.0/24"}, []string{"fd00::1"},
		[]string{"10.0.0.1 . tcp . 8080"}, []string{"fd00::1 . udp . 53"}, "accept"))
	steps := []Desired{
		// Additions, including an address next to an existing one and a
		// prefix, in every set.
		elemDesired([]string{"10.0.0.1", "10.0.0.2", "10.0.1.0/24", "192.168.0.0/16"}, []string{"fd00::1", "fd00::2", "fd01::/64"},
			[]string{"10.0.0.1 . tcp . 8080", "10.0.0.2 . 132 . 9000"}, []string{"fd00::1 . udp . 53", "fd00::2 . tcp . 443"}, "accept"),
		// Removals and additions together; a prefix replaced by one that
		// covers an address removed in the same batch.
		elemDesired([]string{"10.0.0.0/30", "192.168.0.0/16"}, []string{"fd00::2"},
			[]string{"10.0.0.2 . 132 . 9000"}, nil, "accept"),
		// Everything removed.
		elemDesired(nil, nil, nil, nil, "accept"),
		elemDesired([]string{"10.9.9.9"}, []string{"fd09::9"}, []string{"10.9.9.9 . udp . 1"}, []string{"fd09::9 . tcp . 2"}, "accept"),
	}
	for i, d := range steps {
		before := counter.n
		apply(d)
		if counter.n != before+1 {
			t.Fatalf("step %d: element changes did not go through netlink", i)
		}
	}
	// A chain change goes through the CLI and sees netlink's elements.
	before := counter.n
	d := elemDesired([]string{"10.9.9.9", "10.9.9.10"}, []string{"fd09::9"}, []string{"10.9.9.9 . udp . 1"}, []string{"fd09::9 . tcp . 2"}, "drop")
	apply(d)
	if counter.n != before {
		t.Error("a chain change went through netlink")
	}
	listing := nsRun(t, nlNS, "", "nft", "list", "table", "inet", TableName)
	for _, s := range []string{"10.9.9.9, 10.9.9.10", "fd09::9", "10.9.9.9 . udp . 1", "fd09::9 . tcp . 2", "drop"} {
		if !strings.Contains(listing, s) {
			t.Errorf("listing lacks %q:\n%s", s, listing)
		}
	}
	// And elements through netlink again after the CLI wrote.
	apply(elemDesired([]string{"10.9.9.9"}, nil, nil, nil, "drop"))
	if counter.n != before+1 {
		t.Error("element changes after a CLI write did not go through netlink")
	}
}

// failingElements is a netlink path that always fails.
type failingElements struct{ n int }

func (f *failingElements) WriteElements([]setElementOp) error { f.n++; return errUnencodable }

// TestPrivilegedNetlinkFallback: when netlink fails, the same change goes
// through the CLI.
func TestPrivilegedNetlinkFallback(t *testing.T) {
	requirePrivileged(t)
	ctx := context.Background()
	ns := netnstest.NewNamed(t, "calpolfb").Name
	inNS(t, ns, func() {
		w, err := NewWriter(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		f := &failingElements{}
		w.elems = f
		if err := w.Apply(ctx, elemDesired([]string{"10.0.0.1"}, nil, nil, nil, "accept")); err != nil {
			t.Fatal(err)
		}
		if err := w.Apply(ctx, elemDesired([]string{"10.0.0.1", "10.0.0.7"}, nil, nil, nil, "accept")); err != nil {
			t.Fatal(err)
		}
		if f.n != 1 {
			t.Errorf("netlink tried %d times, want 1", f.n)
		}
	})
	if l := nsRun(t, ns, "", "nft", "list", "set", "inet", TableName, "cali40s-v4"); !strings.Contains(l, "10.0.0.1, 10.0.0.7") {
		t.Errorf("the CLI fallback did not write the element:\n%s", l)
	}
}
