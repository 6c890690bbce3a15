// Package tunnel manages the node's tunnel devices (vxlan.calico, tunl0),
// the VXLAN forwarding and neighbor entries for remote VTEPs, and MTUs.
package tunnel

import (
	"fmt"
	"log/slog"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Manager works on tunnel devices through one netlink handle.
type Manager struct {
	nl  *netlink.Handle
	log *slog.Logger
}

// Options configure a Manager.
type Options struct {
	// Handle talks to the kernel; nil opens one in the current netns.
	Handle *netlink.Handle
	Logger *slog.Logger
}

// New returns a Manager.
func New(opts Options) (*Manager, error) {
	if opts.Handle == nil {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return nil, fmt.Errorf("tunnel: netlink handle: %w", err)
		}
		opts.Handle = h
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{nl: opts.Handle, log: opts.Logger.With("component", "tunnel")}, nil
}
