package cni

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/opencalico/calicoctl/internal/netlinksafe"
)

// LinuxDataplane wires veths with netlink handles bound to namespaces: the
// host side is created directly in HostNS and the peer directly in the
// container's namespace, so no interface is ever renamed or moved.
type LinuxDataplane struct {
	// HostNS is where host-side interfaces live (tests pass a scratch netns).
	HostNS netns.NsHandle
}

var _ Dataplane = (*LinuxDataplane)(nil)

// NewLinuxDataplane returns a dataplane whose host is hostNS; a closed or
// zero handle means the calling process's namespace.
func NewLinuxDataplane(hostNS netns.NsHandle) *LinuxDataplane {
	return &LinuxDataplane{HostNS: hostNS}
}

func defaultDataplane() Dataplane { return &LinuxDataplane{HostNS: netns.None()} }

// hostNS returns the host namespace handle and a closer.
func (d *LinuxDataplane) hostNS() (netns.NsHandle, func(), error) {
	if d.HostNS.IsOpen() {
		return d.HostNS, func() {}, nil
	}
	h, err := netns.GetFromPath(fmt.Sprintf("/proc/%d/ns/net", os.Getpid()))
	if err != nil {
		return 0, nil, fmt.Errorf("opening the host network namespace: %w", err)
	}
	return h, func() { _ = h.Close() }, nil
}

// Add implements Dataplane.
func (d *LinuxDataplane) Add(ctx context.Context, ep Endpoint) (string, error) {
	hns, closeHost, err := d.hostNS()
	if err != nil {
		return "", err
	}
	defer closeHost()
	cns, err := netns.GetFromPath(ep.Netns)
	if err != nil {
		return "", fmt.Errorf("opening container netns %s: %w", ep.Netns, err)
	}
	defer cns.Close()
	host, err := netlink.NewHandleAt(hns, unix.NETLINK_ROUTE)
	if err != nil {
		return "", fmt.Errorf("netlink in the host namespace: %w", err)
	}
	defer host.Close()
	cont, err := netlink.NewHandleAt(cns, unix.NETLINK_ROUTE)
	if err != nil {
		return "", fmt.Errorf("netlink in the container namespace: %w", err)
	}
	defer cont.Close()

	if old, err := host.LinkByName(ep.HostIf); err == nil {
		if err := host.LinkDel(old); err != nil {
			return "", fmt.Errorf("removing leftover %s: %w", ep.HostIf, err)
		}
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: ep.HostIf, MTU: ep.MTU, HardwareAddr: HostMAC},
		PeerName:         ep.ContainerIf,
		PeerNamespace:    netlink.NsFd(int(cns)),
		PeerHardwareAddr: ep.ContainerMAC,
		PeerMTU:          uint32(ep.MTU),
	}
	if ep.NumQueues > 0 {
		veth.NumTxQueues, veth.NumRxQueues = ep.NumQueues, ep.NumQueues
		veth.PeerNumTxQueues, veth.PeerNumRxQueues = uint32(ep.NumQueues), uint32(ep.NumQueues)
	}
	if err := host.LinkAdd(veth); err != nil {
		return "", fmt.Errorf("creating veth %s/%s: %w", ep.HostIf, ep.ContainerIf, err)
	}
	ok := false
	defer func() {
		if !ok {
			if l, err := host.LinkByName(ep.HostIf); err == nil {
				_ = host.LinkDel(l)
			}
		}
	}()
	v4, v6 := families(ep.IPs)
	if err := inNetNS(hns, func() error { return hostSysctls(ep.HostIf, v4, v6) }); err != nil {
		return "", err
	}
	hl, err := host.LinkByName(ep.HostIf)
	if err != nil {
		return "", fmt.Errorf("finding %s: %w", ep.HostIf, err)
	}
	if err := host.LinkSetUp(hl); err != nil {
		return "", fmt.Errorf("setting %s up: %w", ep.HostIf, err)
	}
	if v6 {
		if err := inNetNS(cns, func() error {
			return writeSysctls(map[string]string{"net/ipv6/conf/" + ep.ContainerIf + "/accept_dad": "0"})
		}); err != nil {
			return "", err
		}
	}
	mac, err := d.containerSide(cont, ep, v4, v6)
	if err != nil {
		return "", err
	}
	for _, ip := range ep.IPs {
		r := &netlink.Route{LinkIndex: hl.Attrs().Index, Dst: ipNet(ip), Scope: netlink.SCOPE_LINK, Protocol: RouteProtocolBoot}
		if err := host.RouteReplace(r); err != nil {
			return "", fmt.Errorf("host route %s dev %s: %w", ip, ep.HostIf, err)
		}
	}
	ok = true
	return mac, nil
}

// containerSide addresses the container interface and adds its routes.
func (d *LinuxDataplane) containerSide(cont *netlink.Handle, ep Endpoint, v4, v6 bool) (string, error) {
	cl, err := cont.LinkByName(ep.ContainerIf)
	if err != nil {
		return "", fmt.Errorf("finding %s in the container: %w", ep.ContainerIf, err)
	}
	if err := cont.LinkSetUp(cl); err != nil {
		return "", fmt.Errorf("setting %s up: %w", ep.ContainerIf, err)
	}
	for _, ip := range ep.IPs {
		a := &netlink.Addr{IPNet: ipNet(ip)}
		if ip.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := cont.AddrReplace(cl, a); err != nil {
			return "", fmt.Errorf("address %s on %s: %w", ip, ep.ContainerIf, err)
		}
	}
	idx := cl.Attrs().Index
	var routes []*netlink.Route
	if v4 {
		gw := ipNet(netip.PrefixFrom(GatewayIPv4, 32))
		routes = append(routes,
			&netlink.Route{LinkIndex: idx, Dst: gw, Scope: netlink.SCOPE_LINK},
			&netlink.Route{LinkIndex: idx, Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, Gw: gw.IP})
	}
	if v6 {
		routes = append(routes, &netlink.Route{LinkIndex: idx, Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}, Gw: net.IP(GatewayIPv6.AsSlice())})
	}
	for _, r := range routes {
		if err := cont.RouteReplace(r); err != nil {
			return "", fmt.Errorf("container route %s: %w", r, err)
		}
	}
	return cl.Attrs().HardwareAddr.String(), nil
}

// Del implements Dataplane.
func (d *LinuxDataplane) Del(_ context.Context, hostIf, netnsPath, containerIf string) error {
	hns, closeHost, err := d.hostNS()
	if err != nil {
		return err
	}
	defer closeHost()
	host, err := netlink.NewHandleAt(hns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in the host namespace: %w", err)
	}
	defer host.Close()
	l, err := host.LinkByName(hostIf)
	if err == nil {
		if err := host.LinkDel(l); err != nil && !isNotFound(err) {
			return fmt.Errorf("deleting %s: %w", hostIf, err)
		}
		return nil
	}
	if !isNotFound(err) {
		return fmt.Errorf("finding %s: %w", hostIf, err)
	}
	// The host side is gone; remove a container side left behind, if any.
	if netnsPath == "" {
		return nil
	}
	cns, err := netns.GetFromPath(netnsPath)
	if err != nil {
		return nil // the namespace is gone, and its interfaces with it
	}
	defer cns.Close()
	cont, err := netlink.NewHandleAt(cns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in the container namespace: %w", err)
	}
	defer cont.Close()
	if cl, err := cont.LinkByName(containerIf); err == nil && cl.Type() == "veth" {
		if err := cont.LinkDel(cl); err != nil && !isNotFound(err) {
			return fmt.Errorf("deleting %s in the container: %w", containerIf, err)
		}
	}
	return nil
}

// Check implements Dataplane.
func (d *LinuxDataplane) Check(_ context.Context, ep Endpoint) error {
	hns, closeHost, err := d.hostNS()
	if err != nil {
		return err
	}
	defer closeHost()
	host, hl, err := openLink(hns, ep.HostIf, "host")
	if err != nil {
		return err
	}
	defer host.Close()
	if hl.Attrs().Flags&net.FlagUp == 0 {
		return fmt.Errorf("host interface %s is down", ep.HostIf)
	}
	cns, err := netns.GetFromPath(ep.Netns)
	if err != nil {
		return fmt.Errorf("container netns %s: %w", ep.Netns, err)
	}
	defer cns.Close()
	cont, cl, err := openLink(cns, ep.ContainerIf, "container")
	if err != nil {
		return err
	}
	defer cont.Close()
	addrs, err := netlinksafe.Dump(func() ([]netlink.Addr, error) { return cont.AddrList(cl, netlink.FAMILY_ALL) })
	if err != nil {
		return fmt.Errorf("addresses of %s: %w", ep.ContainerIf, err)
	}
	for _, ip := range ep.IPs {
		if !slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IPNet.String() == ipNet(ip).String() }) {
			return fmt.Errorf("container interface %s lacks address %s", ep.ContainerIf, ip)
		}
	}
	return nil
}

// openLink opens a netlink handle in ns and looks the interface name up
// through it; side ("host", "container") names it in the error. The caller
// closes the handle.
func openLink(ns netns.NsHandle, name, side string) (*netlink.Handle, netlink.Link, error) {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, nil, err
	}
	l, err := h.LinkByName(name)
	if err != nil {
		h.Close()
		return nil, nil, fmt.Errorf("%s interface %s: %w", side, name, err)
	}
	return h, l, nil
}

func families(ips []netip.Prefix) (v4, v6 bool) {
	for _, ip := range ips {
		if ip.Addr().Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	return v4, v6
}

func ipNet(p netip.Prefix) *net.IPNet {
	a := p.Addr()
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(p.Bits(), a.BitLen())}
}

func isNotFound(err error) bool {
	var lnf netlink.LinkNotFoundError
	return errors.As(err, &lnf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT)
}

// hostSysctls are the host-side settings of the pod connectivity trick.
func hostSysctls(ifName string, v4, v6 bool) error {
	s := map[string]string{}
	if v4 {
		s["net/ipv4/conf/"+ifName+"/proxy_arp"] = "1"
		s["net/ipv4/neigh/"+ifName+"/proxy_delay"] = "0"
		s["net/ipv4/conf/"+ifName+"/forwarding"] = "1"
	}
	if v6 {
		s["net/ipv6/conf/"+ifName+"/proxy_ndp"] = "1"
		s["net/ipv6/conf/"+ifName+"/forwarding"] = "1"
		s["net/ipv6/conf/"+ifName+"/accept_dad"] = "0"
		s["net/ipv6/conf/"+ifName+"/accept_ra"] = "0"
	}
	return writeSysctls(s)
}

// writeSysctls writes /proc/sys entries of the calling thread's namespace.
func writeSysctls(s map[string]string) error {
	for k, v := range s {
		if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}

// inNetNS runs fn on a locked OS thread switched into ns (for /proc/sys
// writes, which follow the thread's namespace). It runs on its own goroutine:
// if switching back fails, the goroutine exits with the thread still locked
// and Go discards the thread rather than reuse it in the wrong namespace.
func inNetNS(ns netns.NsHandle, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("reading the thread's netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("entering netns: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			done <- errors.Join(ferr, fmt.Errorf("leaving netns: %w", err)) // thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}
