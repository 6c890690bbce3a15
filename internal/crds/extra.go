package crds

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/opencalico/calicoctl/resources"
)

// Go shapes of the crd.projectcalico.org kinds that have no type in
// package resources. They exist only to derive schemas: IPAM objects (§2.6 of
// the compatibility notes), node status reports and staged policies. Every
// object keeps fields it does not list, so these need not be complete.

// ipamBlock is a block of addresses handed out to one host.
type ipamBlock struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ipamBlockSpec `json:"spec,omitempty"`
}

type ipamBlockSpec struct {
	// CIDR is the block's CIDR.
	CIDR string `json:"cidr"`
	// Affinity is "host:<node>" (or "virtual:<name>") when the block is
	// affine to a host; empty otherwise.
	Affinity *string `json:"affinity,omitempty"`
	// AffinityClaimTime is when the affinity was claimed.
	AffinityClaimTime *metav1.Time `json:"affinityClaimTime,omitempty"`
	// Allocations has one entry per address: null when free, otherwise the
	// index of the allocation's entry in Attributes.
	Allocations []*int `json:"allocations,omitempty"`
	// Unallocated lists the free ordinals in the order they are handed out.
	Unallocated []int `json:"unallocated,omitempty"`
	// Attributes describe the allocations (handle and owner).
	Attributes []ipamAllocationAttribute `json:"attributes,omitempty"`
	// SequenceNumber is bumped on every write of the block.
	SequenceNumber uint64 `json:"sequenceNumber,omitempty"`
	// SequenceNumberForAllocation maps an ordinal (as a string) to the block's
	// sequence number when the ordinal was allocated.
	SequenceNumberForAllocation map[string]uint64 `json:"sequenceNumberForAllocation,omitempty"`
	// Deleted marks a block that is being deleted; readers ignore it.
	Deleted bool `json:"deleted,omitempty"`
	// StrictAffinity is deprecated and unused; see IPAMConfig.
	StrictAffinity bool `json:"strictAffinity,omitempty"`
}

type ipamAllocationAttribute struct {
	// HandleID is the IPAM handle owning the allocation.
	HandleID *string `json:"handle_id,omitempty"`
	// Secondary holds metadata such as node, namespace and pod.
	Secondary map[string]string `json:"secondary,omitempty"`
	// AlternateOwnerAttrs holds the metadata of a second owner of the address.
	AlternateOwnerAttrs map[string]string `json:"alternate,omitempty"`
	// ReleasedAt is when the address was released (IP cool-down).
	ReleasedAt *metav1.Time `json:"releasedAt,omitempty"`
}

// blockAffinity records that a host claims a block.
type blockAffinity struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              blockAffinitySpec `json:"spec,omitempty"`
}

type blockAffinitySpec struct {
	// State is pending, confirmed or pendingDeletion.
	State string `json:"state,omitempty"`
	// Node is the host (or virtual owner) holding the affinity.
	Node string `json:"node"`
	// Type is host or virtual.
	Type string `json:"type,omitempty"`
	// CIDR is the block's CIDR.
	CIDR string `json:"cidr"`
	// Deleted is the string "true" while the affinity is being deleted.
	Deleted string `json:"deleted,omitempty"`
}

// ipamHandle counts the addresses a handle owns in each block.
type ipamHandle struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ipamHandleSpec `json:"spec,omitempty"`
}

type ipamHandleSpec struct {
	// HandleID is the handle as given (the object name is lower-cased).
	HandleID string `json:"handleID"`
	// Block maps a block CIDR to the number of addresses held in it.
	Block map[string]int `json:"block,omitempty"`
	// Deleted marks a handle that is being deleted; readers ignore it.
	Deleted bool `json:"deleted,omitempty"`
}

// ipamConfig is the cluster's IPAM settings (the object named "default").
type ipamConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ipamConfigSpec `json:"spec,omitempty"`
}

type ipamConfigSpec struct {
	// StrictAffinity stops hosts borrowing addresses from blocks affine to
	// other hosts.
	StrictAffinity bool `json:"strictAffinity,omitempty"`
	// AutoAllocateBlocks lets hosts claim new blocks on demand.
	AutoAllocateBlocks bool `json:"autoAllocateBlocks,omitempty"`
	// MaxBlocksPerHost caps the blocks affine to one host; 0 is no limit.
	MaxBlocksPerHost int32 `json:"maxBlocksPerHost,omitempty"`
	// KubeVirtVMAddressPersistence keeps KubeVirt VM addresses across
	// restarts and migrations (Enabled or Disabled).
	KubeVirtVMAddressPersistence string `json:"kubeVirtVMAddressPersistence,omitempty"`
	// IPCooldownSeconds delays the reuse of released addresses.
	IPCooldownSeconds int `json:"ipCooldownSeconds,omitempty"`
}

// stagedGlobalNetworkPolicy is a GlobalNetworkPolicy that is evaluated but
// not enforced.
type stagedGlobalNetworkPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              stagedGlobalNetworkPolicySpec `json:"spec,omitempty"`
}

type stagedGlobalNetworkPolicySpec struct {
	// StagedAction is Set (the default) or Delete.
	StagedAction string `json:"stagedAction,omitempty"`
	resources.GlobalNetworkPolicySpec
}

// stagedNetworkPolicy is a NetworkPolicy that is evaluated but not enforced.
type stagedNetworkPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              stagedNetworkPolicySpec `json:"spec,omitempty"`
}

type stagedNetworkPolicySpec struct {
	// StagedAction is Set (the default) or Delete.
	StagedAction string `json:"stagedAction,omitempty"`
	resources.NetworkPolicySpec
}

// stagedKubernetesNetworkPolicy is a Kubernetes NetworkPolicy that is
// evaluated but not enforced.
type stagedKubernetesNetworkPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              stagedKubernetesNetworkPolicySpec `json:"spec,omitempty"`
}

type stagedKubernetesNetworkPolicySpec struct {
	// StagedAction is Set (the default) or Delete.
	StagedAction string `json:"stagedAction,omitempty"`
	// PodSelector picks the pods the policy applies to; empty selects all
	// pods in the namespace.
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`
	// Ingress rules, as in a Kubernetes NetworkPolicy.
	Ingress []k8sPolicyRule `json:"ingress,omitempty"`
	// Egress rules, as in a Kubernetes NetworkPolicy.
	Egress []k8sPolicyRule `json:"egress,omitempty"`
	// PolicyTypes lists Ingress and/or Egress.
	PolicyTypes []string `json:"policyTypes,omitempty"`
}

// k8sPolicyRule is a Kubernetes NetworkPolicy ingress or egress rule. Its
// peers (from/to) are kept as written rather than described here.
type k8sPolicyRule struct {
	// Ports the rule matches.
	Ports []k8sPolicyPort `json:"ports,omitempty"`
	// From lists the peers an ingress rule allows.
	From []struct{} `json:"from,omitempty"`
	// To lists the peers an egress rule allows.
	To []struct{} `json:"to,omitempty"`
}

// k8sPolicyPort is a port (number or name) and protocol.
type k8sPolicyPort struct {
	// Protocol is TCP, UDP or SCTP.
	Protocol string `json:"protocol,omitempty"`
	// Port is a number or a named port.
	Port *intstr.IntOrString `json:"port,omitempty"`
	// EndPort ends a port range that starts at Port.
	EndPort *int32 `json:"endPort,omitempty"`
}
