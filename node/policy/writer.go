package policy

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"sigs.k8s.io/knftables"

	"github.com/opencalico/calicoctl/node/nfttable"
)

// Writer keeps table inet TableName on a Desired. The first write (and the
// first after a failure or ForceResync) adopts whatever table is there in
// one transaction: every object of ours is added, flushed and refilled and
// objects we no longer define are deleted, so policy is never missing, not
// even across an agent restart. Later writes touch only what changed: the
// elements of sets and maps added or removed one by one, and only the
// chains whose rules changed flushed and refilled; a policy change rewrites
// its own chains and nothing else.
type Writer struct {
	mu      sync.Mutex
	nft     knftables.Interface
	log     *slog.Logger
	applied *Desired // what the kernel holds after our last write; nil = unknown
	// elems writes changes of set membership only through netlink; nil =
	// always the nft CLI (a fake nft, or netlink unusable).
	elems elementWriter
	// lastOps is the number of operations of the last transaction (tests,
	// benchmarks).
	lastOps int
}

// NewWriter returns a Writer on nft, or on the nft CLI for inet TableName
// when nft is nil. On the CLI, changes of set membership only go through
// a netlink connection opened in the calling thread's network namespace
// (when it can be opened; else they go through the CLI too).
func NewWriter(nft knftables.Interface, log *slog.Logger) (*Writer, error) {
	if log == nil {
		log = slog.Default()
	}
	w := &Writer{nft: nft, log: log}
	if nft == nil {
		var err error
		if w.nft, err = knftables.New(knftables.InetFamily, TableName); err != nil {
			return nil, fmt.Errorf("nftables unavailable (knftables needs the nft CLI >= 1.0.1 and CAP_NET_ADMIN): %w", err)
		}
		if nl, err := newNetlinkElements(); err != nil {
			log.Info("policy: set elements will be written through the nft CLI", "error", err)
		} else {
			w.elems = nl
		}
	}
	return w, nil
}

// ForceResync makes the next Apply adopt the table again (the periodic
// resync: repairs what someone else changed in our table).
func (w *Writer) ForceResync() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.applied = nil
}

// LastOperations is the size of the last transaction written.
func (w *Writer) LastOperations() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastOps
}

// Apply makes the table implement d. It is idempotent: nothing is written
// when nothing changed.
func (w *Writer) Apply(ctx context.Context, d Desired) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.applied != nil && w.elems != nil {
		if ops, ok := setElementDiff(*w.applied, d); ok {
			if len(ops) == 0 {
				return nil
			}
			err := w.elems.WriteElements(ops)
			if err == nil {
				w.lastOps = 0
				for _, op := range ops {
					w.lastOps += len(op.del) + len(op.add)
				}
				w.applied = &d
				return nil
			}
			w.log.Warn("policy: writing set elements through netlink failed, using the nft CLI", "table", TableName, "error", err)
		}
	}
	if w.applied != nil {
		tx := w.nft.NewTransaction()
		if !addDiff(tx, *w.applied, d) {
			// A set or map changed its type: rewrite everything.
			w.applied = nil
			return w.fullSync(ctx, d)
		}
		if tx.NumOperations() == 0 {
			return nil
		}
		if err := w.nft.Run(ctx, tx); err != nil {
			w.log.Warn("policy: incremental nftables update failed, rewriting the table", "table", TableName, "error", err)
			w.applied = nil
			return w.fullSync(ctx, d)
		}
		w.lastOps = tx.NumOperations()
		w.applied = &d
		return nil
	}
	return w.fullSync(ctx, d)
}

// DeleteTable deletes table inet TableName through the nft CLI (a node
// whose policy is off must not keep enforcing what an earlier run left).
// Without a usable nft CLI there is nothing it could have written: no error.
func DeleteTable(ctx context.Context) error {
	nft, err := knftables.New(knftables.InetFamily, TableName)
	if err != nil {
		return nil
	}
	return nfttable.Delete(ctx, nft, TableName)
}

// Cleanup deletes our table (and only it).
func (w *Writer) Cleanup(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := nfttable.Delete(ctx, w.nft, TableName); err != nil {
		return err
	}
	w.applied = nil
	return nil
}

func (w *Writer) fullSync(ctx context.Context, d Desired) error {
	var want nfttable.Objects
	for _, c := range d.Chains {
		want.Chains = append(want.Chains, c.Name)
	}
	for _, s := range d.Sets {
		want.Sets = append(want.Sets, s.Name)
	}
	for _, m := range d.Maps {
		want.Maps = append(want.Maps, m.Name)
	}
	ops, err := nfttable.Sync(ctx, w.nft, TableName, want, func(tx *knftables.Transaction) { Render(tx, d) }, w.log)
	if err != nil {
		return err
	}
	w.lastOps = ops
	w.applied = &d
	return nil
}

// addDiff adds to tx what turns old into new; false when that cannot be
// done in place (a set or map changed its type or flags).
func addDiff(tx *knftables.Transaction, old, new Desired) bool {
	oldSets := byName(old.Sets, func(s Set) string { return s.Name })
	newSets := byName(new.Sets, func(s Set) string { return s.Name })
	oldChains := byName(old.Chains, func(c Chain) string { return c.Name })
	newChains := byName(new.Chains, func(c Chain) string { return c.Name })
	oldMaps := byName(old.Maps, func(m Map) string { return m.Name })
	newMaps := byName(new.Maps, func(m Map) string { return m.Name })

	// 1. Sets: new ones with their elements, existing ones element by element.
	for _, s := range new.Sets {
		o, ok := oldSets[s.Name]
		if !ok {
			tx.Add(setObject(s))
			for _, e := range s.Elements {
				tx.Add(&knftables.Element{Set: s.Name, Key: []string{e}})
			}
			continue
		}
		if o.Type != s.Type || o.Interval != s.Interval {
			return false
		}
		if slices.Equal(o.Elements, s.Elements) {
			continue
		}
		was, is := elementSet(o.Elements), elementSet(s.Elements)
		for _, e := range o.Elements {
			if !is[e] {
				tx.Delete(&knftables.Element{Set: s.Name, Key: []string{e}})
			}
		}
		for _, e := range s.Elements {
			if !was[e] {
				tx.Add(&knftables.Element{Set: s.Name, Key: []string{e}})
			}
		}
	}
	// 2. New chains exist before any rule or map element names them.
	for _, c := range new.Chains {
		if _, ok := oldChains[c.Name]; !ok {
			tx.Add(chainObject(c))
		}
	}
	// 3. Maps, element by element.
	for _, m := range new.Maps {
		o, ok := oldMaps[m.Name]
		if !ok {
			tx.Add(mapObject(m))
		} else if o.Type != m.Type {
			return false
		}
		was := map[string]string{}
		for _, e := range o.Elements {
			was[e.Key] = e.Value
		}
		is := map[string]string{}
		for _, e := range m.Elements {
			is[e.Key] = e.Value
		}
		for _, e := range o.Elements {
			if v, ok := is[e.Key]; !ok || v != e.Value {
				tx.Delete(&knftables.Element{Map: m.Name, Key: []string{e.Key}})
			}
		}
		for _, e := range m.Elements {
			if v, ok := was[e.Key]; !ok || v != e.Value {
				tx.Add(&knftables.Element{Map: m.Name, Key: []string{e.Key}, Value: []string{e.Value}})
			}
		}
	}
	// 4. Rules of new chains and of chains whose rules changed.
	for _, c := range new.Chains {
		o, existed := oldChains[c.Name]
		if existed && slices.Equal(o.Rules, c.Rules) {
			continue
		}
		if existed {
			tx.Flush(&knftables.Chain{Name: c.Name})
		}
		addRules(tx, c)
	}
	// 5. Chains, maps and sets that are gone; nothing refers to them now.
	var gone nfttable.Objects
	for _, c := range old.Chains {
		if _, ok := newChains[c.Name]; !ok {
			gone.Chains = append(gone.Chains, c.Name)
		}
	}
	for _, m := range old.Maps {
		if _, ok := newMaps[m.Name]; !ok {
			gone.Maps = append(gone.Maps, m.Name)
		}
	}
	for _, s := range old.Sets {
		if _, ok := newSets[s.Name]; !ok {
			gone.Sets = append(gone.Sets, s.Name)
		}
	}
	nfttable.DeleteObjects(tx, gone)
	return true
}

// elementSet indexes a set's elements (a set of 5,000 addresses is
// compared in linear time, not quadratic).
func elementSet(es []string) map[string]bool {
	m := make(map[string]bool, len(es))
	for _, e := range es {
		m[e] = true
	}
	return m
}

func byName[T any](xs []T, name func(T) string) map[string]T {
	m := make(map[string]T, len(xs))
	for _, x := range xs {
		m[name(x)] = x
	}
	return m
}
