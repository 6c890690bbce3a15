package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/node/autodetect"
	"github.com/opencalico/calicoctl/node/config"
	"github.com/opencalico/calicoctl/node/health"
	"github.com/opencalico/calicoctl/node/startup"
)

// Dataplane programs the kernel from a snapshot. Apply must be idempotent
// and converge (adopting what is already there); Close releases handles but
// leaves the dataplane in place so a restart drops no traffic.
type Dataplane interface {
	Apply(ctx context.Context, s *Snapshot) error
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
	// SyncInterval is how often the datastore is read (default 1s).
	SyncInterval time.Duration
	// ResyncInterval forces a full kernel resync (default 90s, Felix's
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

	dp := cfg.Dataplane
	if dp == nil {
		kdp, err := NewKernelDataplane(KernelOptions{NodeName: cfg.NodeName, NodeIP: res.IPv4.Addr(), MTUFile: cfg.MTUFile, Logger: log})
		if err != nil {
			return err
		}
		dp = kdp
	}
	defer dp.Close()

	hs, err := healthServer(cfg)
	if err != nil {
		return err
	}
	var ready *health.Reporter
	if hs != nil {
		ready = hs.Register("dataplane", health.Reports{Live: true, Ready: true}, 10*cfg.SyncInterval+30*time.Second)
	}

	g, ctx := errgroup.WithContext(ctx)
	if hs != nil {
		g.Go(func() error { return hs.Run(ctx) })
	}
	g.Go(func() error {
		return syncLoop(ctx, cfg, felixEnv, c, alloc, dp, ready, log)
	})
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

// revisioner is a datastore with a cheap cluster-wide revision (etcd): the
// agent skips a round when it has not moved.
type revisioner interface {
	Revision(ctx context.Context) (string, error)
}

func revisionOf(ctx context.Context, r revisioner, interval time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, max(5*interval, 5*time.Second))
	defer cancel()
	return r.Revision(ctx)
}

// syncLoop reads the datastore, keeps the tunnel addresses right and
// applies the snapshot. A failed read keeps the last good dataplane: the
// datastore blinking never withdraws routes.
func syncLoop(ctx context.Context, cfg Config, felixEnv FelixSettings, c *client.Client, alloc *ipam.Allocator, dp Dataplane, ready *health.Reporter, log *slog.Logger) error {
	tick := time.NewTicker(cfg.SyncInterval)
	defer tick.Stop()
	lastResync := time.Now()
	signalled := false
	failures := 0
	rev, hasRev := cfg.Datastore.(revisioner)
	lastRev := ""
	for {
		// A due resync is requested before the round, so this round's Apply
		// carries it out (rounds are skipped while nothing changes).
		resync := time.Since(lastResync) > cfg.ResyncInterval
		if resync {
			dp.Resync()
			lastResync = time.Now()
		}
		var err error
		cur := ""
		if hasRev {
			cur, err = revisionOf(ctx, rev, cfg.SyncInterval)
		}
		switch {
		case err != nil:
		case hasRev && cur == lastRev && signalled && !resync:
			// Nothing was written anywhere since the last good round.
		default:
			// cur was read before the snapshot, so a write that lands during
			// the round moves the revision past it and triggers another one.
			err = syncOnce(ctx, cfg, felixEnv, c, alloc, dp, log)
			if err == nil {
				lastRev = cur
			}
		}
		switch {
		case err == nil:
			if failures > 0 {
				log.Info("back in sync with the datastore", "after_failures", failures)
			}
			failures = 0
			if ready != nil {
				ready.Report(health.State{Live: true, Ready: true, Detail: "in sync"})
			}
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
			if failures == 1 || failures%30 == 0 {
				log.Warn("sync failed; keeping the last programmed state", "error", err, "failures", failures)
			}
			if ready != nil {
				// Not in sync with the datastore: not ready (the last good
				// dataplane stays programmed; liveness is unaffected).
				ready.Report(health.State{Live: true, Ready: false, Detail: "sync failing: " + err.Error()})
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func syncOnce(ctx context.Context, cfg Config, felixEnv FelixSettings, c *client.Client, alloc *ipam.Allocator, dp Dataplane, log *slog.Logger) error {
	// A datastore that stops answering must fail the round, not hang it:
	// etcd clients wait for a connection rather than fail.
	ctx, cancel := context.WithTimeout(ctx, max(5*cfg.SyncInterval, 5*time.Second))
	defer cancel()
	if _, err := startup.EnsureTunnelAddresses(ctx, c, alloc, cfg.NodeName, log); err != nil {
		return err
	}
	snap, err := ReadSnapshot(ctx, cfg.Datastore, cfg.IPAM, cfg.NodeName)
	if err != nil {
		return err
	}
	snap.Felix = overrideFelix(snap.Felix, felixEnv)
	return dp.Apply(ctx, snap)
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
