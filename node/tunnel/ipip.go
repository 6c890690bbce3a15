package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/opencalico/calicoctl/internal/netlinksafe"
)

// IPIP constants (spec §6.2).
const (
	IPIPDevice   = "tunl0"
	IPIPOverhead = 20
)

// ErrIPIPUnsupported is returned by EnsureIPIP on kernels without the ipip
// device type.
var ErrIPIPUnsupported = errors.New("kernel does not support IPIP tunnels")

// IPIPConfig describes tunl0.
type IPIPConfig struct {
	MTU  int
	Addr netip.Prefix // the IPIP tunnel address /32; zero adds none
}

// IPIPSupported reports whether the kernel offers the ipip device type. It
// probes in a scratch network namespace, so the host is never touched: the
// ipip module creates tunl0 in every namespace, and otherwise creating an
// ipip device shows whether the type exists.
func IPIPSupported() (bool, string) {
	var ok bool
	var reason string
	if err := netlinksafe.InScratchNetns(func(h *netlink.Handle) error {
		ok, reason = ipipProbe(h)
		return nil
	}); err != nil {
		return false, fmt.Sprintf("cannot probe for IPIP: %v", err)
	}
	return ok, reason
}

// ipipProbe checks for tunl0 and else tries to create an ipip device via h
// (which must be in a scratch namespace).
func ipipProbe(h *netlink.Handle) (bool, string) {
	if _, err := h.LinkByName(IPIPDevice); err == nil {
		return true, "ipip module present (tunl0 exists)"
	}
	probe := &netlink.Iptun{}
	probe.Name = "calprobe0"
	err := h.LinkAdd(probe)
	if err == nil {
		_ = h.LinkDel(probe)
		return true, "ipip device type available"
	}
	return false, ipipReason(err)
}

func ipipReason(err error) string {
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT) {
		return fmt.Sprintf("kernel has no ipip device type (creating an ipip tunnel failed: %v); "+
			"load the ipip module or use VXLAN or unencapsulated pools", err)
	}
	return fmt.Sprintf("cannot create an ipip tunnel: %v", err)
}

// EnsureIPIP brings up tunl0 with cfg's MTU and address, creating it if the
// kernel has the device type but no tunl0. It returns an error wrapping
// ErrIPIPUnsupported when the kernel lacks IPIP.
func (m *Manager) EnsureIPIP(ctx context.Context, cfg IPIPConfig) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	link, err := m.nl.LinkByName(IPIPDevice)
	if err != nil {
		tun := &netlink.Iptun{}
		tun.Name = IPIPDevice
		if err := m.nl.LinkAdd(tun); err != nil && !errors.Is(err, unix.EEXIST) {
			if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("%w: %s", ErrIPIPUnsupported, ipipReason(err))
			}
			return fmt.Errorf("create %s: %w", IPIPDevice, err)
		}
		if link, err = m.nl.LinkByName(IPIPDevice); err != nil {
			return fmt.Errorf("lookup %s after create: %w", IPIPDevice, err)
		}
	}
	if link.Type() != "ipip" {
		return fmt.Errorf("%s exists with type %q, not ipip", IPIPDevice, link.Type())
	}
	return m.fixLink(link, cfg.MTU, nil, cfg.Addr)
}
