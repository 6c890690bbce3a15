package ipam

import (
	"net/netip"
	"time"
)

// Block is an allocation block: a CIDR cut from a pool whose addresses are
// handed out one ordinal at a time. Fields mirror upstream's AllocationBlock
// (its etcd JSON is the canonical encoding; see the store implementations).
type Block struct {
	CIDR netip.Prefix
	// Affinity is "host:<node>", "virtual:<name>" or "" (none).
	Affinity          string
	AffinityClaimTime *time.Time
	// Allocations has one entry per ordinal: nil = free, else an index into Attributes.
	Allocations []*int
	// Unallocated lists free ordinals in the order they are handed out (FIFO).
	Unallocated []int
	Attributes  []AllocationAttribute
	// SequenceNumber is bumped on every write of the block; each allocation
	// records the block's sequence number at the time it was made, so a
	// release can prove it refers to the same allocation.
	SequenceNumber              uint64
	SequenceNumberForAllocation map[string]uint64
	Deleted                     bool

	// Revision is the datastore revision this copy was read at ("" = new).
	Revision string
}

// AllocationAttribute describes who an allocation belongs to.
type AllocationAttribute struct {
	HandleID            *string
	ActiveOwnerAttrs    map[string]string // upstream JSON name: "secondary"
	AlternateOwnerAttrs map[string]string
	ReleasedAt          *time.Time
}

// AffinityState is the life-cycle state of a block affinity.
type AffinityState string

// Affinity states.
const (
	StatePending         AffinityState = "pending"
	StateConfirmed       AffinityState = "confirmed"
	StatePendingDeletion AffinityState = "pendingDeletion"
)

// Affinity binds a block to a host (or a virtual owner).
type Affinity struct {
	Host string
	// Type is "host" or "virtual".
	Type    string
	CIDR    netip.Prefix
	State   AffinityState
	Deleted bool

	Revision string
}

// Handle records how many addresses one owner (a pod, a tunnel) holds in each block.
type Handle struct {
	ID string
	// Block maps a block CIDR string to the number of addresses the handle holds there.
	Block   map[string]int
	Deleted bool

	Revision string
}

// Config is the cluster-wide IPAM configuration.
type Config struct {
	StrictAffinity     bool
	AutoAllocateBlocks bool
	// MaxBlocksPerHost limits blocks per host (0 = no limit beyond the default of 20 per request).
	MaxBlocksPerHost             int
	KubeVirtVMAddressPersistence string
	IPCooldownSeconds            int

	Revision string
}

// DefaultConfig is what a datastore without an IPAM config means.
func DefaultConfig() *Config {
	return &Config{AutoAllocateBlocks: true, KubeVirtVMAddressPersistence: "Enabled"}
}

// Attribute keys and tunnel types used in ActiveOwnerAttrs (upstream's).
const (
	AttrNode      = "node"
	AttrNamespace = "namespace"
	AttrPod       = "pod"
	AttrTimestamp = "timestamp"
	AttrType      = "type"

	TypeIPIPTunnel      = "ipipTunnelAddress"
	TypeVXLANTunnel     = "vxlanTunnelAddress"
	TypeVXLANV6Tunnel   = "vxlanV6TunnelAddress"
	TypeWireguardTunnel = "wireguardTunnelAddress"
)
