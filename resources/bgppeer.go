package resources

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BGPPeer is the projectcalico.org/v3 BGPPeer resource: a BGP session between
// some Calico nodes and a remote speaker (or other Calico nodes).
type BGPPeer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BGPPeerSpec `json:"spec,omitempty"`
}

// BGPPeerSpec is the spec of a BGPPeer.
type BGPPeerSpec struct {
	// Node is the one Calico node that has this peering. With neither node
	// nor nodeSelector, every node has it.
	Node string `json:"node,omitempty"`
	// PeerIP is the remote address: "ip", "ipv4:port" or "[ipv6]:port".
	PeerIP string `json:"peerIP,omitempty"`
	// ASNumber is the remote AS.
	ASNumber ASNumber `json:"asNumber,omitempty"`
	// NodeSelector picks the Calico nodes that have this peering.
	NodeSelector string `json:"nodeSelector,omitempty"`
	// PeerSelector picks Calico nodes to peer with (their BGP addresses/AS).
	PeerSelector string `json:"peerSelector,omitempty"`
	// KeepOriginalNextHop is the deprecated form of nextHopMode: Keep.
	KeepOriginalNextHop bool `json:"keepOriginalNextHop,omitempty"`
	// NextHopMode is Auto, Self or Keep.
	NextHopMode *string `json:"nextHopMode,omitempty"`
	// Password protects the session.
	Password *BGPPassword `json:"password,omitempty"`
	// SourceAddress is UseNodeIP (default) or None.
	SourceAddress string `json:"sourceAddress,omitempty"`
	// MaxRestartTime is the graceful-restart time (BIRD default 120s).
	MaxRestartTime *metav1.Duration `json:"maxRestartTime,omitempty"`
	// NumAllowedLocalASNumbers allows our own AS in received paths this many
	// times.
	NumAllowedLocalASNumbers *int32 `json:"numAllowedLocalASNumbers,omitempty"`
	// TTLSecurity enables GTSM with this many hops.
	TTLSecurity *uint8 `json:"ttlSecurity,omitempty"`
	// ReachableBy is the gateway of a static /32 (/128) route to peerIP.
	ReachableBy string `json:"reachableBy,omitempty"`
	// Filters are BGPFilter names applied to this peer, in order.
	Filters []string `json:"filters,omitempty"`
	// KeepaliveTime is the BGP keepalive interval.
	KeepaliveTime *metav1.Duration `json:"keepaliveTime,omitempty"`
	// LocalASNumber overrides the local AS for this peering.
	LocalASNumber *ASNumber `json:"localASNumber,omitempty"`
	// LocalWorkloadSelector peers with local workloads matching it.
	LocalWorkloadSelector string `json:"localWorkloadSelector,omitempty"`
	// ReversePeering is Auto (default) or Manual.
	ReversePeering *string `json:"reversePeering,omitempty"`
}

// Default does nothing: upstream writes no defaults for BGPPeer.
func (r *BGPPeer) Default() {}

// Validate checks the peer as upstream does: address forms, selector syntax
// and the combinations of node/nodeSelector, peerIP/peerSelector and
// localWorkloadSelector that exclude each other.
func (r *BGPPeer) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	s := &r.Spec
	if s.Node != "" && !IsDNS1123Subdomain(s.Node) {
		v.Add("spec.node", s.Node, "invalid node name")
	}
	peerAddr, peerOK := netip.Addr{}, false
	if s.PeerIP != "" {
		if a, err := ParsePeerIP(s.PeerIP); err != nil {
			v.Add("spec.peerIP", s.PeerIP, err.Error())
		} else {
			peerAddr, peerOK = a.Addr(), true
		}
	}
	ValidateSelector(&v, "spec.nodeSelector", s.NodeSelector)
	ValidateSelector(&v, "spec.peerSelector", s.PeerSelector)
	ValidateSelector(&v, "spec.localWorkloadSelector", s.LocalWorkloadSelector)
	if s.Node != "" && s.NodeSelector != "" {
		v.Add("spec.nodeSelector", s.NodeSelector, "node and nodeSelector cannot both be set")
	}
	if s.PeerIP != "" && s.PeerSelector != "" {
		v.Add("spec.peerSelector", s.PeerSelector, "peerIP and peerSelector cannot both be set")
	}
	if s.ASNumber != 0 && s.PeerSelector != "" {
		v.Add("spec.asNumber", s.ASNumber, "asNumber must be empty when peerSelector is set")
	}
	if s.LocalWorkloadSelector != "" {
		if s.PeerIP != "" {
			v.Add("spec.peerIP", s.PeerIP, "peerIP must be empty when localWorkloadSelector is set")
		}
		if s.PeerSelector != "" {
			v.Add("spec.peerSelector", s.PeerSelector, "peerSelector must be empty when localWorkloadSelector is set")
		}
		if s.ASNumber == 0 {
			v.Add("spec.asNumber", s.ASNumber, "asNumber is required when localWorkloadSelector is set")
		}
	}
	if s.ReachableBy != "" {
		if s.PeerIP == "" {
			v.Add("spec.reachableBy", s.ReachableBy, "reachableBy must be empty when peerIP is empty")
		} else if gw, ok := ValidateIP(&v, "spec.reachableBy", s.ReachableBy); ok && peerOK && gw.Is4() != peerAddr.Unmap().Is4() {
			v.Add("spec.reachableBy", s.ReachableBy, "reachableBy must be of the same IP family as peerIP")
		}
	}
	if s.KeepOriginalNextHop && s.NextHopMode != nil {
		v.Add("spec.nextHopMode", *s.NextHopMode, "keepOriginalNextHop and nextHopMode cannot both be set; keepOriginalNextHop is deprecated, use nextHopMode")
	}
	enumPtr(&v, "spec.nextHopMode", s.NextHopMode, "Auto", "Self", "Keep")
	enumField(&v, "spec.sourceAddress", s.SourceAddress, "UseNodeIP", "None")
	enumPtr(&v, "spec.reversePeering", s.ReversePeering, "Auto", "Manual")
	validateBGPPassword(&v, "spec.password", s.Password)
	rangeField(&v, "spec.numAllowedLocalASNumbers", s.NumAllowedLocalASNumbers, 0, 1<<31-1)
	for i, f := range s.Filters {
		if !IsDNS1123Subdomain(f) {
			v.Add(fmt.Sprintf("spec.filters[%d]", i), f, "must be the name of a BGPFilter")
		}
	}
	return v.Err()
}

// ParsePeerIP parses a BGPPeer peerIP: "ip", "ipv4:port" or "[ipv6]:port".
// The port is 0 when absent.
func ParsePeerIP(s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.AddrPort{}, fmt.Errorf("peerIP must not have a zone")
		}
		return netip.AddrPortFrom(a, 0), nil
	}
	host, port, ok := "", "", false
	if strings.HasPrefix(s, "[") {
		if i := strings.LastIndex(s, "]:"); i > 0 {
			host, port, ok = s[1:i], s[i+2:], true
		}
	} else if i := strings.LastIndexByte(s, ':'); i > 0 && strings.Count(s, ":") == 1 {
		host, port, ok = s[:i], s[i+1:], true
	}
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("peerIP must be an IP address, optionally with a port as <IPv4>:<port> or [<IPv6>]:<port>")
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" || (strings.HasPrefix(s, "[") != (a.Is6() && !a.Is4In6())) {
		return netip.AddrPort{}, fmt.Errorf("peerIP must be an IP address, optionally with a port as <IPv4>:<port> or [<IPv6>]:<port>")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return netip.AddrPort{}, fmt.Errorf("peerIP port must be 1-65535")
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}
