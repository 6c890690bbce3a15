package memstore_test

import (
	"testing"

	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/memstore"
	"github.com/opencalico/calicoctl/internal/ipam/storetest"
)

func TestConformance(t *testing.T) {
	storetest.RunStoreConformance(t, func(testing.TB) ipam.Store { return memstore.New() })
}

type raw struct{ s *memstore.Store }

func (r raw) Put(_ testing.TB, key string, value []byte) { r.s.PutRaw(key, value) }

func (r raw) Get(t testing.TB, key string) []byte {
	t.Helper()
	v, ok := r.s.GetRaw(key)
	if !ok {
		t.Fatalf("%s is not stored", key)
	}
	return v
}

func TestGolden(t *testing.T) {
	s := memstore.New()
	storetest.RunEtcdGolden(t, s, raw{s})
}

func TestWatchConformance(t *testing.T) {
	storetest.RunWatchConformance(t, func(testing.TB) ipam.Store { return memstore.New() },
		func(t testing.TB, s ipam.Store) {
			m := s.(*memstore.Store)
			if err := m.Compact(m.Revision()); err != nil {
				t.Fatal(err)
			}
		})
}
