package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"github.com/vishvananda/netlink"

	"github.com/opencalico/calicoctl/node/nat"
	"github.com/opencalico/calicoctl/node/routes"
	"github.com/opencalico/calicoctl/node/tunnel"
)

// KernelOptions configure the kernel dataplane.
type KernelOptions struct {
	NodeName string
	// NodeIP is the node's IPv4 address: the VXLAN parent and source.
	NodeIP netip.Addr
	// NATTable overrides our nftables table name (tests).
	NATTable string
	// MTUFile receives the pod MTU for the CNI plugin (default
	// /var/lib/calico/mtu, as calico-node; "-" disables).
	MTUFile string
	Logger  *slog.Logger
}

// KernelDataplane writes routes (netlink), tunnel devices, VXLAN peers and
// NAT (nftables) in the current network namespace.
type KernelDataplane struct {
	opts   KernelOptions
	log    *slog.Logger
	routes *routes.Syncer
	tun    *tunnel.Manager
	vteps  *tunnel.VTEPSyncer
	nat    *nat.Syncer

	mu        sync.Mutex
	vxlanCfg  *tunnel.VXLANConfig // last ensured; nil = none
	ipipState string              // "", "ok", or the reason it is unsupported
	ifindex   map[string]int      // workload device -> ifindex last seen
	forceDev  bool
	ipipCfg   *tunnel.IPIPConfig // last ensured; nil = none
	forceIPIP bool
	podMTU    int // last written to MTUFile
}

// NewKernelDataplane opens the netlink handles and the NAT table writer.
func NewKernelDataplane(opts KernelOptions) (*KernelDataplane, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	rs, err := routes.NewSyncer(routes.SyncerOptions{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("route syncer: %w", err)
	}
	tm, err := tunnel.New(tunnel.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	ns, err := nat.NewSyncer(nat.Config{Table: opts.NATTable}, nat.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	for _, p := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
		if err := os.WriteFile(p, []byte("1"), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Warn("cannot enable forwarding", "sysctl", p, "error", err)
		}
	}
	return &KernelDataplane{opts: opts, log: log, routes: rs, tun: tm, vteps: tm.NewVTEPSyncer(), nat: ns, ifindex: map[string]int{}}, nil
}

// Apply converges the kernel on the snapshot.
func (d *KernelDataplane) Apply(ctx context.Context, s *Snapshot) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	d.checkIPIP(s) // before the MTUs: the pod MTU depends on it
	mtus := d.mtus(s)
	d.writeMTU(mtus.Pod)
	if err := d.ensureVXLAN(ctx, s, mtus); err != nil {
		errs = append(errs, err)
	}
	d.ensureIPIP(ctx, s, mtus)

	desired := routes.Compute(s.Routes, routes.Options{Logger: d.log})
	if s.IPIP && d.ipipState != "ok" {
		// No tunl0 on this kernel: routes through it cannot be written and
		// would fail every round; leave them out (logged once above).
		desired.Routes = slices.DeleteFunc(desired.Routes, func(r routes.Route) bool { return r.Dev == tunnel.IPIPDevice })
	}
	var owned []netip.Prefix
	for _, p := range s.Routes.Pools {
		owned = append(owned, p.CIDR)
	}
	d.routes.SetOwnedCIDRs(owned)
	d.noticeWorkloadLinks(s)
	if err := d.routes.Apply(desired.Routes); err != nil {
		errs = append(errs, fmt.Errorf("routes: %w", err))
	}
	if err := d.vteps.Apply(desired.FDB, desired.Neighbors); err != nil {
		errs = append(errs, fmt.Errorf("vxlan peers: %w", err))
	}
	if err := d.nat.Apply(ctx, s.NAT); err != nil {
		errs = append(errs, fmt.Errorf("nat: %w", err))
	}
	return errors.Join(errs...)
}

// mtus derives tunnel MTUs from the interface carrying the node address.
func (d *KernelDataplane) mtus(s *Snapshot) tunnel.TunnelMTUs {
	host := 1500
	if d.opts.NodeIP.IsValid() {
		if m, _, err := d.tun.HostMTU(d.opts.NodeIP, nil); err == nil && m > 0 {
			host = m
		}
	}
	m := tunnel.MTUsFor(host, tunnel.Encaps{IPIP: s.IPIP && d.ipipState == "ok", VXLAN: s.VXLAN})
	// Configured MTUs (FelixConfiguration vxlanMTU/ipipMTU, FELIX_*) win
	// over the derived ones; the pod MTU follows them.
	if s.Felix.VXLANMTU > 0 {
		m.VXLAN = s.Felix.VXLANMTU
	}
	if s.Felix.IPIPMTU > 0 {
		m.IPIP = s.Felix.IPIPMTU
	}
	m.Pod = m.Host
	if s.VXLAN && m.VXLAN < m.Pod {
		m.Pod = m.VXLAN
	}
	if s.IPIP && d.ipipState == "ok" && m.IPIP < m.Pod {
		m.Pod = m.IPIP
	}
	return m
}

func (d *KernelDataplane) ensureVXLAN(ctx context.Context, s *Snapshot, mtus tunnel.TunnelMTUs) error {
	if !s.VXLAN || !s.Local.IPv4VXLANTunnelAddr.IsValid() {
		return nil // an unused device is left alone (routes through it are withdrawn)
	}
	cfg := tunnel.VXLANConfig{
		ParentAddr: d.opts.NodeIP, MTU: mtus.VXLAN, MAC: s.Local.VXLANTunnelMACAddr,
		VNI: s.Felix.VXLANVNI, Port: s.Felix.VXLANPort,
		Addr: netip.PrefixFrom(s.Local.IPv4VXLANTunnelAddr, 32),
	}
	if d.vxlanCfg != nil && *d.vxlanCfg == cfg && !d.forceDev {
		return nil
	}
	if err := d.tun.EnsureVXLAN(ctx, cfg); err != nil {
		return fmt.Errorf("vxlan device: %w", err)
	}
	d.vxlanCfg = &cfg
	d.forceDev = false
	d.routes.LinkChanged(tunnel.VXLANDevice)
	d.vteps.Resync()
	return nil
}

// checkIPIP learns once whether this kernel can make IPIP tunnels.
func (d *KernelDataplane) checkIPIP(s *Snapshot) {
	if !s.IPIP || d.ipipState != "" {
		return
	}
	if ok, reason := tunnel.IPIPSupported(); ok {
		d.ipipState = "ok"
	} else {
		d.ipipState = reason
		d.log.Error("IPIP pools are configured but this kernel cannot make IPIP tunnels; IPIP routes are not programmed (VXLAN and unencapsulated pools keep working)", "reason", reason)
	}
}

func (d *KernelDataplane) ensureIPIP(ctx context.Context, s *Snapshot, mtus tunnel.TunnelMTUs) {
	if !s.IPIP || d.ipipState != "ok" {
		return
	}
	cfg := tunnel.IPIPConfig{MTU: mtus.IPIP}
	if s.Local.IPv4IPIPTunnelAddr.IsValid() {
		cfg.Addr = netip.PrefixFrom(s.Local.IPv4IPIPTunnelAddr, 32)
	}
	if d.ipipCfg != nil && *d.ipipCfg == cfg && !d.forceIPIP {
		return // unchanged: leave tunl0 and the routes through it alone
	}
	if err := d.tun.EnsureIPIP(ctx, cfg); err != nil {
		d.log.Warn("ipip device", "error", err)
		return
	}
	d.ipipCfg = &cfg
	d.forceIPIP = false
	d.routes.LinkChanged(tunnel.IPIPDevice)
}

// writeMTU records the pod MTU for the CNI plugin when it changes.
func (d *KernelDataplane) writeMTU(mtu int) {
	path := d.opts.MTUFile
	if path == "" {
		path = "/var/lib/calico/mtu"
	}
	if path == "-" || mtu == d.podMTU {
		return
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		d.log.Warn("cannot write the pod MTU file", "path", path, "error", err)
		return
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(mtu)), 0o644); err != nil {
		d.log.Warn("cannot write the pod MTU file", "path", path, "error", err)
		return
	}
	d.podMTU = mtu
	d.log.Info("pod MTU", "mtu", mtu, "file", path)
}

// IPIPStatus is "" (not needed yet), "ok", or why IPIP is unavailable.
func (d *KernelDataplane) IPIPStatus() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ipipState
}

// noticeWorkloadLinks tells the route syncer about workload devices that
// appeared or were recreated since the last Apply.
func (d *KernelDataplane) noticeWorkloadLinks(s *Snapshot) {
	seen := map[string]bool{}
	for _, w := range s.Routes.Workloads {
		if seen[w.Iface] {
			continue
		}
		seen[w.Iface] = true
		idx := 0
		if l, err := netlink.LinkByName(w.Iface); err == nil {
			idx = l.Attrs().Index
		}
		if d.ifindex[w.Iface] != idx {
			d.ifindex[w.Iface] = idx
			d.routes.LinkChanged(w.Iface)
		}
	}
	for name := range d.ifindex {
		if !seen[name] {
			delete(d.ifindex, name)
		}
	}
}

// Resync re-reads the kernel on the next Apply.
func (d *KernelDataplane) Resync() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.routes.Resync(); err != nil {
		d.log.Warn("route resync", "error", err)
	}
	d.vteps.Resync()
	d.nat.ForceResync()
	d.forceDev = true
	d.forceIPIP = true
}

// Close leaves everything programmed (a restarted agent adopts it).
func (d *KernelDataplane) Close() error { return nil }
