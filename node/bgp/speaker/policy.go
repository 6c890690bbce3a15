package speaker

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/proto"

	"github.com/opencalico/calicoctl/node/bgp"
)

// Policy names. gobgp applies policies to ordinary peers only through the
// "global" assignment, so per-peer rules are statements guarded by a
// neighbour set of that one peer (spec §5.7).
const (
	importPolicy = "calico-import"
	exportPolicy = "calico-export"
	maxPriority  = 1<<31 - 1
)

// compiledPolicy is the whole policy configuration; skipped lists rules
// that gobgp v3 cannot express (logged by the caller).
type compiledPolicy struct {
	req     *api.SetPoliciesRequest
	skipped []string
	// perPeer fingerprints each peer's import and export statements, so
	// Apply knows which sessions a policy change touches.
	perPeer map[netip.Addr]peerPolicy
}

// peerPolicy is a fingerprint of one peer's statements.
type peerPolicy struct{ imp, exp string }

func fingerprint(sts []*api.Statement) string {
	var b strings.Builder
	for _, st := range sts {
		raw, _ := proto.MarshalOptions{Deterministic: true}.Marshal(st)
		b.Write(raw)
	}
	return b.String()
}

// policyCompiler accumulates defined sets and statements.
type policyCompiler struct {
	sets     []*api.DefinedSet
	setNames map[string]bool
	imports  []*api.Statement
	exports  []*api.Statement
	skipped  []string
}

// compilePolicy turns next-hop modes and BGPFilter chains into one import
// and one export policy, both defaulting to accept.
func compilePolicy(d bgp.Desired) compiledPolicy {
	c := &policyCompiler{setNames: map[string]bool{}}
	perPeer := map[netip.Addr]peerPolicy{}
	peers := map[netip.Addr]bgp.Peer{}
	for _, p := range d.Peers {
		if _, dup := peers[p.Address]; !dup {
			peers[p.Address] = p
		}
	}
	// Next-hop statements come first: they modify and continue, a filter's
	// accept ends evaluation.
	for _, p := range d.Peers {
		var nh *api.NexthopAction
		switch p.NextHop {
		case bgp.NextHopSelf:
			nh = &api.NexthopAction{Self: true}
		case bgp.NextHopKeep:
			nh = &api.NexthopAction{Unchanged: true}
		default:
			continue
		}
		st := &api.Statement{
			Name:       "nexthop-" + setName(p.Address),
			Conditions: &api.Conditions{NeighborSet: c.neighborSet(p.Address)},
			Actions:    &api.Actions{RouteAction: api.RouteAction_NONE, Nexthop: nh},
		}
		c.exports = append(c.exports, st)
		pp := perPeer[p.Address]
		pp.exp += fingerprint([]*api.Statement{st})
		perPeer[p.Address] = pp
	}
	for _, pf := range d.Filters {
		peer, ok := peers[pf.Peer]
		if !ok {
			continue
		}
		localASN := peer.LocalASN
		if localASN == 0 {
			localASN = d.Global.ASN
		}
		ibgp := peer.PeerASN == localASN
		for _, f := range pf.Filters {
			lists := []struct {
				dir   string
				v4    bool
				rules []bgp.FilterRule
				dst   *[]*api.Statement
			}{
				{"exportV4", true, f.ExportV4, &c.exports},
				{"importV4", true, f.ImportV4, &c.imports},
				{"exportV6", false, f.ExportV6, &c.exports},
				{"importV6", false, f.ImportV6, &c.imports},
			}
			for _, l := range lists {
				for i, r := range l.rules {
					name := fmt.Sprintf("%s-%s-%s-%d", setName(pf.Peer), f.Name, l.dir, i)
					sts, err := c.rule(name, pf.Peer, ibgp, l.v4, r)
					if err != nil {
						c.skipped = append(c.skipped, fmt.Sprintf("BGPFilter %s %s[%d] for peer %s: %v", f.Name, l.dir, i, pf.Peer, err))
						continue
					}
					*l.dst = append(*l.dst, sts...)
					pp := perPeer[pf.Peer]
					if l.dst == &c.exports {
						pp.exp += fingerprint(sts)
					} else {
						pp.imp += fingerprint(sts)
					}
					perPeer[pf.Peer] = pp
				}
			}
		}
	}
	// Both policies always exist (possibly empty), so the global
	// assignments never name a missing one.
	req := &api.SetPoliciesRequest{DefinedSets: c.sets,
		Policies: []*api.Policy{{Name: importPolicy, Statements: c.imports}, {Name: exportPolicy, Statements: c.exports}}}
	// SetPolicies keeps the assignments in force; Apply sets these with
	// SetPolicyAssignment.
	req.Assignments = []*api.PolicyAssignment{
		{Name: "global", Direction: api.PolicyDirection_IMPORT, DefaultAction: api.RouteAction_ACCEPT, Policies: []*api.Policy{{Name: importPolicy}}},
		{Name: "global", Direction: api.PolicyDirection_EXPORT, DefaultAction: api.RouteAction_ACCEPT, Policies: []*api.Policy{{Name: exportPolicy}}},
	}
	return compiledPolicy{req: req, skipped: c.skipped, perPeer: perPeer}
}

// setName is an address in a form usable in gobgp names.
func setName(a netip.Addr) string {
	return strings.NewReplacer(".", "_", ":", "_").Replace(a.String())
}

func (c *policyCompiler) addSet(ds *api.DefinedSet) {
	if !c.setNames[ds.Name] {
		c.setNames[ds.Name] = true
		c.sets = append(c.sets, ds)
	}
}

func (c *policyCompiler) neighborSet(a netip.Addr) *api.MatchSet {
	name := "peer-" + setName(a)
	c.addSet(&api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: name,
		List: []string{netip.PrefixFrom(a, a.BitLen()).String()}})
	return &api.MatchSet{Type: api.MatchSet_ANY, Name: name}
}

// rule compiles one BGPFilter rule for one peer into statements (more
// than one when gobgp needs them chained). A rule that cannot match this
// peer (peerType) compiles to nothing.
func (c *policyCompiler) rule(name string, peer netip.Addr, ibgp, v4 bool, r bgp.FilterRule) ([]*api.Statement, error) {
	switch r.PeerType {
	case "iBGP":
		if !ibgp {
			return nil, nil
		}
	case "eBGP":
		if ibgp {
			return nil, nil
		}
	}
	if r.Priority != 0 {
		return nil, fmt.Errorf("gobgp v3 cannot match on priority (LOCAL_PREF)")
	}
	if r.Interface != "" {
		return nil, fmt.Errorf("interface matches apply to kernel routes, which this speaker does not import")
	}
	cond := &api.Conditions{NeighborSet: c.neighborSet(peer), AfiSafiIn: []*api.Family{family(v4)}}
	if r.CIDR.IsValid() {
		ps := &api.DefinedSet{DefinedType: api.DefinedType_PREFIX, Name: "pfx-" + name,
			Prefixes: []*api.Prefix{{IpPrefix: r.CIDR.String(), MaskLengthMin: uint32(r.PrefixLenMin), MaskLengthMax: uint32(r.PrefixLenMax)}}}
		c.addSet(ps)
		mt := api.MatchSet_ANY
		if r.MatchOperator == "NotEqual" || r.MatchOperator == "NotIn" {
			mt = api.MatchSet_INVERT
		}
		cond.PrefixSet = &api.MatchSet{Type: mt, Name: ps.Name}
	}
	if r.Community != "" {
		if strings.Count(r.Community, ":") == 2 {
			c.addSet(&api.DefinedSet{DefinedType: api.DefinedType_LARGE_COMMUNITY, Name: "lcm-" + name, List: []string{"^" + r.Community + "$"}})
			cond.LargeCommunitySet = &api.MatchSet{Type: api.MatchSet_ANY, Name: "lcm-" + name}
		} else {
			c.addSet(&api.DefinedSet{DefinedType: api.DefinedType_COMMUNITY, Name: "cm-" + name, List: []string{"^" + r.Community + "$"}})
			cond.CommunitySet = &api.MatchSet{Type: api.MatchSet_ANY, Name: "cm-" + name}
		}
	}
	if len(r.ASPathPrefix) > 0 {
		as := make([]string, len(r.ASPathPrefix))
		for i, n := range r.ASPathPrefix {
			as[i] = strconv.FormatUint(uint64(n), 10)
		}
		c.addSet(&api.DefinedSet{DefinedType: api.DefinedType_AS_PATH, Name: "asp-" + name, List: []string{"^" + strings.Join(as, "_") + "_"}})
		cond.AsPathSet = &api.MatchSet{Type: api.MatchSet_ANY, Name: "asp-" + name}
	}
	act := &api.Actions{RouteAction: api.RouteAction_REJECT}
	if r.Action == "Accept" {
		act.RouteAction = api.RouteAction_ACCEPT
	}
	var prepend []uint32
	for _, op := range r.Operations {
		switch {
		case op.AddCommunity != "":
			ca := &act.Community
			if strings.Count(op.AddCommunity, ":") == 2 {
				ca = &act.LargeCommunity
			}
			if *ca == nil {
				*ca = &api.CommunityAction{Type: api.CommunityAction_ADD}
			}
			(*ca).Communities = append((*ca).Communities, op.AddCommunity)
		case len(op.PrependASPath) > 0:
			prepend = append(prepend, op.PrependASPath...)
		default:
			act.LocalPref = &api.LocalPrefAction{Value: uint32(maxPriority - op.SetPriority)}
		}
	}
	// Learned routes only (source RemotePeers): iBGP- or eBGP-learned, two
	// statements.
	conds := []*api.Conditions{cond}
	if r.Source == "RemotePeers" {
		conds = nil
		for _, rt := range []api.Conditions_RouteType{api.Conditions_ROUTE_TYPE_INTERNAL, api.Conditions_ROUTE_TYPE_EXTERNAL} {
			cd := proto.Clone(cond).(*api.Conditions)
			cd.RouteType = rt
			conds = append(conds, cd)
		}
	}
	var out []*api.Statement
	for ci, cd := range conds {
		// gobgp prepends one AS (repeated) per statement: a longer prefix
		// is prepended by chained statements that modify and continue,
		// last AS first, so the path starts with the list in its order.
		rest := prepend
		final := proto.Clone(act).(*api.Actions)
		for len(rest) > 0 {
			last := rest[len(rest)-1]
			n := 1
			for n < len(rest) && rest[len(rest)-1-n] == last {
				n++
			}
			rest = rest[:len(rest)-n]
			pa := &api.AsPrependAction{Asn: last, Repeat: uint32(n)}
			if len(rest) == 0 {
				final.AsPrepend = pa
				break
			}
			out = append(out, &api.Statement{Name: fmt.Sprintf("%s-%d-prepend%d", name, ci, len(out)), Conditions: cd,
				Actions: &api.Actions{RouteAction: api.RouteAction_NONE, AsPrepend: pa}})
		}
		out = append(out, &api.Statement{Name: fmt.Sprintf("%s-%d", name, ci), Conditions: cd, Actions: final})
	}
	return out, nil
}
