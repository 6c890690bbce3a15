// Package datastore defines the one narrow interface every Calico datastore
// backend implements (etcd v3, Kubernetes API), with revisions for optimistic
// concurrency and typed errors.
package datastore

import (
	"context"

	"github.com/opencalico/calicoctl/resources"
)

// Interface is a store of projectcalico.org/v3 resources.
//
// Revisions are opaque strings (etcd mod revision, Kubernetes resourceVersion)
// carried in each object's metadata.resourceVersion. Backends store objects as
// given: defaulting and validation belong to the caller.
type Interface interface {
	// Get returns the object at key, or an error wrapping ErrNotFound.
	Get(ctx context.Context, key resources.Key) (resources.Resource, error)
	// List returns the objects of one kind (optionally one namespace and a
	// name prefix). Backends read large lists in pages.
	List(ctx context.Context, opts ListOptions) (*ListResult, error)
	// Create stores a new object; the input must not carry a resourceVersion.
	// It fails with ErrExists when the key is taken.
	Create(ctx context.Context, r resources.Resource) (resources.Resource, error)
	// Update replaces an object whose resourceVersion must equal the stored one;
	// otherwise it fails with ErrConflict (or ErrNotFound if it is gone).
	Update(ctx context.Context, r resources.Resource) (resources.Resource, error)
	// Delete removes the object at key. A non-empty revision must equal the
	// stored one (ErrConflict otherwise). It returns the deleted object.
	Delete(ctx context.Context, key resources.Key, revision string) (resources.Resource, error)
	// Watch streams changes of one kind after opts.Revision. The channel is
	// closed when ctx ends or the watch fails (the last event then has Type Error).
	Watch(ctx context.Context, opts WatchOptions) (<-chan Event, error)
	// Close releases the backend's connections.
	Close() error
}

// ListOptions selects what List returns.
type ListOptions struct {
	// Kind is the canonical kind name, e.g. "IPPool".
	Kind string
	// Namespace restricts a namespaced kind to one namespace; empty means all.
	Namespace string
	// NamePrefix restricts the result to names starting with it.
	NamePrefix string
	// Limit, when positive, returns at most Limit items and a Continue token.
	// When zero the backend pages internally and returns everything.
	Limit int64
	// Continue resumes a limited list from a previous ListResult.Continue.
	Continue string
	// Revision, when set, reads the list as of that revision (where supported).
	Revision string
}

// ListResult is one page (or the whole) of a List.
type ListResult struct {
	Items []resources.Resource
	// Revision is the datastore revision the list was read at.
	Revision string
	// Continue is non-empty when more items remain (only with Limit > 0).
	Continue string
}

// WatchOptions selects what Watch streams.
type WatchOptions struct {
	Kind      string
	Namespace string
	// Revision: stream changes made after this revision ("" = from now).
	Revision string
}

// EventType says what happened to an object.
type EventType string

// Event types.
const (
	Added    EventType = "ADDED"
	Modified EventType = "MODIFIED"
	Deleted  EventType = "DELETED"
	Error    EventType = "ERROR"
)

// Event is one change seen by Watch.
type Event struct {
	Type EventType
	// Object is the new state (Added/Modified) or the last state (Deleted).
	Object resources.Resource
	// Revision is the datastore revision of the change.
	Revision string
	// Err is set for Type Error.
	Err error
}
