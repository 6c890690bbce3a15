package bgp

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
	"github.com/opencalico/calicoctl/resources/selector"
)

// Peer computation follows upstream's confd (spec §1.2-1.4): the mesh, then
// the BGPPeers expanded into peerings as updatePeersV1 does (global ones
// first, node-specific ones, then the reverse peerings between Calico
// nodes), each turned into a session as buildPeerFromData does. Two
// deliberate differences, both because gobgp v3 is not BIRD (spec §5.8):
//   - every session with another Calico node has exactly one dialling side
//     (the mesh's rule: passive when the peer's address string sorts after
//     ours), where upstream leaves node-specific and peerSelector sessions
//     active on both sides for BIRD's collision resolution;
//   - one session per peer address: the first in upstream's order (mesh,
//     global, node-specific; remote peers before local workloads) is kept
//     and the others are reported in Warnings.

// candidate is one peering before it becomes a session: upstream's v1
// peering (a global or node-specific key ip:port) from a BGPPeer, a reverse
// peering or a local workload.
type candidate struct {
	global     bool // a Global_ key (else Node_)
	workload   bool // a local workload peer (Local_Workload_)
	addr       netip.Addr
	port       int // 0 = the BGP default
	asn        uint32
	clusterID  string // the remote's RR cluster ID (Calico node remotes only)
	calicoNode bool
	src        *parsedPeer
}

type candidateKey struct {
	global bool
	addr   netip.Addr
	port   int
}

// parsedPeer is a BGPPeer with its selectors and address parsed.
type parsedPeer struct {
	r                       *resources.BGPPeer
	nodeSel, peerSel, wlSel *selector.Selector
	peerIP                  netip.AddrPort // valid when spec.peerIP is set
	reachableBy             netip.Addr
	global                  bool // neither node nor nodeSelector
	reverse                 bool // reversePeering Auto
}

func (p *planner) meshEnabled() bool {
	return p.global == nil || p.global.NodeToNodeMeshEnabled == nil || *p.global.NodeToNodeMeshEnabled
}

// peers computes the sessions (sorted by name) and their filter chains.
func (p *planner) peers(localASN uint32) ([]Peer, []PeerFilter) {
	if !p.meshEnabled() && len(p.in.Peers) == 0 && !p.anyReflector() {
		p.warn("the node-to-node mesh is disabled (BGPConfiguration default, nodeToNodeMeshEnabled: false) " +
			"while no node is a route reflector (spec.bgp.routeReflectorClusterID) and no BGPPeer exists: " +
			"nodes have no BGP sessions and exchange no routes")
	}
	ordered := p.meshPeers()
	cands := p.candidates()
	for _, global := range []bool{true, false} {
		for _, workload := range []bool{false, true} {
			for _, c := range cands {
				if c.global != global || c.workload != workload {
					continue
				}
				if pr, ok := p.buildPeer(c, localASN); ok {
					ordered = append(ordered, pr)
				}
			}
		}
	}
	first := map[netip.Addr]string{}
	var out []Peer
	for _, pr := range ordered {
		if name, dup := first[pr.Address]; dup {
			p.warn("peer %s: session %s dropped, %s already peers with this address (one session per address)", pr.Address, pr.Name, name)
			continue
		}
		first[pr.Address] = pr.Name
		out = append(out, pr)
	}
	slices.SortFunc(out, func(a, b Peer) int { return strings.Compare(a.Name, b.Name) })
	return out, p.peerFilters(out)
}

func (p *planner) anyReflector() bool {
	for _, n := range p.nodes {
		if n.clusterID != "" {
			return true
		}
	}
	return false
}

// meshPeers is the node-to-node mesh: every other node with an address of a
// family we have, except route reflectors; none on a route reflector.
func (p *planner) meshPeers() []Peer {
	if !p.meshEnabled() || p.local.clusterID != "" {
		return nil
	}
	var out []Peer
	for _, v4 := range []bool{true, false} {
		own := p.local.addr(v4)
		if !own.IsValid() {
			continue
		}
		for _, name := range p.nodeNames {
			n := p.nodes[name]
			a := n.addr(v4)
			if name == p.in.NodeName || !a.IsValid() || a == own || n.clusterID != "" {
				continue
			}
			pr := Peer{
				Name: "Mesh_" + mangle(a), Type: PeerMesh, Address: a, Port: p.listenPortOf(name),
				PeerASN: p.asnOf(n), SourceAddress: own, Passive: a.String() > own.String(), IsCalicoNode: true,
			}
			if g := p.global; g != nil {
				pr.PasswordRef = secretRef(g.NodeMeshPassword)
				if g.NodeMeshMaxRestartTime != nil {
					pr.RestartTime = g.NodeMeshMaxRestartTime.Duration
				}
			}
			out = append(out, pr)
		}
	}
	return out
}

// candidates expands the BGPPeers into this node's peerings, in upstream's
// emission order: global BGPPeers, node-specific ones, then reverse
// peerings. A key (scope, address, port) already emitted wins, and a
// node-specific peering to a global one's address and port is dropped.
func (p *planner) candidates() []candidate {
	parsed := p.parsePeers()
	var out []candidate
	seen := map[candidateKey]bool{}
	emit := func(c candidate) {
		k := candidateKey{c.global, c.addr, c.port}
		if seen[k] || (!c.global && seen[candidateKey{true, c.addr, c.port}]) {
			return
		}
		seen[k] = true
		out = append(out, c)
	}
	for _, globalPass := range []bool{true, false} {
		for _, pp := range parsed {
			if pp.global != globalPass || (!pp.global && !p.selectsLocal(pp)) {
				continue
			}
			for _, c := range p.forward(pp) {
				c.global = globalPass
				emit(c)
			}
		}
	}
	for _, pp := range parsed {
		for _, c := range p.reverse(pp) {
			emit(c)
		}
	}
	return out
}

// parsePeers parses every BGPPeer, in name order; one that cannot be used
// is warned about and left out.
func (p *planner) parsePeers() []*parsedPeer {
	rs := slices.Clone(p.in.Peers)
	slices.SortFunc(rs, func(a, b *resources.BGPPeer) int { return strings.Compare(a.Name, b.Name) })
	var out []*parsedPeer
	for _, r := range rs {
		if r == nil {
			continue
		}
		pp, err := p.parsePeer(r)
		if err != nil {
			p.warn("BGPPeer %s: %v; ignored", r.Name, err)
			continue
		}
		out = append(out, pp)
	}
	return out
}

func (p *planner) parsePeer(r *resources.BGPPeer) (*parsedPeer, error) {
	s := &r.Spec
	pp := &parsedPeer{r: r, global: s.Node == "" && s.NodeSelector == "",
		reverse: s.ReversePeering == nil || *s.ReversePeering != "Manual"}
	for _, sel := range []struct {
		field, expr string
		dst         **selector.Selector
	}{{"nodeSelector", s.NodeSelector, &pp.nodeSel}, {"peerSelector", s.PeerSelector, &pp.peerSel}, {"localWorkloadSelector", s.LocalWorkloadSelector, &pp.wlSel}} {
		if sel.expr == "" {
			continue
		}
		parsed, err := selector.Parse(sel.expr)
		if err != nil {
			return nil, fmt.Errorf("spec.%s %q: %w", sel.field, sel.expr, err)
		}
		*sel.dst = parsed
	}
	if s.Node != "" && s.NodeSelector != "" {
		return nil, fmt.Errorf("spec.node and spec.nodeSelector are both set")
	}
	switch {
	case s.PeerSelector != "":
		if s.PeerIP != "" {
			return nil, fmt.Errorf("spec.peerIP and spec.peerSelector are both set")
		}
	case s.LocalWorkloadSelector != "":
		if s.ASNumber == 0 {
			return nil, fmt.Errorf("spec.localWorkloadSelector needs spec.asNumber")
		}
	case s.PeerIP != "":
		ap, err := resources.ParsePeerIP(s.PeerIP)
		if err != nil {
			return nil, fmt.Errorf("spec.peerIP %q: %w", s.PeerIP, err)
		}
		if s.ASNumber == 0 {
			return nil, fmt.Errorf("spec.peerIP needs spec.asNumber")
		}
		pp.peerIP = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	default:
		return nil, fmt.Errorf("none of spec.peerIP, spec.peerSelector, spec.localWorkloadSelector is set")
	}
	if s.ReachableBy != "" {
		gw, err := netip.ParseAddr(s.ReachableBy)
		if err != nil || !pp.peerIP.IsValid() || gw.Unmap().Is4() != pp.peerIP.Addr().Is4() {
			return nil, fmt.Errorf("spec.reachableBy %q is not an address of spec.peerIP's family", s.ReachableBy)
		}
		pp.reachableBy = gw.Unmap()
	}
	return pp, nil
}

// selectsLocal reports whether a node-specific BGPPeer applies to this node.
func (p *planner) selectsLocal(pp *parsedPeer) bool {
	if n := pp.r.Spec.Node; n != "" {
		return n == p.in.NodeName
	}
	return pp.nodeSel.Evaluate(p.local.labels)
}

// nodesMatching returns the names of the nodes a selector picks, sorted.
func (p *planner) nodesMatching(sel *selector.Selector) []string {
	var out []string
	for _, name := range p.nodeNames {
		if sel.Evaluate(p.nodes[name].labels) {
			out = append(out, name)
		}
	}
	return out
}

// forward is the remote side of a BGPPeer as seen from a node it applies
// to: the selected Calico nodes, the local workloads, or the peer address.
func (p *planner) forward(pp *parsedPeer) []candidate {
	s := &pp.r.Spec
	switch {
	case pp.peerSel != nil:
		var out []candidate
		for _, name := range p.nodesMatching(pp.peerSel) {
			out = append(out, p.nodeAsCandidates(name, true, true, pp)...)
		}
		return out
	case pp.wlSel != nil:
		return p.workloadCandidates(pp)
	}
	addr, port := pp.peerIP.Addr(), int(pp.peerIP.Port())
	if port == 0 {
		// A Calico node is dialled on its own listen port.
		if nodes := p.nodesWith(addr, uint32(s.ASNumber), 0); len(nodes) > 0 {
			port = p.listenPortOf(nodes[0])
		}
	}
	return []candidate{{addr: addr, port: port, asn: uint32(s.ASNumber), calicoNode: p.isNodeAddr(addr), src: pp}}
}

// reverse is the mirror of a BGPPeer on the Calico nodes its remote side
// names (peerSelector, or a peerIP that is a node's address with that AS
// and port): they peer back with the nodes the BGPPeer applies to.
func (p *planner) reverse(pp *parsedPeer) []candidate {
	if !pp.reverse || pp.wlSel != nil {
		return nil
	}
	var locals []string
	v4, v6 := true, true
	if pp.peerSel != nil {
		locals = p.nodesMatching(pp.peerSel)
	} else {
		a := pp.peerIP.Addr()
		locals = p.nodesWith(a, uint32(pp.r.Spec.ASNumber), int(pp.peerIP.Port()))
		v4, v6 = a.Is4(), !a.Is4()
	}
	if !slices.Contains(locals, p.in.NodeName) {
		return nil
	}
	var remotes []string
	switch s := &pp.r.Spec; {
	case s.NodeSelector != "":
		remotes = p.nodesMatching(pp.nodeSel)
	case s.Node != "":
		remotes = []string{s.Node}
	default:
		remotes = p.nodeNames
	}
	var out []candidate
	for _, name := range remotes {
		out = append(out, p.nodeAsCandidates(name, v4, v6, pp)...)
	}
	return out
}

// nodesWith returns the nodes with address a and AS asn (0 = the global
// AS) that listen on port (0 = any), sorted by name.
func (p *planner) nodesWith(a netip.Addr, asn uint32, port int) []string {
	if asn == 0 {
		asn = p.globalASN
	}
	var out []string
	for _, name := range p.nodeNames {
		n := p.nodes[name]
		if n.v4.Addr() != a && n.v6.Addr() != a {
			continue
		}
		if p.asnOf(n) != asn {
			continue
		}
		if port != 0 && cmp.Or(p.listenPortOf(name), DefaultPort) != port {
			continue
		}
		out = append(out, name)
	}
	return out
}

func (p *planner) isNodeAddr(a netip.Addr) bool {
	for _, n := range p.nodes {
		if n.v4.Addr() == a || n.v6.Addr() == a {
			return true
		}
	}
	return false
}

// nodeAsCandidates is a Calico node as the remote side of pp, in the
// families asked for that it has addresses in.
func (p *planner) nodeAsCandidates(name string, v4, v6 bool, pp *parsedPeer) []candidate {
	n := p.nodes[name]
	if n == nil {
		return nil
	}
	var out []candidate
	for _, fam := range []bool{true, false} {
		a := n.addr(fam)
		if (fam && !v4) || (!fam && !v6) || !a.IsValid() {
			continue
		}
		out = append(out, candidate{addr: a, port: p.listenPortOf(name), asn: p.asnOf(n),
			clusterID: n.clusterID, calicoNode: true, src: pp})
	}
	return out
}

// workloadCandidates are this node's workloads a localWorkloadSelector
// picks, one per address.
func (p *planner) workloadCandidates(pp *parsedPeer) []candidate {
	ws := slices.Clone(p.in.Workloads)
	slices.SortFunc(ws, func(a, b *state.Endpoint) int {
		return cmp.Or(strings.Compare(a.Key.Namespace, b.Key.Namespace), strings.Compare(a.Key.Name, b.Key.Name))
	})
	var out []candidate
	for _, w := range ws {
		if w == nil || w.Node != p.in.NodeName || !pp.wlSel.Evaluate(w.Labels) {
			continue
		}
		for _, pfx := range w.Networks {
			out = append(out, candidate{workload: true, addr: pfx.Addr().Unmap(), asn: uint32(pp.r.Spec.ASNumber), src: pp})
		}
	}
	return out
}

// buildPeer turns a peering into a session, as upstream's
// buildPeerFromData; false for a peering to ourselves or in a family this
// node has no address in.
func (p *planner) buildPeer(c candidate, localASN uint32) (Peer, bool) {
	v4 := c.addr.Is4()
	own := p.local.addr(v4)
	s := &c.src.r.Spec
	if !own.IsValid() {
		if c.src.peerIP.IsValid() {
			p.warn("BGPPeer %s: peer %s is IPv%d but node %s has no IPv%d address; no session", c.src.r.Name, c.addr, family(v4), p.in.NodeName, family(v4))
		}
		return Peer{}, false
	}
	if c.addr == own {
		return Peer{}, false
	}
	prefix, typ := "Node", PeerNode
	switch {
	case c.workload:
		prefix, typ = "Local_Workload", PeerLocalWorkload
	case c.global:
		prefix, typ = "Global", PeerGlobal
	}
	name := prefix + "_" + mangle(c.addr)
	if c.port > 0 {
		name += "_port_" + strconv.Itoa(c.port)
	}
	pr := Peer{
		Name: name, Type: typ, Address: c.addr, Port: c.port, PeerASN: c.asn,
		PasswordRef: secretRef(s.Password), IsCalicoNode: c.calicoNode, ReachableBy: c.src.reachableBy,
		Source: c.src.r.Name,
	}
	if s.LocalASNumber != nil {
		pr.LocalASN = uint32(*s.LocalASNumber)
	}
	if s.SourceAddress != "None" && !c.workload {
		pr.SourceAddress = own
	}
	if s.KeepaliveTime != nil {
		pr.Keepalive = s.KeepaliveTime.Duration
	}
	if s.MaxRestartTime != nil {
		pr.RestartTime = s.MaxRestartTime.Duration
	}
	if s.NumAllowedLocalASNumbers != nil {
		pr.AllowOwnAS = int(*s.NumAllowedLocalASNumbers)
	}
	if s.TTLSecurity != nil {
		pr.TTLSecurity = int(*s.TTLSecurity)
	}
	effLocal := cmp.Or(pr.LocalASN, localASN)
	if s.NextHopMode != nil {
		switch *s.NextHopMode {
		case "Self":
			pr.NextHop = NextHopSelf
		case "Keep":
			pr.NextHop = NextHopKeep
		}
	}
	if s.KeepOriginalNextHop && pr.PeerASN != effLocal {
		pr.NextHop = NextHopKeep
	}
	// On a route reflector an iBGP peer is a client unless it is a
	// reflector of our own cluster.
	if own := p.local.clusterID; own != "" && pr.PeerASN == effLocal && c.clusterID != own {
		pr.RouteReflectorClient, pr.ClusterID = true, own
	}
	pr.Passive = c.workload || (c.calicoNode && c.addr.String() > own.String())
	pr.Filters = p.existingFilters(c.src)
	return pr, true
}

// existingFilters is a BGPPeer's filter list without the names no
// BGPFilter has (warned about once).
func (p *planner) existingFilters(pp *parsedPeer) []string {
	var out []string
	for _, f := range pp.r.Spec.Filters {
		if p.in.Filters[f] == nil {
			p.warn("BGPPeer %s: BGPFilter %s does not exist; skipped", pp.r.Name, f)
			continue
		}
		out = append(out, f)
	}
	return out
}

func secretRef(pw *resources.BGPPassword) *SecretRef {
	if pw == nil || pw.SecretKeyRef == nil {
		return nil
	}
	return &SecretRef{Name: pw.SecretKeyRef.Name, Key: pw.SecretKeyRef.Key}
}

// mangle is an address as upstream puts it in protocol names: '.' or ':'
// replaced by '_'.
func mangle(a netip.Addr) string {
	if a.Is4() {
		return strings.ReplaceAll(a.String(), ".", "_")
	}
	return strings.ReplaceAll(a.String(), ":", "_")
}

func family(v4 bool) int {
	if v4 {
		return 4
	}
	return 6
}
