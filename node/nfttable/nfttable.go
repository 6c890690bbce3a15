// Package nfttable holds what the agent's nftables writers (node/nat,
// node/policy) share about owning one table: adopting what an earlier run
// left there in a single transaction, replacing the table when adoption
// cannot work, and deleting it.
package nfttable

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"sigs.k8s.io/knftables"
)

// Objects names chains, sets and maps of a table.
type Objects struct{ Chains, Sets, Maps []string }

// Stale lists the objects of nft's table that want does not name, sorted;
// none when the table does not exist yet.
func Stale(ctx context.Context, nft knftables.Interface, table string, want Objects) (Objects, error) {
	var st Objects
	for _, kind := range []struct {
		typ  string
		want []string
		out  *[]string
	}{{"chains", want.Chains, &st.Chains}, {"sets", want.Sets, &st.Sets}, {"maps", want.Maps, &st.Maps}} {
		names, err := nft.List(ctx, kind.typ)
		if err != nil {
			if knftables.IsNotFound(err) {
				return Objects{}, nil // no table yet
			}
			return Objects{}, fmt.Errorf("listing %s of nftables table inet %s: %w", kind.typ, table, err)
		}
		wanted := make(map[string]bool, len(kind.want))
		for _, n := range kind.want {
			wanted[n] = true
		}
		for _, n := range names {
			if !wanted[n] {
				*kind.out = append(*kind.out, n)
			}
		}
		slices.Sort(*kind.out)
	}
	return st, nil
}

// DeleteObjects adds to tx the deletion of objs in an order nft accepts:
// chains flushed first (one may jump to another or name a set), then maps
// (a verdict map's elements name chains), chains and sets.
func DeleteObjects(tx *knftables.Transaction, objs Objects) {
	for _, c := range objs.Chains {
		tx.Flush(&knftables.Chain{Name: c})
	}
	for _, m := range objs.Maps {
		tx.Delete(&knftables.Map{Name: m})
	}
	for _, c := range objs.Chains {
		tx.Delete(&knftables.Chain{Name: c})
	}
	for _, s := range objs.Sets {
		tx.Delete(&knftables.Set{Name: s})
	}
}

// Sync makes nft's table hold exactly what render adds (render adds the
// table itself and fills every object it wants), in one transaction that
// adopts the objects an earlier run left and deletes the stale ones, so
// nothing is ever missing in between. When that transaction fails (an
// object of ours with another definition, e.g. a set's type, cannot be
// re-added) the table is replaced, still in one transaction. It returns the
// number of operations of the transaction that succeeded.
func Sync(ctx context.Context, nft knftables.Interface, table string, want Objects, render func(*knftables.Transaction), log *slog.Logger) (int, error) {
	stale, err := Stale(ctx, nft, table, want)
	if err != nil {
		return 0, err
	}
	tx := nft.NewTransaction()
	render(tx)
	DeleteObjects(tx, stale)
	if err = nft.Run(ctx, tx); err == nil {
		return tx.NumOperations(), nil
	}
	log.Warn("adopting the existing table failed, replacing it", "table", table, "error", err)
	tx = nft.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	render(tx)
	if err2 := nft.Run(ctx, tx); err2 != nil {
		return 0, fmt.Errorf("programming nftables table inet %s: %w", table, errors.Join(err, err2))
	}
	return tx.NumOperations(), nil
}

// Delete deletes nft's table (and only it); a missing table is fine.
func Delete(ctx context.Context, nft knftables.Interface, table string) error {
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	if err := nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("deleting nftables table inet %s: %w", table, err)
	}
	return nil
}
