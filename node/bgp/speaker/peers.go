package speaker

import (
	"net/netip"
	"slices"
	"time"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/opencalico/calicoctl/node/bgp"
)

// Session constants (upstream's BIRD template values where gobgp's
// defaults differ, spec §5.4 and §5.8).
const (
	// connectRetry is the dial retry (gobgp waits a random 1x-2x of it;
	// its default 120 s would leave a peer down for minutes).
	connectRetry = 5
	// idleHoldAfterReset replaces gobgp's 30 s after a reset.
	idleHoldAfterReset = 5
	// defaultHoldTime is BIRD's hold time (upstream does not configure it).
	defaultHoldTime = 240
	// defaultRestartTime is BIRD's graceful-restart time.
	defaultRestartTime = 120 * time.Second
)

// sessionKey is the part of a Peer that the gobgp neighbour is made of;
// a change to it means deleting and re-adding the neighbour (gobgp's
// UpdatePeer flaps the session for nearly every such field anyway and
// ignores route-reflector changes). NextHop and Filters are policy, not
// session settings, so they are not in it.
type sessionKey struct {
	Address, Source         netip.Addr
	Port                    int
	PeerASN, LocalASN       uint32
	Passive                 bool
	Password                string
	RRClient                bool
	ClusterID               string
	Keepalive, RestartTime  time.Duration
	AllowOwnAS, TTLSecurity int
}

func keyOf(p bgp.Peer) sessionKey {
	return sessionKey{Address: p.Address, Source: p.SourceAddress, Port: p.Port, PeerASN: p.PeerASN,
		LocalASN: p.LocalASN, Passive: p.Passive, Password: p.Password, RRClient: p.RouteReflectorClient,
		ClusterID: p.ClusterID, Keepalive: p.Keepalive, RestartTime: p.RestartTime,
		AllowOwnAS: p.AllowOwnAS, TTLSecurity: p.TTLSecurity}
}

// peerPlan is what Apply does to the neighbours.
type peerPlan struct {
	add, remove []bgp.Peer // remove before add (a changed peer is in both)
}

// planPeers diffs the neighbours in place (by address) against the wanted
// ones.
func planPeers(have map[netip.Addr]bgp.Peer, want []bgp.Peer) peerPlan {
	var pl peerPlan
	seen := map[netip.Addr]bool{}
	for _, p := range want {
		if seen[p.Address] {
			continue // the planner reports duplicates; the first wins
		}
		seen[p.Address] = true
		old, ok := have[p.Address]
		switch {
		case !ok:
			pl.add = append(pl.add, p)
		case keyOf(old) != keyOf(p):
			pl.remove = append(pl.remove, old)
			pl.add = append(pl.add, p)
		}
	}
	for addr, p := range have {
		if !seen[addr] {
			pl.remove = append(pl.remove, p)
		}
	}
	slices.SortFunc(pl.remove, func(a, b bgp.Peer) int { return a.Address.Compare(b.Address) })
	return pl
}

func family(v4 bool) *api.Family {
	if v4 {
		return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	}
	return &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
}

// apiPeer is the gobgp neighbour of a session. localRestarting sets the
// restarting (R) bit and makes gobgp defer its updates for deferral.
func apiPeer(p bgp.Peer, globalASN uint32, localRestarting bool, deferral time.Duration) *api.Peer {
	localASN := p.LocalASN
	if localASN == 0 {
		localASN = globalASN
	}
	restart := p.RestartTime
	if restart <= 0 {
		restart = defaultRestartTime
	}
	hold := uint64(defaultHoldTime)
	keepalive := hold / 3
	if p.Keepalive > 0 {
		keepalive = uint64(p.Keepalive / time.Second)
		hold = max(3*keepalive, 3)
	}
	ap := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address.String(),
			PeerAsn:         p.PeerASN,
			LocalAsn:        localASN,
			AuthPassword:    p.Password,
			AllowOwnAsn:     uint32(min(max(p.AllowOwnAS, 0), 255)),
			Description:     p.Name,
		},
		Transport: &api.Transport{
			PassiveMode: p.Passive,
			RemotePort:  uint32(p.Port),
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:           connectRetry,
			HoldTime:               hold,
			KeepaliveInterval:      keepalive,
			IdleHoldTimeAfterReset: idleHoldAfterReset,
		}},
		GracefulRestart: &api.GracefulRestart{
			Enabled:          true,
			RestartTime:      uint32(restart / time.Second),
			LonglivedEnabled: false,
			LocalRestarting:  localRestarting,
			DeferralTime:     uint32(max(deferral/time.Second, 1)),
		},
		AfiSafis: []*api.AfiSafi{{
			Config: &api.AfiSafiConfig{Family: family(p.Address.Is4()), Enabled: true},
			MpGracefulRestart: &api.MpGracefulRestart{
				Config: &api.MpGracefulRestartConfig{Enabled: true},
			},
		}},
	}
	if ap.Transport.RemotePort == 0 {
		ap.Transport.RemotePort = bgp.DefaultPort
	}
	if p.SourceAddress.IsValid() {
		ap.Transport.LocalAddress = p.SourceAddress.String()
	}
	if p.TTLSecurity > 0 {
		ap.TtlSecurity = &api.TtlSecurity{Enabled: true, TtlMin: uint32(256 - min(p.TTLSecurity, 255))}
	} else if p.PeerASN != localASN {
		// Upstream's BIRD always allows multihop; gobgp would dial eBGP
		// with TTL 1.
		ap.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: 255}
	}
	if p.RouteReflectorClient {
		ap.RouteReflector = &api.RouteReflector{RouteReflectorClient: true, RouteReflectorClusterId: p.ClusterID}
	}
	return ap
}
