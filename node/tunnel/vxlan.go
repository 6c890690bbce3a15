package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Upstream's VXLAN defaults (spec §6.2).
const (
	VXLANDevice   = "vxlan.calico"
	VXLANDevice6  = "vxlan-v6.calico"
	VXLANVNI      = 4096
	VXLANPort     = 4789
	VXLANOverhead = 50
)

// VXLANConfig describes the VXLAN device. Zero Name, VNI and Port take
// upstream's defaults.
type VXLANConfig struct {
	Name string
	VNI  int
	Port int
	// ParentAddr is the node address; the device carrying it is the VTEP's
	// parent and the address is the tunnel's source. Zero: no parent.
	ParentAddr netip.Addr
	MTU        int // 0 leaves the kernel's choice
	// Addr is the tunnel address (a /32 or /128); zero adds none.
	Addr netip.Prefix
	// MAC of the device; empty keeps the kernel's (random) one.
	MAC string
}

func (c *VXLANConfig) defaults() {
	if c.Name == "" {
		c.Name = VXLANDevice
	}
	if c.VNI == 0 {
		c.VNI = VXLANVNI
	}
	if c.Port == 0 {
		c.Port = VXLANPort
	}
}

// EnsureVXLAN creates or repairs the VXLAN device in the current netns.
func EnsureVXLAN(ctx context.Context, cfg VXLANConfig) error {
	m, err := New(Options{})
	if err != nil {
		return err
	}
	defer m.nl.Close()
	return m.EnsureVXLAN(ctx, cfg)
}

// EnsureVXLAN makes the device match cfg: an existing matching device is
// adopted; MTU, MAC, address and up state are fixed in place; a device whose
// VNI, port, parent or source differ is recreated. Idempotent.
func (m *Manager) EnsureVXLAN(ctx context.Context, cfg VXLANConfig) error {
	cfg.defaults()
	if err := ctx.Err(); err != nil {
		return err
	}
	var mac net.HardwareAddr
	if cfg.MAC != "" {
		var err error
		if mac, err = net.ParseMAC(cfg.MAC); err != nil {
			return fmt.Errorf("vxlan %s: mac %q: %w", cfg.Name, cfg.MAC, err)
		}
	}
	want := &netlink.Vxlan{VxlanId: cfg.VNI, Port: cfg.Port, Learning: false}
	want.Name = cfg.Name
	want.HardwareAddr = mac
	want.MTU = cfg.MTU
	if cfg.ParentAddr.IsValid() {
		parent, err := m.linkWithAddr(cfg.ParentAddr)
		if err != nil {
			return fmt.Errorf("vxlan %s: %w", cfg.Name, err)
		}
		want.VtepDevIndex = parent.Attrs().Index
		want.SrcAddr = cfg.ParentAddr.AsSlice()
	}
	link, err := m.nl.LinkByName(cfg.Name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		link = nil
	case err != nil:
		return fmt.Errorf("vxlan %s: lookup: %w", cfg.Name, err)
	}
	if link != nil {
		if got, ok := link.(*netlink.Vxlan); !ok || !vxlanMatches(got, want) {
			m.log.Info("recreating VXLAN device with different settings", "name", cfg.Name, "type", link.Type())
			if err := m.nl.LinkDel(link); err != nil {
				return fmt.Errorf("vxlan %s: delete mismatching device: %w", cfg.Name, err)
			}
			link = nil
		}
	}
	if link == nil {
		if err := m.nl.LinkAdd(want); err != nil {
			return fmt.Errorf("vxlan %s: create: %w", cfg.Name, err)
		}
		m.log.Info("created VXLAN device", "name", cfg.Name, "vni", cfg.VNI, "port", cfg.Port)
		if link, err = m.nl.LinkByName(cfg.Name); err != nil {
			return fmt.Errorf("vxlan %s: lookup after create: %w", cfg.Name, err)
		}
	}
	return m.fixLink(link, cfg.MTU, mac, cfg.Addr)
}

// fixLink sets MTU and MAC when they differ, makes addr the only global
// address, and brings the link up.
func (m *Manager) fixLink(link netlink.Link, mtu int, mac net.HardwareAddr, addr netip.Prefix) error {
	a := link.Attrs()
	if mtu > 0 && a.MTU != mtu {
		if err := m.nl.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("%s: set mtu %d: %w", a.Name, mtu, err)
		}
	}
	if mac != nil && a.HardwareAddr.String() != mac.String() {
		if err := m.nl.LinkSetHardwareAddr(link, mac); err != nil {
			return fmt.Errorf("%s: set mac %s: %w", a.Name, mac, err)
		}
	}
	if err := m.ensureOnlyAddr(link, addr); err != nil {
		return err
	}
	if a.Flags&net.FlagUp == 0 {
		if err := m.nl.LinkSetUp(link); err != nil {
			return fmt.Errorf("%s: set up: %w", a.Name, err)
		}
	}
	return nil
}

// ensureOnlyAddr adds addr (if valid) and removes other global addresses of
// its family (link-local ones stay).
func (m *Manager) ensureOnlyAddr(link netlink.Link, addr netip.Prefix) error {
	name := link.Attrs().Name
	family := unix.AF_INET
	if addr.IsValid() && !addr.Addr().Is4() {
		family = unix.AF_INET6
	}
	have, err := m.nl.AddrList(link, family)
	if err != nil {
		return fmt.Errorf("%s: list addresses: %w", name, err)
	}
	found := false
	for _, h := range have {
		got, ok := prefixOf(h.IPNet)
		if !ok || got.Addr().IsLinkLocalUnicast() {
			continue
		}
		if addr.IsValid() && got == addr {
			found = true
			continue
		}
		if err := m.nl.AddrDel(link, &h); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("%s: remove stale address %s: %w", name, got, err)
		}
		m.log.Info("removed stale tunnel address", "dev", name, "addr", got)
	}
	if addr.IsValid() && !found {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), addr.Addr().BitLen())}}
		if err := m.nl.AddrAdd(link, a); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("%s: add address %s: %w", name, addr, err)
		}
	}
	return nil
}

func vxlanMatches(got, want *netlink.Vxlan) bool {
	srcMatch := (len(want.SrcAddr) == 0 && len(got.SrcAddr) == 0) || got.SrcAddr.Equal(want.SrcAddr)
	return got.VxlanId == want.VxlanId && got.Port == want.Port && got.VtepDevIndex == want.VtepDevIndex &&
		srcMatch && got.Learning == want.Learning
}

// linkWithAddr finds the link carrying a.
func (m *Manager) linkWithAddr(a netip.Addr) (netlink.Link, error) {
	family := unix.AF_INET
	if !a.Is4() {
		family = unix.AF_INET6
	}
	addrs, err := m.nl.AddrList(nil, family)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, x := range addrs {
		if p, ok := prefixOf(x.IPNet); ok && p.Addr() == a {
			l, err := m.nl.LinkByIndex(x.LinkIndex)
			if err != nil {
				return nil, fmt.Errorf("link %d of %s: %w", x.LinkIndex, a, err)
			}
			return l, nil
		}
	}
	return nil, fmt.Errorf("no interface carries %s", a)
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones, bits := n.Mask.Size()
	if bits != a.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones), true
}
