package etcdstore

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// KeyValue is one stored key.
type KeyValue struct {
	Key   string
	Value []byte
	// ModRevision is the revision of the key's last write (never 0).
	ModRevision int64
}

// Outcome says why a conditional write did or did not happen.
type Outcome int

// Outcomes of KV.Put and KV.Delete.
const (
	Done    Outcome = iota // the write happened
	Missing                // the key does not exist
	Present                // a create found the key
	Stale                  // the key's ModRevision differs from the one given
)

// Put modes besides a positive revision.
const (
	// CreateOnly makes Put fail with Present when the key exists.
	CreateOnly int64 = -1
	// MustExist makes Put fail with Missing when the key does not exist.
	MustExist int64 = 0
)

// KV is the part of etcd's API the store needs. The etcd client implements
// it (NewKV); memstore implements it in memory with the same semantics.
type KV interface {
	// Get reads keys at one revision; an absent key gives a nil entry.
	Get(ctx context.Context, keys ...string) ([]*KeyValue, error)
	// Put writes value and returns the new ModRevision. rev is CreateOnly,
	// MustExist, or the ModRevision the key must still have.
	Put(ctx context.Context, key string, value []byte, rev int64) (int64, Outcome, error)
	// Delete removes key; rev 0 deletes whatever is there, rev > 0 only
	// that revision.
	Delete(ctx context.Context, key string, rev int64) (Outcome, error)
	// List calls fn for every key under prefix, in key order, all read at
	// one revision.
	List(ctx context.Context, prefix string, fn func(KeyValue) error) error
}

// DefaultPageSize is how many keys one range read returns (etcd counts the
// rest of the range on every page, so small pages make big lists quadratic).
const DefaultPageSize = 5000

type etcdKV struct {
	cli      *clientv3.Client
	pageSize int64
}

// NewKV adapts an etcd client; pageSize <= 0 means DefaultPageSize.
func NewKV(cli *clientv3.Client, pageSize int64) KV {
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	return &etcdKV{cli: cli, pageSize: pageSize}
}

func (e *etcdKV) Get(ctx context.Context, keys ...string) ([]*KeyValue, error) {
	ops := make([]clientv3.Op, len(keys))
	for i, k := range keys {
		ops[i] = clientv3.OpGet(k)
	}
	// One transaction reads every key at the same revision.
	resp, err := e.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, fmt.Errorf("etcd get %v: %w", keys, err)
	}
	out := make([]*KeyValue, len(keys))
	for i, r := range resp.Responses {
		if kvs := r.GetResponseRange().GetKvs(); len(kvs) > 0 {
			out[i] = &KeyValue{Key: string(kvs[0].Key), Value: kvs[0].Value, ModRevision: kvs[0].ModRevision}
		}
	}
	return out, nil
}

func (e *etcdKV) Put(ctx context.Context, key string, value []byte, rev int64) (int64, Outcome, error) {
	var cond clientv3.Cmp
	switch {
	case rev == CreateOnly:
		cond = clientv3.Compare(clientv3.Version(key), "=", 0)
	case rev == MustExist:
		cond = clientv3.Compare(clientv3.Version(key), ">", 0)
	default:
		cond = clientv3.Compare(clientv3.ModRevision(key), "=", rev)
	}
	resp, err := e.cli.Txn(ctx).If(cond).
		Then(clientv3.OpPut(key, string(value))).
		Else(clientv3.OpGet(key, clientv3.WithCountOnly())).Commit()
	if err != nil {
		return 0, Done, fmt.Errorf("etcd put %s: %w", key, err)
	}
	if resp.Succeeded {
		return resp.Header.Revision, Done, nil
	}
	return 0, failure(rev, resp), nil
}

// failure explains a failed guarded transaction whose Else branch counted
// the key.
func failure(rev int64, resp *clientv3.TxnResponse) Outcome {
	exists := resp.Responses[0].GetResponseRange().GetCount() > 0
	switch {
	case !exists:
		return Missing
	case rev == CreateOnly:
		return Present
	default:
		return Stale
	}
}

func (e *etcdKV) Delete(ctx context.Context, key string, rev int64) (Outcome, error) {
	if rev <= 0 {
		resp, err := e.cli.Delete(ctx, key)
		if err != nil {
			return Done, fmt.Errorf("etcd delete %s: %w", key, err)
		}
		if resp.Deleted == 0 {
			return Missing, nil
		}
		return Done, nil
	}
	resp, err := e.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpDelete(key)).
		Else(clientv3.OpGet(key, clientv3.WithCountOnly())).Commit()
	if err != nil {
		return Done, fmt.Errorf("etcd delete %s: %w", key, err)
	}
	if resp.Succeeded {
		return Done, nil
	}
	return failure(rev, resp), nil
}

func (e *etcdKV) List(ctx context.Context, prefix string, fn func(KeyValue) error) error {
	_, err := e.ListRevision(ctx, []string{prefix}, fn)
	return err
}

func (e *etcdKV) ListRevision(ctx context.Context, prefixes []string, fn func(KeyValue) error) (int64, error) {
	rev := int64(0)
	for _, prefix := range prefixes {
		end := clientv3.GetPrefixRangeEnd(prefix)
		start := prefix
		for {
			opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(e.pageSize)}
			if rev > 0 {
				opts = append(opts, clientv3.WithRev(rev))
			}
			resp, err := e.cli.Get(ctx, start, opts...)
			if err != nil {
				return 0, fmt.Errorf("etcd list %s: %w", prefix, err)
			}
			if rev == 0 {
				// Later pages and prefixes are read at the first page's revision.
				rev = resp.Header.Revision
			}
			for _, kv := range resp.Kvs {
				if err := fn(KeyValue{Key: string(kv.Key), Value: kv.Value, ModRevision: kv.ModRevision}); err != nil {
					return 0, err
				}
			}
			if !resp.More || len(resp.Kvs) == 0 {
				break
			}
			start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
	}
	return rev, nil
}
