package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime/debug"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/node/autodetect"
	"github.com/opencalico/calicoctl/node/config"
	"github.com/opencalico/calicoctl/node/health"
	"github.com/opencalico/calicoctl/node/plan"
	"github.com/opencalico/calicoctl/node/reconcile"
	"github.com/opencalico/calicoctl/node/startup"
	"github.com/opencalico/calicoctl/node/state"
)

// Dataplane programs the kernel from a plan input: the agent hands it its
// plan.Incremental, kept up to date one change at a time (a *Snapshot is
// one too). Apply must be idempotent and converge (adopting what is
// already there); the kernel one computes the plan (node/plan) and hands
// each writer its slice. The input is only valid during Apply. Resync asks for a
// full rewrite now (writers also resync periodically on their own). Close
// stops the writers but leaves the dataplane in place so a restart drops no
// traffic.
type Dataplane interface {
	Apply(ctx context.Context, in plan.Input) error
	Resync()
	Close() error
}

// Config is everything Run needs.
type Config struct {
	Env      *config.Config
	NodeName string
	// Datastore and IPAM are open connections; Run does not close them.
	Datastore datastore.Interface
	IPAM      ipam.Store
	// Kubernetes is true on the Kubernetes datastore.
	Kubernetes    bool
	ClusterType   string
	CalicoVersion string
	Host          autodetect.Host
	K8sInternalIP autodetect.K8sInternalIP
	// Dataplane; nil builds the kernel one (netlink + nftables).
	Dataplane Dataplane
	// SyncInterval is how often readiness is refreshed from local state and
	// the base of the retry delay after a failed apply (default 1s). The
	// datastore is not polled: node/state follows it through watches.
	SyncInterval time.Duration
	// ApplyInterval is the least time between two applies: a burst of
	// events is coalesced into one (default 100ms).
	ApplyInterval time.Duration
	// ResyncInterval is each kernel writer's full-resync period and how
	// often the plan is recomputed without a datastore change, picking up
	// host changes such as the MTU (default 90s, Felix's
	// routeRefreshInterval).
	ResyncInterval time.Duration
	// Health serves /liveness and /readiness; nil builds one from Env
	// (FELIX_HEALTHHOST/PORT) when FELIX_HEALTHENABLED or always when
	// HealthAddr is set.
	HealthAddr string
	Logger     *slog.Logger
	// MTUFile is where the pod MTU is written for the CNI plugin ("" =
	// /var/lib/calico/mtu, "-" = nowhere).
	MTUFile string
	// Ready is called once after the first successful sync (tests, demos).
	Ready func()
	// BGP is the node's BGP speaker, driven when the networking backend is
	// bird (nil: no BGP). Run closes it (without a Cease) when it returns.
	BGP BGPSpeaker
	// Policy programs network policy (nil: not enforced). The CLI passes
	// the nftables writer when CALICO_POLICY=enforce.
	Policy PolicyWriter
}

// Run starts the agent and blocks until ctx ends or a component fails.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = time.Second
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = 90 * time.Second
	}
	if cfg.ApplyInterval <= 0 {
		cfg.ApplyInterval = 100 * time.Millisecond
	}
	felixEnv, err := EffectiveFelix(felixVars(cfg), nil, nil)
	if err != nil {
		return err
	}
	c := client.New(cfg.Datastore)
	res, err := startup.Run(ctx, c, startup.Options{
		Config: cfg.Env, NodeName: cfg.NodeName, Host: cfg.Host, K8sInternalIP: cfg.K8sInternalIP,
		Kubernetes: cfg.Kubernetes, ClusterType: cfg.ClusterType, CalicoVersion: cfg.CalicoVersion, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("node startup: %w", err)
	}
	alloc := ipam.New(cfg.IPAM, ipam.PoolsFromDatastore(cfg.Datastore), ipam.WithLogger(log))

	hs, err := healthServer(cfg)
	if err != nil {
		return err
	}
	dp := cfg.Dataplane
	if dp == nil {
		kdp, err := NewKernelDataplane(KernelOptions{NodeName: cfg.NodeName, NodeIP: res.IPv4.Addr(), MTUFile: cfg.MTUFile,
			Resync: cfg.ResyncInterval, Health: hs, Logger: log})
		if err != nil {
			return err
		}
		dp = kdp
	}
	defer dp.Close()

	var ready *health.Reporter
	if hs != nil {
		ready = hs.Register("dataplane", health.Reports{Live: true, Ready: true}, 10*cfg.SyncInterval+30*time.Second)
	}

	fcfg := state.Config{Datastore: cfg.Datastore, Blocks: cfg.IPAM, Logger: log, ListTimeout: max(5*cfg.SyncInterval, 30*time.Second)}
	if cw, ok := cfg.Datastore.(connectivity); ok {
		fcfg.Connectivity = cw.WatchConnectivity
	}
	follower, err := state.New(fcfg)
	if err != nil {
		return err
	}

	l := &loop{cfg: cfg, felixEnv: felixEnv, f: follower, dp: dp, ready: ready, log: log, changes: newBroadcast(),
		plan: newPlanInput(cfg.NodeName, felixEnv)}
	// The tunnel addresses are a writer of their own (to the datastore):
	// once the first sync is done, a slow datastore write never delays the
	// kernel writers.
	tcfg := reconcile.Config{Name: "tunnel-addresses", Resync: -1, BackoffBase: cfg.SyncInterval, Logger: log}
	if hs != nil {
		tcfg.Health = hs.Register("tunnel-addresses", health.Reports{Live: true, Ready: true}, 0)
	}
	l.tunnels = reconcile.New(tcfg, func(ctx context.Context, _ uint64, _ bool) error {
		return l.ensureTunnels(ctx, c, alloc)
	})

	g, ctx := errgroup.WithContext(ctx)
	if hs != nil {
		g.Go(func() error { return hs.Run(ctx) })
	}
	if cfg.Policy != nil {
		pr := newPolicyRunner(cfg.NodeName, follower, cfg.Policy, hs, cfg.ResyncInterval, log)
		g.Go(func() error { return pr.run(ctx, l.changes.C) })
	}
	if cfg.BGP != nil {
		defer cfg.BGP.Close()
		b := startBGP(ctx, cfg, follower, dp, hs, log)
		g.Go(func() error { return b.run(ctx, l.changes.C) })
		startBGPStatus(ctx, g, cfg, follower, log)
	}
	g.Go(func() error { return follower.Run(ctx) })
	g.Go(func() error { return l.changes.relay(ctx, follower) })
	g.Go(func() error { return l.tunnels.Run(ctx) })
	g.Go(func() error { return l.run(ctx) })
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func healthServer(cfg Config) (*health.Server, error) {
	addr := cfg.HealthAddr
	if addr == "" {
		if cfg.Env == nil || !cfg.Env.HealthEnabled {
			return nil, nil
		}
		addr = fmt.Sprintf("%s:%d", cfg.Env.HealthHost, cfg.Env.HealthPort)
	}
	return health.NewServer(health.Config{Addr: addr}, health.WithLogger(cfg.Logger))
}

// connectivity is a datastore that can report its connection going down
// and up without sending requests (etcd).
type connectivity interface {
	WatchConnectivity(ctx context.Context, report func(up bool))
}

// loop is the agent's main loop and what it drives.
type loop struct {
	cfg      Config
	felixEnv FelixSettings
	f        *state.Follower
	dp       Dataplane
	ready    *health.Reporter
	log      *slog.Logger
	// tunnels settles the node's tunnel addresses; its input is the model
	// version that found them unsettled.
	tunnels *reconcile.Reconciler[uint64]
	// plan is the dataplane's input, kept in step with the model.
	plan *planInput
	// changes relays the follower's change signal to both the loop and the
	// tunnel writer (the follower's channel has a single consumer).
	changes *broadcast
}

// broadcast wakes every waiter on each notify: C returns a channel closed
// by the next notify.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func newBroadcast() *broadcast { return &broadcast{ch: make(chan struct{})} }

func (b *broadcast) C() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcast) notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.ch)
	b.ch = make(chan struct{})
}

// relay forwards the follower's change signal until ctx ends.
func (b *broadcast) relay(ctx context.Context, f *state.Follower) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-f.Changed():
			b.notify()
		}
	}
}

// run applies a snapshot built from the follower's model whenever the
// model changed (at most every ApplyInterval under a burst of events),
// keeps the tunnel addresses right (writing only when the model says they
// are not), and recomputes the plan every ResyncInterval without reading
// the datastore (the writers resync the kernel on their own). While the
// follower is out of step with the datastore (an outage) nothing is
// applied: the last programmed state stays and readiness reports why.
func (l *loop) run(ctx context.Context) error {
	cfg, f, ready, log := l.cfg, l.f, l.ready, l.log
	heartbeat := time.NewTicker(cfg.SyncInterval)
	defer heartbeat.Stop()
	resyncTick := time.NewTicker(cfg.ResyncInterval)
	defer resyncTick.Stop()
	var (
		signalled   bool
		applied     bool   // something was applied since the last change
		version     uint64 // the model version last applied
		tunnelsDone bool   // EnsureTunnelAddresses ran once
		failures    int
		lastErr     error
		lastApply   time.Time
		outage      bool
	)
	report := func(err error) {
		if ready == nil {
			return
		}
		if err == nil {
			ready.Report(health.State{Live: true, Ready: true, Detail: "in sync"})
			return
		}
		// Not in sync with the datastore: not ready (the last good dataplane
		// stays programmed; liveness is unaffected).
		ready.Report(health.State{Live: true, Ready: false, Detail: "sync failing: " + err.Error()})
	}
	retry := time.NewTimer(0)
	<-retry.C
	changed := l.changes.C()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-heartbeat.C:
			// Readiness is refreshed from local state only.
		case <-resyncTick.C:
			applied = false
		case <-retry.C:
			applied = false
		}
		changed = l.changes.C() // before reading: a later change closes it
		st := f.Status()
		if !st.Synced {
			if signalled && !outage {
				log.Warn("sync failed; keeping the last programmed state", "error", st.Err)
			}
			outage = signalled
			lastErr = st.Err
			report(st.Err)
			continue
		}
		if outage {
			log.Info("back in sync with the datastore", "relists", st.Relists)
			outage, applied = false, false
		}
		cur := f.Version()
		if applied && cur == version {
			report(lastErr)
			continue
		}
		// Coalesce a burst of events into one apply.
		if wait := cfg.ApplyInterval - time.Since(lastApply); wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
		lastApply = time.Now()
		v, err := l.once(ctx, !tunnelsDone)
		switch {
		case err == nil:
			if !tunnelsDone {
				// The first apply after the initial sync: hand the list's
				// garbage (decoded pages, several times the model's size at
				// 50,000 endpoints) back to the kernel now rather than over
				// the scavenger's minutes (docs/scale.md, memory).
				debug.FreeOSMemory()
			}
			tunnelsDone, applied, version = true, true, v
			if failures > 0 {
				log.Info("back in sync with the datastore", "after_failures", failures)
			}
			failures, lastErr = 0, nil
			report(nil)
			if !signalled {
				signalled = true
				log.Info("dataplane in sync", "node", cfg.NodeName)
				if cfg.Ready != nil {
					cfg.Ready()
				}
			}
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			failures++
			lastErr = err
			if failures == 1 || failures%30 == 0 {
				log.Warn("sync failed; keeping the last programmed state", "error", err, "failures", failures)
			}
			report(err)
			retry.Reset(min(time.Duration(failures)*cfg.SyncInterval, 30*time.Second))
		}
	}
}

// once hands the tunnel-address writer the model if it says the addresses
// need it, then applies the snapshot of the model; it returns the model
// version it applied. Until the first sync (first) it waits for the tunnel
// addresses and for them to come back through the Node's watch, so the
// first dataplane never lacks the addresses the node was given; afterwards
// the tunnel writer runs on its own and its result arrives as a model
// change.
func (l *loop) once(ctx context.Context, first bool) (uint64, error) {
	// A datastore that stops answering must fail the round, not hang it:
	// etcd clients wait for a connection rather than fail.
	ctx, cancel := context.WithTimeout(ctx, l.roundTimeout())
	defer cancel()
	settled, version := false, uint64(0)
	l.f.Read(func(m *state.Model, v uint64) {
		settled = startup.TunnelsSettled(m.Node(l.cfg.NodeName), m.Pools(), m.TunnelHandle)
		version = v
	})
	if first || !settled {
		gen := l.tunnels.Set(version)
		if first {
			if err := l.tunnels.Wait(ctx, gen); err != nil {
				return 0, err
			}
		}
	}
	l.f.Read(func(m *state.Model, v uint64) {
		l.plan.update(m)
		version = v
	})
	return version, l.dp.Apply(ctx, l.plan.inc)
}

func (l *loop) roundTimeout() time.Duration { return max(5*l.cfg.SyncInterval, 5*time.Second) }

// ensureTunnels is the tunnel-address writer: it settles the addresses in
// the datastore and waits for the model to carry them.
func (l *loop) ensureTunnels(ctx context.Context, c *client.Client, alloc *ipam.Allocator) error {
	ctx, cancel := context.WithTimeout(ctx, l.roundTimeout())
	defer cancel()
	tun, err := startup.EnsureTunnelAddresses(ctx, c, alloc, l.cfg.NodeName, l.log)
	if err != nil {
		return err
	}
	return awaitTunnels(ctx, l.f, l.changes.C, l.cfg.NodeName, tun)
}

// awaitTunnels waits until the model's node carries tun.
func awaitTunnels(ctx context.Context, f *state.Follower, changes func() <-chan struct{}, node string, tun startup.Tunnels) error {
	text := func(a netip.Addr) string {
		if !a.IsValid() {
			return ""
		}
		return a.String()
	}
	for {
		changed := changes()
		done := false
		f.Read(func(m *state.Model, _ uint64) {
			n := m.Node(node)
			if n == nil {
				return
			}
			ipip := ""
			if n.Spec.BGP != nil {
				ipip = n.Spec.BGP.IPv4IPIPTunnelAddr
			}
			done = ipip == text(tun.IPIP) && n.Spec.IPv4VXLANTunnelAddr == text(tun.VXLAN) && n.Spec.VXLANTunnelMACAddr == tun.VXLANMAC
		})
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the tunnel addresses of node %s to come back through the watch: %w", node, ctx.Err())
		case <-changed:
		}
	}
}

func felixVars(cfg Config) map[string]string {
	if cfg.Env == nil {
		return nil
	}
	return cfg.Env.Felix
}

// overrideFelix lays the FELIX_* values (non-zero) over the datastore's.
func overrideFelix(ds, env FelixSettings) FelixSettings {
	for _, o := range []struct{ v, dst *int }{{&env.VXLANMTU, &ds.VXLANMTU}, {&env.IPIPMTU, &ds.IPIPMTU},
		{&env.VXLANPort, &ds.VXLANPort}, {&env.VXLANVNI, &ds.VXLANVNI}} {
		if *o.v != 0 {
			*o.dst = *o.v
		}
	}
	return ds
}
