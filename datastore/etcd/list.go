package etcd

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

// continueToken is the opaque ListResult.Continue: where the next page
// starts and the revision every page is read at.
type continueToken struct {
	Rev int64  `json:"rev"`
	Key string `json:"key"`
}

func (t continueToken) encode() string {
	data, _ := json.Marshal(t) // a struct of an int and a string always marshals
	return base64.RawURLEncoding.EncodeToString(data)
}

func decodeContinue(s, prefix, end string) (continueToken, error) {
	var t continueToken
	data, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(data, &t)
	}
	if err == nil && (t.Rev <= 0 || t.Key < prefix || (end != "\x00" && t.Key >= end)) {
		err = errors.New("token does not belong to this list")
	}
	if err != nil {
		return continueToken{}, fmt.Errorf("etcd: invalid continue token: %w", err)
	}
	return t, nil
}

// List reads the objects of one kind at one consistent revision, in pages of
// Config.PageSize keys. With opts.Limit it returns at most that many items
// and a Continue token for the rest, read at the same revision.
func (b *Backend) List(ctx context.Context, opts datastore.ListOptions) (*datastore.ListResult, error) {
	k, err := kindOf(opts.Kind)
	if err != nil {
		return nil, err
	}
	listKey := resources.Key{Kind: k.Kind, Namespace: opts.Namespace, Name: opts.NamePrefix + "*"}
	prefix := kindPrefix(k)
	nameFilter := ""
	switch {
	case k.Namespaced && opts.Namespace != "":
		prefix += opts.Namespace + "/" + opts.NamePrefix
	case k.Namespaced:
		// Names come after the namespace in the key: filter them here.
		nameFilter = opts.NamePrefix
	default:
		listKey.Namespace = ""
		prefix += opts.NamePrefix
	}
	end := clientv3.GetPrefixRangeEnd(prefix)
	start, rev := prefix, int64(0)
	if opts.Revision != "" {
		if rev, err = strconv.ParseInt(opts.Revision, 10, 64); err != nil || rev < 0 {
			return nil, fmt.Errorf("etcd: invalid list revision %q", opts.Revision)
		}
	}
	if opts.Continue != "" {
		t, err := decodeContinue(opts.Continue, prefix, end)
		if err != nil {
			return nil, err
		}
		start, rev = t.Key, t.Rev
	}

	res := &datastore.ListResult{Items: []resources.Resource{}}
	for {
		page := b.pageSize
		if opts.Limit > 0 {
			page = min(page, opts.Limit-int64(len(res.Items)))
		}
		resp, err := b.client.Get(ctx, start, clientv3.WithRange(end), clientv3.WithLimit(page), clientv3.WithRev(rev))
		if err != nil {
			return nil, b.opError("list", listKey, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			key := string(kv.Key)
			ns, name, ok := keyFromEtcd(k, key)
			if !ok {
				continue // a deeper key that is not one of ours
			}
			if nameFilter != "" && !strings.HasPrefix(name, nameFilter) {
				continue
			}
			r, err := decode(k, key, kv.Value, kv.ModRevision)
			if err != nil {
				b.log.Warn("skipping undecodable stored resource", "key", key, "namespace", ns, "err", err)
				continue
			}
			res.Items = append(res.Items, r)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		if opts.Limit > 0 && int64(len(res.Items)) >= opts.Limit {
			res.Continue = continueToken{Rev: rev, Key: start}.encode()
			break
		}
	}
	res.Revision = strconv.FormatInt(rev, 10)
	return res, nil
}

// Watch streams the changes of one kind (optionally one namespace) made
// after opts.Revision, or from now when it is empty. Compaction past the
// requested revision and a lost connection end the stream with an Error
// event; the channel closes when ctx ends.
func (b *Backend) Watch(ctx context.Context, opts datastore.WatchOptions) (<-chan datastore.Event, error) {
	k, err := kindOf(opts.Kind)
	if err != nil {
		return nil, err
	}
	prefix := kindPrefix(k)
	if k.Namespaced && opts.Namespace != "" {
		prefix += opts.Namespace + "/"
	}
	wopts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithPrevKV()}
	if opts.Revision != "" {
		rev, err := strconv.ParseInt(opts.Revision, 10, 64)
		if err != nil || rev < 0 {
			return nil, fmt.Errorf("etcd: invalid watch revision %q", opts.Revision)
		}
		wopts = append(wopts, clientv3.WithRev(rev+1))
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	wch := b.client.Watch(wctx, prefix, wopts...)
	out := make(chan datastore.Event, 64)
	go func() {
		defer close(out)
		defer cancel()
		send := func(ev datastore.Event) bool {
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		fail := func(err error) {
			send(datastore.Event{Type: datastore.Error, Err: err})
		}
		for {
			var wresp clientv3.WatchResponse
			var ok bool
			select {
			case <-ctx.Done():
				return
			case wresp, ok = <-wch:
			}
			switch {
			case !ok:
				if ctx.Err() == nil {
					fail(&datastore.KeyError{Err: datastore.ErrUnavailable, Key: resources.Key{Kind: k.Kind},
						Cause: fmt.Errorf("etcd watch at %s closed", b.endpoints)})
				}
				return
			case wresp.CompactRevision != 0:
				fail(fmt.Errorf("etcd watch %s from revision %s: %w (oldest available %d)",
					k.Kind, opts.Revision, rpctypes.ErrCompacted, wresp.CompactRevision))
				return
			case wresp.Err() != nil:
				if ctx.Err() == nil {
					fail(b.opError("watch", resources.Key{Kind: k.Kind}, wresp.Err()))
				}
				return
			}
			for _, ev := range wresp.Events {
				dev, ok := b.convertEvent(k, ev)
				if !ok {
					continue
				}
				if !send(dev) {
					return
				}
			}
		}
	}()
	return out, nil
}

func (b *Backend) convertEvent(k *resources.Kind, ev *clientv3.Event) (datastore.Event, bool) {
	key := string(ev.Kv.Key)
	ns, name, ok := keyFromEtcd(k, key)
	if !ok {
		return datastore.Event{}, false
	}
	out := datastore.Event{Revision: strconv.FormatInt(ev.Kv.ModRevision, 10)}
	var err error
	switch {
	case ev.Type == mvccpb.DELETE:
		out.Type = datastore.Deleted
		if ev.PrevKv != nil {
			out.Object, err = decode(k, key, ev.PrevKv.Value, ev.PrevKv.ModRevision)
		} else {
			// The previous value is gone (compacted): report the identity only.
			r := k.New()
			r.SetName(name)
			if k.Namespaced {
				r.SetNamespace(ns)
			}
			r.SetResourceVersion(out.Revision)
			out.Object = r
		}
	case ev.IsCreate():
		out.Type = datastore.Added
		out.Object, err = decode(k, key, ev.Kv.Value, ev.Kv.ModRevision)
	default:
		out.Type = datastore.Modified
		out.Object, err = decode(k, key, ev.Kv.Value, ev.Kv.ModRevision)
	}
	if err != nil {
		b.log.Warn("skipping undecodable watch event", "key", key, "err", err)
		return datastore.Event{}, false
	}
	return out, true
}
