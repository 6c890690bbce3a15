package ipamstore

import (
	"context"
	"errors"
	"testing"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/datastore/etcd"
	"github.com/opencalico/calicoctl/datastore/kubernetes"
	"github.com/opencalico/calicoctl/internal/etcdserver"
	"github.com/opencalico/calicoctl/internal/ipam/etcdstore"
)

// other is a datastore with no IPAM store.
type other struct{ datastore.Interface }

func TestOpenRejects(t *testing.T) {
	tests := []struct {
		name string
		ds   datastore.Interface
	}{
		{"nil", nil},
		{"unknown backend", other{}},
		{"nil etcd backend", (*etcd.Backend)(nil)},
		{"nil kubernetes backend", (*kubernetes.Backend)(nil)},
	}
	for _, tc := range tests {
		s, err := Open(tc.ds)
		if s != nil || !errors.Is(err, ErrUnsupportedDatastore) {
			t.Errorf("%s: Open = %v, %v; want ErrUnsupportedDatastore", tc.name, s, err)
		}
	}
}

func TestOpenEtcd(t *testing.T) {
	srv := etcdserver.StartForTest(t)
	b, err := etcd.New(context.Background(), etcd.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	// The backend itself, and the backend behind a wrapper (the CLI's
	// fail-fast writer): the store is found by capability.
	for _, ds := range []datastore.Interface{b, datastore.FailFast(b)} {
		s, err := Open(ds)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.(*etcdstore.Store); !ok {
			t.Fatalf("Open(%T) = %T, want *etcdstore.Store", ds, s)
		}
		if _, err := s.GetConfig(context.Background()); err != nil {
			t.Errorf("store does not reach etcd: %v", err)
		}
	}
}
