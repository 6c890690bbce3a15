package routes

import (
	"net"
	"testing"

	"github.com/vishvananda/netlink"
)

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
