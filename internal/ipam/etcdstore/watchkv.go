package etcdstore

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/ipam"
)

// KVEvent is one change under a watched prefix.
type KVEvent struct {
	// Key is the changed key.
	Key string
	// Deleted is set for a delete; Value is then the previous value (nil
	// when it was compacted away).
	Deleted bool
	// Created is set for the put that created the key.
	Created bool
	Value   []byte
	// ModRevision is the revision of the change.
	ModRevision int64
	// Err ends the stream (wrapping ipam.ErrWatchExpired after compaction,
	// datastore.ErrUnavailable after a lost connection).
	Err error
}

// WatchKV is a KV that can be followed: list at a revision, then watch
// from it. The etcd KV and memstore's implement it.
type WatchKV interface {
	KV
	// ListRevision is List over several prefixes, all read at one revision,
	// which it returns.
	ListRevision(ctx context.Context, prefixes []string, fn func(KeyValue) error) (int64, error)
	// Watch streams the changes under prefix made after rev, in revision
	// order. The channel is closed when ctx ends or after an event with Err.
	Watch(ctx context.Context, prefix string, rev int64) <-chan KVEvent
}

var _ WatchKV = (*etcdKV)(nil)

// errCompacted is an expired watch revision as the store reports it.
func errCompacted(prefix string, rev, oldest int64, cause error) error {
	return fmt.Errorf("watch %s after revision %d (oldest available %d): %w: %w", prefix, rev, oldest, ipam.ErrWatchExpired, cause)
}

func (e *etcdKV) Watch(ctx context.Context, prefix string, rev int64) <-chan KVEvent {
	out := make(chan KVEvent, 64)
	// WithRequireLeader: a member cut off from its cluster ends the watch
	// instead of silently serving nothing.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	wch := e.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithRev(rev+1))
	go func() {
		defer close(out)
		defer cancel()
		send := func(ev KVEvent) bool {
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			var resp clientv3.WatchResponse
			var ok bool
			select {
			case <-ctx.Done():
				return
			case resp, ok = <-wch:
			}
			switch {
			case ctx.Err() != nil:
				return
			case !ok:
				send(KVEvent{Err: fmt.Errorf("etcd watch %s closed: %w", prefix, datastore.ErrUnavailable)})
				return
			case resp.CompactRevision != 0:
				send(KVEvent{Err: errCompacted(prefix, rev, resp.CompactRevision, rpctypes.ErrCompacted)})
				return
			case resp.Err() != nil:
				err := resp.Err()
				if errors.Is(err, rpctypes.ErrCompacted) {
					err = errCompacted(prefix, rev, 0, err)
				} else {
					err = fmt.Errorf("etcd watch %s: %w: %w", prefix, datastore.ErrUnavailable, err)
				}
				send(KVEvent{Err: err})
				return
			}
			for _, ev := range resp.Events {
				kev := KVEvent{Key: string(ev.Kv.Key), ModRevision: ev.Kv.ModRevision, Value: ev.Kv.Value, Created: ev.IsCreate()}
				if ev.Type == mvccpb.DELETE {
					kev.Deleted, kev.Created, kev.Value = true, false, nil
					if ev.PrevKv != nil {
						kev.Value = ev.PrevKv.Value
					}
				}
				if !send(kev) {
					return
				}
				rev = ev.Kv.ModRevision
			}
		}
	}()
	return out
}
