package reconcile

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/node/health"
)

// fakeClock hands out timers the test fires by hand.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[time.Duration][]chan time.Time
	armed  chan time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{timers: map[time.Duration][]chan time.Time{}, armed: make(chan time.Duration, 100)}
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.timers[d] = append(c.timers[d], ch)
	c.mu.Unlock()
	c.armed <- d
	return ch
}

// Now is the fake time; fire advances it.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// advance moves the fake time on without firing timers.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// awaitArmed waits until a timer of d is armed.
func (c *fakeClock) awaitArmed(t *testing.T, d time.Duration) {
	t.Helper()
	for got := range c.armed {
		if got == d {
			return
		}
		t.Fatalf("timer of %v armed, want %v", got, d)
	}
}

// fire fires every armed timer of d.
func (c *fakeClock) fire(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.timers[d] {
		ch <- time.Time{}
	}
	delete(c.timers, d)
}

type call struct {
	want int
	full bool
}

// fakeWriter reports every call on calls and returns what the test sends
// on results.
type fakeWriter struct {
	calls   chan call
	results chan error
}

func newFakeWriter() *fakeWriter {
	return &fakeWriter{calls: make(chan call), results: make(chan error)}
}

func (w *fakeWriter) write(ctx context.Context, want int, full bool) error {
	select {
	case w.calls <- call{want, full}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-w.results:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *fakeWriter) expect(t *testing.T, want call, result error) {
	t.Helper()
	got := <-w.calls
	if got != want {
		t.Fatalf("write %+v, want %+v", got, want)
	}
	w.results <- result
}

// expectDone is expect that also waits for the write to be recorded and
// returns the status after it.
func (w *fakeWriter) expectDone(t *testing.T, r *Reconciler[int], want call, result error) Status {
	t.Helper()
	got := <-w.calls
	if got != want {
		t.Fatalf("write %+v, want %+v", got, want)
	}
	changed := r.Changed() // the write is in flight: this is its completion
	w.results <- result
	<-changed
	return r.Status()
}

func start[T any](t *testing.T, r *Reconciler[T]) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	})
}

func TestCoalescesToLatest(t *testing.T) {
	w := newFakeWriter()
	r := New(Config{Name: "test", Debounce: -1, Resync: -1}, w.write)
	start(t, r)

	r.Set(1)
	got := <-w.calls
	if got != (call{1, true}) {
		t.Fatalf("first write %+v, want 1 and full", got)
	}
	// While the writer is busy, a burst of states: only the last is written.
	r.Set(2)
	r.Set(3)
	r.Set(4)
	w.results <- nil
	if st := w.expectDone(t, r, call{4, false}, nil); !st.InSync() || st.Written != 4 {
		t.Errorf("status %+v, want generation 4 written", st)
	}
	r.Set(5)
	if st := w.expectDone(t, r, call{5, false}, nil); st.Written != 5 {
		t.Errorf("status %+v, want generation 5 written", st)
	}
}

// TestDebounceIsMinimumInterval: the first change after a quiet period is
// written at once; changes within the minimum interval of the last write
// wait for the rest of it and are written together.
func TestDebounceIsMinimumInterval(t *testing.T) {
	clk := newFakeClock()
	w := newFakeWriter()
	r := New(Config{Name: "test", Debounce: 100 * time.Millisecond, Resync: -1, After: clk.After, Now: clk.Now}, w.write)
	start(t, r)

	r.Set(1) // the first change: no wait
	w.expectDone(t, r, call{1, true}, nil)

	clk.advance(30 * time.Millisecond)
	r.Set(2) // 30ms after the last write: waits the remaining 70ms
	clk.awaitArmed(t, 70*time.Millisecond)
	r.Set(3) // arrives meanwhile: written together
	clk.advance(70 * time.Millisecond)
	clk.fire(70 * time.Millisecond)
	w.expectDone(t, r, call{3, false}, nil)

	clk.advance(time.Second) // quiet: the next change is written at once
	r.Set(4)
	w.expectDone(t, r, call{4, false}, nil)
	select {
	case d := <-clk.armed:
		t.Fatalf("timer of %v armed after a quiet period", d)
	default:
	}
}

func TestRetryWithBackoff(t *testing.T) {
	clk := newFakeClock()
	w := newFakeWriter()
	hs, err := health.NewServer(health.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rep := hs.Register("routes", health.Reports{Live: true, Ready: true}, 0)
	r := New(Config{Name: "routes", Debounce: -1, Resync: -1, BackoffBase: time.Second, BackoffMax: 4 * time.Second,
		After: clk.After, Health: rep}, w.write)
	start(t, r)

	boom := errors.New("boom")
	r.Set(1)
	if st := w.expectDone(t, r, call{1, true}, boom); st.Failures != 1 || !errors.Is(st.Err, boom) || st.InSync() {
		t.Errorf("after a failure: %+v", st)
	}
	if hs.Summary().Ready {
		t.Error("ready while the writer fails")
	}
	// Backoff doubles up to the cap; a failed full write is retried full.
	for _, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		clk.awaitArmed(t, d)
		clk.fire(d)
		w.expect(t, call{1, true}, boom)
	}
	clk.awaitArmed(t, 4*time.Second)
	// A new state while a retry is pending is written at once, without
	// waiting out the backoff: it may succeed where the failed one did not
	// (the 4 s timer is never fired here).
	r.Set(2)
	if st := w.expectDone(t, r, call{2, true}, nil); !st.InSync() || st.Failures != 0 {
		t.Errorf("after recovery: %+v", st)
	}
	if !hs.Summary().Ready {
		t.Errorf("not ready after recovery: %+v", hs.Summary())
	}
}

func TestPeriodicAndRequestedResync(t *testing.T) {
	clk := newFakeClock()
	w := newFakeWriter()
	r := New(Config{Name: "test", Debounce: -1, Resync: 90 * time.Second, After: clk.After}, w.write)
	start(t, r)

	clk.awaitArmed(t, 90*time.Second)
	r.Set(1)
	w.expect(t, call{1, true}, nil)
	clk.fire(90 * time.Second)
	w.expect(t, call{1, true}, nil) // the same state, rewritten in full
	clk.awaitArmed(t, 90*time.Second)
	r.Resync()
	w.expect(t, call{1, true}, nil)
	r.Set(2)
	w.expect(t, call{2, false}, nil)
}

func TestResyncBeforeFirstStateWritesNothing(t *testing.T) {
	clk := newFakeClock()
	w := newFakeWriter()
	r := New(Config{Name: "test", Debounce: -1, Resync: 90 * time.Second, After: clk.After}, w.write)
	start(t, r)
	clk.awaitArmed(t, 90*time.Second)
	clk.fire(90 * time.Second)
	clk.awaitArmed(t, 90*time.Second) // the tick was handled without a write
	r.Set(7)
	w.expect(t, call{7, true}, nil)
}

func TestBlockedWriterDoesNotBlockAnother(t *testing.T) {
	slow, fast := newFakeWriter(), newFakeWriter()
	rs := New(Config{Name: "slow", Debounce: -1, Resync: -1}, slow.write)
	rf := New(Config{Name: "fast", Debounce: -1, Resync: -1}, fast.write)
	start(t, rs)
	start(t, rf)

	rs.Set(1)
	<-slow.calls // the slow writer is now stuck until the test ends
	for i := 1; i <= 3; i++ {
		rf.Set(i)
		fast.expect(t, call{i, i == 1}, nil)
	}
	rs.Set(2) // queued behind the stuck write; does not block Set
	if st := rs.Status(); st.Written != 0 || st.Wanted != 2 {
		t.Errorf("slow writer status %+v", st)
	}
}

func TestKickAndWait(t *testing.T) {
	w := newFakeWriter()
	r := New(Config{Name: "test", Debounce: -1, Resync: -1, BackoffBase: time.Hour}, w.write)
	start(t, r)

	gen := r.Set(1)
	waited := make(chan error, 1)
	go func() { waited <- r.Wait(context.Background(), gen) }()
	w.expect(t, call{1, true}, nil)
	if err := <-waited; err != nil {
		t.Fatalf("Wait = %v", err)
	}
	if err := r.Wait(context.Background(), gen); err != nil {
		t.Fatalf("Wait for a written generation = %v", err)
	}
	// Kick rewrites the same state, not in full.
	r.Kick()
	w.expect(t, call{1, false}, nil)

	boom := errors.New("boom")
	gen = r.Set(2)
	go func() { waited <- r.Wait(context.Background(), gen) }()
	w.expect(t, call{2, false}, boom)
	if err := <-waited; !errors.Is(err, boom) {
		t.Fatalf("Wait after a failed write = %v, want boom", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Wait(ctx, r.Set(3)); !errors.Is(err, context.Canceled) && !errors.Is(err, boom) {
		t.Fatalf("Wait with a cancelled context = %v", err)
	}
}

func TestBackoff(t *testing.T) {
	c := Config{BackoffBase: time.Second, BackoffMax: 30 * time.Second}
	for failures, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second,
		5: 16 * time.Second, 6: 30 * time.Second, 100: 30 * time.Second} {
		if got := c.Backoff(failures); got != want {
			t.Errorf("Backoff(%d) = %v, want %v", failures, got, want)
		}
	}
}
