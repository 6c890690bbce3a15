package bgp

import (
	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

// Env is the part of calico-node's environment the planner reads (see
// node/config).
type Env struct {
	// Backend is CALICO_NETWORKING_BACKEND: only "bird" (or "", its
	// default) runs BGP.
	Backend string
	// RouterID is CALICO_ROUTER_ID: "hash", an IPv4 address, or "" for the
	// node's IPv4 address.
	RouterID string
	// AdvertiseClusterIPs is CALICO_ADVERTISE_CLUSTER_IPS: one CIDR that
	// replaces BGPConfiguration serviceClusterIPs while set.
	AdvertiseClusterIPs string
}

// Input is everything Compute reads. Its objects are only read, never
// modified, so they may be shared with the agent's state model.
type Input struct {
	// NodeName is this node.
	NodeName string
	// Nodes are all Calico nodes, by name.
	Nodes map[string]*resources.Node
	// Configs are the BGPConfigurations by name: "default" and the
	// "node.<name>" of any node (other nodes' listen ports matter).
	Configs map[string]*resources.BGPConfiguration
	// Peers are all BGPPeers (any order; Compute sorts them by name).
	Peers []*resources.BGPPeer
	// Filters are the BGPFilters by name.
	Filters map[string]*resources.BGPFilter
	// Pools are all IP pools.
	Pools []*resources.IPPool
	// Blocks are the IPAM blocks affine to this node (others are ignored).
	Blocks []*state.Block
	// Workloads are the workload endpoints on this node (others are
	// ignored).
	Workloads []*state.Endpoint
	Env       Env
}

// FromModel builds the planner's Input for node from the agent's followed
// state. It only reads m, so call it inside Follower.Read.
func FromModel(m *state.Model, node string, env Env) Input {
	in := Input{
		NodeName:  node,
		Nodes:     m.Nodes(),
		Configs:   m.BGPConfigurations(),
		Peers:     m.BGPPeers(),
		Filters:   m.BGPFilters(),
		Pools:     m.Pools(),
		Workloads: m.WorkloadEndpointsOn(node),
		Env:       env,
	}
	for _, cidr := range m.BlocksAffineTo(node) {
		if b := m.Block(cidr); b != nil {
			in.Blocks = append(in.Blocks, b)
		}
	}
	return in
}
