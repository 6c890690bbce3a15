// Package etcdstore keeps IPAM objects in etcd under upstream Calico's keys
// (/calico/ipam/v2/...) and JSON values, so this allocator and upstream's
// share a cluster. Every write is a transaction guarded on the key's
// ModRevision, which is also the object's Revision (in decimal).
package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/resources"
)

// Store implements ipam.Store on a KV (etcd, or memstore's in-memory one).
type Store struct {
	kv       KV
	log      *slog.Logger
	pageSize int64
}

var _ ipam.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithLogger sets where warnings about undecodable stored values go
// (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// WithPageSize sets how many keys one etcd range read returns (default
// DefaultPageSize). It only affects New.
func WithPageSize(n int64) Option { return func(s *Store) { s.pageSize = n } }

// New returns a store on an etcd client, e.g. (*etcd.Backend).Client().
func New(cli *clientv3.Client, opts ...Option) *Store {
	s := newStore(opts)
	s.kv = NewKV(cli, s.pageSize)
	return s
}

// NewWithKV returns a store on any KV with etcd's semantics.
func NewWithKV(kv KV, opts ...Option) *Store {
	s := newStore(opts)
	s.kv = kv
	return s
}

func newStore(opts []Option) *Store {
	s := &Store{log: slog.Default()}
	for _, o := range opts {
		o(s)
	}
	return s
}

func formatRevision(rev int64) string { return strconv.FormatInt(rev, 10) }

// guard turns an object's Revision into a KV guard: "" is none (none), else
// the ModRevision it was read at.
func guard(revision string, none int64, key resources.Key) (int64, error) {
	if revision == "" {
		return none, nil
	}
	rev, err := strconv.ParseInt(revision, 10, 64)
	if err != nil || rev <= 0 {
		return 0, datastore.Conflict(key, fmt.Sprintf("invalid revision %q", revision))
	}
	return rev, nil
}

func outcomeError(o Outcome, key resources.Key) error {
	switch o {
	case Done:
		return nil
	case Missing:
		return datastore.NotFound(key)
	case Present:
		return datastore.Exists(key)
	default:
		return datastore.Conflict(key, "")
	}
}

// put writes value under key: a create when create is set, else a
// compare-and-swap on revision ("" = the key must exist).
func (s *Store) put(ctx context.Context, key string, value []byte, create bool, revision string, rk resources.Key) (string, error) {
	mode := CreateOnly
	if !create {
		var err error
		if mode, err = guard(revision, MustExist, rk); err != nil {
			return "", err
		}
	}
	rev, out, err := s.kv.Put(ctx, key, value, mode)
	if err != nil {
		return "", fmt.Errorf("write %s: %w", rk, err)
	}
	if err := outcomeError(out, rk); err != nil {
		return "", err
	}
	return formatRevision(rev), nil
}

// del deletes key, guarded by revision ("" = unguarded).
func (s *Store) del(ctx context.Context, key, revision string, rk resources.Key) error {
	rev, err := guard(revision, 0, rk)
	if err != nil {
		return err
	}
	out, err := s.kv.Delete(ctx, key, rev)
	if err != nil {
		return fmt.Errorf("delete %s: %w", rk, err)
	}
	return outcomeError(out, rk)
}

// get reads one key; nil when absent.
func (s *Store) get(ctx context.Context, key string, rk resources.Key) (*KeyValue, error) {
	kvs, err := s.kv.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", rk, err)
	}
	return kvs[0], nil
}

func checkCIDR(cidr netip.Prefix) error {
	if !cidr.IsValid() {
		return fmt.Errorf("%w: invalid block CIDR", ipam.ErrInvalidValue)
	}
	return nil
}

// Blocks.

func (s *Store) GetBlock(ctx context.Context, cidr netip.Prefix) (*ipam.Block, error) {
	if err := checkCIDR(cidr); err != nil {
		return nil, err
	}
	rk := ipam.BlockResourceKey(cidr)
	kv, err := s.get(ctx, ipam.BlockKey(cidr), rk)
	if err != nil {
		return nil, err
	}
	if kv == nil {
		return nil, datastore.NotFound(rk)
	}
	return decodeBlock(kv.Value, formatRevision(kv.ModRevision), rk)
}

func decodeBlock(value []byte, revision string, rk resources.Key) (*ipam.Block, error) {
	b, err := ipam.DecodeBlock(value)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rk, err)
	}
	b.Revision = revision
	return b, nil
}

func (s *Store) ListBlocks(ctx context.Context) ([]*ipam.Block, error) {
	var out []*ipam.Block
	err := s.kv.List(ctx, ipam.BlockKeyPrefix, func(kv KeyValue) error {
		cidr, err := ipam.ParseBlockKey(kv.Key)
		if err == nil {
			var b *ipam.Block
			if b, err = decodeBlock(kv.Value, formatRevision(kv.ModRevision), ipam.BlockResourceKey(cidr)); err == nil {
				out = append(out, b)
				return nil
			}
		}
		s.log.Warn("skipping unreadable IPAM block", "key", kv.Key, "error", err)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list IPAM blocks: %w", err)
	}
	return out, nil
}

func (s *Store) writeBlock(ctx context.Context, b *ipam.Block, create bool) (*ipam.Block, error) {
	if b == nil {
		return nil, errors.New("ipam: nil block")
	}
	if err := checkCIDR(b.CIDR); err != nil {
		return nil, err
	}
	rk := ipam.BlockResourceKey(b.CIDR)
	data, err := ipam.EncodeBlock(b)
	if err != nil {
		return nil, err
	}
	rev, err := s.put(ctx, ipam.BlockKey(b.CIDR), data, create, b.Revision, rk)
	if err != nil {
		return nil, err
	}
	// Hand back exactly what a read returns (e.g. times cut to seconds).
	return decodeBlock(data, rev, rk)
}

func (s *Store) CreateBlock(ctx context.Context, b *ipam.Block) (*ipam.Block, error) {
	return s.writeBlock(ctx, b, true)
}

func (s *Store) UpdateBlock(ctx context.Context, b *ipam.Block) (*ipam.Block, error) {
	return s.writeBlock(ctx, b, false)
}

func (s *Store) DeleteBlock(ctx context.Context, b *ipam.Block) error {
	if b == nil {
		return errors.New("ipam: nil block")
	}
	if err := checkCIDR(b.CIDR); err != nil {
		return err
	}
	return s.del(ctx, ipam.BlockKey(b.CIDR), b.Revision, ipam.BlockResourceKey(b.CIDR))
}

// Affinities.

// GetAffinity returns host's affinity to cidr, of type host or, failing
// that, virtual (both are read in one transaction).
func (s *Store) GetAffinity(ctx context.Context, host string, cidr netip.Prefix) (*ipam.Affinity, error) {
	if err := ipam.CheckOwnerName("affinity host", host); err != nil {
		return nil, err
	}
	if err := checkCIDR(cidr); err != nil {
		return nil, err
	}
	rk := ipam.AffinityResourceKey(host, cidr)
	kvs, err := s.kv.Get(ctx, ipam.AffinityKey(host, cidr), ipam.AffinityKeyOfType(ipam.AffinityTypeVirtual, host, cidr))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", rk, err)
	}
	for _, kv := range kvs {
		if kv != nil {
			return decodeAffinity(kv)
		}
	}
	return nil, datastore.NotFound(rk)
}

func decodeAffinity(kv *KeyValue) (*ipam.Affinity, error) {
	a, err := ipam.DecodeAffinity(kv.Key, kv.Value)
	if err != nil {
		return nil, err
	}
	a.Revision = formatRevision(kv.ModRevision)
	return a, nil
}

// ListAffinities lists host's affinities of both types (host "" = every
// owner): host-type ones first, each type in key order.
func (s *Store) ListAffinities(ctx context.Context, host string) ([]*ipam.Affinity, error) {
	prefixes := []string{ipam.AffinityTypePrefix(ipam.AffinityTypeHost), ipam.AffinityTypePrefix(ipam.AffinityTypeVirtual)}
	if host != "" {
		if err := ipam.CheckOwnerName("affinity host", host); err != nil {
			return nil, err
		}
		prefixes = []string{ipam.AffinityHostPrefix(ipam.AffinityTypeHost, host), ipam.AffinityHostPrefix(ipam.AffinityTypeVirtual, host)}
	}
	var out []*ipam.Affinity
	for _, prefix := range prefixes {
		if err := s.kv.List(ctx, prefix, s.collectAffinities(&out)); err != nil {
			return nil, fmt.Errorf("list IPAM block affinities: %w", err)
		}
	}
	return out, nil
}

func affinityKey(a *ipam.Affinity) (string, resources.Key, error) {
	if a == nil {
		return "", resources.Key{}, errors.New("ipam: nil affinity")
	}
	if err := ipam.CheckOwnerName("affinity host", a.Host); err != nil {
		return "", resources.Key{}, err
	}
	if err := checkCIDR(a.CIDR); err != nil {
		return "", resources.Key{}, err
	}
	switch a.Type {
	case "", ipam.AffinityTypeHost, ipam.AffinityTypeVirtual:
	default:
		return "", resources.Key{}, fmt.Errorf("%w: affinity type %q", ipam.ErrInvalidValue, a.Type)
	}
	return ipam.AffinityKeyOfType(a.Type, a.Host, a.CIDR), ipam.AffinityResourceKey(a.Host, a.CIDR), nil
}

func (s *Store) writeAffinity(ctx context.Context, a *ipam.Affinity, create bool) (*ipam.Affinity, error) {
	key, rk, err := affinityKey(a)
	if err != nil {
		return nil, err
	}
	data, err := ipam.EncodeAffinity(a)
	if err != nil {
		return nil, err
	}
	rev, err := s.put(ctx, key, data, create, a.Revision, rk)
	if err != nil {
		return nil, err
	}
	out, err := ipam.DecodeAffinity(key, data)
	if err != nil {
		return nil, err
	}
	out.Revision = rev
	return out, nil
}

func (s *Store) CreateAffinity(ctx context.Context, a *ipam.Affinity) (*ipam.Affinity, error) {
	return s.writeAffinity(ctx, a, true)
}

func (s *Store) UpdateAffinity(ctx context.Context, a *ipam.Affinity) (*ipam.Affinity, error) {
	return s.writeAffinity(ctx, a, false)
}

func (s *Store) DeleteAffinity(ctx context.Context, a *ipam.Affinity) error {
	key, rk, err := affinityKey(a)
	if err != nil {
		return err
	}
	return s.del(ctx, key, a.Revision, rk)
}

// Handles.

func (s *Store) GetHandle(ctx context.Context, id string) (*ipam.Handle, error) {
	if err := ipam.CheckOwnerName("handle ID", id); err != nil {
		return nil, err
	}
	rk := ipam.HandleResourceKey(id)
	kv, err := s.get(ctx, ipam.HandleKey(id), rk)
	if err != nil {
		return nil, err
	}
	if kv == nil {
		return nil, datastore.NotFound(rk)
	}
	return decodeHandle(id, kv.Value, formatRevision(kv.ModRevision))
}

func decodeHandle(id string, value []byte, revision string) (*ipam.Handle, error) {
	h, err := ipam.DecodeHandle(id, value)
	if err != nil {
		return nil, err
	}
	h.Revision = revision
	return h, nil
}

func (s *Store) ListHandles(ctx context.Context) ([]*ipam.Handle, error) {
	var out []*ipam.Handle
	err := s.kv.List(ctx, ipam.HandleKeyPrefix, func(kv KeyValue) error {
		id, err := ipam.ParseHandleKey(kv.Key)
		if err == nil {
			var h *ipam.Handle
			if h, err = decodeHandle(id, kv.Value, formatRevision(kv.ModRevision)); err == nil {
				out = append(out, h)
				return nil
			}
		}
		s.log.Warn("skipping unreadable IPAM handle", "key", kv.Key, "error", err)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list IPAM handles: %w", err)
	}
	return out, nil
}

func (s *Store) writeHandle(ctx context.Context, h *ipam.Handle, create bool) (*ipam.Handle, error) {
	if h == nil {
		return nil, errors.New("ipam: nil handle")
	}
	if err := ipam.CheckOwnerName("handle ID", h.ID); err != nil {
		return nil, err
	}
	data, err := ipam.EncodeHandle(h)
	if err != nil {
		return nil, err
	}
	rev, err := s.put(ctx, ipam.HandleKey(h.ID), data, create, h.Revision, ipam.HandleResourceKey(h.ID))
	if err != nil {
		return nil, err
	}
	return decodeHandle(h.ID, data, rev)
}

func (s *Store) CreateHandle(ctx context.Context, h *ipam.Handle) (*ipam.Handle, error) {
	return s.writeHandle(ctx, h, true)
}

func (s *Store) UpdateHandle(ctx context.Context, h *ipam.Handle) (*ipam.Handle, error) {
	return s.writeHandle(ctx, h, false)
}

func (s *Store) DeleteHandle(ctx context.Context, h *ipam.Handle) error {
	if h == nil {
		return errors.New("ipam: nil handle")
	}
	if err := ipam.CheckOwnerName("handle ID", h.ID); err != nil {
		return err
	}
	return s.del(ctx, ipam.HandleKey(h.ID), h.Revision, ipam.HandleResourceKey(h.ID))
}

// Configuration.

// GetConfig reads /calico/ipam/v2/config; when it is absent the result is
// ipam.DefaultConfig() with Revision "".
func (s *Store) GetConfig(ctx context.Context) (*ipam.Config, error) {
	rk := ipam.ConfigResourceKey()
	kv, err := s.get(ctx, ipam.ConfigKey, rk)
	if err != nil {
		return nil, err
	}
	if kv == nil {
		return ipam.DefaultConfig(), nil
	}
	return decodeConfig(kv.Value, formatRevision(kv.ModRevision))
}

func decodeConfig(value []byte, revision string) (*ipam.Config, error) {
	c, err := ipam.DecodeConfig(value)
	if err != nil {
		return nil, err
	}
	c.Revision = revision
	return c, nil
}

// SetConfig creates the config when c.Revision is "" (ErrExists if one is
// stored) and otherwise compare-and-swaps it.
func (s *Store) SetConfig(ctx context.Context, c *ipam.Config) (*ipam.Config, error) {
	if c == nil {
		return nil, errors.New("ipam: nil config")
	}
	data, err := ipam.EncodeConfig(c)
	if err != nil {
		return nil, err
	}
	rev, err := s.put(ctx, ipam.ConfigKey, data, c.Revision == "", c.Revision, ipam.ConfigResourceKey())
	if err != nil {
		return nil, err
	}
	return decodeConfig(data, rev)
}

// collectAffinities returns a List callback that decodes each affinity into
// out, skipping (and logging) unreadable ones.
func (s *Store) collectAffinities(out *[]*ipam.Affinity) func(KeyValue) error {
	return func(kv KeyValue) error {
		a, err := decodeAffinity(&kv)
		if err != nil {
			s.log.Warn("skipping unreadable IPAM block affinity", "key", kv.Key, "error", err)
			return nil
		}
		*out = append(*out, a)
		return nil
	}
}
