package tunnel

import (
	"fmt"
	"net/netip"
	"regexp"

	"github.com/vishvananda/netlink"
)

// Encapsulation overheads in bytes (spec §6.2).
const (
	VXLANv6Overhead     = 70
	WireguardOverhead   = 60
	WireguardV6Overhead = 80
)

// DefaultMTUIfacePattern matches the host's uplinks (Felix mtuIfacePattern).
var DefaultMTUIfacePattern = regexp.MustCompile(`^((en|wl|ww|sl|ib)[Pcopsvx].*|(eth|wlan|wwan).*)`)

// Encaps says which encapsulations are enabled.
type Encaps struct {
	IPIP, VXLAN, VXLANv6, Wireguard, WireguardV6 bool
}

// TunnelMTUs are the MTUs derived from the host MTU.
type TunnelMTUs struct {
	Host, IPIP, VXLAN, VXLANv6, Wireguard, WireguardV6 int
	// Pod is the smallest MTU of the enabled encapsulations, else Host.
	Pod int
}

// MTUsFor derives tunnel and pod MTUs from the host MTU.
func MTUsFor(host int, enabled Encaps) TunnelMTUs {
	t := TunnelMTUs{
		Host: host, IPIP: host - IPIPOverhead, VXLAN: host - VXLANOverhead, VXLANv6: host - VXLANv6Overhead,
		Wireguard: host - WireguardOverhead, WireguardV6: host - WireguardV6Overhead, Pod: host,
	}
	for _, e := range []struct {
		on  bool
		mtu int
	}{{enabled.IPIP, t.IPIP}, {enabled.VXLAN, t.VXLAN}, {enabled.VXLANv6, t.VXLANv6},
		{enabled.Wireguard, t.Wireguard}, {enabled.WireguardV6, t.WireguardV6}} {
		if e.on && e.mtu < t.Pod {
			t.Pod = e.mtu
		}
	}
	return t
}

// Iface is what host MTU selection needs to know about an interface.
type Iface struct {
	Name  string
	MTU   int
	Addrs []netip.Addr
}

// SelectHostMTU returns the MTU of the interface carrying nodeIP; without
// one (or without nodeIP), the smallest MTU among interfaces matching
// pattern (nil: DefaultMTUIfacePattern).
func SelectHostMTU(ifaces []Iface, nodeIP netip.Addr, pattern *regexp.Regexp) (int, string, error) {
	if nodeIP.IsValid() {
		for _, i := range ifaces {
			for _, a := range i.Addrs {
				if a == nodeIP {
					return i.MTU, i.Name, nil
				}
			}
		}
	}
	if pattern == nil {
		pattern = DefaultMTUIfacePattern
	}
	best, name := 0, ""
	for _, i := range ifaces {
		if i.MTU > 0 && pattern.MatchString(i.Name) && (best == 0 || i.MTU < best) {
			best, name = i.MTU, i.Name
		}
	}
	if best == 0 {
		return 0, "", fmt.Errorf("no interface carries %v and none matches %s", nodeIP, pattern)
	}
	return best, name, nil
}

// HostMTU reads the interfaces through the Manager's handle and applies
// SelectHostMTU.
func (m *Manager) HostMTU(nodeIP netip.Addr, pattern *regexp.Regexp) (int, string, error) {
	links, err := m.nl.LinkList()
	if err != nil {
		return 0, "", fmt.Errorf("list links: %w", err)
	}
	addrs, err := m.nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return 0, "", fmt.Errorf("list addresses: %w", err)
	}
	byIndex := map[int][]netip.Addr{}
	for _, a := range addrs {
		if p, ok := prefixOf(a.IPNet); ok {
			byIndex[a.LinkIndex] = append(byIndex[a.LinkIndex], p.Addr())
		}
	}
	ifaces := make([]Iface, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		ifaces = append(ifaces, Iface{Name: a.Name, MTU: a.MTU, Addrs: byIndex[a.Index]})
	}
	return SelectHostMTU(ifaces, nodeIP, pattern)
}
