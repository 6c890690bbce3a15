package etcdstore_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/opencalico/calicoctl/internal/etcdserver"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/etcdstore"
	"github.com/opencalico/calicoctl/internal/ipam/storetest"
)

func newClient(t *testing.T) *clientv3.Client {
	t.Helper()
	srv := etcdserver.StartForTest(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func TestConformance(t *testing.T) {
	cli := newClient(t)
	storetest.RunStoreConformance(t, func(t testing.TB) ipam.Store {
		// Every subtest starts from an empty IPAM tree on the shared server.
		if _, err := cli.Delete(context.Background(), ipam.IPAMKeyPrefix, clientv3.WithPrefix()); err != nil {
			t.Fatalf("wipe IPAM keys: %v", err)
		}
		// A page size of 2 makes every list span several range reads.
		return etcdstore.New(cli, etcdstore.WithPageSize(2))
	})
}

type raw struct{ cli *clientv3.Client }

func (r raw) Put(t testing.TB, key string, value []byte) {
	t.Helper()
	if _, err := r.cli.Put(context.Background(), key, string(value)); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func (r raw) Get(t testing.TB, key string) []byte {
	t.Helper()
	resp, err := r.cli.Get(context.Background(), key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get %s: %v (%d keys)", key, err, len(resp.Kvs))
	}
	return resp.Kvs[0].Value
}

func TestGolden(t *testing.T) {
	cli := newClient(t)
	storetest.RunEtcdGolden(t, etcdstore.New(cli), raw{cli})
}

func TestWatchConformance(t *testing.T) {
	cli := newClient(t)
	storetest.RunWatchConformance(t, func(t testing.TB) ipam.Store {
		if _, err := cli.Delete(context.Background(), ipam.IPAMKeyPrefix, clientv3.WithPrefix()); err != nil {
			t.Fatalf("wipe IPAM keys: %v", err)
		}
		return etcdstore.New(cli, etcdstore.WithPageSize(2))
	}, func(t testing.TB, _ ipam.Store) {
		resp, err := cli.Get(context.Background(), "compact-marker")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Compact(context.Background(), resp.Header.Revision); err != nil {
			t.Fatalf("compact: %v", err)
		}
	})
}
