package cli

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/opencalico/calicoctl/internal/ipam"
)

// This file holds the pure parts of `ipam show`: utilization per pool and
// block, allocation records, and the rows of every table. No I/O.

// IPS RESERVED (addresses an IPReservation keeps back) is upstream's newer
// column; the v3.32 layout had none and counted them as free.
var utilizationHeader = []string{"GROUPING", "CIDR", "IPS TOTAL", "IPS IN USE", "IPS RESERVED", "IPS FREE"}

// countCell is upstream's "%.5g (%.f%%)": a count and its share of total.
func countCell(n, total float64) string {
	pct := 0.0
	if total > 0 {
		pct = n / total * 100
	}
	return fmt.Sprintf("%.5g (%.f%%)", n, pct)
}

// usageRow is one utilization row: free is capacity minus in use minus
// reserved.
func usageRow(grouping string, cidr netip.Prefix, total, used, reserved float64) []string {
	return []string{grouping, cidr.String(), fmt.Sprintf("%.5g", total), countCell(used, total),
		countCell(reserved, total), countCell(total-used-reserved, total)}
}

func blockRow(b ipam.BlockUsage) []string {
	return usageRow("Block", b.CIDR, float64(b.Capacity), float64(b.InUse), float64(b.Reserved))
}

// utilizationRows builds the `ipam show` table: a row per pool and, with
// showBlocks, a row per block after its pool; blocks outside every pool come
// last, without a pool row.
func utilizationRows(rep *ipam.UsageReport, showBlocks bool) tableRows {
	t := tableRows{Header: utilizationHeader}
	for _, p := range rep.Pools {
		t.Rows = append(t.Rows, usageRow("IP Pool", p.Pool.CIDR, p.Capacity, p.InUse, p.Reserved))
		if showBlocks {
			for _, b := range p.Blocks {
				t.Rows = append(t.Rows, blockRow(b))
			}
		}
	}
	if showBlocks {
		for _, b := range rep.Outside {
			t.Rows = append(t.Rows, blockRow(b))
		}
	}
	return t
}

// capacityLines say, per pool, how many more nodes can get a block (an
// addition to upstream's output).
func capacityLines(rep *ipam.UsageReport) []string {
	var out []string
	for _, p := range rep.Pools {
		out = append(out, fmt.Sprintf("IP Pool %s (%s): room for %s more /%d blocks (one per new node), %d in use.",
			p.Pool.Name, p.Pool.CIDR, bigCount(p.BlocksFree), p.Pool.BlockSize, len(p.Blocks)))
	}
	return out
}

// bigCount prints whole numbers in full up to 1e12, then as %.5g.
func bigCount(f float64) string {
	if f < 1e12 {
		return fmt.Sprintf("%.f", f)
	}
	return fmt.Sprintf("%.5g", f)
}

func sortedBlocks(blocks []*ipam.Block) []*ipam.Block {
	s := slices.Clone(blocks)
	slices.SortFunc(s, func(a, b *ipam.Block) int { return a.CIDR.Addr().Compare(b.CIDR.Addr()) })
	return s
}

// allocRecord is one allocated address.
type allocRecord struct {
	IP       netip.Addr
	Block    *ipam.Block
	Ordinal  int
	Handle   string
	HasAttrs bool
	Attrs    map[string]string
	AltAttrs map[string]string
	Seq      *uint64
	// CoolingDown: released, waiting for ipCooldownSeconds before reuse.
	CoolingDown bool
	// Verdict is what `ipam check` found (set by scanIPAM only).
	Verdict allocVerdict
}

// blockOwner is the node (or virtual owner) a block is affine to.
func (r allocRecord) blockOwner() string { return affinityOwner(r.Block.Affinity) }

func affinityOwner(aff string) string {
	if _, after, ok := strings.Cut(aff, ":"); ok {
		return after
	}
	return aff
}

// kind is upstream's TYPE column: pod, vmi, or the "type" attribute.
func (r allocRecord) kind() string {
	switch {
	case r.Attrs[ipam.AttrPod] != "":
		return "pod"
	case r.Attrs["vmi-name"] != "":
		return "vmi"
	default:
		return r.Attrs[ipam.AttrType]
	}
}

// allocatedTo is upstream's ALLOCATED-TO column: <namespace>/<pod>.
func (r allocRecord) allocatedTo() string {
	ns := r.Attrs[ipam.AttrNamespace]
	switch {
	case r.Attrs[ipam.AttrPod] != "":
		return ns + "/" + r.Attrs[ipam.AttrPod]
	case r.Attrs["vmi-name"] != "":
		return ns + "/" + r.Attrs["vmi-name"]
	}
	return ""
}

// borrowed: the address was given to a node other than its block's owner.
func (r allocRecord) borrowed() bool {
	n := r.Attrs[ipam.AttrNode]
	return n != "" && r.Block.Affinity != "host:"+n
}

// allocationsOf lists a block's allocated addresses in ordinal order.
func allocationsOf(b *ipam.Block) []allocRecord {
	var out []allocRecord
	for ord, p := range b.Allocations {
		if p == nil {
			continue
		}
		ip, ok := ipam.IPAt(b, ord)
		if !ok {
			continue
		}
		r := allocRecord{IP: ip, Block: b, Ordinal: ord}
		if s, ok := b.SequenceNumberForAllocation[ipam.OrdinalKey(ord)]; ok {
			r.Seq = &s
		}
		if i := *p; i >= 0 && i < len(b.Attributes) {
			at := b.Attributes[i]
			r.HasAttrs = true
			if at.HandleID != nil {
				r.Handle = *at.HandleID
			}
			r.Attrs, r.AltAttrs = at.ActiveOwnerAttrs, at.AlternateOwnerAttrs
			r.CoolingDown = at.ReleasedAt != nil
		}
		out = append(out, r)
	}
	return out
}

// allAllocations lists every allocated address of blocks, sorted by address.
func allAllocations(blocks []*ipam.Block) []allocRecord {
	var out []allocRecord
	for _, b := range sortedBlocks(blocks) {
		out = append(out, allocationsOf(b)...)
	}
	return out
}

var borrowedHeader = []string{"IP", "BORROWING-NODE", "BLOCK", "BLOCK OWNER", "TYPE", "ALLOCATED-TO"}

// borrowedRows builds the --show-borrowed table.
func borrowedRows(rep *ipam.BorrowedReport) tableRows {
	t := tableRows{Header: borrowedHeader}
	for _, b := range rep.IPs {
		owner := b.BlockOwner
		if owner == "" {
			owner = b.BlockAffinity
		}
		t.Rows = append(t.Rows, []string{b.IP.String(), b.BorrowingNode, b.Block.String(), owner, b.Type, b.AllocatedTo})
	}
	return t
}

// configRows builds the --show-configuration table (Go %#v values, as
// upstream prints them).
func configRows(c *ipam.Config) tableRows {
	return tableRows{Header: []string{"PROPERTY", "VALUE"}, Rows: [][]string{
		{"StrictAffinity", fmt.Sprintf("%#v", c.StrictAffinity)},
		{"AutoAllocateBlocks", fmt.Sprintf("%#v", c.AutoAllocateBlocks)},
		{"MaxBlocksPerHost", fmt.Sprintf("%#v", c.MaxBlocksPerHost)},
		{"KubeVirtVMAddressPersistence", fmt.Sprintf("%#v", c.KubeVirtVMAddressPersistence)},
		{"IPCooldownSeconds", fmt.Sprintf("%#v", c.IPCooldownSeconds)},
	}}
}

// ipLines is the --ip report for one address.
func ipLines(info *ipam.IPInfo) []string {
	if !info.Allocated {
		return []string{info.IP.String() + " is not assigned"}
	}
	h := "<none>"
	if info.Handle != nil {
		h = *info.Handle
	}
	out := []string{"IP " + info.IP.String() + " is in use", "Handle ID: " + h}
	if len(info.Attrs.ActiveOwnerAttrs) == 0 {
		out = append(out, "No Active Owner attributes defined")
	} else {
		out = append(out, "Active Owner Attributes:")
		out = append(out, attrLines(info.Attrs.ActiveOwnerAttrs)...)
	}
	if len(info.Attrs.AlternateOwnerAttrs) > 0 {
		out = append(out, "Alternate Owner Attributes:")
		out = append(out, attrLines(info.Attrs.AlternateOwnerAttrs)...)
	}
	return out
}

func attrLines(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = "  " + k + ": " + m[k]
	}
	return out
}

var nodeAddrHeader = []string{"IP", "BLOCK", "BLOCK OWNER", "HANDLE", "TYPE", "ALLOCATED-TO"}

// nodeRows builds the --node tables: the node's affine blocks and the
// addresses assigned to it (its node attribute, or an affine block's
// address with no node attribute).
func nodeRows(node string, rep *ipam.UsageReport, blocks []*ipam.Block) (blockT, addrT tableRows) {
	blockT = tableRows{Header: utilizationHeader}
	for _, p := range rep.Pools {
		for _, b := range p.Blocks {
			if b.Affinity == "host:"+node {
				blockT.Rows = append(blockT.Rows, blockRow(b))
			}
		}
	}
	for _, b := range rep.Outside {
		if b.Affinity == "host:"+node {
			blockT.Rows = append(blockT.Rows, blockRow(b))
		}
	}
	addrT = tableRows{Header: nodeAddrHeader}
	for _, r := range allAllocations(blocks) {
		n := r.Attrs[ipam.AttrNode]
		if n != node && (n != "" || r.Block.Affinity != "host:"+node) {
			continue
		}
		addrT.Rows = append(addrT.Rows, []string{r.IP.String(), r.Block.CIDR.String(), r.blockOwner(), r.Handle, r.kind(), r.allocatedTo()})
	}
	return blockT, addrT
}
