// Package policy is the agent's network policy: Calico's policy model
// (tiers, GlobalNetworkPolicy, NetworkPolicy incl. Kubernetes
// NetworkPolicies as knp.default.*, profiles incl. kns.* and ksa.*,
// network sets, host endpoints) evaluated as Felix does (Evaluate, for
// `calicoctl policy explain`) and compiled to nftables content (Compile,
// for the agent's policy writer). Both are pure functions of Input.
//
// Upstream's semantics are in ../shared/spec/policy.md; names follow it
// unless a comment says why not.
package policy

import (
	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

// Input is everything policy reads. Objects are only read, never
// modified, so they may be shared with the agent's state model.
type Input struct {
	// NodeName is this node (Compile programs its endpoints; Evaluate
	// ignores it).
	NodeName string
	// Tiers as stored; the protected tiers (kube-admin, default,
	// kube-baseline) are assumed with upstream's orders and default
	// actions when absent.
	Tiers []*resources.Tier
	// GlobalPolicies and Policies (any order; staged ones are never
	// enforced). Policies include Kubernetes NetworkPolicies as the
	// Kubernetes datastore presents them (knp.default.<name>).
	GlobalPolicies []*resources.GlobalNetworkPolicy
	Policies       []*resources.NetworkPolicy
	// Profiles, including kns.<namespace> and ksa.<namespace>.<sa> on the
	// Kubernetes datastore (their labels are what namespaceSelector and
	// service-account matches read).
	Profiles          []*resources.Profile
	GlobalNetworkSets []*resources.GlobalNetworkSet
	NetworkSets       []*resources.NetworkSet
	HostEndpoints     []*resources.HostEndpoint
	// Endpoints are every workload endpoint of the cluster (local ones,
	// Node == NodeName, get chains; all of them feed selector sets).
	Endpoints []*state.Endpoint
	// Felix holds the settings policy reads (zero values: upstream's
	// defaults for the datastore).
	Felix Settings
}

// Settings are the FelixConfiguration fields policy reads.
type Settings struct {
	// DefaultEndpointToHostAction: Drop, Return or Accept ("" = Drop).
	DefaultEndpointToHostAction string
	// FilterDenyAction: Drop or Reject ("" = Drop).
	FilterDenyAction string
	// FailsafeInboundHostPorts and FailsafeOutboundHostPorts; nil =
	// upstream's defaults.
	FailsafeInboundHostPorts, FailsafeOutboundHostPorts []resources.ProtoPort
}
