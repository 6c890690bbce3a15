package printer

import (
	"bytes"
	"runtime"
	"sync"
)

// renderBatch is the number of items one goroutine renders at a time.
const renderBatch = 256

// renderInOrder renders n items in batches of renderBatch on up to
// GOMAXPROCS goroutines and hands each batch's output to emit in item order.
// render writes items [lo,hi) into out and returns the state emit needs.
// At most a few batches per goroutine are held in memory at once. The first
// error (from render or emit) stops the work and is returned.
func renderInOrder[S any](n int, render func(lo, hi int, out *bytes.Buffer) (S, error), emit func(out []byte, st S) error) error {
	workers := runtime.GOMAXPROCS(0)
	if workers < 2 || n <= renderBatch {
		var buf bytes.Buffer
		for lo := 0; lo < n; lo += renderBatch {
			buf.Reset()
			st, err := render(lo, min(lo+renderBatch, n), &buf)
			if err != nil {
				return err
			}
			if err := emit(buf.Bytes(), st); err != nil {
				return err
			}
		}
		return nil
	}

	type job struct {
		lo, hi int
		buf    bytes.Buffer
		st     S
		err    error
		done   chan struct{}
	}
	jobs := make(chan *job)
	order := make(chan *job, 2*workers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				j.st, j.err = render(j.lo, j.hi, &j.buf)
				close(j.done)
			}
		}()
	}
	go func() {
		defer close(jobs)
		defer close(order)
		for lo := 0; lo < n; lo += renderBatch {
			j := &job{lo: lo, hi: min(lo+renderBatch, n), done: make(chan struct{})}
			select {
			case order <- j:
			case <-stop:
				return
			}
			select {
			case jobs <- j:
			case <-stop:
				return
			}
		}
	}()
	var err error
	for j := range order {
		if err != nil {
			continue // draining after a failure
		}
		<-j.done
		err = j.err
		if err == nil {
			err = emit(j.buf.Bytes(), j.st)
		}
		if err != nil {
			close(stop)
		}
	}
	wg.Wait()
	return err
}
