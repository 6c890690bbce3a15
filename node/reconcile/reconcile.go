// Package reconcile runs one dataplane writer as a level-triggered
// reconciler: it is handed the whole desired state of its slice (the latest
// one wins: bursts coalesce), writes it at once after a quiet period and at
// most once per minimum interval under a burst, retries a
// failed write with exponential backoff, forces a full rewrite every resync
// period, and reports its health. Every writer runs in its own goroutine, so
// a slow or failing writer never delays another.
package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/opencalico/calicoctl/node/health"
)

// Defaults of Config.
const (
	DefaultDebounce    = 100 * time.Millisecond
	DefaultBackoffBase = time.Second
	DefaultBackoffMax  = 30 * time.Second
	DefaultResync      = 90 * time.Second
)

// Config tunes a Reconciler. Zero durations take the defaults.
type Config struct {
	// Name names the writer in logs and health reports.
	Name string
	// Debounce is the least time between the starts of two writes: the
	// first change after a quiet period is written at once, changes that
	// arrive sooner wait for the interval to pass and are coalesced into
	// one write. Negative: no minimum.
	Debounce time.Duration
	// BackoffBase is the first retry delay after a failure; it doubles with
	// every further failure up to BackoffMax.
	BackoffBase, BackoffMax time.Duration
	// Resync is the period of the full rewrite (Felix's 90 s route
	// refresh). Negative: never.
	Resync time.Duration
	// Health receives a report after every write (nil: none).
	Health *health.Reporter
	Logger *slog.Logger
	// After and Now replace time.After and time.Now (tests drive the clock
	// through them).
	After func(time.Duration) <-chan time.Time
	Now   func() time.Time
}

// WriteFunc converges one writer on want. full asks it to re-read the
// kernel rather than trust what it wrote before (the first write, the
// periodic resync, and Resync requests).
type WriteFunc[T any] func(ctx context.Context, want T, full bool) error

// Status is a reconciler's progress.
type Status struct {
	// Wanted is the generation of the last Set; Attempted the generation
	// of the last write attempt and Written of the last successful one (0:
	// none yet).
	Wanted, Attempted, Written uint64
	// Failures counts consecutive failed writes; Err is the last one.
	Failures int
	Err      error
}

// InSync reports whether the latest desired state has been written.
func (s Status) InSync() bool { return s.Wanted > 0 && s.Written == s.Wanted && s.Err == nil }

// Reconciler keeps one writer converged on the latest desired state.
type Reconciler[T any] struct {
	cfg   Config
	write WriteFunc[T]
	log   *slog.Logger

	kick chan struct{} // a new desired state or a resync request (cap 1)

	mu       sync.Mutex
	want     T
	status   Status
	full     bool
	dirty    bool // Kick: write the current state again
	watchers []chan struct{}
}

// New returns a Reconciler; Run starts it.
func New[T any](cfg Config, write WriteFunc[T]) *Reconciler[T] {
	if cfg.Debounce == 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = DefaultBackoffBase
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	if cfg.Resync == 0 {
		cfg.Resync = DefaultResync
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Reconciler[T]{cfg: cfg, write: write, log: log.With("writer", cfg.Name), kick: make(chan struct{}, 1), full: true}
}

// Name is the writer's name.
func (r *Reconciler[T]) Name() string { return r.cfg.Name }

// Set hands the reconciler a new desired state and returns its
// generation. It never blocks: a state not yet written is replaced.
func (r *Reconciler[T]) Set(want T) uint64 {
	r.mu.Lock()
	r.want = want
	r.status.Wanted++
	gen := r.status.Wanted
	r.mu.Unlock()
	r.poke()
	return gen
}

// Kick asks for the current state to be written again (not in full):
// something the writer depends on changed, such as a device it routes
// through being recreated.
func (r *Reconciler[T]) Kick() {
	r.mu.Lock()
	r.dirty = true
	r.mu.Unlock()
	r.poke()
}

// Wait blocks until generation gen (or a later one) is written, and
// returns nil; or until a write attempt of it fails, and returns that
// error; or until ctx ends.
func (r *Reconciler[T]) Wait(ctx context.Context, gen uint64) error {
	for {
		ch := r.Changed()
		st := r.Status()
		switch {
		case st.Written >= gen:
			return nil
		case st.Attempted >= gen && st.Err != nil:
			return st.Err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for the write: %w", r.cfg.Name, ctx.Err())
		case <-ch:
		}
	}
}

// Resync asks for a full rewrite of the current desired state.
func (r *Reconciler[T]) Resync() {
	r.mu.Lock()
	r.full = true
	r.mu.Unlock()
	r.poke()
}

func (r *Reconciler[T]) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Status reports the reconciler's progress.
func (r *Reconciler[T]) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// Changed returns a channel closed after the next write attempt.
func (r *Reconciler[T]) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan struct{})
	r.watchers = append(r.watchers, ch)
	return ch
}

// Backoff is the retry delay after failures consecutive failures.
func (c Config) Backoff(failures int) time.Duration {
	d := c.BackoffBase
	for i := 1; i < failures && d < c.BackoffMax; i++ {
		d *= 2
	}
	return min(d, c.BackoffMax)
}

// Run writes until ctx ends; it returns ctx's error.
func (r *Reconciler[T]) Run(ctx context.Context) error {
	var retry, resync <-chan time.Time
	var lastWrite time.Time // start of the last write attempt
	wrote := false
	if r.cfg.Resync > 0 {
		resync = r.cfg.After(r.cfg.Resync)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.kick:
		case <-retry:
			retry = nil
		case <-resync:
			resync = r.cfg.After(r.cfg.Resync)
			r.mu.Lock()
			r.full = true
			r.mu.Unlock()
		}
		if !r.due(retry != nil) {
			continue
		}
		if wait := r.cfg.Debounce - r.cfg.Now().Sub(lastWrite); r.cfg.Debounce > 0 && retry == nil && wrote && wait > 0 {
			// Written moments ago: let the burst go on until the minimum
			// interval has passed; what arrives meanwhile is coalesced.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-r.cfg.After(wait):
			}
		}
		r.mu.Lock()
		want, gen, full := r.want, r.status.Wanted, r.full
		retry = nil
		r.full, r.dirty = false, false // taken; a Resync or Kick during the write asks again
		r.mu.Unlock()
		lastWrite, wrote = r.cfg.Now(), true
		err := r.write(ctx, want, full)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.mu.Lock()
		st := &r.status
		st.Attempted = gen
		if err == nil {
			if st.Failures > 0 {
				r.log.Info("writer back in sync", "after_failures", st.Failures)
			}
			st.Written, st.Failures, st.Err = gen, 0, nil
		} else {
			st.Failures++
			st.Err = err
			r.full = r.full || full
			retry = r.cfg.After(r.cfg.Backoff(st.Failures))
			if st.Failures == 1 || st.Failures%30 == 0 {
				r.log.Warn("write failed; retrying", "error", err, "failures", st.Failures, "retry_in", r.cfg.Backoff(st.Failures))
			}
		}
		snapshot := *st
		watchers := r.watchers
		r.watchers = nil
		r.mu.Unlock()
		r.report(snapshot)
		for _, ch := range watchers {
			close(ch)
		}
	}
}

// due reports whether there is something to write: a state not written
// yet, a failed one, a Kick or a full rewrite asked for. While a retry is
// scheduled (retrying), only something new (a later state, a Kick after a
// dependency changed) is written before it fires: it may well succeed
// where the failed state did not (a route through a device that now
// exists), and waiting out a backoff would leave the kernel behind for
// seconds.
func (r *Reconciler[T]) due(retrying bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	gen := r.status.Wanted
	due := gen > 0 && (r.full || r.dirty || gen != r.status.Written || r.status.Err != nil)
	fresh := gen != r.status.Attempted || r.dirty
	return due && (!retrying || fresh)
}

func (r *Reconciler[T]) report(st Status) {
	if r.cfg.Health == nil {
		return
	}
	if st.Err != nil {
		r.cfg.Health.Report(health.State{Live: true, Ready: false, Detail: "write failing: " + st.Err.Error()})
		return
	}
	r.cfg.Health.Report(health.State{Live: true, Ready: true, Detail: "in sync"})
}
