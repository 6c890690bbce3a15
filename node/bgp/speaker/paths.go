package speaker

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/opencalico/calicoctl/node/bgp"
)

// originated is a path we added, with the uuid gobgp gave it.
type originated struct {
	path    bgp.Path
	nextHop netip.Addr
	uuid    []byte
}

// pathPlan is what Apply does to the originated paths.
type pathPlan struct {
	add    []bgp.Path     // new or changed (AddPath replaces the old one)
	remove []netip.Prefix // gone
}

// planPaths diffs the originated paths against the wanted ones. A path
// whose communities or next hop changed is re-added.
func planPaths(have map[netip.Prefix]originated, want []bgp.Path, g bgp.Global) pathPlan {
	var pl pathPlan
	seen := map[netip.Prefix]bool{}
	for _, p := range want {
		pfx := p.Prefix.Masked()
		if seen[pfx] {
			continue
		}
		seen[pfx] = true
		old, ok := have[pfx]
		if !ok || !slices.Equal(old.path.Communities, p.Communities) || old.nextHop != nextHopFor(pfx, g) {
			pl.add = append(pl.add, p)
		}
	}
	for pfx := range have {
		if !seen[pfx] {
			pl.remove = append(pl.remove, pfx)
		}
	}
	slices.SortFunc(pl.remove, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return pl
}

// nextHopFor is the next hop of an originated path: the node's address of
// the prefix's family, else the unspecified address (gobgp then uses each
// session's local address).
func nextHopFor(pfx netip.Prefix, g bgp.Global) netip.Addr {
	if pfx.Addr().Is4() {
		if g.NodeIPv4.IsValid() {
			return g.NodeIPv4
		}
		return netip.IPv4Unspecified()
	}
	if g.NodeIPv6.IsValid() {
		return g.NodeIPv6
	}
	return netip.IPv6Unspecified()
}

// apiPath is the gobgp path of an originated prefix.
func apiPath(p bgp.Path, nh netip.Addr) (*api.Path, error) {
	pfx := p.Prefix.Masked()
	nlri, err := anypb.New(&api.IPAddressPrefix{Prefix: pfx.Addr().String(), PrefixLen: uint32(pfx.Bits())})
	if err != nil {
		return nil, fmt.Errorf("nlri %s: %w", pfx, err)
	}
	v4 := pfx.Addr().Is4()
	origin, _ := anypb.New(&api.OriginAttribute{Origin: 0}) // IGP
	attrs := []*anypb.Any{origin}
	if v4 {
		a, _ := anypb.New(&api.NextHopAttribute{NextHop: nh.String()})
		attrs = append(attrs, a)
	} else {
		a, _ := anypb.New(&api.MpReachNLRIAttribute{Family: family(false), NextHops: []string{nh.String()}, Nlris: []*anypb.Any{nlri}})
		attrs = append(attrs, a)
	}
	std, large, err := parseCommunities(p.Communities)
	if err != nil {
		return nil, fmt.Errorf("path %s: %w", pfx, err)
	}
	if len(std) > 0 {
		a, _ := anypb.New(&api.CommunitiesAttribute{Communities: std})
		attrs = append(attrs, a)
	}
	if len(large) > 0 {
		a, _ := anypb.New(&api.LargeCommunitiesAttribute{Communities: large})
		attrs = append(attrs, a)
	}
	return &api.Path{Family: family(v4), Nlri: nlri, Pattrs: attrs}, nil
}

// parseCommunities splits "aa:nn" (standard) and "aa:nn:mm" (large)
// communities.
func parseCommunities(cs []string) (std []uint32, large []*api.LargeCommunity, err error) {
	for _, c := range cs {
		parts := strings.Split(c, ":")
		nums := make([]uint64, len(parts))
		for i, s := range parts {
			if nums[i], err = strconv.ParseUint(s, 10, 32); err != nil {
				return nil, nil, fmt.Errorf("community %q: %w", c, err)
			}
		}
		switch len(parts) {
		case 2:
			if nums[0] > 0xffff || nums[1] > 0xffff {
				return nil, nil, fmt.Errorf("community %q: values above 65535", c)
			}
			std = append(std, uint32(nums[0])<<16|uint32(nums[1]))
		case 3:
			large = append(large, &api.LargeCommunity{GlobalAdmin: uint32(nums[0]), LocalData1: uint32(nums[1]), LocalData2: uint32(nums[2])})
		default:
			return nil, nil, fmt.Errorf("community %q is neither aa:nn nor aa:nn:mm", c)
		}
	}
	return std, large, nil
}
