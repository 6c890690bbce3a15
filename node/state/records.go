package state

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"unique"

	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/resources"
)

// The model keeps compact records of the two kinds that come in tens of
// thousands, workload endpoints and IPAM blocks, rather than the decoded
// resources: what the agent's components read (routes, VXLAN, NAT, BGP)
// and what network policy will (labels, namespace, profiles, service
// account, addresses, named ports). Metadata nobody reads (annotations,
// managed fields, timestamps, UIDs) and the per-address allocation
// attributes of blocks are dropped when a resource enters the model.
// Repeated strings (node names, namespaces, service accounts, affinities)
// are interned with package unique; label sets and profile lists, shared
// by many endpoints, are interned by the model (one map per distinct set).

// Endpoint is what the model keeps of a WorkloadEndpoint. Its slices and
// Labels may be shared with other endpoints: never modify them.
type Endpoint struct {
	// Key is the endpoint's key (Kind "WorkloadEndpoint").
	Key            resources.Key
	Node           string
	InterfaceName  string
	ServiceAccount string
	// Networks are the endpoint's addresses (spec.ipNetworks; a bare
	// address is a host prefix; unparsable ones are left out).
	Networks []netip.Prefix
	// NATs are the parsable 1:1 NATs (spec.ipNATs).
	NATs []NAT
	// Labels are the endpoint's labels, interned.
	Labels map[string]string
	// Profiles are spec.profiles, interned.
	Profiles []string
	// Ports are spec.ports (named ports), usually none.
	Ports []resources.WorkloadEndpointPort

	// The interned entries held, released when the record leaves the model.
	labelsRef   *interned[map[string]string]
	profilesRef *interned[[]string]
}

// NAT is a 1:1 NAT (floating IP) onto one of an endpoint's addresses.
type NAT struct{ Internal, External netip.Addr }

// EndpointOf reduces w to the record the model keeps (not yet interned:
// the model interns labels and profiles when the record enters it).
func EndpointOf(w *resources.WorkloadEndpoint) *Endpoint {
	e := &Endpoint{
		Key:            resources.Key{Kind: "WorkloadEndpoint", Namespace: intern(w.Namespace), Name: strings.Clone(w.Name)},
		Node:           intern(w.Spec.Node),
		InterfaceName:  strings.Clone(w.Spec.InterfaceName),
		ServiceAccount: intern(w.Spec.ServiceAccountName),
		Labels:         w.Labels,
		Profiles:       w.Spec.Profiles,
	}
	for _, n := range w.Spec.IPNetworks {
		if p, err := resources.ParseCIDR(n); err == nil {
			e.Networks = append(e.Networks, p)
		}
	}
	for _, nt := range w.Spec.IPNATs {
		in, err1 := netip.ParseAddr(nt.InternalIP)
		ext, err2 := netip.ParseAddr(nt.ExternalIP)
		if err1 == nil && err2 == nil {
			e.NATs = append(e.NATs, NAT{Internal: in, External: ext})
		}
	}
	if len(w.Spec.Ports) > 0 {
		e.Ports = slices.Clone(w.Spec.Ports)
	}
	return e
}

// Addrs are the distinct addresses of e's networks.
func (e *Endpoint) Addrs() []netip.Addr {
	out := make([]netip.Addr, 0, len(e.Networks))
	for _, p := range e.Networks {
		if !slices.Contains(out, p.Addr()) {
			out = append(out, p.Addr())
		}
	}
	return out
}

// equal says whether e and o hold the same data (labels and profiles
// compared by content).
func (e *Endpoint) equal(o *Endpoint) bool {
	return e.Key == o.Key && e.Node == o.Node && e.InterfaceName == o.InterfaceName &&
		e.ServiceAccount == o.ServiceAccount && slices.Equal(e.Networks, o.Networks) &&
		slices.Equal(e.NATs, o.NATs) && maps.Equal(e.Labels, o.Labels) &&
		slices.Equal(e.Profiles, o.Profiles) && slices.Equal(e.Ports, o.Ports)
}

// Block is what the model keeps of an IPAM block: its CIDR, affinity, and
// the allocations of tunnel addresses (what the agent's tunnel check
// reads); the other allocations and their attributes are dropped.
type Block struct {
	CIDR netip.Prefix
	// Affinity is "host:<node>", "virtual:<name>" or "" (none).
	Affinity string
	Deleted  bool
	// Tunnels are the block's allocations whose handle is a tunnel
	// address's (ipam.IsTunnelHandle).
	Tunnels []TunnelAllocation
}

// TunnelAllocation is one tunnel address allocated in a block.
type TunnelAllocation struct {
	Addr   netip.Addr
	Handle string
}

// BlockOf reduces b to the record the model keeps.
func BlockOf(b *ipam.Block) *Block {
	r := &Block{CIDR: b.CIDR, Affinity: intern(b.Affinity), Deleted: b.Deleted}
	for ord, idx := range b.Allocations {
		if idx == nil || *idx < 0 || *idx >= len(b.Attributes) {
			continue
		}
		h := b.Attributes[*idx].HandleID
		if h == nil || !ipam.IsTunnelHandle(*h) {
			continue
		}
		if a, ok := ipam.IPAt(b, ord); ok {
			r.Tunnels = append(r.Tunnels, TunnelAllocation{Addr: a, Handle: strings.Clone(*h)})
		}
	}
	return r
}

func (b *Block) equal(o *Block) bool {
	return b.CIDR == o.CIDR && b.Affinity == o.Affinity && b.Deleted == o.Deleted && slices.Equal(b.Tunnels, o.Tunnels)
}

// Host is the node the block is affine to ("" for none or a virtual
// owner).
func (b *Block) Host() string {
	h, ok := strings.CutPrefix(b.Affinity, "host:")
	if !ok {
		return ""
	}
	return h
}

// intern returns the canonical copy of s.
func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}

// interned is one entry of an internTable: a value shared by refs holders.
type interned[T any] struct {
	v    T
	key  string
	refs int
}

// internTable shares equal values (label sets, profile lists) between
// the endpoints that hold them, counting holders so that a value nobody
// holds any more is forgotten.
type internTable[T any] map[string]*interned[T]

// acquire returns the shared entry for key, made from v when new.
func (t internTable[T]) acquire(key string, v T) *interned[T] {
	e := t[key]
	if e == nil {
		e = &interned[T]{v: v, key: key}
		t[key] = e
	}
	e.refs++
	return e
}

// release drops one holder of e.
func (t internTable[T]) release(e *interned[T]) {
	if e == nil {
		return
	}
	if e.refs--; e.refs <= 0 {
		delete(t, e.key)
	}
}

// labelsKey is a canonical encoding of a label set.
func labelsKey(l map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(l)) {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(l[k])
		b.WriteByte(0)
	}
	return b.String()
}
