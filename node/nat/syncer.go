package nat

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"sigs.k8s.io/knftables"

	"github.com/opencalico/calicoctl/node/nfttable"
)

// Config configures a Syncer.
type Config struct {
	// Table is the name of our inet table; default TableName.
	Table string
}

// Option adjusts a Syncer.
type Option func(*Syncer)

// WithInterface makes the Syncer use nft (a knftables.Interface for family
// inet and our table, e.g. knftables.NewFake) instead of creating one.
func WithInterface(nft knftables.Interface) Option {
	return func(s *Syncer) { s.nft = nft }
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *Syncer) { s.log = l }
}

// Syncer keeps our nftables table equal to a Desired. It is safe for
// concurrent use.
//
// The first Apply (and the first after ForceResync or a failed update) writes
// the whole table in one transaction: it adds the table, sets, maps and chains
// if missing, flushes and refills them, and deletes objects in our table that
// we no longer define. An existing table (from a previous run) is thus
// adopted atomically: there is no moment with the rules missing. Later Apply
// calls only add and delete set/map elements that changed, and nothing when
// nothing changed.
type Syncer struct {
	mu      sync.Mutex
	nft     knftables.Interface
	table   string
	log     *slog.Logger
	backend string
	applied *Plan // what the kernel holds after our last successful write; nil = unknown
}

// NewSyncer returns a Syncer. Unless WithInterface is given it creates a
// knftables.Interface for `inet <table>` on the nft CLI (>= 1.0.1).
//
// knftables v0.0.22 runs every transaction through `nft -f -`; its
// experimental UseNetlink option only covers List/ListAll, and reports a
// missing table as an untyped error, so we do not enable it: the nft binary
// (Debian package nftables) is required either way.
func NewSyncer(cfg Config, opts ...Option) (*Syncer, error) {
	s := &Syncer{table: cfg.Table, log: slog.Default()}
	if s.table == "" {
		s.table = TableName
	}
	for _, o := range opts {
		o(s)
	}
	if s.nft != nil {
		s.backend = "injected"
		return s, nil
	}
	nft, err := knftables.New(knftables.InetFamily, s.table)
	if err != nil {
		return nil, fmt.Errorf("nftables unavailable (knftables needs the nft CLI >= 1.0.1 and CAP_NET_ADMIN): %w", err)
	}
	s.nft, s.backend = nft, "nft CLI"
	return s, nil
}

// Backend describes how the Syncer talks to the kernel.
func (s *Syncer) Backend() string { return s.backend }

// Table returns the name of our table.
func (s *Syncer) Table() string { return s.table }

// ForceResync makes the next Apply rewrite the whole table.
func (s *Syncer) ForceResync() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = nil
}

// Apply makes our table implement d. It is idempotent.
func (s *Syncer) Apply(ctx context.Context, d Desired) error {
	plan := NewPlan(d)
	for _, why := range plan.Skipped {
		s.log.Warn("nat: ignoring input", "reason", why)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.applied != nil {
		tx := s.nft.NewTransaction()
		if n := s.addDiff(tx, *s.applied, plan); n == 0 {
			return nil
		}
		err := s.nft.Run(ctx, tx)
		if err == nil {
			s.applied = &plan
			s.log.Debug("nat: updated elements", "table", s.table, "operations", tx.NumOperations())
			return nil
		}
		s.log.Warn("nat: element update failed, rewriting the table", "table", s.table, "error", err)
		s.applied = nil
	}
	return s.fullSync(ctx, plan)
}

// Cleanup deletes our table (and only it). Deleting a missing table is fine.
func (s *Syncer) Cleanup(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := nfttable.Delete(ctx, s.nft, s.table); err != nil {
		return err
	}
	s.applied = nil
	return nil
}

func (s *Syncer) fullSync(ctx context.Context, plan Plan) error {
	var want nfttable.Objects
	for _, c := range chainSpecs() {
		want.Chains = append(want.Chains, c.name)
	}
	for _, sp := range setSpecs() {
		if sp.isMap {
			want.Maps = append(want.Maps, sp.name)
		} else {
			want.Sets = append(want.Sets, sp.name)
		}
	}
	ops, err := nfttable.Sync(ctx, s.nft, s.table, want, func(tx *knftables.Transaction) {
		tx.Add(&knftables.Table{Comment: knftables.PtrTo(tableComment)})
		s.addContent(tx, plan)
	}, s.log)
	if err != nil {
		return err
	}
	s.applied = &plan
	s.log.Debug("nat: wrote table", "table", s.table, "operations", ops)
	return nil
}

// addContent adds, flushes and fills every set, map and chain of ours.
func (s *Syncer) addContent(tx *knftables.Transaction, plan Plan) {
	for _, sp := range setSpecs() {
		if sp.isMap {
			m := &knftables.Map{Name: sp.name, Type: sp.typ, Comment: knftables.PtrTo(sp.comment)}
			tx.Add(m)
			tx.Flush(m)
			entries := plan.Maps[sp.name]
			for _, k := range slices.Sorted(maps.Keys(entries)) {
				tx.Add(&knftables.Element{Map: sp.name, Key: []string{k}, Value: []string{entries[k]}})
			}
			continue
		}
		set := &knftables.Set{Name: sp.name, Type: sp.typ, Flags: sp.flags, Comment: knftables.PtrTo(sp.comment)}
		tx.Add(set)
		tx.Flush(set)
		for _, e := range plan.Sets[sp.name] {
			tx.Add(&knftables.Element{Set: sp.name, Key: []string{e}})
		}
	}
	for _, c := range chainSpecs() {
		ch := &knftables.Chain{
			Name:     c.name,
			Type:     knftables.PtrTo(knftables.NATType),
			Hook:     knftables.PtrTo(c.hook),
			Priority: knftables.PtrTo(c.priority),
			Comment:  knftables.PtrTo(c.comment),
		}
		tx.Add(ch)
		tx.Flush(ch)
		for _, r := range c.rules {
			tx.Add(&knftables.Rule{Chain: c.name, Rule: r.rule, Comment: knftables.PtrTo(r.comment)})
		}
	}
}

// addDiff adds to tx the element changes turning old into new and returns how
// many operations it added.
func (s *Syncer) addDiff(tx *knftables.Transaction, old, new Plan) int {
	for _, sp := range setSpecs() {
		if sp.isMap {
			o, n := old.Maps[sp.name], new.Maps[sp.name]
			for _, k := range slices.Sorted(maps.Keys(o)) {
				if v, ok := n[k]; !ok || v != o[k] {
					tx.Delete(&knftables.Element{Map: sp.name, Key: []string{k}})
				}
			}
			for _, k := range slices.Sorted(maps.Keys(n)) {
				if v, ok := o[k]; !ok || v != n[k] {
					tx.Add(&knftables.Element{Map: sp.name, Key: []string{k}, Value: []string{n[k]}})
				}
			}
			continue
		}
		o, n := old.Sets[sp.name], new.Sets[sp.name]
		for _, e := range o {
			if !slices.Contains(n, e) {
				tx.Delete(&knftables.Element{Set: sp.name, Key: []string{e}})
			}
		}
		for _, e := range n {
			if !slices.Contains(o, e) {
				tx.Add(&knftables.Element{Set: sp.name, Key: []string{e}})
			}
		}
	}
	return tx.NumOperations()
}
