package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

// watchSource is one Kubernetes watch feeding a datastore watch.
type watchSource struct {
	kind string
	c    call
	// start opens the watch after resourceVersion rv.
	start func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	// convert turns an object into the v3 object and the event revision;
	// ok false skips it (e.g. a hostNetwork pod).
	convert func(obj runtime.Object, rv string) (r resources.Resource, rev string, ok bool, err error)
}

// maxRestarts bounds how often a watch that fails to reopen is retried
// before the stream ends with an Error event.
const maxRestarts = 5

// watchSources merges several sources into one stream; the stream ends
// (after an Error event) when any source fails, or when ctx ends.
func (b *Backend) watchSources(ctx context.Context, revs []string, srcs ...watchSource) <-chan datastore.Event {
	out := make(chan datastore.Event, 64)
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var once sync.Once
	for i, src := range srcs {
		wg.Go(func() {
			if err := b.runWatch(wctx, out, src, revs[i]); err != nil {
				once.Do(func() {
					select {
					case out <- datastore.Event{Type: datastore.Error, Err: err}:
					case <-ctx.Done():
					}
					cancel()
				})
			}
		})
	}
	go func() {
		wg.Wait()
		cancel()
		close(out)
	}()
	return out
}

// runWatch follows one source from rv, reopening a watch the server closed
// from the last revision seen (bookmarks included) without listing again.
// It returns nil when ctx ends and the error that ended the stream otherwise.
func (b *Backend) runWatch(ctx context.Context, out chan<- datastore.Event, src watchSource, rv string) error {
	key := resources.Key{Kind: src.kind}
	failures := 0
	for {
		w, err := src.start(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if apierrors.IsGone(err) || apierrors.IsResourceExpired(err) {
				return fmt.Errorf("watch %s from revision %s: %w", src.kind, rv, err)
			}
			failures++
			if failures > maxRestarts {
				return b.apiError(err, "watch", key, src.c)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Duration(failures) * 200 * time.Millisecond):
			}
			continue
		}
		last, err := b.pump(ctx, out, w, src, rv)
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

// pump forwards the events of one open watch and returns the last revision
// seen when the server closes it.
func (b *Backend) pump(ctx context.Context, out chan<- datastore.Event, w watch.Interface, src watchSource, rv string) (string, error) {
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
		switch ev.Type {
		case watch.Error:
			err := apierrors.FromObject(ev.Object)
			if apierrors.IsGone(err) || apierrors.IsResourceExpired(err) {
				return rv, fmt.Errorf("watch %s from revision %s: %w", src.kind, rv, err)
			}
			return rv, b.apiError(err, "watch", resources.Key{Kind: src.kind}, src.c)
		case watch.Bookmark:
			if m, err := meta.Accessor(ev.Object); err == nil && m.GetResourceVersion() != "" {
				rv = m.GetResourceVersion()
			}
			continue
		}
		m, err := meta.Accessor(ev.Object)
		if err != nil {
			continue
		}
		objRV := m.GetResourceVersion()
		if objRV != "" {
			rv = objRV
		}
		r, rev, keep, err := src.convert(ev.Object, objRV)
		if err != nil {
			b.log.Warn("skipping undecodable watch event", "kind", src.kind, "name", m.GetName(), "err", err)
			continue
		}
		if !keep {
			continue
		}
		dev := datastore.Event{Object: r, Revision: rev}
		switch ev.Type {
		case watch.Added:
			dev.Type = datastore.Added
		case watch.Modified:
			dev.Type = datastore.Modified
		case watch.Deleted:
			dev.Type = datastore.Deleted
		default:
			continue
		}
		select {
		case out <- dev:
		case <-ctx.Done():
			return rv, nil
		}
	}
}

// maxRevision returns the larger of two Kubernetes resourceVersions when
// both are numbers (they are, for one etcd), else a.
func maxRevision(a, c string) string {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(c, 10, 64)
	switch {
	case err1 != nil && err2 == nil:
		return c
	case err1 != nil || err2 != nil:
		return a
	case y > x:
		return c
	}
	return a
}

var errNoRevision = errors.New("no list revision")
