package etcd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/opencalico/calicoctl/datastore"
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
// ErrExists. A created object's result is the given object itself, with its
// new resourceVersion.
//
// Every txn has the backend's request timeout. A txn that gets no answer is
// settled by re-reading its keys: the objects that landed are reported
// created, the others failed, or all of them ErrUnknownOutcome when the
// re-read fails too. After the first such failure the datastore is taken to
// be down and the items not yet sent fail at once (ErrUnavailable, naming
// the endpoint), so the call ends in bounded time.
func (b *Backend) CreateMany(ctx context.Context, rs []resources.Resource) ([]resources.Resource, []error) {
	out := make([]resources.Resource, len(rs))
	errs := make([]error, len(rs))
	br := &breaker{}
	// Chunks are encoded as they are sent: only the chunks in flight hold
	// their encoded values.
	work := make(chan []batchItem)
	var wg sync.WaitGroup
	for range batchWorkers {
		wg.Go(func() {
			for c := range work {
				b.createChunk(ctx, br, c, rs, out, errs)
			}
		})
	}
	var (
		cur     []batchItem
		curSize int
		repeats []batchItem
		seen    = make(map[string]bool, len(rs))
	)
	flush := func() {
		if len(cur) > 0 {
			work <- cur
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
	close(work)
	wg.Wait()
	// Repeated keys go last so that the first occurrence wins.
	for _, it := range repeats {
		b.createOne(ctx, br, it, out, errs)
	}
	return out, errs
}

// breaker remembers the first sign that the datastore is down during one
// bulk call.
type breaker struct {
	mu    sync.Mutex
	cause error
}

func (br *breaker) trip(err error) {
	br.mu.Lock()
	defer br.mu.Unlock()
	if br.cause == nil {
		br.cause = err
	}
}

func (br *breaker) tripped() error {
	br.mu.Lock()
	defer br.mu.Unlock()
	return br.cause
}

// notSent is the error for an item skipped because the datastore is down.
func (b *Backend) notSent(key resources.Key, cause error) error {
	return &datastore.KeyError{Err: datastore.ErrUnavailable, Key: key,
		Cause: fmt.Errorf("not written: etcd at %s stopped answering earlier in this call (%v)", b.endpoints, cause)}
}

// createOne creates one item unless the breaker has tripped, tripping it on
// an unavailable datastore.
func (b *Backend) createOne(ctx context.Context, br *breaker, it batchItem, out []resources.Resource, errs []error) {
	if cause := br.tripped(); cause != nil {
		errs[it.index] = b.notSent(it.key, cause)
		return
	}
	out[it.index], errs[it.index] = b.create(ctx, it.kind, it.key, it.ek, it.value)
	if err := errs[it.index]; errors.Is(err, datastore.ErrUnavailable) || errors.Is(err, datastore.ErrUnknownOutcome) {
		br.trip(rootCause(err))
	}
}

// rootCause strips the KeyError wrapping for use in another item's message.
func rootCause(err error) error {
	var ke *datastore.KeyError
	if errors.As(err, &ke) && ke.Cause != nil {
		return ke.Cause
	}
	return err
}

// createChunk writes one chunk in a single txn, falling back to one txn per
// item when any guard fails or the txn is refused (too many ops, too large).
func (b *Backend) createChunk(ctx context.Context, br *breaker, chunk []batchItem, in, out []resources.Resource, errs []error) {
	if cause := br.tripped(); cause != nil {
		for _, it := range chunk {
			errs[it.index] = b.notSent(it.key, cause)
		}
		return
	}
	cmps := make([]clientv3.Cmp, len(chunk))
	ops := make([]clientv3.Op, len(chunk))
	for i, it := range chunk {
		cmps[i] = clientv3.Compare(clientv3.Version(it.ek), "=", 0)
		ops[i] = clientv3.OpPut(it.ek, string(it.value))
	}
	rctx, cancel := b.request(ctx)
	resp, err := b.client.Txn(rctx).If(cmps...).Then(ops...).Commit()
	cancel()
	switch {
	case err == nil && resp.Succeeded:
		// The stored objects are the given ones: hand those back with their
		// revision rather than decode every value again.
		rv := strconv.FormatInt(resp.Header.Revision, 10)
		for _, it := range chunk {
			r := in[it.index]
			resources.SetTypeMeta(r)
			if !it.kind.Namespaced {
				r.SetNamespace("")
			}
			r.SetResourceVersion(rv)
			out[it.index] = r
		}
	case err == nil || !ambiguous(err):
		// Some key exists, or the txn was refused as too large: item by item.
		for _, it := range chunk {
			b.createOne(ctx, br, it, out, errs)
		}
	default:
		b.settleChunk(ctx, br, chunk, out, errs, err)
	}
}

// settleChunk learns the outcome of a chunk whose txn got no answer. The txn
// is atomic, so its objects landed together or not at all; each is checked
// anyway.
func (b *Backend) settleChunk(ctx context.Context, br *breaker, chunk []batchItem, out []resources.Resource, errs []error, txnErr error) {
	keys := make([]string, len(chunk))
	values := make([][]byte, len(chunk))
	for i, it := range chunk {
		keys[i], values[i] = it.ek, it.value
	}
	landed, rerr := b.settle(ctx, keys, values)
	if rerr != nil {
		br.trip(fmt.Errorf("%s", unwrapDeadline(txnErr, b.timeout)))
		for _, it := range chunk {
			errs[it.index] = b.unknownOutcome("create", it.key, txnErr, rerr)
		}
		return
	}
	for i, it := range chunk {
		if landed[i] != 0 {
			out[it.index], errs[it.index] = decode(it.kind, it.ek, it.value, landed[i])
			continue
		}
		errs[it.index] = b.opError("create", it.key, txnErr)
		br.trip(rootCause(errs[it.index]))
	}
}
