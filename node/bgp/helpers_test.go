package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

// Builders for the planner's input.

type nodeOpt func(*resources.Node)

func mkNode(name, v4 string, opts ...nodeOpt) *resources.Node {
	n := &resources.Node{Spec: resources.NodeSpec{BGP: &resources.NodeBGPSpec{IPv4Address: v4}}}
	n.Name = name
	for _, o := range opts {
		o(n)
	}
	return n
}

func v6(addr string) nodeOpt { return func(n *resources.Node) { n.Spec.BGP.IPv6Address = addr } }

func asn(a uint32) nodeOpt {
	return func(n *resources.Node) { x := resources.ASNumber(a); n.Spec.BGP.ASNumber = &x }
}

func rr(id string) nodeOpt {
	return func(n *resources.Node) { n.Spec.BGP.RouteReflectorClusterID = id }
}

func labels(kv ...string) nodeOpt {
	return func(n *resources.Node) {
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

func nodeMap(ns ...*resources.Node) map[string]*resources.Node {
	m := map[string]*resources.Node{}
	for _, n := range ns {
		m[n.Name] = n
	}
	return m
}

func bgpCfg(name string, spec resources.BGPConfigurationSpec) *resources.BGPConfiguration {
	c := &resources.BGPConfiguration{Spec: spec}
	c.Name = name
	return c
}

func cfgMap(cs ...*resources.BGPConfiguration) map[string]*resources.BGPConfiguration {
	m := map[string]*resources.BGPConfiguration{}
	for _, c := range cs {
		m[c.Name] = c
	}
	return m
}

func meshOff() *resources.BGPConfiguration {
	return bgpCfg("default", resources.BGPConfigurationSpec{NodeToNodeMeshEnabled: new(false)})
}

func bgpPeer(name string, spec resources.BGPPeerSpec) *resources.BGPPeer {
	p := &resources.BGPPeer{Spec: spec}
	p.Name = name
	return p
}

func pool(name, cidr string, mut ...func(*resources.IPPoolSpec)) *resources.IPPool {
	p := &resources.IPPool{Spec: resources.IPPoolSpec{CIDR: cidr}}
	p.Name = name
	for _, m := range mut {
		m(&p.Spec)
	}
	return p
}

func rawBlock(cidr, node string) *ipam.Block {
	return &ipam.Block{CIDR: netip.MustParsePrefix(cidr), Affinity: "host:" + node}
}

func block(cidr, node string) *state.Block { return state.BlockOf(rawBlock(cidr, node)) }

func rawWEP(node, name string, lbls map[string]string, ips ...string) *resources.WorkloadEndpoint {
	w := &resources.WorkloadEndpoint{Spec: resources.WorkloadEndpointSpec{Node: node, IPNetworks: ips}}
	w.Name, w.Namespace, w.Labels = name, "default", lbls
	return w
}

func wep(node, name string, lbls map[string]string, ips ...string) *state.Endpoint {
	return state.EndpointOf(rawWEP(node, name, lbls, ips...))
}

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// summary is a peer as one comparable line: name, address:port, AS, and
// the flags that matter for topology (passive, reflector client).
func summary(p Peer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s:%d as%d", p.Name, p.Address, p.Port, p.PeerASN)
	if p.Passive {
		b.WriteString(" passive")
	}
	if p.RouteReflectorClient {
		b.WriteString(" rr-client/" + p.ClusterID)
	}
	return b.String()
}

func summaries(ps []Peer) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, summary(p))
	}
	return out
}

// wantLines fails the test with both lists when got and want differ.
func wantLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// hasWarning reports whether some warning contains every fragment.
func hasWarning(ws []string, fragments ...string) bool {
	return slices.ContainsFunc(ws, func(w string) bool {
		for _, f := range fragments {
			if !strings.Contains(w, f) {
				return false
			}
		}
		return true
	})
}

// peerNamed returns the named peer, failing the test when it is absent.
func peerNamed(t *testing.T, d Desired, name string) Peer {
	t.Helper()
	for _, p := range d.Peers {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no peer %s in %v", name, summaries(d.Peers))
	return Peer{}
}
