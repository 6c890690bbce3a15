package policy

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"

	"github.com/opencalico/calicoctl/internal/netnstest"
	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

// The writer against knftables' fake: a changed policy rewrites its own
// chains only, a new endpoint adds set elements only, nothing changed
// writes nothing, and a full sync deletes objects we no longer define.
func TestWriterIncremental(t *testing.T) {
	fake := knftables.NewFake(knftables.InetFamily, TableName)
	w, err := NewWriter(fake, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in := seed001("slave2")
	if err := w.Apply(ctx, Compile(in)); err != nil {
		t.Fatal(err)
	}
	first := fake.Dump()
	if err := w.Apply(ctx, Compile(in)); err != nil {
		t.Fatal(err)
	}
	if fake.Dump() != first {
		t.Error("re-applying the same intent changed the table")
	}

	// A frontend appears elsewhere: only set elements change.
	in.Endpoints = append(in.Endpoints, ep("default", "slave3-k8s-frontend3-eth0", "slave3", "cali0ef24b9",
		map[string]string{"app": "frontend"}, []string{"192.168.2.9/32"}))
	d := Compile(in)
	fake.LastTransaction = nil
	if err := w.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	tx := fake.LastTransaction.String()
	if !strings.Contains(tx, "192.168.2.9") || strings.Contains(tx, "flush chain") || strings.Contains(tx, "add rule") {
		t.Errorf("a new remote endpoint should add set elements only; transaction:\n%s", tx)
	}
	if want, _ := Dump(d); !sameTable(fake.Dump(), want) {
		t.Errorf("after the element update the table differs from the intent:\n got %s\nwant %s", fake.Dump(), want)
	}

	// The profile's rules change: its chains and nothing else are rewritten.
	in.Profiles[0].Spec.Ingress[0].Destination.Ports = ports("3307")
	d = Compile(in)
	fake.LastTransaction = nil
	if err := w.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	tx = fake.LastTransaction.String()
	for _, line := range strings.Split(tx, "\n") {
		if strings.HasPrefix(line, "flush chain") && !strings.Contains(line, "profile-database") {
			t.Errorf("a profile change flushed another chain: %s", line)
		}
	}
	if !strings.Contains(tx, "3307") {
		t.Errorf("the new port is not written:\n%s", tx)
	}
	if want, _ := Dump(d); !sameTable(fake.Dump(), want) {
		t.Errorf("after the profile change the table differs from the intent")
	}

	// The database endpoint goes: its chains and dispatch entries go.
	in.Endpoints = in.Endpoints[:2]
	in.Endpoints = append(in.Endpoints, ep("default", "slave3-k8s-frontend3-eth0", "slave3", "cali0ef24b9",
		map[string]string{"app": "frontend"}, []string{"192.168.2.9/32"}))
	d = Compile(in)
	if err := w.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if want, _ := Dump(d); !sameTable(fake.Dump(), want) {
		t.Errorf("after the endpoint left the table differs from the intent:\n got %s\nwant %s", fake.Dump(), want)
	}
	if strings.Contains(fake.Dump(), "cali0ef24b3") {
		t.Errorf("the gone endpoint's chains are still there:\n%s", fake.Dump())
	}

	// A new writer (agent restart) adopts the table and drops a stale chain.
	tx2 := fake.NewTransaction()
	tx2.Add(&knftables.Chain{Name: "cali-pi-stale"})
	if err := fake.Run(ctx, tx2); err != nil {
		t.Fatal(err)
	}
	w2, _ := NewWriter(fake, nil)
	if err := w2.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(fake.Dump(), "cali-pi-stale") {
		t.Error("the adopting write left a stale chain")
	}
}

// sameTable compares two dumps ignoring line order (the fake lists
// elements in insertion order).
func sameTable(a, b string) bool {
	la, lb := strings.Split(strings.TrimSpace(a), "\n"), strings.Split(strings.TrimSpace(b), "\n")
	if len(la) != len(lb) {
		return false
	}
	count := map[string]int{}
	for _, l := range la {
		count[l]++
	}
	for _, l := range lb {
		count[l]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}

// The writer in a real namespace: a table from an earlier run is adopted
// (no gap: one transaction) and updated in place.
func TestPrivilegedWriter(t *testing.T) {
	requirePrivileged(t)
	ns := netnstest.NewNamed(t, "calpolw").Name
	in := seed001("slave2")
	inNS(t, ns, func() {
		w, err := NewWriter(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := w.Apply(ctx, Compile(in)); err != nil {
			t.Fatal(err)
		}
		in.Endpoints = append(in.Endpoints, &state.Endpoint{Key: resources.Key{Kind: "WorkloadEndpoint", Namespace: "default", Name: "x"},
			Node: "slave9", Labels: map[string]string{"app": "frontend"}, Networks: nil})
		in.Profiles[0].Spec.Ingress[0].Destination.Ports = ports("3307")
		if err := w.Apply(ctx, Compile(in)); err != nil {
			t.Fatal(err)
		}
		w2, err := NewWriter(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := w2.Apply(ctx, Compile(in)); err != nil {
			t.Fatalf("adopting: %v", err)
		}
	})
	listing := nsRun(t, ns, "", "nft", "list", "table", "inet", TableName)
	if !strings.Contains(listing, "3307") || strings.Contains(listing, "3306") {
		t.Errorf("the table does not carry the changed profile:\n%s", listing)
	}
}

// Removing the last preDNAT and doNotTrack policies removes their base
// chains, maps and endpoint chains in place (maps go before the chains
// their elements name), both incrementally and when a new writer adopts
// the table; neither falls back to replacing the table.
func TestPrivilegedWriterRemovesLayers(t *testing.T) {
	requirePrivileged(t)
	ns := netnstest.NewNamed(t, "calpoll").Name
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	with := hostLayers()
	without := hostLayers()
	without.GlobalPolicies = without.GlobalPolicies[2:]
	inNS(t, ns, func() {
		ctx := context.Background()
		w, err := NewWriter(nil, log)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range []Input{with, without, with} {
			if err := w.Apply(ctx, Compile(in)); err != nil {
				t.Fatal(err)
			}
		}
		w2, err := NewWriter(nil, log)
		if err != nil {
			t.Fatal(err)
		}
		if err := w2.Apply(ctx, Compile(without)); err != nil {
			t.Fatalf("adopting: %v", err)
		}
	})
	if strings.Contains(logs.String(), "failed") {
		t.Errorf("the writer fell back:\n%s", logs.String())
	}
	listing := nsRun(t, ns, "", "nft", "list", "table", "inet", TableName)
	if strings.Contains(listing, "raw-") || strings.Contains(listing, "mangle-") || !strings.Contains(listing, "cali-pi-gnp/host-deny") {
		t.Errorf("the table still has layer objects or lost the host policy:\n%s", listing)
	}
}

// DeleteTable removes the table an enforcing run left, and is fine when
// there is none.
func TestPrivilegedDeleteTable(t *testing.T) {
	requirePrivileged(t)
	ns := netnstest.NewNamed(t, "calpold").Name
	inNS(t, ns, func() {
		ctx := context.Background()
		w, err := NewWriter(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Apply(ctx, Compile(hostLayers())); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := DeleteTable(ctx); err != nil {
				t.Fatal(err)
			}
		}
	})
	if listing := nsRun(t, ns, "", "nft", "list", "tables"); strings.Contains(listing, TableName) {
		t.Errorf("table left: %s", listing)
	}
}
