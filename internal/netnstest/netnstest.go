// Package netnstest makes scratch network namespaces for privileged tests.
// Only test code imports it.
//
// A namespace is created on a goroutine of its own with its OS thread locked,
// so the test's goroutine never changes namespace; if the thread cannot be
// switched back it stays locked and dies with that goroutine. Every
// namespace is released (and, when named, deleted) when the test ends.
package netnstest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Dir is where named namespaces are bind-mounted (as `ip netns add` does).
const Dir = "/var/run/netns"

var seq atomic.Int64

// Named is a namespace with a name, usable as `ip -n Name` and as a
// CNI_NETNS path.
type Named struct {
	Name   string
	Path   string // Dir/Name
	Handle netns.NsHandle
}

// New returns a netlink handle inside a fresh anonymous namespace with lo
// up. It skips the test when not root or when namespaces cannot be created.
func New(tb testing.TB) *netlink.Handle {
	tb.Helper()
	ns := create(tb, "")
	h := handle(tb, ns)
	tb.Cleanup(h.Close)
	return h
}

// NewNamed creates a namespace named <prefix>-<pid>-<n> with lo up. It
// skips the test when not root or when namespaces cannot be created.
func NewNamed(tb testing.TB, prefix string) Named {
	tb.Helper()
	name := fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), seq.Add(1))
	ns := create(tb, name)
	h := handle(tb, ns)
	h.Close()
	return Named{Name: name, Path: filepath.Join(Dir, name), Handle: ns}
}

// create makes the namespace (named when name is not "") and registers its
// release.
func create(tb testing.TB, name string) netns.NsHandle {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("skipping: needs root to create a network namespace")
	}
	type result struct {
		ns      netns.NsHandle
		err     error
		restore error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{restore: fmt.Errorf("get current netns: %w", err)}
			return
		}
		defer orig.Close()
		var ns netns.NsHandle
		if name == "" {
			ns, err = netns.New()
		} else {
			ns, err = netns.NewNamed(name)
		}
		if serr := netns.Set(orig); serr != nil {
			// Leave the thread locked: it dies with this goroutine
			// instead of running other code in the wrong namespace.
			ch <- result{ns: ns, err: err, restore: serr}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{ns: ns, err: err}
	}()
	r := <-ch
	if r.ns.IsOpen() || name != "" {
		tb.Cleanup(func() {
			if r.ns.IsOpen() {
				_ = r.ns.Close()
			}
			if name != "" {
				_ = netns.DeleteNamed(name)
			}
		})
	}
	if r.restore != nil {
		tb.Fatalf("netns: %v", r.restore)
	}
	if r.err != nil {
		tb.Skipf("skipping: cannot create a network namespace: %v", r.err)
	}
	return r.ns
}

// handle opens a netlink handle in ns and sets lo up.
func handle(tb testing.TB, ns netns.NsHandle) *netlink.Handle {
	tb.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		tb.Fatalf("netlink handle in netns: %v", err)
	}
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		h.Close()
		tb.Fatalf("lo up: %v", err)
	}
	return h
}

// AddVeth creates a veth pair name/peer in h's namespace with addr
// (optional, CIDR form) on name and mtu (0: the kernel's default), sets both
// ends up and returns name's link.
func AddVeth(tb testing.TB, h *netlink.Handle, name, peer, addr string, mtu int) netlink.Link {
	tb.Helper()
	la := netlink.NewLinkAttrs()
	la.Name = name
	la.MTU = mtu
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: peer}); err != nil {
		tb.Fatalf("add veth %s: %v", name, err)
	}
	l, err := h.LinkByName(name)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := h.LinkByName(peer)
	if err != nil {
		tb.Fatal(err)
	}
	if addr != "" {
		a, err := netlink.ParseAddr(addr)
		if err != nil {
			tb.Fatal(err)
		}
		if err := h.AddrAdd(l, a); err != nil {
			tb.Fatalf("addr add %s: %v", addr, err)
		}
	}
	for _, x := range []netlink.Link{l, p} {
		if err := h.LinkSetUp(x); err != nil {
			tb.Fatalf("link up: %v", err)
		}
	}
	return l
}

// Do runs fn on this goroutine's OS thread switched into the named
// namespace (child processes such as nft inherit it), then switches back.
func Do(tb testing.TB, name string, fn func()) {
	tb.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		tb.Fatal(err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		tb.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		tb.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(fmt.Sprintf("cannot restore network namespace: %v", err))
		}
	}()
	fn()
}
