package cli

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/resources"
)

// This file is the pure analysis behind `ipam check`: given the IPAM
// objects, pools, nodes and workload endpoints, find the inconsistencies.

// checkInput is everything `ipam check` reads.
type checkInput struct {
	Blocks  []*ipam.Block
	Handles []*ipam.Handle
	Pools   []ipam.Pool
	Nodes   []*resources.Node
	WEPs    []*resources.WorkloadEndpoint
}

// ipOwner is something that uses an address: a workload endpoint or a node's
// tunnel device.
type ipOwner struct {
	Type      string `json:"type"` // "workloadEndpoint" or the tunnel attribute type
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Node      string `json:"node,omitempty"`
}

func (o ipOwner) String() string {
	if o.Namespace != "" {
		return o.Type + " " + o.Namespace + "/" + o.Name
	}
	return o.Type + " " + o.Name
}

// checkResult holds every finding.
type checkResult struct {
	Allocs      []allocRecord
	InUse       map[netip.Addr][]ipOwner
	ActivePools []ipam.Pool
	Leaked      []allocRecord // allocated, used by nothing, and not on purpose
	OnPurpose   int           // allocated, used by nothing IPAM sees, assigned on purpose
	NotInPool   []netip.Addr  // in use, outside every active pool
	NoAlloc     []netip.Addr  // in use inside a pool, not allocated
	HandlesNoIP []string      // handle records no allocation refers to
	HandlesWith int           // handle records with allocations
	Missing     []string      // handle IDs in blocks with no handle record
	OrphanBlock []*ipam.Block // affine to a node that does not exist
	Duplicates  []netip.Addr  // used by more than one owner, or allocated twice
	Malformed   []string      // one line per malformed block
	NodeCounts  map[string]int
}

// Problems is the number of problems `ipam check` reports.
func (r *checkResult) Problems() int {
	return len(r.Leaked) + len(r.NotInPool) + len(r.NoAlloc) + len(r.HandlesNoIP) +
		len(r.Missing) + len(r.OrphanBlock) + len(r.Duplicates) + len(r.Malformed)
}

// nodeTunnelOwners lists the tunnel addresses a node's spec records.
func nodeTunnelOwners(n *resources.Node) map[netip.Addr]ipOwner {
	out := map[netip.Addr]ipOwner{}
	add := func(s, typ string) {
		if s == "" {
			return
		}
		s, _, _ = strings.Cut(s, "/")
		if a, err := netip.ParseAddr(s); err == nil {
			out[a.Unmap()] = ipOwner{Type: typ, Name: n.Name, Node: n.Name}
		}
	}
	if n.Spec.BGP != nil {
		add(n.Spec.BGP.IPv4IPIPTunnelAddr, ipam.TypeIPIPTunnel)
	}
	add(n.Spec.IPv4VXLANTunnelAddr, ipam.TypeVXLANTunnel)
	add(n.Spec.IPv6VXLANTunnelAddr, ipam.TypeVXLANV6Tunnel)
	if n.Spec.Wireguard != nil {
		add(n.Spec.Wireguard.InterfaceIPv4Address, ipam.TypeWireguardTunnel)
		add(n.Spec.Wireguard.InterfaceIPv6Address, "wireguardV6TunnelAddress")
	}
	return out
}

// usersOf maps each in-use address to its owners.
func usersOf(in checkInput) map[netip.Addr][]ipOwner {
	use := map[netip.Addr][]ipOwner{}
	for _, n := range in.Nodes {
		for a, o := range nodeTunnelOwners(n) {
			use[a] = append(use[a], o)
		}
	}
	for _, w := range in.WEPs {
		for _, s := range w.Spec.IPNetworks {
			s, _, _ = strings.Cut(s, "/")
			a, err := netip.ParseAddr(s)
			if err != nil {
				continue
			}
			use[a.Unmap()] = append(use[a.Unmap()], ipOwner{Type: "workloadEndpoint", Namespace: w.Namespace, Name: w.Name, Node: w.Spec.Node})
		}
	}
	return use
}

// scanIPAM runs every check over in.
func scanIPAM(in checkInput) *checkResult {
	r := &checkResult{InUse: usersOf(in), NodeCounts: map[string]int{}}
	for _, p := range in.Pools {
		if !p.Disabled {
			r.ActivePools = append(r.ActivePools, p)
		}
	}
	nodes := map[string]bool{}
	for _, n := range in.Nodes {
		nodes[n.Name] = true
	}
	handles := map[string]bool{}
	for _, h := range in.Handles {
		if !h.Deleted {
			handles[h.ID] = true
		}
	}
	allocated := map[netip.Addr]int{}
	referenced := map[string]bool{}
	missing := map[string]bool{}
	for _, b := range sortedBlocks(in.Blocks) {
		r.Malformed = append(r.Malformed, malformedBlock(b)...)
		if owner, ok := strings.CutPrefix(b.Affinity, "host:"); ok && !nodes[owner] {
			r.OrphanBlock = append(r.OrphanBlock, b)
		}
		for _, a := range allocationsOf(b) {
			a.Verdict = judge(a, r.InUse)
			allocated[a.IP]++
			if n := a.Attrs[ipam.AttrNode]; n != "" {
				r.NodeCounts[n]++
			} else if owner := affinityOwner(b.Affinity); owner != "" {
				r.NodeCounts[owner]++
			}
			if a.Handle != "" {
				referenced[a.Handle] = true
				if !handles[a.Handle] && !missing[a.Handle] {
					missing[a.Handle] = true
					r.Missing = append(r.Missing, a.Handle)
				}
			}
			switch {
			case a.Verdict.Leaked():
				r.Leaked = append(r.Leaked, a)
			case a.Verdict.OnPurpose:
				r.OnPurpose++
			}
			r.Allocs = append(r.Allocs, a)
		}
	}
	for id := range handles {
		if referenced[id] {
			r.HandlesWith++
		} else {
			r.HandlesNoIP = append(r.HandlesNoIP, id)
		}
	}
	slices.Sort(r.HandlesNoIP)
	slices.Sort(r.Missing)
	for a, owners := range r.InUse {
		if len(owners) > 1 || allocated[a] > 1 {
			r.Duplicates = append(r.Duplicates, a)
		}
		if allocated[a] > 0 {
			continue
		}
		if inAnyPool(r.ActivePools, a) {
			r.NoAlloc = append(r.NoAlloc, a)
		} else {
			r.NotInPool = append(r.NotInPool, a)
		}
	}
	for a, n := range allocated {
		if n > 1 && len(r.InUse[a]) <= 1 {
			r.Duplicates = append(r.Duplicates, a)
		}
	}
	for _, s := range [][]netip.Addr{r.NoAlloc, r.NotInPool, r.Duplicates} {
		slices.SortFunc(s, netip.Addr.Compare)
	}
	return r
}

// allocVerdict is why `ipam check` lists an allocation as it does.
type allocVerdict struct {
	// Rule is the leak rule the allocation breaks ("" = not leaked).
	Rule string
	// OnPurpose: used by nothing IPAM sees, but assigned on purpose.
	OnPurpose bool
	Reason    string
}

// Leaked reports whether the allocation is a leak.
func (v allocVerdict) Leaked() bool { return v.Rule != "" }

// judge decides whether an allocation is in use, cooling down, assigned on
// purpose, or leaked (and by which rule), given who uses each address.
func judge(a allocRecord, use map[netip.Addr][]ipOwner) allocVerdict {
	if owners := use[a.IP]; len(owners) > 0 {
		names := make([]string, len(owners))
		for i, o := range owners {
			names[i] = o.String()
		}
		return allocVerdict{Reason: "in use by " + strings.Join(names, ", ")}
	}
	if a.CoolingDown {
		return allocVerdict{Reason: "released; cooling down before the address is reused"}
	}
	rule, reason := ipam.UnusedVerdict(a.Handle, a.Attrs)
	return allocVerdict{Rule: rule, OnPurpose: rule == "", Reason: reason}
}

func inAnyPool(pools []ipam.Pool, a netip.Addr) bool {
	for _, p := range pools {
		if p.CIDR.Contains(a) {
			return true
		}
	}
	return false
}

// malformedBlock describes what is structurally wrong with b.
func malformedBlock(b *ipam.Block) []string {
	var out []string
	if n := ipam.BlockCapacity(b.CIDR); len(b.Allocations) != n {
		out = append(out, b.CIDR.String()+": allocations has the wrong length")
	}
	for _, p := range b.Allocations {
		if p != nil && (*p < 0 || *p >= len(b.Attributes)) {
			out = append(out, b.CIDR.String()+": an allocation refers to a missing attribute")
			break
		}
	}
	for _, ord := range b.Unallocated {
		if ord < 0 || ord >= len(b.Allocations) || b.Allocations[ord] != nil {
			out = append(out, b.CIDR.String()+": an allocated or invalid ordinal is listed as unallocated")
			break
		}
	}
	return out
}
