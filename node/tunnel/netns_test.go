package tunnel

import (
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// newTestNS returns a netlink handle inside a fresh, anonymous network
// namespace released when the test ends.
func newTestNS(tb testing.TB) *netlink.Handle {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("skipping: needs root to create a network namespace")
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		tb.Fatalf("get current netns: %v", err)
	}
	ns, err := netns.New()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		tb.Skipf("skipping: cannot create a network namespace: %v", err)
	}
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: it dies with the goroutine instead of
		// running other code in the wrong namespace.
		tb.Fatalf("restore netns: %v", err)
	}
	runtime.UnlockOSThread()
	orig.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		tb.Fatalf("netlink handle in netns: %v", err)
	}
	tb.Cleanup(func() {
		h.Close()
		ns.Close()
	})
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		tb.Fatalf("lo up: %v", err)
	}
	return h
}

// addVeth creates an up veth pair with addr (optional) on name.
func addVeth(tb testing.TB, h *netlink.Handle, name, peer, addr string, mtu int) {
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
	if addr != "" {
		a, err := netlink.ParseAddr(addr)
		if err != nil {
			tb.Fatal(err)
		}
		if err := h.AddrAdd(l, a); err != nil {
			tb.Fatalf("addr add %s: %v", addr, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		tb.Fatal(err)
	}
}
