package etcd

import (
	"context"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/opencalico/calicoctl/resources"
)

// Bulk-create tuning: etcd accepts at most 128 operations per txn branch and
// 1.5 MiB per request by default.
const (
	batchMaxItems = 100
	batchMaxBytes = 1 << 20
	batchWorkers  = 4
)

type batchItem struct {
	index int
	kind  *resources.Kind
	key   resources.Key
	ek    string
	value []byte
}

// CreateMany creates many objects quickly: up to batchMaxItems puts per txn,
// each guarded by the key not existing, run by a few concurrent workers. A
// txn whose guard fails (some key exists) is redone item by item, so the
// results are exactly those of calling Create for each item. When the input
// names one key twice, the first occurrence is created and the later ones get
// ErrExists.
func (b *Backend) CreateMany(ctx context.Context, rs []resources.Resource) ([]resources.Resource, []error) {
	out := make([]resources.Resource, len(rs))
	errs := make([]error, len(rs))
	var (
		chunks  [][]batchItem
		cur     []batchItem
		curSize int
		repeats []batchItem
		seen    = make(map[string]bool, len(rs))
	)
	flush := func() {
		if len(cur) > 0 {
			chunks = append(chunks, cur)
		}
		cur, curSize = nil, 0
	}
	for i, r := range rs {
		k, key, ek, err := b.target(r)
		if err == nil {
			var value []byte
			if value, err = encode(k, r); err == nil {
				it := batchItem{index: i, kind: k, key: key, ek: ek, value: value}
				if seen[ek] {
					repeats = append(repeats, it)
					continue
				}
				seen[ek] = true
				if len(cur) == batchMaxItems || (len(cur) > 0 && curSize+len(value) > batchMaxBytes) {
					flush()
				}
				cur = append(cur, it)
				curSize += len(value)
				continue
			}
		}
		errs[i] = err
	}
	flush()

	work := make(chan []batchItem)
	var wg sync.WaitGroup
	for range min(batchWorkers, len(chunks)) {
		wg.Go(func() {
			for c := range work {
				b.createChunk(ctx, c, out, errs)
			}
		})
	}
	for _, c := range chunks {
		work <- c
	}
	close(work)
	wg.Wait()
	// Repeated keys go last so that the first occurrence wins.
	for _, it := range repeats {
		out[it.index], errs[it.index] = b.create(ctx, it.kind, it.key, it.ek, it.value)
	}
	return out, errs
}

// createChunk writes one chunk in a single txn, falling back to one txn per
// item when any guard fails or the txn is refused (too many ops, too large).
func (b *Backend) createChunk(ctx context.Context, chunk []batchItem, out []resources.Resource, errs []error) {
	cmps := make([]clientv3.Cmp, len(chunk))
	ops := make([]clientv3.Op, len(chunk))
	for i, it := range chunk {
		cmps[i] = clientv3.Compare(clientv3.Version(it.ek), "=", 0)
		ops[i] = clientv3.OpPut(it.ek, string(it.value))
	}
	resp, err := b.client.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err == nil && resp.Succeeded {
		for _, it := range chunk {
			out[it.index], errs[it.index] = decode(it.kind, it.ek, it.value, resp.Header.Revision)
		}
		return
	}
	for _, it := range chunk {
		out[it.index], errs[it.index] = b.create(ctx, it.kind, it.key, it.ek, it.value)
	}
}
