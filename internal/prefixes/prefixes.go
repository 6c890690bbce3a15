// Package prefixes holds small operations on sets of IP prefixes shared by
// the dataplane writers (NAT sets, policy sets).
package prefixes

import (
	"net/netip"
	"slices"
)

// Outermost returns the valid prefixes of one family (IPv6 when v6),
// unmapped and masked, with duplicates and prefixes covered by another one
// removed, sorted by address: what an nftables interval set accepts.
func Outermost(in []netip.Prefix, v6 bool) []netip.Prefix {
	var ps []netip.Prefix
	for _, p := range in {
		if !p.IsValid() {
			continue
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				continue // wider than the mapped range: not an IPv4 prefix
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		p = p.Masked()
		if p.Addr().Is6() != v6 {
			continue
		}
		ps = append(ps, p)
	}
	// Shorter prefixes first, so containment is checked against kept ones.
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if a.Bits() != b.Bits() {
			return a.Bits() - b.Bits()
		}
		return a.Addr().Compare(b.Addr())
	})
	var kept []netip.Prefix
	for _, p := range ps {
		if !slices.ContainsFunc(kept, func(k netip.Prefix) bool { return k.Contains(p.Addr()) }) {
			kept = append(kept, p)
		}
	}
	slices.SortFunc(kept, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return kept
}
