package bgp

import (
	"net/netip"
	"slices"

	"github.com/opencalico/calicoctl/node/routes"
	"github.com/opencalico/calicoctl/resources"
)

// LabelExcludeFromLB on a node (value "true") stops it advertising service
// addresses, as for upstream's calico-node.
const LabelExcludeFromLB = "node.kubernetes.io/exclude-from-external-load-balancers"

// paths is what this node originates (spec §2.1-2.4): its affine blocks,
// the addresses its workloads borrow from other blocks, and the service
// CIDRs of BGPConfiguration default; nothing inside a pool with
// disableBGPExport. Communities come from prefixAdvertisements. The second
// result is the service CIDRs learned routes must never enter the kernel
// in (kept while the node is excluded from service advertisement).
func (p *planner) paths() ([]Path, []netip.Prefix) {
	seen := map[netip.Prefix]bool{}
	var out []Path
	add := func(pfx netip.Prefix, kind PathKind) {
		pfx = pfx.Masked()
		if seen[pfx] || p.exportDisabled(pfx) {
			return
		}
		seen[pfx] = true
		out = append(out, Path{Prefix: pfx, Kind: kind})
	}

	own := p.ownBlocks()
	for _, b := range own {
		add(b, PathBlock)
	}
	for _, w := range p.in.Workloads {
		if w == nil || w.Node != p.in.NodeName {
			continue
		}
		for _, pfx := range w.Networks {
			a := pfx.Addr().Unmap()
			if slices.ContainsFunc(own, func(b netip.Prefix) bool { return b.Contains(a) }) {
				continue // covered by the block route
			}
			// Upstream's last export step accepts anything inside a pool:
			// that is what lets a borrowed address out as a host route.
			if _, ok := p.poolOf(netip.PrefixFrom(a, a.BitLen())); ok {
				add(netip.PrefixFrom(a, a.BitLen()), PathBorrowed)
			}
		}
	}
	services, reject := p.serviceCIDRs()
	if p.local.labels[LabelExcludeFromLB] != "true" {
		for _, c := range services {
			add(c, PathService)
		}
	}

	rules := p.communityRules()
	for i := range out {
		out[i].Communities = communitiesFor(rules, out[i].Prefix)
	}
	slices.SortFunc(out, func(a, b Path) int { return routes.ComparePrefix(a.Prefix, b.Prefix) })
	return out, reject
}

// ownBlocks are the CIDRs of the live blocks affine to this node, sorted.
func (p *planner) ownBlocks() []netip.Prefix {
	var out []netip.Prefix
	for _, b := range p.in.Blocks {
		if b == nil || b.Deleted || !b.CIDR.IsValid() || b.Affinity != "host:"+p.in.NodeName {
			continue
		}
		out = append(out, b.CIDR.Masked())
	}
	slices.SortFunc(out, routes.ComparePrefix)
	return slices.Compact(out)
}

// poolOf is the most specific pool containing pfx.
func (p *planner) poolOf(pfx netip.Prefix) (poolInfo, bool) {
	var best poolInfo
	found := false
	for _, pl := range p.pools {
		if contains(pl.cidr, pfx) && (!found || pl.cidr.Bits() > best.cidr.Bits()) {
			best, found = pl, true
		}
	}
	return best, found
}

// exportDisabled reports whether pfx is inside a pool with
// disableBGPExport.
func (p *planner) exportDisabled(pfx netip.Prefix) bool {
	for _, pl := range p.pools {
		if pl.noExport && contains(pl.cidr, pfx) {
			return true
		}
	}
	return false
}

// contains reports whether inner is equal to or inside outer.
func contains(outer, inner netip.Prefix) bool {
	return outer.IsValid() && inner.IsValid() && outer.Addr().Is4() == inner.Addr().Is4() &&
		outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
}

// serviceCIDRs are the service ranges advertised from every node:
// serviceClusterIPs (or CALICO_ADVERTISE_CLUSTER_IPS while set),
// serviceExternalIPs and, with serviceLoadBalancerAggregation Enabled (the
// default), serviceLoadBalancerIPs; single addresses in the last two are
// left to per-service advertisement. They are also the reject list.
func (p *planner) serviceCIDRs() (advertise, reject []netip.Prefix) {
	g := p.global
	if g == nil {
		g = &resources.BGPConfigurationSpec{}
	}
	type list struct {
		field      string
		cidrs      []string
		skipSingle bool
	}
	var lists []list
	if env := p.in.Env.AdvertiseClusterIPs; env != "" {
		lists = append(lists, list{"CALICO_ADVERTISE_CLUSTER_IPS", []string{env}, false})
	} else {
		lists = append(lists, list{"BGPConfiguration default spec.serviceClusterIPs", blockCIDRs(g.ServiceClusterIPs), false})
	}
	lists = append(lists, list{"BGPConfiguration default spec.serviceExternalIPs", blockCIDRs(g.ServiceExternalIPs), true})
	if agg := g.ServiceLoadBalancerAggregation; agg == nil || *agg != "Disabled" {
		lists = append(lists, list{"BGPConfiguration default spec.serviceLoadBalancerIPs", blockCIDRs(g.ServiceLoadBalancerIPs), true})
	}
	seen := map[netip.Prefix]bool{}
	for _, l := range lists {
		for _, s := range l.cidrs {
			c, err := netip.ParsePrefix(s)
			if err != nil {
				p.warn("%s: %q is not a CIDR; not advertised", l.field, s)
				continue
			}
			c = c.Masked()
			if (l.skipSingle && c.IsSingleIP()) || seen[c] {
				continue
			}
			seen[c] = true
			advertise = append(advertise, c)
		}
	}
	slices.SortFunc(advertise, routes.ComparePrefix)
	return advertise, slices.Clone(advertise)
}

func blockCIDRs(bs []resources.ServiceIPBlock) []string {
	out := make([]string, 0, len(bs))
	for _, b := range bs {
		out = append(out, b.CIDR)
	}
	return out
}

// communityRule attaches communities to every path inside cidr.
type communityRule struct {
	cidr        netip.Prefix
	communities []string
}

// communityRules are the prefixAdvertisements in force: this node's
// BGPConfiguration's when it has any (they replace the default's), else
// the default's; community names resolve against the same object.
func (p *planner) communityRules() []communityRule {
	spec, name := p.global, "default"
	if p.localCfg != nil && p.localCfg.PrefixAdvertisements != nil {
		spec, name = p.localCfg, "node."+p.in.NodeName
	}
	if spec == nil {
		return nil
	}
	named := map[string]string{}
	for _, c := range spec.Communities {
		named[c.Name] = c.Value
	}
	var out []communityRule
	for i, pa := range spec.PrefixAdvertisements {
		c, err := netip.ParsePrefix(pa.CIDR)
		if err != nil {
			p.warn("BGPConfiguration %s: spec.prefixAdvertisements[%d].cidr %q is not a CIDR; ignored", name, i, pa.CIDR)
			continue
		}
		r := communityRule{cidr: c.Masked()}
		for _, v := range pa.Communities {
			switch {
			case communityValue.MatchString(v):
				r.communities = append(r.communities, v)
			case named[v] != "":
				r.communities = append(r.communities, named[v])
			default:
				p.warn("BGPConfiguration %s: community %q of prefixAdvertisements[%d] is neither a value nor a name in spec.communities; ignored", name, v, i)
			}
		}
		out = append(out, r)
	}
	return out
}

// communitiesFor is every community of the rules whose CIDR contains pfx,
// sorted, without repeats.
func communitiesFor(rules []communityRule, pfx netip.Prefix) []string {
	var out []string
	for _, r := range rules {
		if contains(r.cidr, pfx) {
			out = append(out, r.communities...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
