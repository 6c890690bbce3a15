package etcdstore

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/resources"
)

var _ ipam.BlockWatcher = (*Store)(nil)

// affinityPrefixes are the roots of both affinity types' keys.
func affinityPrefixes() []string {
	return []string{ipam.AffinityTypePrefix(ipam.AffinityTypeHost), ipam.AffinityTypePrefix(ipam.AffinityTypeVirtual)}
}

func (s *Store) watchKV(op string) (WatchKV, error) {
	w, ok := s.kv.(WatchKV)
	if !ok {
		return nil, &datastore.KeyError{Err: datastore.ErrNotSupported, Op: op, Key: resources.Key{Kind: ipam.KindIPAMBlock}}
	}
	return w, nil
}

func parseRevision(revision string) (int64, error) {
	rev, err := strconv.ParseInt(revision, 10, 64)
	if err != nil || rev < 0 {
		return 0, fmt.Errorf("%w: watch revision %q", ipam.ErrInvalidValue, revision)
	}
	return rev, nil
}

// ListBlocksRevision lists every block at one revision.
func (s *Store) ListBlocksRevision(ctx context.Context) ([]*ipam.Block, string, error) {
	var out []*ipam.Block
	rev, err := s.EachBlockRevision(ctx, func(b *ipam.Block) { out = append(out, b) })
	if err != nil {
		return nil, "", err
	}
	return out, rev, nil
}

// EachBlockRevision calls fn with every block, decoded one page at a time,
// at one revision (ipam.BlockStreamer).
func (s *Store) EachBlockRevision(ctx context.Context, fn func(*ipam.Block)) (string, error) {
	w, err := s.watchKV("watch")
	if err != nil {
		return "", err
	}
	rev, err := w.ListRevision(ctx, []string{ipam.BlockKeyPrefix}, func(kv KeyValue) error {
		if b, err := s.blockOf(kv.Key, kv.Value, kv.ModRevision); err == nil {
			fn(b)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("list IPAM blocks: %w", err)
	}
	return formatRevision(rev), nil
}

// blockOf decodes a block key's value (logging what it skips).
func (s *Store) blockOf(key string, value []byte, mod int64) (*ipam.Block, error) {
	cidr, err := ipam.ParseBlockKey(key)
	if err == nil {
		var b *ipam.Block
		if b, err = decodeBlock(value, formatRevision(mod), ipam.BlockResourceKey(cidr)); err == nil {
			return b, nil
		}
	}
	s.log.Warn("skipping unreadable IPAM block", "key", key, "error", err)
	return nil, err
}

// WatchBlocks follows the block keys after revision.
func (s *Store) WatchBlocks(ctx context.Context, revision string) (<-chan ipam.BlockEvent, error) {
	return watchKeys(s, ctx, revision, []string{ipam.BlockKeyPrefix}, func(ev KVEvent) (*ipam.Block, bool) {
		if ev.Deleted && ev.Value == nil {
			cidr, err := ipam.ParseBlockKey(ev.Key)
			if err != nil {
				return nil, false
			}
			// The previous value was compacted away: the identity is enough.
			return &ipam.Block{CIDR: cidr, Revision: formatRevision(ev.ModRevision)}, true
		}
		b, err := s.blockOf(ev.Key, ev.Value, ev.ModRevision)
		return b, err == nil
	})
}

// ListAffinitiesRevision lists every affinity of both types at one revision.
func (s *Store) ListAffinitiesRevision(ctx context.Context) ([]*ipam.Affinity, string, error) {
	w, err := s.watchKV("watch")
	if err != nil {
		return nil, "", err
	}
	var out []*ipam.Affinity
	rev, err := w.ListRevision(ctx, affinityPrefixes(), s.collectAffinities(&out))
	if err != nil {
		return nil, "", fmt.Errorf("list IPAM block affinities: %w", err)
	}
	return out, formatRevision(rev), nil
}

// WatchAffinities follows the affinity keys of both types after revision.
func (s *Store) WatchAffinities(ctx context.Context, revision string) (<-chan ipam.AffinityEvent, error) {
	return watchKeys(s, ctx, revision, affinityPrefixes(), func(ev KVEvent) (*ipam.Affinity, bool) {
		if ev.Deleted && ev.Value == nil {
			typ, host, cidr, err := ipam.ParseAffinityKey(ev.Key)
			if err != nil {
				return nil, false
			}
			return &ipam.Affinity{Host: host, Type: typ, CIDR: cidr, Revision: formatRevision(ev.ModRevision)}, true
		}
		a, err := decodeAffinity(&KeyValue{Key: ev.Key, Value: ev.Value, ModRevision: ev.ModRevision})
		if err != nil {
			s.log.Warn("skipping unreadable IPAM block affinity", "key", ev.Key, "error", err)
			return nil, false
		}
		return a, true
	})
}

// watchKeys merges the watches of several prefixes (disjoint keys, so
// per-key order is kept) into typed events; the first failure ends all.
func watchKeys[T any](s *Store, ctx context.Context, revision string, prefixes []string, decode func(KVEvent) (T, bool)) (<-chan ipam.WatchEvent[T], error) {
	w, err := s.watchKV("watch")
	if err != nil {
		return nil, err
	}
	rev, err := parseRevision(revision)
	if err != nil {
		return nil, err
	}
	out := make(chan ipam.WatchEvent[T], 64)
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var once sync.Once
	for _, prefix := range prefixes {
		in := w.Watch(wctx, prefix, rev)
		wg.Go(func() {
			for ev := range in {
				var wev ipam.WatchEvent[T]
				switch {
				case ev.Err != nil:
					once.Do(func() {
						select {
						case out <- ipam.WatchEvent[T]{Type: datastore.Error, Err: ev.Err}:
						case <-ctx.Done():
						}
						cancel()
					})
					return
				case ev.Deleted:
					wev.Type = datastore.Deleted
				case ev.Created:
					wev.Type = datastore.Added
				default:
					wev.Type = datastore.Modified
				}
				obj, ok := decode(ev)
				if !ok {
					continue
				}
				wev.Object, wev.Revision = obj, formatRevision(ev.ModRevision)
				select {
				case out <- wev:
				case <-wctx.Done():
					return
				}
			}
		})
	}
	go func() {
		wg.Wait()
		cancel()
		close(out)
	}()
	return out, nil
}

var _ ipam.BlockStreamer = (*Store)(nil)
