package speaker

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/opencalico/calicoctl/node/bgp"
	"github.com/opencalico/calicoctl/node/bgp/status"
)

var _ status.Source = (*Speaker)(nil)

// queryTimeout bounds the reads that take no context.
const queryTimeout = 10 * time.Second

// snapshot is what the read methods need of the running server.
func (s *Speaker) snapshot() *running {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.run
}

// Learned is the best paths the speaker learned from its peers (not the
// ones it originates), sorted by prefix.
func (s *Speaker) Learned() []bgp.Learned {
	r := s.snapshot()
	if r == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	var out []bgp.Learned
	for _, v4 := range []bool{true, false} {
		err := r.srv.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: family(v4)}, func(d *api.Destination) {
			for _, p := range d.Paths {
				if !p.Best || isLocal(p) {
					continue
				}
				pfx, err := netip.ParsePrefix(d.Prefix)
				if err != nil {
					continue
				}
				peer, _ := netip.ParseAddr(p.NeighborIp)
				out = append(out, bgp.Learned{Prefix: pfx, NextHop: pathNextHop(p), Peer: peer})
			}
		})
		if err != nil {
			s.log.Warn("bgp: list learned paths", "err", err)
		}
	}
	slices.SortFunc(out, func(a, b bgp.Learned) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return a.Prefix.Bits() - b.Prefix.Bits()
	})
	return out
}

// pathNextHop reads a path's next hop (v4 attribute or MP_REACH).
func pathNextHop(p *api.Path) netip.Addr {
	for _, a := range p.Pattrs {
		m, err := a.UnmarshalNew()
		if err != nil {
			continue
		}
		switch v := m.(type) {
		case *api.NextHopAttribute:
			if nh, err := netip.ParseAddr(v.NextHop); err == nil {
				return nh
			}
		case *api.MpReachNLRIAttribute:
			if len(v.NextHops) > 0 {
				if nh, err := netip.ParseAddr(v.NextHops[0]); err == nil {
					return nh
				}
			}
		}
	}
	return netip.Addr{}
}

// Status is every configured session's state, sorted by name.
func (s *Speaker) Status() []bgp.PeerStatus {
	r := s.snapshot()
	if r == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	ps, _ := s.peerStatus(ctx, r, false)
	out := make([]bgp.PeerStatus, 0, len(ps))
	for _, p := range ps {
		addr, _ := netip.ParseAddr(p.Address)
		out = append(out, bgp.PeerStatus{Name: p.Name, Type: bgp.PeerType(p.Type), Address: addr, Port: p.Port,
			State: p.BGPState, Since: p.Since, Info: p.LastError, Received: p.Received, Accepted: p.Accepted,
			Advertised: p.Advertised, Flaps: p.Flaps})
	}
	return out
}

var sessionStates = map[api.PeerState_SessionState]string{
	api.PeerState_UNKNOWN:     "Idle",
	api.PeerState_IDLE:        "Idle",
	api.PeerState_CONNECT:     "Connect",
	api.PeerState_ACTIVE:      "Active",
	api.PeerState_OPENSENT:    "OpenSent",
	api.PeerState_OPENCONFIRM: "OpenConfirm",
	api.PeerState_ESTABLISHED: "Established",
}

// peerStatus lists the sessions with gobgp's view of each. Counting what
// was advertised makes gobgp run the export policy over every path for
// every peer (seconds on a reflector with 1,000 clients), so only the
// metrics and `node status --routes` ask for it.
func (s *Speaker) peerStatus(ctx context.Context, r *running, advertised bool) ([]status.Peer, error) {
	s.mu.Lock()
	peers := make(map[string]bgp.Peer, len(r.peers))
	added := make(map[string]time.Time, len(r.peers))
	for a, p := range r.peers {
		peers[a.String()] = p
		added[a.String()] = r.peerAdded[a]
	}
	s.mu.Unlock()
	var out []status.Peer
	err := r.srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: advertised}, func(ap *api.Peer) {
		addr := ap.GetConf().GetNeighborAddress()
		p, ok := peers[addr]
		if !ok {
			return
		}
		st := ap.GetState()
		ps := status.Peer{Name: p.Name, Address: addr, Port: p.Port, Type: string(p.Type),
			BGPState: sessionStates[st.GetSessionState()], PeerASN: p.PeerASN, LocalASN: ap.GetConf().GetLocalAsn(),
			Flaps: int(st.GetFlops()), LastError: r.logs.LastError(addr)}
		ps.State = "start"
		if ps.BGPState == "Established" {
			ps.State = "up"
			ps.LocalAddress = ap.GetTransport().GetLocalAddress()
		}
		if st.GetAdminState() == api.PeerState_DOWN {
			ps.State = "down"
		}
		ts := ap.GetTimers().GetState()
		up, down := ts.GetUptime().AsTime(), ts.GetDowntime().AsTime()
		switch {
		case ps.BGPState == "Established" && ts.GetUptime() != nil && up.Unix() > 0:
			ps.Since = up
		case ts.GetDowntime() != nil && down.Unix() > 0:
			ps.Since = down
		default:
			ps.Since = added[addr]
		}
		for _, af := range ap.GetAfiSafis() {
			if st := af.GetState(); st != nil {
				ps.Received += int(st.Received)
				ps.Accepted += int(st.Accepted)
				ps.Advertised += int(st.Advertised)
			}
		}
		out = append(out, ps)
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if err != nil {
		return out, fmt.Errorf("list BGP peers: %w", err)
	}
	return out, nil
}

// Routes is the speaker's RIB (every path, best marked), sorted by prefix.
func (s *Speaker) Routes(ctx context.Context) ([]status.Route, error) {
	r := s.snapshot()
	if r == nil {
		return nil, nil
	}
	var out []status.Route
	for _, v4 := range []bool{true, false} {
		err := r.srv.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: family(v4), SortType: api.ListPathRequest_PREFIX}, func(d *api.Destination) {
			for _, p := range d.Paths {
				rt := status.Route{Prefix: d.Prefix, Best: p.Best, Local: isLocal(p)}
				if nh := pathNextHop(p); nh.IsValid() {
					rt.NextHop = nh.String()
				}
				if !rt.Local {
					rt.Peer = p.NeighborIp
				}
				if p.Age != nil {
					rt.Age = p.Age.AsTime()
				}
				rt.ASPath, rt.Communities = pathAttrs(p)
				out = append(out, rt)
			}
		})
		if err != nil {
			return out, fmt.Errorf("list BGP paths: %w", err)
		}
	}
	return out, nil
}

// pathAttrs reads a path's AS path and communities.
func pathAttrs(p *api.Path) (asPath []uint32, communities []string) {
	for _, a := range p.Pattrs {
		m, err := a.UnmarshalNew()
		if err != nil {
			continue
		}
		switch v := m.(type) {
		case *api.AsPathAttribute:
			for _, seg := range v.Segments {
				asPath = append(asPath, seg.Numbers...)
			}
		case *api.CommunitiesAttribute:
			for _, c := range v.Communities {
				communities = append(communities, fmt.Sprintf("%d:%d", c>>16, c&0xffff))
			}
		case *api.LargeCommunitiesAttribute:
			for _, c := range v.Communities {
				communities = append(communities, fmt.Sprintf("%d:%d:%d", c.GlobalAdmin, c.LocalData1, c.LocalData2))
			}
		}
	}
	return asPath, communities
}

// Report is the status the agent serves on its socket; advertised counts
// come only with the routes.
func (s *Speaker) Report(ctx context.Context, withRoutes bool) (status.Report, error) {
	return s.report(ctx, withRoutes, withRoutes)
}

func (s *Speaker) report(ctx context.Context, withRoutes, advertised bool) (status.Report, error) {
	r := s.snapshot()
	rep := status.Report{Version: s.version, Peers: []status.Peer{}}
	if r == nil {
		return rep, nil
	}
	rep.Running = true
	rep.RouterID = r.global.RouterID.String()
	rep.ASN = r.global.ASN
	rep.ListenPort = r.global.ListenPort
	rep.Started = r.started
	rep.Restarting = r.restarting && time.Now().Before(r.deferUntil)
	peers, err := s.peerStatus(ctx, r, advertised)
	if peers != nil {
		rep.Peers = peers
	}
	if err != nil {
		return rep, err
	}
	if withRoutes {
		if rep.Routes, err = s.Routes(ctx); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// WriteMetrics writes sessions by state and per-peer prefix counts in the
// Prometheus text format.
func (s *Speaker) WriteMetrics(ctx context.Context, w io.Writer) error {
	rep, err := s.report(ctx, false, true)
	if err != nil {
		return err
	}
	return writeMetrics(w, rep)
}

// writeMetrics renders a report's metrics.
func writeMetrics(w io.Writer, rep status.Report) error {
	var b strings.Builder
	up := 0
	if rep.Running {
		up = 1
	}
	b.WriteString("# HELP calico_bgp_speaker_up Whether the BGP speaker is running.\n# TYPE calico_bgp_speaker_up gauge\n")
	fmt.Fprintf(&b, "calico_bgp_speaker_up %d\n", up)
	b.WriteString("# HELP calico_bgp_sessions BGP sessions by FSM state.\n# TYPE calico_bgp_sessions gauge\n")
	byState := map[string]int{}
	for _, p := range rep.Peers {
		byState[p.BGPState]++
	}
	for _, st := range []string{"Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established"} {
		fmt.Fprintf(&b, "calico_bgp_sessions{state=%q} %d\n", st, byState[st])
	}
	type metric struct{ name, help string }
	for _, m := range []metric{
		{"calico_bgp_peer_established", "1 when the session is Established."},
		{"calico_bgp_prefixes_received", "Prefixes received from the peer."},
		{"calico_bgp_prefixes_accepted", "Received prefixes accepted by import policy."},
		{"calico_bgp_prefixes_advertised", "Prefixes advertised to the peer."},
		{"calico_bgp_peer_flaps_total", "Times the session went down."},
	} {
		typ := "gauge"
		if strings.HasSuffix(m.name, "_total") {
			typ = "counter"
		}
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, typ)
		for _, p := range rep.Peers {
			var v int
			switch m.name {
			case "calico_bgp_peer_established":
				if p.BGPState == "Established" {
					v = 1
				}
			case "calico_bgp_prefixes_received":
				v = p.Received
			case "calico_bgp_prefixes_accepted":
				v = p.Accepted
			case "calico_bgp_prefixes_advertised":
				v = p.Advertised
			default:
				v = p.Flaps
			}
			fmt.Fprintf(&b, "%s{peer=%q,name=%q,type=%q} %d\n", m.name, p.Address, p.Name, p.Type, v)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
