package ipam_test

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"strconv"
	"sync"
	"testing"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/resources"
)

// fakeStore is a small in-memory ipam.Store with revisions, used until the
// shared memstore lands. Copies go through the real block codec.
type fakeStore struct {
	mu     sync.Mutex
	rev    int
	blocks map[netip.Prefix]*ipam.Block
	affs   map[string]*ipam.Affinity
	hdls   map[string]*ipam.Handle
	cfg    *ipam.Config
}

var _ ipam.Store = (*fakeStore)(nil)

func newFakeStore() *fakeStore {
	return &fakeStore{blocks: map[netip.Prefix]*ipam.Block{}, affs: map[string]*ipam.Affinity{}, hdls: map[string]*ipam.Handle{}}
}

func (s *fakeStore) next() string { s.rev++; return strconv.Itoa(s.rev) }

func copyBlock(b *ipam.Block) *ipam.Block {
	data, err := ipam.EncodeBlock(b)
	if err != nil {
		panic(err)
	}
	c, err := ipam.DecodeBlock(data)
	if err != nil {
		panic(err)
	}
	c.Revision = b.Revision
	return c
}

func bkey(c netip.Prefix) resources.Key { return resources.Key{Kind: "IPAMBlock", Name: c.String()} }

func (s *fakeStore) GetBlock(_ context.Context, cidr netip.Prefix) (*ipam.Block, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blocks[cidr]
	if !ok {
		return nil, datastore.NotFound(bkey(cidr))
	}
	return copyBlock(b), nil
}

func (s *fakeStore) ListBlocks(context.Context) ([]*ipam.Block, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*ipam.Block
	for _, b := range s.blocks {
		out = append(out, copyBlock(b))
	}
	return out, nil
}

func (s *fakeStore) CreateBlock(_ context.Context, b *ipam.Block) (*ipam.Block, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.blocks[b.CIDR]; ok {
		return nil, datastore.Exists(bkey(b.CIDR))
	}
	c := copyBlock(b)
	c.Revision = s.next()
	s.blocks[b.CIDR] = c
	return copyBlock(c), nil
}

func (s *fakeStore) UpdateBlock(_ context.Context, b *ipam.Block) (*ipam.Block, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.blocks[b.CIDR]
	if !ok {
		return nil, datastore.NotFound(bkey(b.CIDR))
	}
	if cur.Revision != b.Revision {
		return nil, datastore.Conflict(bkey(b.CIDR), "revision")
	}
	c := copyBlock(b)
	c.Revision = s.next()
	s.blocks[b.CIDR] = c
	return copyBlock(c), nil
}

func (s *fakeStore) DeleteBlock(_ context.Context, b *ipam.Block) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.blocks[b.CIDR]
	if !ok {
		return datastore.NotFound(bkey(b.CIDR))
	}
	if b.Revision != "" && cur.Revision != b.Revision {
		return datastore.Conflict(bkey(b.CIDR), "revision")
	}
	delete(s.blocks, b.CIDR)
	return nil
}

func akey(host string, c netip.Prefix) string { return host + "|" + c.String() }

func (s *fakeStore) GetAffinity(_ context.Context, host string, cidr netip.Prefix) (*ipam.Affinity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.affs[akey(host, cidr)]
	if !ok {
		return nil, datastore.NotFound(bkey(cidr))
	}
	c := *a
	return &c, nil
}

func (s *fakeStore) ListAffinities(_ context.Context, host string) ([]*ipam.Affinity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*ipam.Affinity
	for _, a := range s.affs {
		if host == "" || a.Host == host {
			c := *a
			out = append(out, &c)
		}
	}
	return out, nil
}

func (s *fakeStore) CreateAffinity(_ context.Context, a *ipam.Affinity) (*ipam.Affinity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := akey(a.Host, a.CIDR)
	if _, ok := s.affs[k]; ok {
		return nil, datastore.Exists(bkey(a.CIDR))
	}
	c := *a
	c.Revision = s.next()
	s.affs[k] = &c
	r := c
	return &r, nil
}

func (s *fakeStore) UpdateAffinity(_ context.Context, a *ipam.Affinity) (*ipam.Affinity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := akey(a.Host, a.CIDR)
	cur, ok := s.affs[k]
	if !ok {
		return nil, datastore.NotFound(bkey(a.CIDR))
	}
	if cur.Revision != a.Revision {
		return nil, datastore.Conflict(bkey(a.CIDR), "revision")
	}
	c := *a
	c.Revision = s.next()
	s.affs[k] = &c
	r := c
	return &r, nil
}

func (s *fakeStore) DeleteAffinity(_ context.Context, a *ipam.Affinity) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := akey(a.Host, a.CIDR)
	cur, ok := s.affs[k]
	if !ok {
		return datastore.NotFound(bkey(a.CIDR))
	}
	if a.Revision != "" && cur.Revision != a.Revision {
		return datastore.Conflict(bkey(a.CIDR), "revision")
	}
	delete(s.affs, k)
	return nil
}

func hkey(id string) resources.Key { return resources.Key{Kind: "IPAMHandle", Name: id} }

func copyHandle(h *ipam.Handle) *ipam.Handle {
	c := *h
	c.Block = maps.Clone(h.Block)
	return &c
}

func (s *fakeStore) GetHandle(_ context.Context, id string) (*ipam.Handle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.hdls[id]
	if !ok {
		return nil, datastore.NotFound(hkey(id))
	}
	return copyHandle(h), nil
}

func (s *fakeStore) ListHandles(context.Context) ([]*ipam.Handle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*ipam.Handle
	for _, h := range s.hdls {
		out = append(out, copyHandle(h))
	}
	return out, nil
}

func (s *fakeStore) CreateHandle(_ context.Context, h *ipam.Handle) (*ipam.Handle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.hdls[h.ID]; ok {
		return nil, datastore.Exists(hkey(h.ID))
	}
	c := copyHandle(h)
	c.Revision = s.next()
	s.hdls[h.ID] = c
	return copyHandle(c), nil
}

func (s *fakeStore) UpdateHandle(_ context.Context, h *ipam.Handle) (*ipam.Handle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.hdls[h.ID]
	if !ok {
		return nil, datastore.NotFound(hkey(h.ID))
	}
	if cur.Revision != h.Revision {
		return nil, datastore.Conflict(hkey(h.ID), "revision")
	}
	c := copyHandle(h)
	c.Revision = s.next()
	s.hdls[h.ID] = c
	return copyHandle(c), nil
}

func (s *fakeStore) DeleteHandle(_ context.Context, h *ipam.Handle) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.hdls[h.ID]
	if !ok {
		return datastore.NotFound(hkey(h.ID))
	}
	if h.Revision != "" && cur.Revision != h.Revision {
		return datastore.Conflict(hkey(h.ID), "revision")
	}
	delete(s.hdls, h.ID)
	return nil
}

func (s *fakeStore) GetConfig(context.Context) (*ipam.Config, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg == nil {
		return ipam.DefaultConfig(), nil
	}
	c := *s.cfg
	return &c, nil
}

func (s *fakeStore) SetConfig(_ context.Context, c *ipam.Config) (*ipam.Config, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := ""
	if s.cfg != nil {
		cur = s.cfg.Revision
	}
	if c.Revision != cur {
		return nil, fmt.Errorf("config: %w", datastore.ErrConflict)
	}
	n := *c
	n.Revision = s.next()
	s.cfg = &n
	r := n
	return &r, nil
}

func newMemStore() ipam.Store { return newFakeStore() }

func newEtcdStore(t testing.TB) ipam.Store {
	t.Skip("etcdstore not available yet")
	return nil
}
