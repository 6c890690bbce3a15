package memstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/etcdstore"
)

// maxHistory bounds the changes kept for watchers; older ones are
// compacted away, as etcd's auto-compaction does.
const maxHistory = 8192

var _ etcdstore.WatchKV = (*memKV)(nil)

// record appends a change to the history and wakes watchers (mu held).
func (m *memKV) record(ev etcdstore.KVEvent) {
	if !m.followed {
		// Nobody has listed for a watch yet: keep no history (allocator
		// tests and benchmarks write a lot).
		m.compacted = ev.ModRevision
		return
	}
	m.history = append(m.history, ev)
	if len(m.history) > maxHistory {
		drop := len(m.history) / 2
		m.compacted = m.history[drop-1].ModRevision
		m.history = slices.Delete(m.history, 0, drop)
	}
	if m.changed != nil {
		close(m.changed)
		m.changed = nil
	}
}

// Compact forgets the changes up to and including revision rev: a watch
// resuming before it fails with ipam.ErrWatchExpired, as on etcd.
func (s *Store) Compact(rev string) error {
	r, err := parseRev(rev)
	if err != nil {
		return err
	}
	s.kv.mu.Lock()
	defer s.kv.mu.Unlock()
	s.kv.compacted = max(s.kv.compacted, r)
	s.kv.history = slices.DeleteFunc(s.kv.history, func(ev etcdstore.KVEvent) bool { return ev.ModRevision <= r })
	return nil
}

// Revision is the store's current revision.
func (s *Store) Revision() string {
	s.kv.mu.Lock()
	defer s.kv.mu.Unlock()
	return formatRev(s.kv.rev)
}

func parseRev(rev string) (int64, error) {
	var r int64
	if _, err := fmt.Sscan(rev, &r); err != nil {
		return 0, fmt.Errorf("memstore: revision %q: %w", rev, err)
	}
	return r, nil
}

func (m *memKV) ListRevision(ctx context.Context, prefixes []string, fn func(etcdstore.KeyValue) error) (int64, error) {
	for _, p := range prefixes {
		if err := m.before(ctx, OpList, p); err != nil {
			return 0, err
		}
	}
	m.mu.Lock()
	var snapshot []etcdstore.KeyValue
	for k, e := range m.data {
		if slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
			snapshot = append(snapshot, etcdstore.KeyValue{Key: k, Value: bytes.Clone(e.value), ModRevision: e.mod})
		}
	}
	rev := m.rev
	m.followed = true
	m.mu.Unlock()
	slices.SortFunc(snapshot, func(a, b etcdstore.KeyValue) int { return strings.Compare(a.Key, b.Key) })
	for _, kv := range snapshot {
		if err := fn(kv); err != nil {
			return 0, err
		}
	}
	return rev, nil
}

func (m *memKV) Watch(ctx context.Context, prefix string, rev int64) <-chan etcdstore.KVEvent {
	out := make(chan etcdstore.KVEvent, 64)
	go func() {
		defer close(out)
		for {
			m.mu.Lock()
			m.followed = true
			if rev < m.compacted {
				err := fmt.Errorf("memstore watch %s after revision %d (compacted at %d): %w", prefix, rev, m.compacted, ipam.ErrWatchExpired)
				m.mu.Unlock()
				select {
				case out <- etcdstore.KVEvent{Err: err}:
				case <-ctx.Done():
				}
				return
			}
			var batch []etcdstore.KVEvent
			for _, ev := range m.history {
				if ev.ModRevision > rev && strings.HasPrefix(ev.Key, prefix) {
					ev.Value = bytes.Clone(ev.Value)
					batch = append(batch, ev)
				}
			}
			rev = m.rev
			if m.changed == nil {
				m.changed = make(chan struct{})
			}
			changed := m.changed
			m.mu.Unlock()
			for _, ev := range batch {
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
