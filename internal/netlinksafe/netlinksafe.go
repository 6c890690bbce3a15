// Package netlinksafe holds the two netlink habits every kernel writer needs,
// written once: a dump retried when the kernel reports it was interrupted by
// a concurrent change, and work in a scratch network namespace that never
// moves the calling goroutine's thread.
package netlinksafe

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DumpAttempts is how many times Dump tries an interrupted dump.
const DumpAttempts = 10

// Interrupted reports whether err is the kernel saying a dump was
// interrupted (the data changed while it was read) and may be retried.
func Interrupted(err error) bool {
	return errors.Is(err, netlink.ErrDumpInterrupted) || errors.Is(err, unix.EINTR)
}

// Dump calls dump until it returns without being interrupted, at most
// DumpAttempts times; an interrupted dump's partial data is never returned.
func Dump[T any](dump func() ([]T, error)) ([]T, error) {
	var err error
	for range DumpAttempts {
		var out []T
		out, err = dump()
		if err == nil {
			return out, nil
		}
		if !Interrupted(err) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("dump interrupted %d times: %w", DumpAttempts, err)
}

// InScratchNetns calls fn with a netlink handle in a new, empty network
// namespace, which is gone once fn returns. The calling goroutine's
// namespace is never changed: the switch happens on a dedicated locked
// thread that is discarded if restoring it fails.
func InScratchNetns(fn func(h *netlink.Handle) error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current netns: %w", err)
			return
		}
		defer orig.Close()
		scratch, err := netns.New()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("new netns: %w", err)
			return
		}
		defer scratch.Close()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: it dies with this goroutine.
			errc <- fmt.Errorf("restore netns: %w", err)
			return
		}
		runtime.UnlockOSThread()
		h, err := netlink.NewHandleAt(scratch, unix.NETLINK_ROUTE)
		if err != nil {
			errc <- fmt.Errorf("netlink in scratch netns: %w", err)
			return
		}
		defer h.Close()
		errc <- fn(h)
	}()
	return <-errc
}
