// Package ipam is Calico's block IP address allocator: pools are cut into
// blocks (default /26, /122), blocks are affine to hosts, addresses are
// allocated from a node's affine blocks (or borrowed), and every write is a
// compare-and-swap on the object's revision so concurrent allocators never
// hand out the same address or lose an allocation.
//
// Storage goes through Store, a narrow interface with one implementation per
// datastore (upstream's etcd keys under /calico/ipam/v2/, or the
// crd.projectcalico.org IPAM CRDs on Kubernetes).
package ipam

import (
	"context"
	"net/netip"
)

// Store persists IPAM objects with revisions. Implementations return errors
// wrapping datastore.ErrNotFound, datastore.ErrExists and datastore.ErrConflict.
type Store interface {
	// Blocks.
	GetBlock(ctx context.Context, cidr netip.Prefix) (*Block, error)
	ListBlocks(ctx context.Context) ([]*Block, error)
	// CreateBlock fails with ErrExists when the block exists.
	CreateBlock(ctx context.Context, b *Block) (*Block, error)
	// UpdateBlock is a compare-and-swap on b.Revision.
	UpdateBlock(ctx context.Context, b *Block) (*Block, error)
	// DeleteBlock is guarded by b.Revision.
	DeleteBlock(ctx context.Context, b *Block) error

	// Block affinities (host:<node> or virtual:<name> owners).
	GetAffinity(ctx context.Context, host string, cidr netip.Prefix) (*Affinity, error)
	// ListAffinities lists one host's affinities (host "" = every host).
	ListAffinities(ctx context.Context, host string) ([]*Affinity, error)
	CreateAffinity(ctx context.Context, a *Affinity) (*Affinity, error)
	UpdateAffinity(ctx context.Context, a *Affinity) (*Affinity, error)
	DeleteAffinity(ctx context.Context, a *Affinity) error

	// Handles.
	GetHandle(ctx context.Context, id string) (*Handle, error)
	ListHandles(ctx context.Context) ([]*Handle, error)
	CreateHandle(ctx context.Context, h *Handle) (*Handle, error)
	UpdateHandle(ctx context.Context, h *Handle) (*Handle, error)
	DeleteHandle(ctx context.Context, h *Handle) error

	// Configuration (a missing config reads as DefaultConfig with Revision "").
	GetConfig(ctx context.Context) (*Config, error)
	// SetConfig creates (Revision "") or compare-and-swaps the config.
	SetConfig(ctx context.Context, c *Config) (*Config, error)
}
