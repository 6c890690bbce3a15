package datastore

import (
	"context"

	"github.com/opencalico/calicoctl/resources"
)

// BatchCreator is an optional fast path a backend may offer for bulk writes
// (apply -f of thousands of objects). Results and errors are per item, in
// input order; an item whose key is taken gets an error wrapping ErrExists.
type BatchCreator interface {
	CreateMany(ctx context.Context, rs []resources.Resource) ([]resources.Resource, []error)
}
