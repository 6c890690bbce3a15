// Package autodetect finds the node's IPv4/IPv6 address the way calico-node
// does (IP_AUTODETECTION_METHOD). The host is injected (Host), so every
// method is tested without touching the machine; System reads the real one.
package autodetect

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"

	"github.com/opencalico/calicoctl/node/config"
)

// Interface is one network interface and its addresses (with prefix length).
type Interface struct {
	Name  string
	Up    bool
	Addrs []netip.Prefix
}

// Host is what detection needs from the machine.
type Host interface {
	// Interfaces in the kernel's index order.
	Interfaces() ([]Interface, error)
	// SourceFor returns the local address the kernel would use to reach dst.
	SourceFor(ctx context.Context, dst netip.Addr) (netip.Addr, error)
	// ResolveHost resolves a hostname (can-reach=<hostname>).
	ResolveHost(ctx context.Context, name string) ([]netip.Addr, error)
}

// DefaultExcludes are the interfaces calico-node never picks an address from.
var DefaultExcludes = []string{
	`^docker.*`, `^cbr.*`, `^dummy.*`, `^podman.*`, `^virbr.*`, `^lxcbr.*`, `^veth.*`, `^lo`,
	`^br-.*`, `^cali.*`, `^tunl.*`, `^flannel.*`, `^kube-ipvs.*`, `^cni.*`, `^vxlan\.calico.*`,
	`^vxlan-v6\.calico.*`, `^wireguard\.cali.*`, `^wg-v6\.cali.*`, `^nodelocaldns.*`,
}

var defaultExcludeRE = compileAll(DefaultExcludes)

func compileAll(res []string) []*regexp.Regexp {
	out := make([]*regexp.Regexp, 0, len(res))
	for _, r := range res {
		out = append(out, regexp.MustCompile(r))
	}
	return out
}

func matchesAny(res []*regexp.Regexp, s string) bool {
	for _, r := range res {
		if r.MatchString(s) {
			return true
		}
	}
	return false
}

// Result is a detected address and how it was found.
type Result struct {
	Addr      netip.Prefix // address with the interface's prefix length
	Interface string
	Reason    string // for the log: "first-found on eth0", ...
}

// K8sInternalIP returns the Kubernetes Node's InternalIP addresses for the
// kubernetes-internal-ip method.
type K8sInternalIP func(ctx context.Context) ([]netip.Addr, error)

// Detect runs method for family 4 or 6.
func Detect(ctx context.Context, h Host, m config.Method, family int, k8s K8sInternalIP) (Result, error) {
	ifaces, err := h.Interfaces()
	if err != nil {
		return Result{}, fmt.Errorf("listing interfaces: %w", err)
	}
	switch m.Kind {
	case "first-found":
		return firstFound(ifaces, family, nil, nil, "first-found")
	case "interface":
		return firstFound(ifaces, family, compileAll(m.Args), nil, m.String())
	case "skip-interface":
		return firstFound(ifaces, family, nil, compileAll(m.Args), m.String())
	case "cidr":
		return byCIDR(ifaces, family, m)
	case "can-reach":
		return canReach(ctx, h, ifaces, family, m)
	case "kubernetes-internal-ip":
		if k8s == nil {
			return Result{}, fmt.Errorf("kubernetes-internal-ip: no Kubernetes node to read (datastore is not Kubernetes and no kubeconfig)")
		}
		ips, err := k8s(ctx)
		if err != nil {
			return Result{}, fmt.Errorf("kubernetes-internal-ip: %w", err)
		}
		for _, ip := range ips {
			if family4(ip) == (family == 4) {
				if r, ok := findAddr(ifaces, ip); ok {
					r.Reason = "kubernetes-internal-ip " + ip.String() + " on " + r.Interface
					return r, nil
				}
				return Result{Addr: netip.PrefixFrom(ip, ip.BitLen()), Reason: "kubernetes-internal-ip " + ip.String() + " (not on a local interface)"}, nil
			}
		}
		return Result{}, fmt.Errorf("kubernetes-internal-ip: the Kubernetes node has no IPv%d InternalIP", family)
	}
	return Result{}, fmt.Errorf("unknown autodetection method %q", m.Kind)
}

func family4(a netip.Addr) bool { return a.Is4() || a.Is4In6() }

// usable reports whether a is an address calico-node would use: global
// unicast of the family (link-local and loopback never).
func usable(p netip.Prefix, family int) bool {
	a := p.Addr()
	return family4(a) == (family == 4) && a.IsGlobalUnicast()
}

func firstFound(ifaces []Interface, family int, include, skip []*regexp.Regexp, method string) (Result, error) {
	for _, i := range ifaces {
		if !i.Up || matchesAny(defaultExcludeRE, i.Name) {
			continue
		}
		if include != nil && !matchesAny(include, i.Name) {
			continue
		}
		if skip != nil && matchesAny(skip, i.Name) {
			continue
		}
		for _, a := range i.Addrs {
			if usable(a, family) {
				return Result{Addr: a, Interface: i.Name, Reason: method + " on " + i.Name}, nil
			}
		}
	}
	return Result{}, fmt.Errorf("%s: no IPv%d address found on %s", method, family, describe(ifaces, include, skip))
}

func describe(ifaces []Interface, include, skip []*regexp.Regexp) string {
	var names []string
	for _, i := range ifaces {
		if matchesAny(defaultExcludeRE, i.Name) || (include != nil && !matchesAny(include, i.Name)) || (skip != nil && matchesAny(skip, i.Name)) {
			continue
		}
		state := "up"
		if !i.Up {
			state = "down"
		}
		names = append(names, i.Name+"("+state+")")
	}
	if len(names) == 0 {
		return "any candidate interface (none left after exclusions)"
	}
	return "the candidate interfaces " + strings.Join(names, ", ")
}

func byCIDR(ifaces []Interface, family int, m config.Method) (Result, error) {
	var cidrs []netip.Prefix
	for _, a := range m.Args {
		if p, err := netip.ParsePrefix(a); err == nil {
			cidrs = append(cidrs, p.Masked())
		}
	}
	for _, i := range ifaces {
		if !i.Up {
			continue
		}
		for _, a := range i.Addrs {
			if !usable(a, family) {
				continue
			}
			for _, c := range cidrs {
				if c.Contains(a.Addr()) {
					return Result{Addr: a, Interface: i.Name, Reason: m.String() + " matched " + a.String() + " on " + i.Name}, nil
				}
			}
		}
	}
	return Result{}, fmt.Errorf("%s: no local IPv%d address inside %s", m.String(), family, strings.Join(m.Args, ", "))
}

func findAddr(ifaces []Interface, ip netip.Addr) (Result, bool) {
	for _, i := range ifaces {
		for _, a := range i.Addrs {
			if a.Addr() == ip {
				return Result{Addr: a, Interface: i.Name}, true
			}
		}
	}
	return Result{}, false
}

func canReach(ctx context.Context, h Host, ifaces []Interface, family int, m config.Method) (Result, error) {
	dest := m.Args[0]
	var targets []netip.Addr
	if a, err := netip.ParseAddr(dest); err == nil {
		targets = []netip.Addr{a}
	} else {
		addrs, err := h.ResolveHost(ctx, dest)
		if err != nil {
			return Result{}, fmt.Errorf("%s: resolving %q: %w", m.String(), dest, err)
		}
		targets = addrs
	}
	var lastErr error
	for _, t := range targets {
		if family4(t) != (family == 4) {
			continue
		}
		src, err := h.SourceFor(ctx, t)
		if err != nil {
			lastErr = err
			continue
		}
		if r, ok := findAddr(ifaces, src.Unmap()); ok {
			r.Reason = m.String() + " via " + r.Interface
			return r, nil
		}
		lastErr = fmt.Errorf("source address %s is not on any interface", src)
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("%q has no IPv%d address", dest, family)
	}
	return Result{}, fmt.Errorf("%s: %w", m.String(), lastErr)
}

// System is the real Host.
type System struct{}

// Interfaces lists the machine's interfaces.
func (System) Interfaces() ([]Interface, error) {
	nis, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := make([]Interface, 0, len(nis))
	for _, ni := range nis {
		i := Interface{Name: ni.Name, Up: ni.Flags&net.FlagUp != 0}
		addrs, err := ni.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", ni.Name, err)
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ones, _ := ipn.Mask.Size()
			i.Addrs = append(i.Addrs, netip.PrefixFrom(ip.Unmap(), ones))
		}
		out = append(out, i)
	}
	return out, nil
}

// SourceFor asks the kernel which source it would use (a connected UDP
// socket; no packet is sent).
func (System) SourceFor(ctx context.Context, dst netip.Addr) (netip.Addr, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", netip.AddrPortFrom(dst, 9).String())
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	ua, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok {
		return netip.Addr{}, fmt.Errorf("unexpected local address %v", c.LocalAddr())
	}
	return ua.AddrPort().Addr().Unmap(), nil
}

// ResolveHost resolves a name with the system resolver.
func (System) ResolveHost(ctx context.Context, name string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", name)
}
