package routes

import (
	"net"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// newTestNS returns a netlink handle inside a fresh, anonymous network
// namespace that is released when the test ends. The calling thread goes
// back to its original namespace before returning.
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

// addVeth creates an up veth pair; addr (optional) goes on name.
func addVeth(tb testing.TB, h *netlink.Handle, name, peer, addr string) netlink.Link {
	tb.Helper()
	la := netlink.NewLinkAttrs()
	la.Name = name
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

// addVXLAN creates an up VXLAN device without a parent.
func addVXLAN(tb testing.TB, h *netlink.Handle, name string) netlink.Link {
	tb.Helper()
	la := netlink.NewLinkAttrs()
	la.Name = name
	la.HardwareAddr, _ = net.ParseMAC("66:00:00:00:00:01")
	if err := h.LinkAdd(&netlink.Vxlan{LinkAttrs: la, VxlanId: 4096, Port: 4789}); err != nil {
		tb.Fatalf("add vxlan %s: %v", name, err)
	}
	l, err := h.LinkByName(name)
	if err != nil {
		tb.Fatal(err)
	}
	if err := h.LinkSetUp(l); err != nil {
		tb.Fatalf("vxlan up: %v", err)
	}
	return l
}
