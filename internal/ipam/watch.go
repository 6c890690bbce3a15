package ipam

import (
	"context"
	"errors"

	"github.com/opencalico/calicoctl/datastore"
)

// ErrWatchExpired is wrapped by the Err of a watch's Error event when the
// revision it resumes from is no longer available (etcd compaction, a
// Kubernetes 410 Gone): the caller must list again.
var ErrWatchExpired = errors.New("watch revision expired")

// WatchEvent is one change seen by a BlockWatcher: Added or Modified carry
// the new state, Deleted the last state known (at least the identity:
// a block's CIDR, an affinity's host and CIDR), Error ends the stream.
type WatchEvent[T any] struct {
	Type   datastore.EventType
	Object T
	// Revision is the datastore revision of the change.
	Revision string
	// Err is set for Type Error.
	Err error
}

// BlockEvent is a change to one IPAM block.
type BlockEvent = WatchEvent[*Block]

// AffinityEvent is a change to one block affinity.
type AffinityEvent = WatchEvent[*Affinity]

// BlockStreamer is the optional BlockWatcher capability to list blocks one
// at a time, so that a caller that keeps only part of each block (the node
// agent's model) never holds every decoded block at once. The etcd and
// Kubernetes stores implement it.
type BlockStreamer interface {
	// EachBlockRevision calls fn with every block, at one revision, and
	// returns that revision. fn must not keep the block beyond the call
	// if it wants the memory back.
	EachBlockRevision(ctx context.Context, fn func(*Block)) (string, error)
}

// BlockWatcher is the optional Store capability to follow blocks and
// affinities: list once, then watch from the list's revision (client-go's
// Reflector pattern). The etcd, Kubernetes and in-memory stores implement it.
//
// A watch's channel is closed when ctx ends or the watch fails; a failure
// (lost connection, an expired revision) is reported first as an event of
// Type Error, after which the caller lists again.
type BlockWatcher interface {
	// ListBlocksRevision lists every block and returns the revision the
	// list was read at.
	ListBlocksRevision(ctx context.Context) ([]*Block, string, error)
	// WatchBlocks streams block changes made after revision.
	WatchBlocks(ctx context.Context, revision string) (<-chan BlockEvent, error)
	// ListAffinitiesRevision lists every affinity (host and virtual) and
	// returns the revision the list was read at.
	ListAffinitiesRevision(ctx context.Context) ([]*Affinity, string, error)
	// WatchAffinities streams affinity changes made after revision.
	WatchAffinities(ctx context.Context, revision string) (<-chan AffinityEvent, error)
}
