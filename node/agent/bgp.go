package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/opencalico/calicoctl/node/bgp"
	"github.com/opencalico/calicoctl/node/bgp/status"
	"github.com/opencalico/calicoctl/node/health"
	"github.com/opencalico/calicoctl/node/reconcile"
	"github.com/opencalico/calicoctl/node/routes"
	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

// BGPSpeaker is what the agent drives: node/bgp/speaker, an embedded gobgp
// server. Apply converges it on the intent; Learned are the best paths
// learned from peers (LearnedChanges signals a change); Close stops it
// without a Cease, so peers keep our routes through graceful restart.
type BGPSpeaker interface {
	Apply(ctx context.Context, d bgp.Desired) error
	Learned() []bgp.Learned
	LearnedChanges() <-chan struct{}
	Close() error
}

// RouteSink takes routes from a source other than the plan (the kernel
// dataplane's route writer merges them with the plan's).
type RouteSink interface {
	SetRoutes(source string, rs []routes.Route)
}

// SourceBGP names BGP-learned routes in the route writer.
const SourceBGP = "bgp"

// SecretSource resolves a BGP password's secretKeyRef.
type SecretSource interface {
	Secret(ctx context.Context, name, key string) (string, error)
}

// bgpRunner keeps the speaker on the intent computed from the followed
// state (node/bgp Compute) and hands the learned routes to the route
// writer. It is a reconciler of its own: a slow or failing speaker never
// delays the kernel writers, and while the follower is out of step with the
// datastore nothing is applied (the speaker keeps its sessions and paths).
type bgpRunner struct {
	node    string
	env     bgp.Env
	f       *state.Follower
	sp      BGPSpeaker
	sink    RouteSink // nil: learned routes are not programmed
	secrets SecretSource
	// resolver snapshots what next hops are resolved through (nil: none
	// are); routeChanges signals that it may resolve differently now.
	resolver     func() NextHopResolver
	routeChanges <-chan struct{}
	log          *slog.Logger

	r *reconcile.Reconciler[uint64]
	// routesKick asks the learned-route loop to recompute.
	routesKick chan struct{}

	mu       sync.Mutex
	in       bgp.RouteInput
	haveIn   bool
	warnings []string
	applied  bgp.Desired
	// local are the keys of this node's workload endpoints at the last
	// computation: a change to one of them (even its removal) matters.
	local map[resources.Key]bool
}

type bgpRunnerOptions struct {
	Node     string
	Env      bgp.Env
	Follower *state.Follower
	Speaker  BGPSpeaker
	Sink     RouteSink
	Secrets  SecretSource
	Resolver func() NextHopResolver
	// RouteChanges signals kernel route changes that may move a resolved
	// next hop (nil: none are followed).
	RouteChanges <-chan struct{}
	Health       *health.Server
	Resync       time.Duration
	Logger       *slog.Logger
}

func newBGPRunner(o bgpRunnerOptions) *bgpRunner {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	b := &bgpRunner{node: o.Node, env: o.Env, f: o.Follower, sp: o.Speaker, sink: o.Sink, secrets: o.Secrets,
		resolver: o.Resolver, routeChanges: o.RouteChanges, log: log.With("component", "bgp"), routesKick: make(chan struct{}, 1)}
	cfg := reconcile.Config{Name: "bgp", Resync: o.Resync, Logger: log}
	if o.Health != nil {
		cfg.Health = o.Health.Register("bgp", health.Reports{Live: true, Ready: true}, 0)
	}
	b.r = reconcile.New(cfg, b.write)
	return b
}

// run follows the model's changes (through the agent's broadcast) and the
// speaker's learned routes until ctx ends.
func (b *bgpRunner) run(ctx context.Context, changes func() <-chan struct{}) error {
	go func() { _ = b.r.Run(ctx) }()
	go b.learnedLoop(ctx)
	var seq uint64
	first := true
	for {
		ch := changes()
		if st := b.f.Status(); st.Synced {
			relevant := first
			b.f.Read(func(m *state.Model, _ uint64) {
				cs, ok := m.ChangesSince(seq)
				seq = m.Seq()
				relevant = relevant || !ok || b.relevant(m, cs)
			})
			if relevant {
				b.r.Set(b.f.Version())
			}
			first = false
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// relevant reports whether any of the changes can move this node's BGP
// intent: nodes, pools, BGP objects and blocks always may; a workload
// endpoint only when it is (or was) on this node. Endpoint churn elsewhere
// and policy objects cost no recomputation.
func (b *bgpRunner) relevant(m *state.Model, cs []state.Change) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range cs {
		switch c.Kind {
		case state.ChangedNode, state.ChangedPool, state.ChangedBGP, state.ChangedBlock:
			return true
		case state.ChangedWorkloadEndpoint:
			if e := m.WorkloadEndpoint(c.Key); (e != nil && e.Node == b.node) || b.local[c.Key] {
				return true
			}
		}
	}
	return false
}

// write computes the intent from the model and applies it to the speaker.
func (b *bgpRunner) write(ctx context.Context, _ uint64, _ bool) error {
	var (
		d  bgp.Desired
		ri bgp.RouteInput
	)
	local := map[resources.Key]bool{}
	b.f.Read(func(m *state.Model, _ uint64) {
		in := bgp.FromModel(m, b.node, b.env)
		d = bgp.Compute(in)
		ri = bgp.RouteInputFor(in, d)
		for _, w := range in.Workloads {
			local[w.Key] = true
		}
	})
	b.mu.Lock()
	b.local = local
	b.mu.Unlock()
	b.logWarnings(d.Warnings)
	if err := b.resolvePasswords(ctx, &d); err != nil {
		return err
	}
	if err := b.sp.Apply(ctx, d); err != nil {
		return fmt.Errorf("bgp speaker: %w", err)
	}
	b.mu.Lock()
	changed := !b.haveIn || !routeInputEqual(b.in, ri)
	b.in, b.haveIn, b.applied = ri, true, d
	b.mu.Unlock()
	if changed {
		b.kickRoutes()
	}
	return nil
}

// Desired returns the intent last applied (tests, diagnostics).
func (b *bgpRunner) Desired() bgp.Desired {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.applied
}

func (b *bgpRunner) logWarnings(ws []string) {
	b.mu.Lock()
	same := slices.Equal(ws, b.warnings)
	b.warnings = slices.Clone(ws)
	b.mu.Unlock()
	if same {
		return
	}
	for _, w := range ws {
		b.log.Warn(w)
	}
}

// resolvePasswords fills each peer's Password from its secretKeyRef. A
// missing secret fails the write (and is retried): a session must not
// come up without the password it was configured with.
func (b *bgpRunner) resolvePasswords(ctx context.Context, d *bgp.Desired) error {
	for i := range d.Peers {
		p := &d.Peers[i]
		if p.PasswordRef == nil || p.Password != "" {
			continue
		}
		if b.secrets == nil {
			return fmt.Errorf("BGP peer %s (%s): password.secretKeyRef %s/%s: no secret source", p.Name, p.Source, p.PasswordRef.Name, p.PasswordRef.Key)
		}
		v, err := b.secrets.Secret(ctx, p.PasswordRef.Name, p.PasswordRef.Key)
		if err != nil {
			return fmt.Errorf("BGP peer %s (%s): password.secretKeyRef: %w", p.Name, p.Source, err)
		}
		p.Password = v
	}
	return nil
}

func (b *bgpRunner) kickRoutes() {
	select {
	case b.routesKick <- struct{}{}:
	default:
	}
}

// learnedLoop turns the speaker's learned paths into kernel routes
// whenever they or the route input change.
func (b *bgpRunner) learnedLoop(ctx context.Context) {
	if b.sink == nil {
		return
	}
	deferring, _ := b.sp.(interface{ Deferring() bool })
	var recheck <-chan time.Time
	var last []routes.Route
	sent := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.sp.LearnedChanges():
		case <-b.routesKick:
		case <-b.routeChanges:
		case <-recheck:
		}
		recheck = nil
		b.mu.Lock()
		in, ok := b.in, b.haveIn
		b.mu.Unlock()
		if !ok {
			continue // not applied yet: our blocks and pools are unknown
		}
		if deferring != nil && deferring.Deferring() {
			// A restarting speaker inside its graceful-restart deferral
			// has not relearned everything: the routes programmed before
			// the restart stay until it has.
			recheck = time.After(time.Second)
			continue
		}
		// Kernel route changes (a pod's route) wake this loop often; the
		// route writer is woken only when the BGP routes did change.
		rs := b.kernelRoutes(b.sp.Learned(), in)
		if sent && slices.Equal(rs, last) {
			continue
		}
		b.sink.SetRoutes(SourceBGP, rs)
		last, sent = rs, true
	}
}

// kernelRoutes is bgp.KernelRoutes with next hops outside every connected
// subnet resolved through the kernel (BIRD's "gateway recursive").
func (b *bgpRunner) kernelRoutes(learned []bgp.Learned, in bgp.RouteInput) []routes.Route {
	rs := bgp.KernelRoutes(learned, in)
	if b.resolver == nil {
		return rs
	}
	var resolve NextHopResolver
	cache := map[netip.Addr]netip.Addr{}
	out := rs[:0]
	for _, r := range rs {
		if r.Dev == "" && !r.OnLink && r.Gw.IsValid() && !onNodeSubnet(in, r.Gw) {
			gw, seen := cache[r.Gw]
			if !seen {
				if resolve == nil {
					resolve = b.resolver()
				}
				g, ok := resolve(r.Gw)
				if !ok {
					g = netip.Addr{}
				}
				cache[r.Gw], gw = g, g
			}
			if !gw.IsValid() {
				continue // unreachable next hop: the kernel would refuse the route
			}
			r.Gw = gw
		}
		out = append(out, r)
	}
	return out
}

func onNodeSubnet(in bgp.RouteInput, a netip.Addr) bool {
	for _, p := range []netip.Prefix{in.NodeIPv4, in.NodeIPv6} {
		if p.IsValid() && p.Bits() < p.Addr().BitLen() && p.Masked().Contains(a) {
			return true
		}
	}
	return false
}

func routeInputEqual(a, b bgp.RouteInput) bool {
	return a.NodeIPv4 == b.NodeIPv4 && a.NodeIPv6 == b.NodeIPv6 && a.Protocol == b.Protocol &&
		slices.Equal(a.Pools, b.Pools) && slices.Equal(a.LocalBlocks, b.LocalBlocks) && slices.Equal(a.Reject, b.Reject) &&
		slices.EqualFunc(a.Peers, b.Peers, func(x, y bgp.Peer) bool { return x.Address == y.Address && x.ReachableBy == y.ReachableBy })
}

// startBGP builds the BGP runner of Run.
func startBGP(ctx context.Context, cfg Config, f *state.Follower, dp Dataplane, hs *health.Server, log *slog.Logger) *bgpRunner {
	o := bgpRunnerOptions{Node: cfg.NodeName, Follower: f, Speaker: cfg.BGP, Health: hs, Resync: cfg.ResyncInterval,
		Logger: log, Resolver: kernelResolver, RouteChanges: kernelRouteChanges(ctx)}
	if cfg.Env != nil {
		o.Env = bgp.Env{Backend: cfg.Env.Backend, RouterID: cfg.Env.RouterID, AdvertiseClusterIPs: cfg.Env.AdvertiseCluster}
	}
	if sink, ok := dp.(RouteSink); ok {
		o.Sink = sink
	}
	var b *bgpRunner
	if k, ok := cfg.Datastore.(interface{ Clientset() k8s.Interface }); ok && cfg.Kubernetes {
		ns := "kube-system"
		if cfg.Env != nil {
			ns = cfg.Env.Namespace
		}
		o.Secrets = newKubeSecrets(ctx, k.Clientset(), ns, func() { b.r.Kick() })
	} else if cfg.Env != nil {
		o.Secrets = dirSecrets{dir: cfg.Env.BGPSecretsDir}
	}
	b = newBGPRunner(o)
	return b
}

// startBGPStatus serves the speaker's status on the node's socket (for
// `calicoctl node status`) and publishes it into this node's
// CalicoNodeStatus objects (for `calicoctl node status --node` anywhere).
func startBGPStatus(ctx context.Context, g *errgroup.Group, cfg Config, f *state.Follower, log *slog.Logger) {
	src, ok := cfg.BGP.(status.Source)
	if !ok {
		return
	}
	sock := ""
	if cfg.Env != nil {
		sock = cfg.Env.BGPStatusSocket
	}
	g.Go(func() error {
		if err := status.Serve(ctx, sock, src, log); err != nil && ctx.Err() == nil {
			// `node status` cannot answer, the node still routes: not fatal.
			log.Error("bgp status socket", "path", sock, "error", err)
		}
		return nil
	})
	if addr := metricsAddr(cfg); addr != "" {
		g.Go(func() error { return serveMetrics(ctx, addr, src, log) })
	}
	var changes <-chan struct{}
	if sc, ok := cfg.BGP.(interface{ StatusChanges() <-chan struct{} }); ok {
		changes = sc.StatusChanges()
	}
	// The objects come from the followed state: checking them every second
	// sends nothing to the datastore; only a due, changed status is written.
	p := &status.Publisher{Datastore: cfg.Datastore, Node: cfg.NodeName, Source: src, Log: log,
		Objects: func() (out []*resources.CalicoNodeStatus) {
			f.Read(func(m *state.Model, _ uint64) { out = m.CalicoNodeStatusesOf(cfg.NodeName) })
			return out
		}}
	g.Go(func() error { return p.Run(ctx, changes) })
}

// metricsAddr is where Prometheus scrapes the node's metrics, as Felix
// serves them: FELIX_PROMETHEUSMETRICSENABLED=true on
// FELIX_PROMETHEUSMETRICSHOST (all addresses) and
// FELIX_PROMETHEUSMETRICSPORT (9091). "" = off.
func metricsAddr(cfg Config) string {
	if cfg.Env == nil {
		return ""
	}
	f := cfg.Env.Felix
	if on, _ := strconv.ParseBool(f["prometheusmetricsenabled"]); !on {
		return ""
	}
	port := f["prometheusmetricsport"]
	if port == "" {
		port = "9091"
	}
	return net.JoinHostPort(f["prometheusmetricshost"], port)
}

// serveMetrics answers GET /metrics with the BGP speaker's metrics until
// ctx ends. A port that cannot be bound is logged, not fatal: the node
// still routes.
func serveMetrics(ctx context.Context, addr string, src status.Source, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		if err := src.WriteMetrics(r.Context(), w); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("prometheus metrics: cannot listen", "addr", addr, "error", err)
		return nil
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Info("prometheus metrics listening", "addr", l.Addr().String())
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("prometheus metrics", "error", err)
	}
	return nil
}
