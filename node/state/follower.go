package state

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/ipam"
)

// Config is what a Follower follows.
type Config struct {
	Datastore datastore.Interface
	// Blocks is the IPAM store, which must implement ipam.BlockWatcher.
	Blocks ipam.Store
	// Connectivity, when set, reports the datastore connection going down
	// and up without sending requests (etcd: the gRPC connection state);
	// while down the follower reports an outage. It runs until ctx ends.
	Connectivity func(ctx context.Context, report func(up bool))
	// ListTimeout bounds one list (default 30s): an unresponsive datastore
	// fails the list rather than hang it.
	ListTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before a relist after a
	// failure (defaults 100ms and 10s; doubled on each failure in a row).
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
}

// Status is the follower's health.
type Status struct {
	// Synced: every source has listed and is watching, and the connection
	// is up.
	Synced bool
	// Err says why not (nil when synced).
	Err error
	// Relists counts lists after the first one of each source.
	Relists int
}

// Follower keeps a Model in step with the datastore.
type Follower struct {
	cfg Config
	log *slog.Logger

	mu      sync.RWMutex
	model   *Model
	version uint64

	smu      sync.Mutex
	sources  map[string]error // nil = synced; errNotListed before the first list
	connDown error
	relists  int

	changed chan struct{}
	runs    []func(context.Context)
}

var errNotListed = errors.New("not listed yet")

// New returns a follower; Run starts it.
func New(cfg Config) (*Follower, error) {
	if cfg.Datastore == nil || cfg.Blocks == nil {
		return nil, errors.New("state: a datastore and an IPAM store are required")
	}
	bw, ok := cfg.Blocks.(ipam.BlockWatcher)
	if !ok {
		return nil, fmt.Errorf("state: IPAM store %T cannot watch blocks: %w", cfg.Blocks, datastore.ErrNotSupported)
	}
	if cfg.ListTimeout <= 0 {
		cfg.ListTimeout = 30 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(10*time.Second, cfg.MinBackoff)
	}
	f := &Follower{cfg: cfg, log: cfg.Logger, model: NewModel(), sources: map[string]error{}, changed: make(chan struct{}, 1)}
	if f.log == nil {
		f.log = slog.Default()
	}
	addSource(f, nodeSource(cfg.Datastore))
	addSource(f, poolSource(cfg.Datastore))
	addSource(f, felixSource(cfg.Datastore))
	addSource(f, wepSource(cfg.Datastore))
	addSource(f, blockSource(bw))
	addSource(f, bgpPeerSource(cfg.Datastore))
	addSource(f, bgpConfigSource(cfg.Datastore))
	addSource(f, bgpFilterSource(cfg.Datastore))
	addSource(f, nodeStatusSource(cfg.Datastore))
	addSource(f, tierKind.source(cfg.Datastore))
	addSource(f, gnpKind.source(cfg.Datastore))
	addSource(f, npKind.source(cfg.Datastore))
	addSource(f, profileKind.source(cfg.Datastore))
	addSource(f, gnsetKind.source(cfg.Datastore))
	addSource(f, nsetKind.source(cfg.Datastore))
	addSource(f, hepKind.source(cfg.Datastore))
	return f, nil
}

func addSource[T any](f *Follower, s *source[T]) {
	f.sources[s.name] = errNotListed
	f.runs = append(f.runs, func(ctx context.Context) { follow(ctx, f, s) })
}

// Run follows every source until ctx ends; it returns ctx's error.
func (f *Follower) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, run := range f.runs {
		wg.Go(func() { run(ctx) })
	}
	if f.cfg.Connectivity != nil {
		wg.Go(func() { f.cfg.Connectivity(ctx, f.setConnected) })
	}
	wg.Wait()
	return ctx.Err()
}

// Changed is poked (coalesced: capacity 1) after every change of the
// model or of the status.
func (f *Follower) Changed() <-chan struct{} { return f.changed }

// Version counts the model's changes.
func (f *Follower) Version() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.version
}

// Read calls fn with the model under a read lock, and the model's version.
// fn must not keep the model or modify its objects.
func (f *Follower) Read(fn func(m *Model, version uint64)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.model, f.version)
}

// Status reports whether the model is in step with the datastore.
func (f *Follower) Status() Status {
	f.smu.Lock()
	defer f.smu.Unlock()
	st := Status{Synced: true, Relists: f.relists}
	if f.connDown != nil {
		st.Synced, st.Err = false, f.connDown
		return st
	}
	for name, err := range f.sources {
		if err != nil {
			st.Synced = false
			st.Err = errors.Join(st.Err, fmt.Errorf("%s: %w", name, err))
		}
	}
	return st
}

func (f *Follower) poke() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

func (f *Follower) setSource(name string, err error, relisted bool) {
	f.smu.Lock()
	was := f.sources[name]
	f.sources[name] = err
	if relisted {
		f.relists++
	}
	f.smu.Unlock()
	if (was == nil) != (err == nil) {
		f.poke()
	}
}

func (f *Follower) setConnected(up bool) {
	f.smu.Lock()
	was := f.connDown
	if up {
		f.connDown = nil
	} else if was == nil {
		f.connDown = fmt.Errorf("connection lost: %w", datastore.ErrUnavailable)
	}
	f.smu.Unlock()
	if (was == nil) != up {
		if up {
			f.log.Info("datastore connection back")
		} else {
			f.log.Warn("datastore connection lost; keeping the last state")
		}
		f.poke()
	}
}

// update applies fn to the model and signals a change if it reports one.
func (f *Follower) update(fn func(m *Model) bool) {
	f.mu.Lock()
	changed := fn(f.model)
	if changed {
		f.version++
	}
	f.mu.Unlock()
	if changed {
		f.poke()
	}
}

// follow lists one source, then watches it from the list's revision; a
// failed list or watch backs off and lists again. The model keeps this
// source's objects until a list succeeds.
func follow[T any](ctx context.Context, f *Follower, s *source[T]) {
	backoff := f.cfg.MinBackoff
	listed := false
	wait := func(err error) bool {
		f.setSource(s.name, err, false)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, f.cfg.MaxBackoff)
		return true
	}
	for ctx.Err() == nil {
		lctx, cancel := context.WithTimeout(ctx, f.cfg.ListTimeout)
		items, rev, err := s.list(lctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.log.Warn("list failed; keeping the last state", "source", s.name, "error", err)
			if !wait(err) {
				return
			}
			continue
		}
		f.update(func(m *Model) bool { return s.replace(m, items) })
		wctx, wcancel := context.WithCancel(ctx)
		ch, err := s.watch(wctx, rev)
		if err != nil {
			wcancel()
			if ctx.Err() != nil {
				return
			}
			f.log.Warn("watch failed; listing again", "source", s.name, "error", err)
			if !wait(err) {
				return
			}
			continue
		}
		f.setSource(s.name, nil, listed)
		if listed {
			f.log.Info("relisted", "source", s.name, "items", len(items), "revision", rev)
		}
		listed = true
		backoff = f.cfg.MinBackoff
		err = pump(f, s, ch)
		wcancel()
		for range ch {
			// Let the watch's goroutines finish.
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("watch closed")
		}
		f.log.Warn("watch ended; listing again", "source", s.name, "error", err)
		if !wait(err) {
			return
		}
	}
}

// pump folds watch events into the model until the watch ends; it returns
// the error that ended it.
func pump[T any](f *Follower, s *source[T], ch <-chan event[T]) error {
	for ev := range ch {
		switch ev.typ {
		case datastore.Error:
			return ev.err
		case datastore.Deleted:
			f.update(func(m *Model) bool { return s.del(m, ev.obj) })
		default:
			f.update(func(m *Model) bool { return s.set(m, ev.obj) })
		}
	}
	return nil
}
