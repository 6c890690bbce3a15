// Package bgp is the agent's BGP: what this node's speaker should be
// (global settings, sessions, originated paths, filters) computed as a pure
// function of the datastore state (Compute), and how learned routes become
// kernel routes (KernelRoutes). node/bgp/speaker drives an embedded gobgp v3
// server to that intent; it computes nothing itself.
//
// Upstream's rules are in ../shared/spec/bgp.md (peer expansion, mesh,
// route reflectors, export pipeline, BGPFilter); names and behaviour follow
// it unless a comment says why not.
package bgp

import (
	"net/netip"
	"time"
)

// Desired is the whole BGP intent of one node. The zero value (Enabled
// false) means "no BGP on this node": the speaker is stopped without
// sending a Cease.
type Desired struct {
	Enabled bool
	Global  Global
	// Peers are the sessions, sorted by Name; at most one per peer address
	// (gobgp keys neighbours by address; a duplicate is dropped and
	// reported in Warnings).
	Peers []Peer
	// Paths are the prefixes this node originates, sorted by Prefix.
	Paths []Path
	// Filters are the BGPFilter rules in force, compiled per peer
	// (the speaker turns them into gobgp's global policies guarded by
	// neighbour sets).
	Filters []PeerFilter
	// Reject are prefixes inside which learned routes never reach the
	// kernel (the service CIDRs we advertise ourselves).
	Reject []netip.Prefix
	// Warnings are things the operator should know (mesh off with no
	// reflector, a duplicate peer address, an invalid field); logged by the
	// agent when they change.
	Warnings []string
}

// Global is the speaker's own identity and listeners.
type Global struct {
	ASN      uint32
	RouterID netip.Addr // IPv4 form, also used for IPv6 sessions
	// ListenPort: 179 by default.
	ListenPort int
	// ListenAddresses: empty = all addresses; bindMode NodeIP = the node's
	// addresses.
	ListenAddresses []netip.Addr
	// NodeIPv4/NodeIPv6 are the node's BGP addresses (the next hop of
	// locally originated paths; invalid when the node has none).
	NodeIPv4, NodeIPv6 netip.Addr
}

// PeerType is how upstream labels a session in `calicoctl node status`.
type PeerType string

const (
	PeerMesh          PeerType = "node-to-node mesh" // Mesh_<ip>
	PeerNode          PeerType = "node specific"     // Node_<ip>
	PeerGlobal        PeerType = "global"            // Global_<ip>
	PeerLocalWorkload PeerType = "local workload"    // Local_Workload_<ip>
)

// NextHopMode is a BGPPeer's nextHopMode.
type NextHopMode string

const (
	NextHopAuto NextHopMode = ""
	NextHopSelf NextHopMode = "Self"
	NextHopKeep NextHopMode = "Keep"
)

// Peer is one BGP session.
type Peer struct {
	// Name is upstream's protocol name: Mesh_10_0_0_2, Node_10_0_0_2_port_1790,
	// Global_..., Local_Workload_...
	Name    string
	Type    PeerType
	Address netip.Addr
	Port    int // 0 = 179
	PeerASN uint32
	// LocalASN is the session's local AS (0 = Global.ASN).
	LocalASN uint32
	// SourceAddress binds the session (invalid = any local address).
	SourceAddress netip.Addr
	// Passive sessions never dial (exactly one side of every session
	// between two of our nodes dials).
	Passive bool
	// Password is the TCP-MD5 secret, resolved by the planner's caller from
	// PasswordRef ("" = none).
	Password    string
	PasswordRef *SecretRef
	// RouteReflectorClient makes the peer our client; ClusterID is ours.
	RouteReflectorClient bool
	ClusterID            string
	// Timers; zero = defaults (keepalive hold/3, restart 120 s).
	Keepalive   time.Duration
	RestartTime time.Duration
	// AllowOwnAS is numAllowedLocalASNumbers.
	AllowOwnAS int
	// TTLSecurity > 0 enables GTSM with that many hops; otherwise eBGP is
	// multihop (255) as upstream's BIRD always allows.
	TTLSecurity int
	NextHop     NextHopMode
	// Filters are BGPFilter names, in order.
	Filters []string
	// IsCalicoNode is true when the remote is one of our nodes (used for
	// the passive rule and reverse peering).
	IsCalicoNode bool
	// ReachableBy is a gateway to the peer (a /32 kernel route is
	// programmed for it).
	ReachableBy netip.Addr
	// Source is the BGPPeer the session comes from ("" for the mesh).
	Source string
}

// SecretRef names a key of a Secret in the agent's namespace.
type SecretRef struct{ Name, Key string }

// Path is one originated prefix.
type Path struct {
	Prefix netip.Prefix
	// Communities: standard "aa:nn" or large "aa:nn:mm".
	Communities []string
	// Kind says why it is exported (for `node status --routes`).
	Kind PathKind
}

// PathKind says why a path is originated.
type PathKind string

const (
	PathBlock    PathKind = "block"    // an IPAM block affine to this node
	PathBorrowed PathKind = "borrowed" // a local workload's address from another node's block
	PathService  PathKind = "service"  // a service CIDR from BGPConfiguration
)

// PeerFilter is one peer's BGPFilter chain.
type PeerFilter struct {
	Peer    netip.Addr
	Filters []Filter // in the peer's order
}

// Filter is one BGPFilter.
type Filter struct {
	Name               string
	ExportV4, ImportV4 []FilterRule
	ExportV6, ImportV6 []FilterRule
}

// FilterRule is one BGPFilter rule (fields as upstream; empty = any).
type FilterRule struct {
	Action        string // Accept | Reject
	CIDR          netip.Prefix
	MatchOperator string // Equal | In | NotEqual | NotIn
	PrefixLenMin  int
	PrefixLenMax  int
	Source        string // "" | RemotePeers
	Interface     string
	PeerType      string // "" | eBGP | iBGP
	Community     string
	ASPathPrefix  []uint32
	Priority      int // 0 = any (gobgp v3 has no LOCAL_PREF condition)
	Operations    []FilterOperation
}

// FilterOperation is one accept-time operation.
type FilterOperation struct {
	AddCommunity  string
	PrependASPath []uint32
	SetPriority   int
}

// Learned is a best path the speaker learned from a peer.
type Learned struct {
	Prefix  netip.Prefix
	NextHop netip.Addr
	// Peer is the address of the session it came from.
	Peer netip.Addr
}

// PeerStatus is one session's state as the speaker reports it (for
// `calicoctl node status` and CalicoNodeStatus).
type PeerStatus struct {
	Name    string
	Type    PeerType
	Address netip.Addr
	Port    int
	// State is the BGP FSM state: Idle, Connect, Active, OpenSent,
	// OpenConfirm, Established.
	State string
	// Since is when State last changed.
	Since time.Time
	// Info is the last error (a NOTIFICATION or a dial error), if any.
	Info                           string
	Received, Accepted, Advertised int
	Flaps                          int
}
