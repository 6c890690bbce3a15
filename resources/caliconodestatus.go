package resources

import (
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CalicoNodeStatus is the projectcalico.org/v3 CalicoNodeStatus resource: a
// request that one node report its agent, BGP and route status, which that
// node writes into status every updatePeriodSeconds. Nodes only update
// objects that exist; nothing creates them automatically.
type CalicoNodeStatus struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              CalicoNodeStatusSpec   `json:"spec,omitempty"`
	Status            CalicoNodeStatusStatus `json:"status,omitempty"`
}

// CalicoNodeStatus classes.
const (
	NodeStatusClassAgent  = "Agent"
	NodeStatusClassBGP    = "BGP"
	NodeStatusClassRoutes = "Routes"
)

// CalicoNodeStatusSpec says which node reports what, how often.
type CalicoNodeStatusSpec struct {
	// Node is the Calico node to report on.
	Node string `json:"node,omitempty"`
	// Classes are the kinds of status to report: Agent, BGP, Routes.
	Classes []string `json:"classes,omitempty"`
	// UpdatePeriodSeconds is how often the status is refreshed; 0 disables
	// refreshing.
	UpdatePeriodSeconds *uint32 `json:"updatePeriodSeconds,omitempty"`
}

// CalicoNodeStatusStatus is what the node writes.
type CalicoNodeStatusStatus struct {
	// LastUpdated is when the node last wrote the status.
	LastUpdated metav1.Time `json:"lastUpdated,omitzero"`
	// Agent is the BGP daemons' state.
	Agent CalicoNodeAgentStatus `json:"agent,omitzero"`
	// BGP is the BGP sessions' state.
	BGP CalicoNodeBGPStatus `json:"bgp,omitzero"`
	// Routes are the routes the BGP speaker holds.
	Routes CalicoNodeRoutes `json:"routes,omitzero"`
}

// CalicoNodeAgentStatus is the state of the BGP daemon of each family.
type CalicoNodeAgentStatus struct {
	// BIRDV4 is the IPv4 BGP daemon (the speaker serving IPv4 sessions).
	BIRDV4 BGPDaemonStatus `json:"birdV4,omitzero"`
	// BIRDV6 is the IPv6 BGP daemon.
	BIRDV6 BGPDaemonStatus `json:"birdV6,omitzero"`
}

// BGPDaemonStatus is one BGP daemon's state.
type BGPDaemonStatus struct {
	// State is Ready or NotReady.
	State string `json:"state,omitempty"`
	// Version is the daemon's version.
	Version string `json:"version,omitempty"`
	// RouterID is the daemon's router ID.
	RouterID string `json:"routerID,omitempty"`
	// LastBootTime is when the daemon started.
	LastBootTime string `json:"lastBootTime,omitempty"`
	// LastReconfigurationTime is when the daemon was last reconfigured.
	LastReconfigurationTime string `json:"lastReconfigurationTime,omitempty"`
}

// CalicoNodeBGPStatus counts and lists the BGP sessions.
type CalicoNodeBGPStatus struct {
	// NumberEstablishedV4 is the number of established IPv4 sessions.
	NumberEstablishedV4 int `json:"numberEstablishedV4"`
	// NumberNotEstablishedV4 is the number of other IPv4 sessions.
	NumberNotEstablishedV4 int `json:"numberNotEstablishedV4"`
	// NumberEstablishedV6 is the number of established IPv6 sessions.
	NumberEstablishedV6 int `json:"numberEstablishedV6"`
	// NumberNotEstablishedV6 is the number of other IPv6 sessions.
	NumberNotEstablishedV6 int `json:"numberNotEstablishedV6"`
	// PeersV4 are the IPv4 sessions.
	PeersV4 []CalicoNodePeer `json:"peersV4,omitempty"`
	// PeersV6 are the IPv6 sessions.
	PeersV6 []CalicoNodePeer `json:"peersV6,omitempty"`
}

// CalicoNodePeer is one BGP session.
type CalicoNodePeer struct {
	// PeerIP is the peer's address.
	PeerIP string `json:"peerIP,omitempty"`
	// Type is NodeMesh, NodePeer or GlobalPeer.
	Type string `json:"type,omitempty"`
	// State is the BGP state: Idle, Connect, Active, OpenSent, OpenConfirm,
	// Established, Close.
	State string `json:"state,omitempty"`
	// Since is when the state last changed.
	Since string `json:"since,omitempty"`
}

// CalicoNodeRoutes lists routes per family.
type CalicoNodeRoutes struct {
	// RoutesV4 are the IPv4 routes.
	RoutesV4 []CalicoNodeRoute `json:"routesV4,omitempty"`
	// RoutesV6 are the IPv6 routes.
	RoutesV6 []CalicoNodeRoute `json:"routesV6,omitempty"`
}

// CalicoNodeRoute is one route.
type CalicoNodeRoute struct {
	// Type is FIB (the best route) or RIB.
	Type string `json:"type,omitempty"`
	// Destination is the prefix.
	Destination string `json:"destination,omitempty"`
	// Gateway is the next hop.
	Gateway string `json:"gateway,omitempty"`
	// Interface is the outgoing interface, when known.
	Interface string `json:"interface,omitempty"`
	// LearnedFrom says where the route came from.
	LearnedFrom CalicoNodeRouteSource `json:"learnedFrom,omitzero"`
}

// CalicoNodeRouteSource is where a route came from.
type CalicoNodeRouteSource struct {
	// SourceType is Kernel, Static, Direct, NodeMesh or BGPPeer.
	SourceType string `json:"sourceType,omitempty"`
	// PeerIP is the BGP peer the route came from.
	PeerIP string `json:"peerIP,omitempty"`
}

// Default does nothing: upstream writes no defaults.
func (r *CalicoNodeStatus) Default() {}

// maxUpdatePeriod is upstream's limit on updatePeriodSeconds (a day).
const maxUpdatePeriod = 86400

// Validate checks the node name, the classes and the update period, which
// upstream requires.
func (r *CalicoNodeStatus) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	if r.Spec.Node == "" {
		v.Add("spec.node", r.Spec.Node, "must be set")
	}
	seen := map[string]bool{}
	for i, c := range r.Spec.Classes {
		field := fmt.Sprintf("spec.classes[%d]", i)
		if !slices.Contains([]string{NodeStatusClassAgent, NodeStatusClassBGP, NodeStatusClassRoutes}, c) {
			v.Add(field, c, "must be Agent, BGP or Routes")
		} else if seen[c] {
			v.Add(field, c, "is listed twice")
		}
		seen[c] = true
	}
	if p := r.Spec.UpdatePeriodSeconds; p == nil {
		v.Add("spec.updatePeriodSeconds", nil, "must be set")
	} else if *p > maxUpdatePeriod {
		v.Add("spec.updatePeriodSeconds", *p, "must be at most 86400")
	}
	return v.Err()
}
