// Package nat programs the node agent's NAT in one nftables table of its own.
//
// The table is `inet calico-nat` (TableName): a single inet table carries both
// IPv4 and IPv6 NAT, which the kernel supports since 5.2. It holds
//
//   - sets `masq-pools` / `all-pools` (IPv4, interval) and `masq-pools-v6` /
//     `all-pools-v6` (IPv6): the pools with natOutgoing, and every pool;
//   - maps `floating-dnat`, `floating-snat` (ext->int and int->ext) and
//     `floating-hairpin` (int . int -> ext), with `-v6` twins;
//   - base chains `prerouting` and `output` (nat, priority dstnat) that DNAT a
//     floating IP to the pod address, and `postrouting` (nat, priority srcnat)
//     that SNATs a pod with a floating IP to that IP when it talks to a
//     destination outside all pools (or to itself through its floating IP),
//     then masquerades traffic from a natOutgoing pool to outside all pools.
//
// The rules never mention an address: pool and floating-IP changes are
// element updates of the sets and maps. The pure half of the package
// (Desired -> Plan) is tested without root; Syncer is the thin writer on top
// of sigs.k8s.io/knftables.
package nat

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/opencalico/calicoctl/internal/prefixes"
)

// TableName is the name of our nftables table (family inet).
const TableName = "calico-nat"

// Names of the sets and maps in our table.
const (
	SetMasqPools       = "masq-pools"
	SetAllPools        = "all-pools"
	MapFloatingDNAT    = "floating-dnat"
	MapFloatingSNAT    = "floating-snat"
	MapFloatingHairpin = "floating-hairpin"
	v6Suffix           = "-v6"
	chainPrerouting    = "prerouting"
	chainOutput        = "output"
	chainPostrouting   = "postrouting"
	tableComment       = "Calico NAT: natOutgoing masquerade and floating IPs (owned by calicoctl node)"
)

// FloatingNAT maps an external (floating) address to a workload's address.
type FloatingNAT struct {
	Ext netip.Addr
	Int netip.Addr
}

// Desired is the NAT intent computed from datastore state.
type Desired struct {
	// MasqPools are the CIDRs of IP pools with natOutgoing: true.
	MasqPools []netip.Prefix
	// AllPools are the CIDRs of every IP pool (masquerade is skipped for
	// destinations inside any of them).
	AllPools []netip.Prefix
	// FloatingIPs are the workloads' floating IPs.
	FloatingIPs []FloatingNAT
}

// Plan is the content of our table's sets and maps for one Desired: element
// keys (and values for maps) in nft syntax, sorted. The chains and rules are
// fixed (see chains) and not part of the plan.
type Plan struct {
	// Sets maps a set name to its elements.
	Sets map[string][]string
	// Maps maps a map name to key -> value.
	Maps map[string]map[string]string
	// Skipped explains inputs that were ignored (invalid or conflicting).
	Skipped []string
}

// NewPlan computes the plan for d. It is pure and deterministic: prefixes are
// masked, deduplicated and reduced to the outermost ones (interval sets reject
// overlaps), a natOutgoing pool missing from AllPools is added to it, and
// floating IPs that are invalid, mix families, or conflict with an earlier
// entry are skipped with a reason.
func NewPlan(d Desired) Plan {
	p := Plan{
		Sets: map[string][]string{},
		Maps: map[string]map[string]string{},
	}
	all := append(slices.Clone(d.AllPools), d.MasqPools...)
	for _, pool := range all {
		if !pool.IsValid() {
			p.Skipped = append(p.Skipped, fmt.Sprintf("pool %v: invalid prefix", pool))
		}
	}
	for _, v6 := range []bool{false, true} {
		sfx := suffix(v6)
		p.Sets[SetMasqPools+sfx] = prefixElements(d.MasqPools, v6)
		p.Sets[SetAllPools+sfx] = prefixElements(all, v6)
		p.Maps[MapFloatingDNAT+sfx] = map[string]string{}
		p.Maps[MapFloatingSNAT+sfx] = map[string]string{}
		p.Maps[MapFloatingHairpin+sfx] = map[string]string{}
	}

	fips := slices.Clone(d.FloatingIPs)
	slices.SortStableFunc(fips, func(a, b FloatingNAT) int {
		if c := a.Ext.Compare(b.Ext); c != 0 {
			return c
		}
		return a.Int.Compare(b.Int)
	})
	for _, f := range fips {
		if !f.Ext.IsValid() || !f.Int.IsValid() {
			p.Skipped = append(p.Skipped, fmt.Sprintf("floating IP %v -> %v: invalid address", f.Ext, f.Int))
			continue
		}
		ext, in := f.Ext.Unmap(), f.Int.Unmap()
		if ext.Is4() != in.Is4() {
			p.Skipped = append(p.Skipped, fmt.Sprintf("floating IP %v -> %v: address families differ", ext, in))
			continue
		}
		sfx := suffix(ext.Is6())
		dnat, snat := p.Maps[MapFloatingDNAT+sfx], p.Maps[MapFloatingSNAT+sfx]
		if cur, ok := dnat[ext.String()]; ok {
			if cur != in.String() {
				p.Skipped = append(p.Skipped, fmt.Sprintf("floating IP %v -> %v: %v already maps to %v", ext, in, ext, cur))
			}
			continue
		}
		if cur, ok := snat[in.String()]; ok {
			p.Skipped = append(p.Skipped, fmt.Sprintf("floating IP %v -> %v: %v already has floating IP %v", ext, in, in, cur))
			continue
		}
		dnat[ext.String()] = in.String()
		snat[in.String()] = ext.String()
		p.Maps[MapFloatingHairpin+sfx][in.String()+" . "+in.String()] = ext.String()
	}
	return p
}

func suffix(v6 bool) string {
	if v6 {
		return v6Suffix
	}
	return ""
}

// prefixElements returns the masked prefixes of one family, sorted, with
// duplicates and prefixes contained in another one removed.
func prefixElements(in []netip.Prefix, v6 bool) []string {
	kept := prefixes.Outermost(in, v6)
	out := make([]string, 0, len(kept))
	for _, p := range kept {
		out = append(out, p.String())
	}
	return out
}
