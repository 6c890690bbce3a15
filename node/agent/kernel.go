package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/opencalico/calicoctl/node/bgp"
	"github.com/opencalico/calicoctl/node/health"
	"github.com/opencalico/calicoctl/node/nat"
	"github.com/opencalico/calicoctl/node/plan"
	"github.com/opencalico/calicoctl/node/reconcile"
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
	// Resync is each writer's full-resync period (default 90s, Felix's
	// routeRefreshInterval).
	Resync time.Duration
	// Debounce is each writer's least time between two writes (default
	// 100ms): the first change after a quiet period is written at once,
	// a burst is coalesced.
	Debounce time.Duration
	// Health receives one component per writer (dataplane-routes, ...);
	// nil: none.
	Health *health.Server
	Logger *slog.Logger
}

// KernelDataplane programs the current network namespace. Apply computes
// the plan (node/plan) and hands each writer its slice; the writers (routes,
// VXLAN, tunnels and MTU, NAT) are reconcilers (node/reconcile), each in its
// own goroutine, so a slow or failing writer never delays another.
type KernelDataplane struct {
	opts  KernelOptions
	log   *slog.Logger
	probe plan.Probe

	routesR *reconcile.Reconciler[routeInput]
	vxlanR  *reconcile.Reconciler[plan.VXLANSet]
	tunR    *reconcile.Reconciler[plan.TunnelSet]
	natR    *reconcile.Reconciler[nat.Desired]

	mu        sync.Mutex
	ipipState string // "", "ok", or the reason IPIP is unsupported
	routeIn   routeInput
	synced    bool // every writer has written a plan once

	stop func()
	done sync.WaitGroup
}

// NewKernelDataplane opens the netlink handles and the NAT table writer and
// starts the writers; Close stops them.
func NewKernelDataplane(opts KernelOptions) (*KernelDataplane, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.Resync <= 0 {
		opts.Resync = reconcile.DefaultResync
	}
	// BGP-learned routes carry BIRD's protocol (12), ours alone as upstream's
	// BIRD's were: adopted after a restart, removed when no longer learned.
	rs, err := routes.NewSyncer(routes.SyncerOptions{Logger: log,
		Protocols:          []int{routes.ProtocolCluster, routes.ProtocolBoot, bgp.RouteProtocol},
		ExclusiveProtocols: []int{routes.ProtocolCluster, bgp.RouteProtocol}})
	if err != nil {
		return nil, fmt.Errorf("route syncer: %w", err)
	}
	// One netlink handle per goroutine using it.
	var tms [3]*tunnel.Manager
	for i := range tms {
		if tms[i], err = tunnel.New(tunnel.Options{Logger: log}); err != nil {
			return nil, err
		}
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
	var d *KernelDataplane
	// A recreated device loses its routes: the route writer writes them again.
	kickRoutes := func() { d.routesR.Kick() }
	w := writeFuncs{
		routes:  (&routeWriter{routes: rs, ifindex: map[string]int{}}).write,
		vxlan:   (&vxlanWriter{tun: tms[1], vteps: tms[1].NewVTEPSyncer(), routes: rs, linkChanged: kickRoutes}).write,
		tunnels: (&tunnelWriter{tun: tms[2], routes: rs, mtuFile: opts.MTUFile, log: log, linkChanged: kickRoutes}).write,
		nat:     (&natWriter{nat: ns}).write,
	}
	d = startDataplane(opts, log, kernelProbe{tms[0]}, w)
	return d, nil
}

// writeFuncs are the four kernel writers.
type writeFuncs struct {
	routes  reconcile.WriteFunc[routeInput]
	vxlan   reconcile.WriteFunc[plan.VXLANSet]
	tunnels reconcile.WriteFunc[plan.TunnelSet]
	nat     reconcile.WriteFunc[nat.Desired]
}

// startDataplane starts one reconciler per writer.
func startDataplane(opts KernelOptions, log *slog.Logger, probe plan.Probe, w writeFuncs) *KernelDataplane {
	d := &KernelDataplane{opts: opts, log: log, probe: probe}
	cfg := func(name string) reconcile.Config {
		c := reconcile.Config{Name: name, Debounce: opts.Debounce, Resync: opts.Resync, Logger: log}
		if opts.Health != nil {
			// A writer reports at least every resync period.
			c.Health = opts.Health.Register("dataplane-"+name, health.Reports{Live: true, Ready: true}, 2*opts.Resync+30*time.Second)
		}
		return c
	}
	d.routesR = reconcile.New(cfg("routes"), w.routes)
	d.vxlanR = reconcile.New(cfg("vxlan"), w.vxlan)
	d.tunR = reconcile.New(cfg("tunnels"), w.tunnels)
	d.natR = reconcile.New(cfg("nat"), w.nat)

	ctx, cancel := context.WithCancel(context.Background())
	d.stop = cancel
	for _, run := range []func(context.Context) error{d.routesR.Run, d.vxlanR.Run, d.tunR.Run, d.natR.Run} {
		d.done.Add(1)
		go func() {
			defer d.done.Done()
			_ = run(ctx) // returns when ctx ends
		}()
	}
	return d
}

// Apply learns the host facts, computes the plan and hands each writer its
// slice. Until every writer has written a plan once it waits for them and
// returns their errors (so "in sync" means programmed); afterwards it
// returns at once and the writers retry and report health on their own.
func (d *KernelDataplane) Apply(ctx context.Context, in plan.Input) error {
	d.mu.Lock()
	want := in.Plan(d.facts(in))
	d.routeIn = d.routeIn.with(routes.SourcePlan, want.Routes.Routes)
	d.routeIn.owned, d.routeIn.links = want.Routes.Owned, want.Routes.Links
	d.routesR.Set(d.routeIn)
	synced := d.synced
	d.mu.Unlock()

	vxlanGen, tunGen, natGen := d.vxlanR.Set(want.VXLAN), d.tunR.Set(want.Tunnels), d.natR.Set(want.NAT)
	if synced {
		return nil
	}
	// The first time, devices first: routes through a device that does not
	// exist yet wait for it, so the routes are handed over again once the
	// devices are there and "in sync" means all of it is programmed.
	errs := []error{d.vxlanR.Wait(ctx, vxlanGen), d.tunR.Wait(ctx, tunGen), d.natR.Wait(ctx, natGen)}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	d.mu.Lock()
	routeGen := d.routesR.Set(d.routeIn)
	d.mu.Unlock()
	if err := d.routesR.Wait(ctx, routeGen); err != nil {
		return err
	}
	d.mu.Lock()
	d.synced = true
	d.mu.Unlock()
	return nil
}

// SetRoutes replaces the routes of one source other than the plan (BGP):
// the route writer merges all sources, the plan winning a destination.
// Routes carry the source's protocol; the writer removes only routes it
// owns.
func (d *KernelDataplane) SetRoutes(source string, rs []routes.Route) {
	if source == routes.SourcePlan {
		return // the plan's routes come from Apply
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.routeIn = d.routeIn.with(source, rs)
	if source == SourceBGP {
		d.routeIn.bgpReported = true
	}
	d.routesR.Set(d.routeIn)
}

// facts learns what the plan needs from the host: whether IPIP works (once,
// when an enabled pool first uses it) and the MTU of the node's interface.
func (d *KernelDataplane) facts(in plan.Input) plan.HostFacts {
	f := plan.HostFacts{NodeIP: d.opts.NodeIP}
	if in.UsesIPIP() && d.ipipState == "" {
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

// IPIPStatus is "" (not needed yet), "ok", or why IPIP is unavailable.
func (d *KernelDataplane) IPIPStatus() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ipipState
}

// Resync asks every writer for a full rewrite now (each also does one
// every Resync period on its own).
func (d *KernelDataplane) Resync() {
	d.routesR.Resync()
	d.vxlanR.Resync()
	d.tunR.Resync()
	d.natR.Resync()
}

// Close stops the writers and leaves everything programmed (a restarted
// agent adopts it).
func (d *KernelDataplane) Close() error {
	d.stop()
	d.done.Wait()
	return nil
}

// routeInput is the route writer's desired state: routes by source, and
// the plan's owned pool CIDRs and workload devices.
type routeInput struct {
	sources map[string][]routes.Route
	owned   []netip.Prefix
	links   []string
	// bgpReported: the BGP source has handed its routes over once; until
	// then the BGP-learned routes in the kernel (protocol 12, from before a
	// restart) are kept, not withdrawn.
	bgpReported bool
}

// with returns a copy of in with source's routes replaced (the reconciler
// may hold the previous value).
func (in routeInput) with(source string, rs []routes.Route) routeInput {
	in.sources = maps.Clone(in.sources)
	if in.sources == nil {
		in.sources = map[string][]routes.Route{}
	}
	in.sources[source] = rs
	return in
}
