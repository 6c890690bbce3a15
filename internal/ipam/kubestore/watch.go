package kubestore

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/resources"
)

var _ ipam.BlockWatcher = (*Store)(nil)

// maxWatchRestarts bounds how often a watch that cannot be reopened is
// retried before the stream ends with an Error event.
const maxWatchRestarts = 5

// ListBlocksRevision lists every IPAMBlock and returns the list's
// resourceVersion.
func (s *Store) ListBlocksRevision(ctx context.Context) ([]*ipam.Block, string, error) {
	var out []*ipam.Block
	rev, err := s.EachBlockRevision(ctx, func(b *ipam.Block) { out = append(out, b) })
	if err != nil {
		return nil, "", err
	}
	return out, rev, nil
}

// EachBlockRevision calls fn with every IPAMBlock, decoded as its page
// arrives, and returns the list's resourceVersion (ipam.BlockStreamer).
func (s *Store) EachBlockRevision(ctx context.Context, fn func(*ipam.Block)) (string, error) {
	rev, err := s.listRevision(ctx, blockKind, "", func(u *unstructured.Unstructured) {
		if b, err := decodeBlock(u); err == nil {
			fn(b)
		} else {
			s.log.Warn("skipping unreadable IPAM block", "name", u.GetName(), "error", err)
		}
	})
	if err != nil {
		return "", fmt.Errorf("list IPAM blocks: %w", err)
	}
	return rev, nil
}

// WatchBlocks follows IPAMBlocks after resourceVersion revision. A block
// marked deleted (the first step of a delete) is reported as Deleted.
func (s *Store) WatchBlocks(ctx context.Context, revision string) (<-chan ipam.BlockEvent, error) {
	return watchCRs(s, ctx, blockKind, revision, decodeBlock), nil
}

// ListAffinitiesRevision lists every BlockAffinity and returns the list's
// resourceVersion.
func (s *Store) ListAffinitiesRevision(ctx context.Context) ([]*ipam.Affinity, string, error) {
	var out []*ipam.Affinity
	rev, err := s.listRevision(ctx, affinityKind, "", func(u *unstructured.Unstructured) {
		if a, err := decodeAffinity(u); err == nil {
			out = append(out, a)
		} else {
			s.log.Warn("skipping unreadable IPAM block affinity", "name", u.GetName(), "error", err)
		}
	})
	if err != nil {
		return nil, "", fmt.Errorf("list IPAM block affinities: %w", err)
	}
	return out, rev, nil
}

// WatchAffinities follows BlockAffinities after resourceVersion revision.
func (s *Store) WatchAffinities(ctx context.Context, revision string) (<-chan ipam.AffinityEvent, error) {
	return watchCRs(s, ctx, affinityKind, revision, decodeAffinity), nil
}

// watchCRs follows one CR kind with bookmarks, reopening a watch the server
// closed from the last resourceVersion seen; 410 Gone (or a watch that
// cannot be reopened) ends the stream with an Error event.
func watchCRs[T any](s *Store, ctx context.Context, k crKind, rv string, decode func(*unstructured.Unstructured) (T, error)) <-chan ipam.WatchEvent[T] {
	out := make(chan ipam.WatchEvent[T], 64)
	go func() {
		defer close(out)
		err := followCRs(ctx, s, k, rv, out, decode)
		if err != nil && ctx.Err() == nil {
			select {
			case out <- ipam.WatchEvent[T]{Type: datastore.Error, Err: err}:
			case <-ctx.Done():
			}
		}
	}()
	return out
}

func (s *Store) expired(k crKind, rv string, err error) error {
	return fmt.Errorf("watch %s from revision %s: %w: %w", k.kind, rv, ipam.ErrWatchExpired, err)
}

// followCRs runs the watches of one kind until ctx ends (nil) or the
// stream fails (the error).
func followCRs[T any](ctx context.Context, s *Store, k crKind, rv string, out chan<- ipam.WatchEvent[T], decode func(*unstructured.Unstructured) (T, error)) error {
	key := resources.Key{Kind: k.kind}
	failures := 0
	for {
		w, err := s.res(k).Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if apierrors.IsGone(err) || apierrors.IsResourceExpired(err) {
				return s.expired(k, rv, err)
			}
			failures++
			if failures > maxWatchRestarts {
				return s.apiError(err, "watch", k, key)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Duration(failures) * 200 * time.Millisecond):
			}
			continue
		}
		last, err := pumpCRs(ctx, s, k, w, rv, out, decode)
		w.Stop()
		if err != nil || ctx.Err() != nil {
			return err
		}
		if last != rv {
			failures = 0
		}
		rv = last
	}
}

// pumpCRs forwards the events of one open watch and returns the last
// resourceVersion seen (bookmarks included) when the server closes it.
func pumpCRs[T any](ctx context.Context, s *Store, k crKind, w watch.Interface, rv string, out chan<- ipam.WatchEvent[T], decode func(*unstructured.Unstructured) (T, error)) (string, error) {
	for {
		var ev watch.Event
		var ok bool
		select {
		case <-ctx.Done():
			return rv, nil
		case ev, ok = <-w.ResultChan():
		}
		if !ok {
			return rv, nil
		}
		if ev.Type == watch.Error {
			err := apierrors.FromObject(ev.Object)
			if apierrors.IsGone(err) || apierrors.IsResourceExpired(err) {
				return rv, s.expired(k, rv, err)
			}
			return rv, s.apiError(err, "watch", k, resources.Key{Kind: k.kind})
		}
		u, isU := ev.Object.(*unstructured.Unstructured)
		if !isU {
			continue
		}
		if v := u.GetResourceVersion(); v != "" {
			rv = v
		}
		var typ datastore.EventType
		switch ev.Type {
		case watch.Bookmark:
			continue
		case watch.Added:
			typ = datastore.Added
		case watch.Modified:
			typ = datastore.Modified
		case watch.Deleted:
			typ = datastore.Deleted
		default:
			continue
		}
		if markedDeleted(u) {
			// Half-way through a two-step delete: readers treat it as gone.
			typ = datastore.Deleted
		}
		obj, err := decode(u)
		if err != nil {
			s.log.Warn("skipping undecodable watch event", "kind", k.kind, "name", u.GetName(), "error", err)
			continue
		}
		select {
		case out <- ipam.WatchEvent[T]{Type: typ, Object: obj, Revision: u.GetResourceVersion()}:
		case <-ctx.Done():
			return rv, nil
		}
	}
}

var _ ipam.BlockStreamer = (*Store)(nil)
