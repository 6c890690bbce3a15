package datastore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/opencalico/calicoctl/resources"
)

// FailFast wraps ds for one command that writes many objects: once any call
// fails because the datastore is unavailable (or a write's outcome is
// unknown), every later call fails at once with ErrUnavailable naming its
// key and the first failure, instead of waiting out its own timeout. The
// command so ends in bounded time when the datastore dies half-way.
//
// The wrapper implements BatchCreator, using ds's bulk path when it has one.
func FailFast(ds Interface) *FailFastStore { return &FailFastStore{Interface: ds} }

// FailFastStore is the Interface returned by FailFast.
type FailFastStore struct {
	Interface
	mu    sync.Mutex
	cause error
}

var (
	_ Interface    = (*FailFastStore)(nil)
	_ BatchCreator = (*FailFastStore)(nil)
	_ Unwrapper    = (*FailFastStore)(nil)
)

// Unwrap returns the wrapped datastore, for capability lookups (As).
func (f *FailFastStore) Unwrap() Interface { return f.Interface }

func (f *FailFastStore) tripped() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cause
}

// observe trips the wrapper on an unavailable datastore and passes err on.
func (f *FailFastStore) observe(err error) error {
	if err != nil && (errors.Is(err, ErrUnavailable) || errors.Is(err, ErrUnknownOutcome)) {
		f.mu.Lock()
		if f.cause == nil {
			f.cause = err
			var ke *KeyError
			if errors.As(err, &ke) && ke.Cause != nil {
				f.cause = ke.Cause
			}
		}
		f.mu.Unlock()
	}
	return err
}

func (f *FailFastStore) skipped(key resources.Key, cause error) error {
	return &KeyError{Err: ErrUnavailable, Key: key,
		Cause: fmt.Errorf("not written: the datastore stopped answering earlier in this command (%v)", cause)}
}

// Get reads one object unless the datastore is known to be down.
func (f *FailFastStore) Get(ctx context.Context, key resources.Key) (resources.Resource, error) {
	if cause := f.tripped(); cause != nil {
		return nil, f.skipped(key, cause)
	}
	r, err := f.Interface.Get(ctx, key)
	return r, f.observe(err)
}

// List lists unless the datastore is known to be down.
func (f *FailFastStore) List(ctx context.Context, opts ListOptions) (*ListResult, error) {
	if cause := f.tripped(); cause != nil {
		return nil, f.skipped(resources.Key{Kind: opts.Kind}, cause)
	}
	l, err := f.Interface.List(ctx, opts)
	return l, f.observe(err)
}

// Create creates unless the datastore is known to be down.
func (f *FailFastStore) Create(ctx context.Context, r resources.Resource) (resources.Resource, error) {
	if cause := f.tripped(); cause != nil {
		return nil, f.skipped(resources.KeyOf(r), cause)
	}
	out, err := f.Interface.Create(ctx, r)
	return out, f.observe(err)
}

// Update updates unless the datastore is known to be down.
func (f *FailFastStore) Update(ctx context.Context, r resources.Resource) (resources.Resource, error) {
	if cause := f.tripped(); cause != nil {
		return nil, f.skipped(resources.KeyOf(r), cause)
	}
	out, err := f.Interface.Update(ctx, r)
	return out, f.observe(err)
}

// Delete deletes unless the datastore is known to be down.
func (f *FailFastStore) Delete(ctx context.Context, key resources.Key, revision string) (resources.Resource, error) {
	if cause := f.tripped(); cause != nil {
		return nil, f.skipped(key, cause)
	}
	out, err := f.Interface.Delete(ctx, key, revision)
	return out, f.observe(err)
}

// CreateMany uses the wrapped store's bulk path when it has one.
func (f *FailFastStore) CreateMany(ctx context.Context, rs []resources.Resource) ([]resources.Resource, []error) {
	out := make([]resources.Resource, len(rs))
	errs := make([]error, len(rs))
	if cause := f.tripped(); cause != nil {
		for i, r := range rs {
			errs[i] = f.skipped(resources.KeyOf(r), cause)
		}
		return out, errs
	}
	if bc, ok := f.Interface.(BatchCreator); ok {
		out, errs = bc.CreateMany(ctx, rs)
		for _, err := range errs {
			_ = f.observe(err)
		}
		return out, errs
	}
	for i, r := range rs {
		out[i], errs[i] = f.Create(ctx, r)
	}
	return out, errs
}
