package bgp

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/opencalico/calicoctl/resources"
)

// Defaults as upstream's confd and BIRD templates.
const (
	// DefaultASN is every node's AS when neither the Node nor the default
	// BGPConfiguration sets one.
	DefaultASN = 64512
	// DefaultPort is the BGP port when no BGPConfiguration sets listenPort.
	DefaultPort = 179
	// RouteProtocol marks the kernel routes made from learned BGP paths
	// ("proto bird", as upstream's BIRD writes them).
	RouteProtocol = 12
)

// BackendBird is the only CALICO_NETWORKING_BACKEND that runs BGP.
const BackendBird = "bird"

// nodeInfo is the BGP identity of one Calico node, parsed once.
type nodeInfo struct {
	name string
	// v4, v6 are the node's addresses with their subnets (invalid = none).
	v4, v6    netip.Prefix
	asn       uint32 // 0 = the global AS
	clusterID string // routeReflectorClusterID
	labels    map[string]string
}

// addr is the node's address of one family (invalid when it has none).
func (n *nodeInfo) addr(v4 bool) netip.Addr {
	if v4 {
		return n.v4.Addr()
	}
	return n.v6.Addr()
}

// planner holds one Compute's parsed input and its warnings.
type planner struct {
	in        Input
	nodes     map[string]*nodeInfo
	nodeNames []string // sorted
	local     *nodeInfo
	// global and localCfg are the specs of BGPConfiguration "default" and
	// "node.<this node>" (nil when absent).
	global, localCfg *resources.BGPConfigurationSpec
	globalASN        uint32
	pools            []poolInfo
	warnings         []string
	warned           map[string]bool
}

// poolInfo is a parsed IP pool.
type poolInfo struct {
	cidr        netip.Prefix
	noExport    bool // disableBGPExport
	ipip, vxlan resources.EncapMode
	disabled    bool
}

// Compute is this node's whole BGP intent: speaker settings, sessions,
// originated paths, filters and the prefixes learned routes must not
// enter. It is a pure function of in; problems the operator should see are
// in Warnings (Compute never fails: an invalid object is skipped).
func Compute(in Input) Desired {
	p := newPlanner(in)
	if b := in.Env.Backend; b != "" && b != BackendBird {
		return Desired{}
	}
	if p.local == nil {
		p.warn("node %s: no Node resource with this name, so no BGP", in.NodeName)
		return Desired{Warnings: p.warnings}
	}
	if !p.local.v4.IsValid() && !p.local.v6.IsValid() {
		p.warn("node %s: no BGP address (spec.bgp.ipv4Address or ipv6Address), so no BGP", in.NodeName)
		return Desired{Warnings: p.warnings}
	}
	d := Desired{Enabled: true, Global: p.globalSettings()}
	d.Peers, d.Filters = p.peers(d.Global.ASN)
	d.Paths, d.Reject = p.paths()
	d.Warnings = p.warnings
	return d
}

func newPlanner(in Input) *planner {
	p := &planner{in: in, nodes: map[string]*nodeInfo{}, warned: map[string]bool{}}
	if c := in.Configs["default"]; c != nil {
		p.global = &c.Spec
	}
	if c := in.Configs["node."+in.NodeName]; c != nil {
		p.localCfg = &c.Spec
	}
	p.globalASN = DefaultASN
	if p.global != nil && p.global.ASNumber != nil {
		p.globalASN = uint32(*p.global.ASNumber)
	}
	for _, name := range slices.Sorted(maps.Keys(in.Nodes)) {
		n := in.Nodes[name]
		if n == nil {
			continue
		}
		ni := p.parseNode(n)
		p.nodes[name] = ni
		p.nodeNames = append(p.nodeNames, name)
	}
	p.local = p.nodes[in.NodeName]
	for _, pool := range in.Pools {
		if pool == nil {
			continue
		}
		c, err := netip.ParsePrefix(pool.Spec.CIDR)
		if err != nil {
			p.warn("IPPool %s: spec.cidr %q is not a CIDR; ignored", pool.Name, pool.Spec.CIDR)
			continue
		}
		p.pools = append(p.pools, poolInfo{cidr: c.Masked(), noExport: pool.Spec.DisableBGPExport,
			ipip: pool.Spec.IPIPMode, vxlan: pool.Spec.VXLANMode, disabled: pool.Spec.Disabled})
	}
	return p
}

// parseNode reads a Node's BGP spec; invalid fields are warned about and
// left empty.
func (p *planner) parseNode(n *resources.Node) *nodeInfo {
	ni := &nodeInfo{name: n.Name, labels: n.Labels}
	b := n.Spec.BGP
	if b == nil {
		return ni
	}
	ni.v4 = p.nodeAddr(n.Name, "ipv4Address", b.IPv4Address, true)
	ni.v6 = p.nodeAddr(n.Name, "ipv6Address", b.IPv6Address, false)
	if b.ASNumber != nil {
		ni.asn = uint32(*b.ASNumber)
	}
	if id := b.RouteReflectorClusterID; id != "" {
		if a, err := netip.ParseAddr(id); err != nil || !a.Is4() {
			p.warn("node %s: spec.bgp.routeReflectorClusterID %q is not an IPv4 address; the node is not a route reflector", n.Name, id)
		} else {
			ni.clusterID = a.String()
		}
	}
	return ni
}

func (p *planner) nodeAddr(node, field, value string, v4 bool) netip.Prefix {
	if value == "" {
		return netip.Prefix{}
	}
	pfx, err := parseAddrOrPrefix(value)
	if err == nil && pfx.Addr().Unmap().Is4() == v4 {
		a := pfx.Addr().Unmap()
		return netip.PrefixFrom(a, min(pfx.Bits(), a.BitLen()))
	}
	p.warn("node %s: spec.bgp.%s %q is not an IPv%d address or CIDR; ignored", node, field, value, map[bool]int{true: 4, false: 6}[v4])
	return netip.Prefix{}
}

func parseAddrOrPrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not an address or CIDR: %w", err)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (p *planner) warn(format string, args ...any) {
	w := fmt.Sprintf(format, args...)
	if !p.warned[w] {
		p.warned[w] = true
		p.warnings = append(p.warnings, w)
	}
}

// asnOf is a node's effective AS.
func (p *planner) asnOf(n *nodeInfo) uint32 {
	if n.asn != 0 {
		return n.asn
	}
	return p.globalASN
}

// listenPortOf is the port a node listens on as configured (node.<name>,
// then default); 0 when neither sets one (the BGP default, 179).
func (p *planner) listenPortOf(node string) int {
	if c := p.in.Configs["node."+node]; c != nil && c.Spec.ListenPort != 0 {
		return int(c.Spec.ListenPort)
	}
	if p.global != nil && p.global.ListenPort != 0 {
		return int(p.global.ListenPort)
	}
	return 0
}

// globalSettings is the speaker's identity and listeners.
func (p *planner) globalSettings() Global {
	g := Global{
		ASN:        p.asnOf(p.local),
		NodeIPv4:   p.local.v4.Addr(),
		NodeIPv6:   p.local.v6.Addr(),
		ListenPort: p.listenPortOf(p.in.NodeName),
		RouterID:   p.routerID(),
	}
	if g.ListenPort == 0 {
		g.ListenPort = DefaultPort
	}
	if p.global != nil && p.global.BindMode != nil && *p.global.BindMode == "NodeIP" {
		for _, a := range []netip.Addr{g.NodeIPv4, g.NodeIPv6} {
			if a.IsValid() {
				g.ListenAddresses = append(g.ListenAddresses, a)
			}
		}
		// Local workloads dial the node-side peering addresses.
		for _, s := range []string{p.global.LocalWorkloadPeeringIPV4, p.global.LocalWorkloadPeeringIPV6} {
			if a, err := netip.ParseAddr(s); err == nil && !slices.Contains(g.ListenAddresses, a) {
				g.ListenAddresses = append(g.ListenAddresses, a)
			}
		}
	}
	return g
}

// routerID follows CALICO_ROUTER_ID: "hash" hashes the node name, an
// address is used as is, unset means the node's IPv4 address. Where
// upstream would run without a valid ID (an IPv6-only node without the
// variable, a malformed value) the hashed ID is used and a warning says so.
func (p *planner) routerID() netip.Addr {
	name := p.in.NodeName
	switch env := strings.TrimSpace(p.in.Env.RouterID); env {
	case "hash":
		return HashToIPv4(name)
	case "":
		if a := p.local.v4.Addr(); a.IsValid() {
			return a
		}
		p.warn("node %s has no IPv4 address: the router ID is hashed from the node name (set CALICO_ROUTER_ID=hash to say so)", name)
		return HashToIPv4(name)
	default:
		if a, err := netip.ParseAddr(env); err == nil && a.Unmap().Is4() {
			return a.Unmap()
		}
		p.warn("CALICO_ROUTER_ID=%q is neither an IPv4 address nor \"hash\": the router ID is hashed from the node name", env)
		return HashToIPv4(name)
	}
}

// HashToIPv4 is upstream's hashed router ID: the first four bytes of the
// SHA-256 of the node name, with 32 taken off a first byte above 223 so
// the ID stays out of the multicast and reserved ranges.
func HashToIPv4(nodeName string) netip.Addr {
	sum := sha256.Sum256([]byte(nodeName))
	b := [4]byte{sum[0], sum[1], sum[2], sum[3]}
	if b[0] > 223 {
		b[0] -= 32
	}
	return netip.AddrFrom4(b)
}
