// Package memstore is an in-memory ipam.Store for fast allocator tests. It
// runs the etcd store's code on an in-memory key-value map with etcd's
// semantics (one global revision, ModRevision guards), so objects, revisions
// and errors are exactly those of the etcd store; the shared conformance
// suite (storetest) checks that. Values are stored in upstream's JSON, so
// tests can seed and inspect raw keys.
package memstore

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/etcdstore"
)

// Operations passed to a Hook.
const (
	OpGet    = "get"
	OpPut    = "put"
	OpDelete = "delete"
	OpList   = "list"
)

// Hook runs before every operation on a key (for OpList, the prefix),
// outside the store's lock: it may read and write the store, e.g. to make a
// compare-and-swap lose a race. A non-nil error fails the operation.
type Hook func(op, key string) error

// Store is an in-memory ipam.Store.
type Store struct {
	*etcdstore.Store
	kv *memKV
}

var _ ipam.Store = (*Store)(nil)

// New returns an empty store.
func New(opts ...etcdstore.Option) *Store {
	kv := &memKV{data: map[string]entry{}}
	return &Store{Store: etcdstore.NewWithKV(kv, opts...), kv: kv}
}

// SetHook installs h (nil removes it).
func (s *Store) SetHook(h Hook) {
	s.kv.mu.Lock()
	defer s.kv.mu.Unlock()
	s.kv.hook = h
}

// PutRaw stores value under key unconditionally (no hook) and returns the
// new revision, as a Revision string.
func (s *Store) PutRaw(key string, value []byte) string {
	s.kv.mu.Lock()
	defer s.kv.mu.Unlock()
	return formatRev(s.kv.write(key, value))
}

// GetRaw returns the stored bytes of key.
func (s *Store) GetRaw(key string) ([]byte, bool) {
	s.kv.mu.Lock()
	defer s.kv.mu.Unlock()
	e, ok := s.kv.data[key]
	return bytes.Clone(e.value), ok
}

// DeleteRaw removes key unconditionally (no hook); false if it was absent.
func (s *Store) DeleteRaw(key string) bool {
	s.kv.mu.Lock()
	defer s.kv.mu.Unlock()
	if _, ok := s.kv.data[key]; !ok {
		return false
	}
	s.kv.remove(key)
	return true
}

// Keys lists every stored key in order.
func (s *Store) Keys() []string {
	s.kv.mu.Lock()
	defer s.kv.mu.Unlock()
	keys := make([]string, 0, len(s.kv.data))
	for k := range s.kv.data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

type entry struct {
	value []byte
	mod   int64
}

// memKV implements etcdstore.KV with etcd's revision rules: every write and
// delete bumps one store-wide revision; a key's ModRevision is the revision
// of its last write.
type memKV struct {
	mu   sync.Mutex
	rev  int64
	data map[string]entry
	hook Hook
	// history is what watchers read: the latest changes, oldest first;
	// changes up to compacted are gone (as after an etcd compaction).
	history   []etcdstore.KVEvent
	compacted int64
	// followed is set once a watcher listed or watched: history is kept
	// from then on.
	followed bool
	// changed is closed and replaced on every change.
	changed chan struct{}
}

func formatRev(rev int64) string { return strconv.FormatInt(rev, 10) }

// before checks ctx and runs the hook.
func (m *memKV) before(ctx context.Context, op, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	h := m.hook
	m.mu.Unlock()
	if h != nil {
		return h(op, key)
	}
	return nil
}

func (m *memKV) write(key string, value []byte) int64 {
	m.rev++
	_, existed := m.data[key]
	m.data[key] = entry{value: bytes.Clone(value), mod: m.rev}
	m.record(etcdstore.KVEvent{Key: key, Created: !existed, Value: bytes.Clone(value), ModRevision: m.rev})
	return m.rev
}

func (m *memKV) remove(key string) {
	m.rev++
	prev := m.data[key]
	delete(m.data, key)
	m.record(etcdstore.KVEvent{Key: key, Deleted: true, Value: prev.value, ModRevision: m.rev})
}

func (m *memKV) Get(ctx context.Context, keys ...string) ([]*etcdstore.KeyValue, error) {
	for _, k := range keys {
		if err := m.before(ctx, OpGet, k); err != nil {
			return nil, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*etcdstore.KeyValue, len(keys))
	for i, k := range keys {
		if e, ok := m.data[k]; ok {
			out[i] = &etcdstore.KeyValue{Key: k, Value: bytes.Clone(e.value), ModRevision: e.mod}
		}
	}
	return out, nil
}

// check applies a guard the way etcd's transaction compares do.
func (m *memKV) check(key string, rev int64) etcdstore.Outcome {
	e, ok := m.data[key]
	switch {
	case rev == etcdstore.CreateOnly && ok:
		return etcdstore.Present
	case rev == etcdstore.CreateOnly:
		return etcdstore.Done
	case !ok:
		return etcdstore.Missing
	case rev > 0 && e.mod != rev:
		return etcdstore.Stale
	default:
		return etcdstore.Done
	}
}

func (m *memKV) Put(ctx context.Context, key string, value []byte, rev int64) (int64, etcdstore.Outcome, error) {
	if err := m.before(ctx, OpPut, key); err != nil {
		return 0, etcdstore.Done, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if o := m.check(key, rev); o != etcdstore.Done {
		return 0, o, nil
	}
	return m.write(key, value), etcdstore.Done, nil
}

func (m *memKV) Delete(ctx context.Context, key string, rev int64) (etcdstore.Outcome, error) {
	if err := m.before(ctx, OpDelete, key); err != nil {
		return etcdstore.Done, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if o := m.check(key, max(rev, 0)); o != etcdstore.Done {
		return o, nil
	}
	m.remove(key)
	return etcdstore.Done, nil
}

func (m *memKV) List(ctx context.Context, prefix string, fn func(etcdstore.KeyValue) error) error {
	if err := m.before(ctx, OpList, prefix); err != nil {
		return err
	}
	m.mu.Lock()
	var snapshot []etcdstore.KeyValue
	for k, e := range m.data {
		if strings.HasPrefix(k, prefix) {
			snapshot = append(snapshot, etcdstore.KeyValue{Key: k, Value: bytes.Clone(e.value), ModRevision: e.mod})
		}
	}
	m.mu.Unlock()
	slices.SortFunc(snapshot, func(a, b etcdstore.KeyValue) int { return strings.Compare(a.Key, b.Key) })
	for _, kv := range snapshot {
		if err := fn(kv); err != nil {
			return err
		}
	}
	return nil
}
