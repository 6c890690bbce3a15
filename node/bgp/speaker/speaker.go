// Package speaker drives an embedded gobgp v3 server to the BGP intent the
// planner computes (bgp.Desired) and reports what it learns and how its
// sessions are. It computes nothing itself: every Apply is a diff of the
// new intent against what it applied before.
//
// One Speaker runs at most one gobgp server per process (gobgp v3 keeps
// route-selection options in package globals, spec §5.3).
package speaker

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
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/proto"

	"github.com/opencalico/calicoctl/node/bgp"
)

// Defaults of Options.
const (
	DefaultStateDir   = "/var/run/calico"
	DefaultGRDeferral = 30 * time.Second
	// markerFile, in StateDir, records that a speaker stopped without a
	// Cease and until when its peers keep its routes.
	markerFile = "bgp-graceful-restart"
)

// Options configure a Speaker.
type Options struct {
	Logger *slog.Logger
	// StateDir holds the graceful-restart marker (default /var/run/calico).
	StateDir string
	// GRDeferral is how long a restarting speaker waits for its peers'
	// End-of-RIB before it sends updates and reports learned routes
	// (default 30 s).
	GRDeferral time.Duration
	// Version is reported in status.
	Version string
}

// Speaker is the node's BGP speaker. Its methods are safe for concurrent
// use.
type Speaker struct {
	log      *slog.Logger
	stateDir string
	deferral time.Duration
	version  string

	learnedCh chan struct{}
	statusCh  chan struct{}

	mu sync.Mutex
	// run is the running gobgp server (nil when stopped).
	run *running
	// restarting: the previous speaker on this node stopped without a
	// Cease less than its restart time ago; the next start sets the R bit.
	restarting bool
	closed     bool
}

// running is one started gobgp server and what was applied to it.
type running struct {
	srv         *server.BgpServer
	logs        *logAdapter
	global      bgp.Global
	started     time.Time
	cancelWatch context.CancelFunc
	peers       map[netip.Addr]bgp.Peer
	peerAdded   map[netip.Addr]time.Time
	paths       map[netip.Prefix]originated
	policy      *api.SetPoliciesRequest
	peerPolicy  map[netip.Addr]peerPolicy
	// deferUntil: while restarting, learned-route changes are not
	// announced before this time.
	deferUntil time.Time
	restarting bool
}

// New makes a stopped speaker. It reads (and removes) the graceful-restart
// marker a previous speaker left in StateDir.
func New(o Options) (*Speaker, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	if o.GRDeferral <= 0 {
		o.GRDeferral = DefaultGRDeferral
	}
	s := &Speaker{log: o.Logger, stateDir: o.StateDir, deferral: o.GRDeferral, version: o.Version,
		learnedCh: make(chan struct{}, 1), statusCh: make(chan struct{}, 1)}
	restarting, err := readMarker(filepath.Join(o.StateDir, markerFile), time.Now())
	if err != nil {
		s.log.Warn("bgp: ignoring the graceful-restart marker", "err", err)
	}
	s.restarting = restarting
	if restarting {
		s.log.Info("bgp: the previous speaker stopped within its restart time; starting as a restarting speaker", "deferral", o.GRDeferral)
	}
	return s, nil
}

// LearnedChanges is notified (coalesced) when the learned best paths may
// have changed.
func (s *Speaker) LearnedChanges() <-chan struct{} { return s.learnedCh }

// StatusChanges is notified (coalesced) when a session may have changed
// state.
func (s *Speaker) StatusChanges() <-chan struct{} { return s.statusCh }

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Deferring reports whether the speaker is a restarting speaker still
// inside its deferral: Learned may not yet hold every route the peers
// will send, so a route writer should not withdraw kernel routes yet.
func (s *Speaker) Deferring() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.run != nil && s.run.restarting && time.Now().Before(s.run.deferUntil)
}

// Apply drives the speaker to d. It is idempotent: only differences from
// the previous Apply reach gobgp. A change of the speaker's identity (AS,
// router ID, listen port or addresses) restarts the server; d.Enabled
// false stops it without a Cease. On error the speaker keeps what it
// could apply; the next Apply retries the rest.
func (s *Speaker) Apply(ctx context.Context, d bgp.Desired) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("bgp speaker: closed")
	}
	if !d.Enabled {
		if s.run != nil {
			s.log.Info("bgp: disabled; stopping the speaker without a Cease")
			s.stopAbruptly()
		}
		return nil
	}
	if s.run != nil && !sameIdentity(s.run.global, d.Global) {
		s.log.Info("bgp: the speaker's identity changed; restarting it", "asn", d.Global.ASN, "routerID", d.Global.RouterID)
		s.stopGracefully(ctx)
	}
	if s.run == nil {
		if err := s.start(ctx, d.Global); err != nil {
			return err
		}
	}
	r := s.run
	r.global = d.Global
	var errs []error
	if err := s.applyPolicy(ctx, d); err != nil {
		errs = append(errs, err)
	}
	if err := s.applyPeers(ctx, d); err != nil {
		errs = append(errs, err)
	}
	if err := s.applyPaths(ctx, d); err != nil {
		errs = append(errs, err)
	}
	notify(s.statusCh)
	return errors.Join(errs...)
}

func sameIdentity(a, b bgp.Global) bool {
	return a.ASN == b.ASN && a.RouterID == b.RouterID && a.ListenPort == b.ListenPort &&
		slices.Equal(a.ListenAddresses, b.ListenAddresses)
}

// start starts a gobgp server with g's identity.
func (s *Speaker) start(ctx context.Context, g bgp.Global) error {
	if !g.RouterID.IsValid() {
		return errors.New("bgp speaker: no router ID")
	}
	logs := newLogAdapter(s.log, func() { notify(s.statusCh) })
	srv := server.NewBgpServer(server.LoggerOption(logs))
	go srv.Serve()
	port := int32(g.ListenPort)
	if port == 0 {
		port = bgp.DefaultPort
	}
	global := &api.Global{Asn: g.ASN, RouterId: g.RouterID.String(), ListenPort: port}
	for _, a := range g.ListenAddresses {
		global.ListenAddresses = append(global.ListenAddresses, a.String())
	}
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: global}); err != nil {
		return fmt.Errorf("start BGP (AS %d, router ID %s, port %d): %w", g.ASN, g.RouterID, port, err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	r := &running{srv: srv, logs: logs, global: g, started: time.Now(), cancelWatch: cancel,
		peers: map[netip.Addr]bgp.Peer{}, peerAdded: map[netip.Addr]time.Time{}, paths: map[netip.Prefix]originated{}}
	if s.restarting {
		r.restarting = true
		r.deferUntil = time.Now().Add(s.deferral)
		s.restarting = false
		time.AfterFunc(s.deferral, func() {
			s.log.Info("bgp: graceful-restart deferral over")
			notify(s.learnedCh)
		})
	}
	err := srv.WatchEvent(wctx, &api.WatchEventRequest{
		Peer: &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
			{Type: api.WatchEventRequest_Table_Filter_BEST, Init: true},
		}},
	}, func(ev *api.WatchEventResponse) {
		if ev.GetPeer() != nil {
			notify(s.statusCh)
		}
		if t := ev.GetTable(); t != nil {
			for _, p := range t.Paths {
				if !isLocal(p) || p.IsWithdraw {
					if !(r.restarting && time.Now().Before(r.deferUntil)) {
						notify(s.learnedCh)
					}
					break
				}
			}
		}
	})
	if err != nil {
		cancel()
		_ = srv.StopBgp(context.Background(), &api.StopBgpRequest{})
		return fmt.Errorf("watch BGP events: %w", err)
	}
	s.run = r
	s.log.Info("bgp: speaker started", "asn", g.ASN, "routerID", g.RouterID, "port", port, "restarting", r.restarting)
	return nil
}

// isLocal reports whether a path is one we originated.
func isLocal(p *api.Path) bool { return p.NeighborIp == "<nil>" || p.NeighborIp == "" }

// stopGracefully stops the server with a Cease to every peer.
func (s *Speaker) stopGracefully(ctx context.Context) {
	r := s.run
	s.run = nil
	r.cancelWatch()
	if err := r.srv.StopBgp(ctx, &api.StopBgpRequest{}); err != nil {
		s.log.Warn("bgp: stop", "err", err)
	}
	notify(s.statusCh)
	notify(s.learnedCh)
}

// stopAbruptly ends every BGP connection without a NOTIFICATION, then
// stops the server (its Ceases go nowhere), and leaves the marker that
// makes the next speaker a restarting one.
func (s *Speaker) stopAbruptly() {
	r := s.run
	s.run = nil
	r.cancelWatch()
	m := socketMatch{listenPort: int(r.global.ListenPort), peers: map[netip.AddrPort]bool{}}
	if m.listenPort == 0 {
		m.listenPort = bgp.DefaultPort
	}
	restart := defaultRestartTime
	for _, p := range r.peers {
		port := p.Port
		if port == 0 {
			port = bgp.DefaultPort
		}
		m.peers[netip.AddrPortFrom(p.Address, uint16(port))] = true
		if p.RestartTime > restart {
			restart = p.RestartTime
		}
	}
	n, err := shutdownBGPSockets(m)
	if err != nil {
		s.log.Warn("bgp: shutting down BGP sockets", "err", err)
	}
	s.log.Info("bgp: BGP connections ended without a NOTIFICATION", "sockets", n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.srv.StopBgp(ctx, &api.StopBgpRequest{}); err != nil {
		s.log.Warn("bgp: stop", "err", err)
	}
	if len(r.peers) > 0 {
		if err := writeMarker(filepath.Join(s.stateDir, markerFile), time.Now().Add(restart)); err != nil {
			s.log.Warn("bgp: cannot write the graceful-restart marker", "err", err)
		}
	}
	notify(s.statusCh)
	notify(s.learnedCh)
}

// Close stops the speaker for good without sending a Cease, so peers keep
// its routes for their graceful-restart time, and records that in
// StateDir for the next speaker.
func (s *Speaker) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.run != nil {
		s.stopAbruptly()
	}
	return nil
}

// writeMarker records until when peers keep our routes.
func writeMarker(path string, until time.Time) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(until.Unix(), 10)+"\n"), 0o644); err != nil {
		return fmt.Errorf("write marker: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write marker: %w", err)
	}
	return nil
}

// readMarker consumes the marker: true when it exists and its time has
// not passed.
func readMarker(path string, now time.Time) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read marker: %w", err)
	}
	_ = os.Remove(path)
	sec, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return false, fmt.Errorf("marker %s: %w", path, err)
	}
	return now.Before(time.Unix(sec, 0)), nil
}

// applyPolicy replaces the policies when their compiled form changed.
func (s *Speaker) applyPolicy(ctx context.Context, d bgp.Desired) error {
	r := s.run
	cp := compilePolicy(d)
	if r.policy != nil && proto.Equal(&api.SetPoliciesRequest{DefinedSets: r.policy.DefinedSets, Policies: r.policy.Policies, Assignments: r.policy.Assignments}, cp.req) {
		return nil
	}
	for _, sk := range cp.skipped {
		s.log.Warn("bgp: filter rule skipped", "rule", sk)
	}
	if r.policy == nil {
		// The assignments name the policies: define them (empty) first.
		empty := &api.SetPoliciesRequest{Policies: []*api.Policy{{Name: importPolicy}, {Name: exportPolicy}}}
		if err := r.srv.SetPolicies(ctx, empty); err != nil {
			return fmt.Errorf("define BGP policies: %w", err)
		}
		for _, a := range cp.req.Assignments {
			if err := r.srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: a}); err != nil {
				return fmt.Errorf("assign BGP policy %s: %w", a.Direction, err)
			}
		}
	}
	if err := r.srv.SetPolicies(ctx, cp.req); err != nil {
		return fmt.Errorf("set BGP policies: %w", err)
	}
	old := r.peerPolicy
	r.policy, r.peerPolicy = cp.req, cp.perPeer
	// Re-evaluate the sessions whose statements changed. Import: a soft
	// reset re-runs the policy over the Adj-RIB-In. Export: gobgp v3's soft
	// reset out sends what now passes but never withdraws what the new
	// policy rejects, so such a session is reset (it flaps).
	for addr := range r.peers {
		was, now := old[addr], cp.perPeer[addr]
		if was.imp != now.imp {
			if err := r.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr.String(), Soft: true, Direction: api.ResetPeerRequest_IN}); err != nil {
				s.log.Warn("bgp: soft reset in", "peer", addr, "err", err)
			}
		}
		if was.exp != now.exp {
			s.log.Info("bgp: export policy of a session changed; resetting it", "peer", addr)
			if err := r.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr.String(), Communication: "export policy changed"}); err != nil {
				s.log.Warn("bgp: reset", "peer", addr, "err", err)
			}
		}
	}
	return nil
}

// applyPeers adds, replaces and deletes neighbours.
func (s *Speaker) applyPeers(ctx context.Context, d bgp.Desired) error {
	r := s.run
	pl := planPeers(r.peers, d.Peers)
	var errs []error
	for _, p := range pl.remove {
		if err := r.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: p.Address.String()}); err != nil {
			errs = append(errs, fmt.Errorf("delete BGP peer %s: %w", p.Address, err))
			continue
		}
		delete(r.peers, p.Address)
		delete(r.peerAdded, p.Address)
	}
	restarting := r.restarting && time.Now().Before(r.deferUntil)
	for _, p := range pl.add {
		if _, still := r.peers[p.Address]; still {
			continue // its delete failed
		}
		if err := r.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: apiPeer(p, r.global.ASN, restarting, s.deferral)}); err != nil {
			errs = append(errs, fmt.Errorf("add BGP peer %s (%s): %w", p.Name, p.Address, err))
			continue
		}
		r.peers[p.Address] = p
		r.peerAdded[p.Address] = time.Now()
	}
	// Names, types and policy-only fields are kept current without
	// touching the session.
	for _, p := range d.Peers {
		if old, ok := r.peers[p.Address]; ok && keyOf(old) == keyOf(p) {
			r.peers[p.Address] = p
		}
	}
	return errors.Join(errs...)
}

// applyPaths originates and withdraws paths.
func (s *Speaker) applyPaths(ctx context.Context, d bgp.Desired) error {
	r := s.run
	pl := planPaths(r.paths, d.Paths, d.Global)
	var errs []error
	for _, pfx := range pl.remove {
		o := r.paths[pfx]
		if err := r.srv.DeletePath(ctx, &api.DeletePathRequest{Family: family(pfx.Addr().Is4()), Uuid: o.uuid}); err != nil {
			errs = append(errs, fmt.Errorf("withdraw %s: %w", pfx, err))
			continue
		}
		delete(r.paths, pfx)
	}
	for _, p := range pl.add {
		pfx := p.Prefix.Masked()
		nh := nextHopFor(pfx, d.Global)
		ap, err := apiPath(p, nh)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		resp, err := r.srv.AddPath(ctx, &api.AddPathRequest{Path: ap})
		if err != nil {
			errs = append(errs, fmt.Errorf("originate %s: %w", pfx, err))
			continue
		}
		r.paths[pfx] = originated{path: p, nextHop: nh, uuid: resp.Uuid}
	}
	return errors.Join(errs...)
}
