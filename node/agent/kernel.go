package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/vishvananda/netlink"

	"github.com/opencalico/calicoctl/node/nat"
	"github.com/opencalico/calicoctl/node/plan"
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
	probe  plan.Probe

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
	return &KernelDataplane{opts: opts, log: log, routes: rs, tun: tm, vteps: tm.NewVTEPSyncer(), nat: ns, probe: kernelProbe{tm}, ifindex: map[string]int{}}, nil
}

// Apply converges the kernel on the snapshot: it learns the host facts,
// computes the plan and hands each writer its slice.
func (d *KernelDataplane) Apply(ctx context.Context, s *Snapshot) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	want := plan.Plan(s, d.facts(s))
	var errs []error
	d.writeTunnels(ctx, want.Tunnels)
	if err := d.writeVXLAN(ctx, want.VXLAN); err != nil {
		errs = append(errs, err)
	}
	if err := d.writeRoutes(want.Routes); err != nil {
		errs = append(errs, err)
	}
	if err := d.nat.Apply(ctx, want.NAT); err != nil {
		errs = append(errs, fmt.Errorf("nat: %w", err))
	}
	return errors.Join(errs...)
}

// facts learns what the plan needs from the host: whether IPIP works (once,
// when an enabled pool first uses it) and the MTU of the node's interface.
func (d *KernelDataplane) facts(s *Snapshot) plan.HostFacts {
	f := plan.HostFacts{NodeIP: d.opts.NodeIP}
	if s.IPIP && d.ipipState == "" {
		if ok, reason := d.probe.IPIPSupported(); ok {
			d.ipipState = "ok"
		} else {
			d.ipipState = reason
			d.log.Error("IPIP pools are configured but this kernel cannot make IPIP tunnels; IPIP routes are not programmed (VXLAN and unencapsulated pools keep working)", "reason", reason)
		}
	}
	f.IPIP = d.ipipState == "ok"
	if d.opts.NodeIP.IsValid() {
		if m, err := d.probe.HostMTU(d.opts.NodeIP); err == nil && m > 0 {
			f.HostMTU = m
		}
	}
	return f
}

// kernelProbe is the plan.Probe of the current network namespace.
type kernelProbe struct{ tun *tunnel.Manager }

func (p kernelProbe) HostMTU(nodeIP netip.Addr) (int, error) {
	m, _, err := p.tun.HostMTU(nodeIP, nil)
	return m, err
}

func (kernelProbe) IPIPSupported() (bool, string) { return tunnel.IPIPSupported() }

var _ plan.Probe = kernelProbe{}

// writeTunnels records the pod MTU and ensures tunl0 when the plan wants it.
func (d *KernelDataplane) writeTunnels(ctx context.Context, want plan.TunnelSet) {
	d.writeMTU(want.MTUs.Pod)
	if want.IPIP == nil {
		return
	}
	if d.ipipCfg != nil && *d.ipipCfg == *want.IPIP && !d.forceIPIP {
		return // unchanged: leave tunl0 and the routes through it alone
	}
	if err := d.tun.EnsureIPIP(ctx, *want.IPIP); err != nil {
		d.log.Warn("ipip device", "error", err)
		return
	}
	cfg := *want.IPIP
	d.ipipCfg = &cfg
	d.forceIPIP = false
	d.routes.LinkChanged(tunnel.IPIPDevice)
}

// writeVXLAN ensures vxlan.calico when the plan wants it, then the remote
// VTEPs' FDB and neighbour entries.
func (d *KernelDataplane) writeVXLAN(ctx context.Context, want plan.VXLANSet) error {
	if dev := want.Device; dev != nil && (d.vxlanCfg == nil || *d.vxlanCfg != *dev || d.forceDev) {
		if err := d.tun.EnsureVXLAN(ctx, *dev); err != nil {
			return fmt.Errorf("vxlan device: %w", err)
		}
		cfg := *dev
		d.vxlanCfg = &cfg
		d.forceDev = false
		d.routes.LinkChanged(tunnel.VXLANDevice)
		d.vteps.Resync()
	}
	if err := d.vteps.Apply(want.FDB, want.Neighbors); err != nil {
		return fmt.Errorf("vxlan peers: %w", err)
	}
	return nil
}

// writeRoutes converges the main table on the plan's routes.
func (d *KernelDataplane) writeRoutes(want plan.RouteSet) error {
	d.routes.SetOwnedCIDRs(want.Owned)
	d.noticeWorkloadLinks(want.Links)
	if err := d.routes.Apply(want.Routes); err != nil {
		return fmt.Errorf("routes: %w", err)
	}
	return nil
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
func (d *KernelDataplane) noticeWorkloadLinks(links []string) {
	seen := make(map[string]bool, len(links))
	for _, name := range links {
		seen[name] = true
		idx := 0
		if l, err := netlink.LinkByName(name); err == nil {
			idx = l.Attrs().Index
		}
		if d.ifindex[name] != idx {
			d.ifindex[name] = idx
			d.routes.LinkChanged(name)
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
