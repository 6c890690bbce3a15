// Package status serves and publishes what the node's BGP speaker reports:
// a unix-socket HTTP endpoint (GET /status, GET /metrics) that `calicoctl
// node status` reads, its client (Fetch), and a Publisher that copies the
// report into this node's CalicoNodeStatus objects.
package status

import (
	"context"
	"io"
	"time"
)

// DefaultSocket is where the agent serves its BGP status.
const DefaultSocket = "/var/run/calico/bgp.sock"

// Report is the speaker's state as `calicoctl node status` shows it.
type Report struct {
	// Running is false when BGP is disabled on this node (or not started).
	Running bool `json:"running"`
	// Version is the agent's version.
	Version  string `json:"version,omitempty"`
	RouterID string `json:"routerID,omitempty"`
	ASN      uint32 `json:"asNumber,omitempty"`
	// ListenPort is the BGP port (-1: no listener).
	ListenPort int `json:"listenPort,omitempty"`
	// Started is when the current BGP server started.
	Started time.Time `json:"started,omitzero"`
	// Restarting is true while the speaker is a graceful-restart restarting
	// speaker still deferring its first best-path run.
	Restarting bool `json:"restarting,omitempty"`
	// Peers are sorted by name.
	Peers []Peer `json:"peers"`
	// Routes is the RIB (only when asked for).
	Routes []Route `json:"routes,omitempty"`
}

// Peer is one session, with upstream's columns (PEER ADDRESS, PEER TYPE,
// STATE, SINCE, INFO) and a few more.
type Peer struct {
	// Name is upstream's protocol name (Mesh_10_0_0_2, Node_..., Global_...).
	Name    string `json:"name"`
	Address string `json:"address"`
	Port    int    `json:"port,omitempty"`
	// Type is upstream's PEER TYPE: node-to-node mesh, node specific,
	// global, local workload.
	Type string `json:"type"`
	// State is the protocol state as BIRD showed it: up (Established),
	// start (any other FSM state), down (administratively down).
	State string `json:"state"`
	// BGPState is the FSM state: Idle, Connect, Active, OpenSent,
	// OpenConfirm, Established.
	BGPState string `json:"bgpState"`
	// Since is when the session last changed state (zero: never).
	Since time.Time `json:"since,omitzero"`
	// LastError is the last NOTIFICATION or connection error, if any.
	LastError string `json:"lastError,omitempty"`
	PeerASN   uint32 `json:"peerAS,omitempty"`
	LocalASN  uint32 `json:"localAS,omitempty"`
	// LocalAddress is the local end of an established session.
	LocalAddress string `json:"localAddress,omitempty"`
	Received     int    `json:"received"`
	Accepted     int    `json:"accepted"`
	Advertised   int    `json:"advertised"`
	Flaps        int    `json:"flaps,omitempty"`
}

// Info is upstream's INFO column: the BGP state, then the last error.
func (p Peer) Info() string {
	if p.LastError != "" && p.BGPState != "Established" {
		return p.BGPState + " " + p.LastError
	}
	return p.BGPState
}

// IPv6 reports whether the peer is an IPv6 session.
func (p Peer) IPv6() bool {
	for i := 0; i < len(p.Address); i++ {
		if p.Address[i] == ':' {
			return true
		}
	}
	return false
}

// Route is one path of the speaker's RIB.
type Route struct {
	Prefix  string `json:"prefix"`
	NextHop string `json:"nextHop,omitempty"`
	// Peer is the session the path came from ("" for our own paths).
	Peer        string    `json:"peer,omitempty"`
	Best        bool      `json:"best,omitempty"`
	Local       bool      `json:"local,omitempty"`
	ASPath      []uint32  `json:"asPath,omitempty"`
	Communities []string  `json:"communities,omitempty"`
	Age         time.Time `json:"age,omitzero"`
}

// Source is what Serve and Publisher read: the speaker.
type Source interface {
	Report(ctx context.Context, withRoutes bool) (Report, error)
	// WriteMetrics writes the speaker's metrics in the Prometheus text
	// exposition format.
	WriteMetrics(ctx context.Context, w io.Writer) error
}
