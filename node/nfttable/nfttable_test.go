package nfttable

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"
)

// Sync adopts a table an earlier run left: what the render wants stays,
// everything else (a chain, a verdict map naming it, a set) is deleted in
// the same transaction; a missing table is no error for Stale or Delete.
func TestSyncAdoptsAndDeletesStale(t *testing.T) {
	ctx := context.Background()
	nft := knftables.NewFake(knftables.InetFamily, "t")
	if st, err := Stale(ctx, nft, "t", Objects{}); err != nil || len(st.Chains)+len(st.Sets)+len(st.Maps) != 0 {
		t.Fatalf("no table: %+v, %v", st, err)
	}
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Add(&knftables.Chain{Name: "keep"})
	tx.Add(&knftables.Chain{Name: "old"})
	tx.Add(&knftables.Set{Name: "old-set", Type: "ipv4_addr"})
	tx.Add(&knftables.Map{Name: "old-map", Type: "ifname : verdict"})
	tx.Add(&knftables.Element{Map: "old-map", Key: []string{`"eth0"`}, Value: []string{"goto old"}})
	tx.Add(&knftables.Rule{Chain: "keep", Rule: "jump old"})
	if err := nft.Run(ctx, tx); err != nil {
		t.Fatal(err)
	}
	want := Objects{Chains: []string{"keep", "new"}}
	st, err := Stale(ctx, nft, "t", want)
	if err != nil || !slices.Equal(st.Chains, []string{"old"}) || !slices.Equal(st.Sets, []string{"old-set"}) || !slices.Equal(st.Maps, []string{"old-map"}) {
		t.Fatalf("stale %+v, %v", st, err)
	}
	render := func(tx *knftables.Transaction) {
		tx.Add(&knftables.Table{})
		for _, c := range want.Chains {
			tx.Add(&knftables.Chain{Name: c})
			tx.Flush(&knftables.Chain{Name: c})
		}
		tx.Add(&knftables.Rule{Chain: "keep", Rule: "jump new"})
	}
	if _, err := Sync(ctx, nft, "t", want, render, slog.Default()); err != nil {
		t.Fatal(err)
	}
	dump := nft.Dump()
	for _, gone := range []string{"old-set", "old-map", "chain inet t old", "jump old"} {
		if strings.Contains(dump, gone) {
			t.Errorf("%q left after Sync:\n%s", gone, dump)
		}
	}
	if !strings.Contains(dump, "jump new") {
		t.Errorf("render's rule missing:\n%s", dump)
	}
	if err := Delete(ctx, nft, "t"); err != nil {
		t.Fatal(err)
	}
	if err := Delete(ctx, nft, "t"); err != nil {
		t.Errorf("deleting a missing table: %v", err)
	}
}
