package resources

import (
	"encoding/json"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNodeValidate(t *testing.T) {
	key := "dGhpcyBpcyBhIDMyIGJ5dGUgd2lyZWd1YXJkIGtleSE=" // 32 bytes
	cases := []struct {
		name      string
		mutate    func(*Node)
		wantField string
	}{
		{name: "empty"},
		{name: "full", mutate: func(n *Node) {
			n.Spec = NodeSpec{
				BGP: &NodeBGPSpec{ASNumber: ptr(ASNumber(64512)), IPv4Address: "10.0.0.5/24", IPv6Address: "fd00::5/64",
					IPv4IPIPTunnelAddr: "10.244.1.0", RouteReflectorClusterID: "224.0.0.1"},
				IPv4VXLANTunnelAddr: "10.244.1.1", VXLANTunnelMACAddr: "66:1e:2b:3c:4d:5e",
				IPv6VXLANTunnelAddr: "fd00:244::1", VXLANTunnelMACAddrV6: "66:1e:2b:3c:4d:5f",
				OrchRefs:   []OrchRef{{NodeName: "worker-1", Orchestrator: "k8s"}},
				Wireguard:  &NodeWireguardSpec{InterfaceIPv4Address: "10.244.1.2", InterfaceIPv6Address: "fd00:244::2"},
				Addresses:  []NodeAddress{{Address: "10.0.0.5/24", Type: NodeAddressCalicoNodeIP}, {Address: "10.0.0.5", Type: NodeAddressInternalIP}},
				Interfaces: []NodeInterface{{Name: "eth0", Addresses: []string{"10.0.0.5"}}},
			}
			n.Status = NodeStatus{WireguardPublicKey: key, PodCIDRs: []string{"10.244.1.0/24"}}
		}},
		{name: "bgp address without mask", mutate: func(n *Node) { n.Spec.BGP = &NodeBGPSpec{IPv4Address: "10.0.0.5"} }},

		{name: "bad ipv4Address", mutate: func(n *Node) { n.Spec.BGP = &NodeBGPSpec{IPv4Address: "10.0.0.300/24"} }, wantField: "spec.bgp.ipv4Address"},
		{name: "v6 in ipv4Address", mutate: func(n *Node) { n.Spec.BGP = &NodeBGPSpec{IPv4Address: "fd00::5/64"} }, wantField: "spec.bgp.ipv4Address"},
		{name: "v4 in ipv6Address", mutate: func(n *Node) { n.Spec.BGP = &NodeBGPSpec{IPv6Address: "10.0.0.5/24"} }, wantField: "spec.bgp.ipv6Address"},
		{name: "cluster id not v4", mutate: func(n *Node) { n.Spec.BGP = &NodeBGPSpec{RouteReflectorClusterID: "1"} }, wantField: "spec.bgp.routeReflectorClusterID"},
		{name: "cluster id v6", mutate: func(n *Node) { n.Spec.BGP = &NodeBGPSpec{RouteReflectorClusterID: "::1"} }, wantField: "spec.bgp.routeReflectorClusterID"},
		{name: "ipip tunnel cidr", mutate: func(n *Node) { n.Spec.BGP = &NodeBGPSpec{IPv4IPIPTunnelAddr: "10.244.1.0/32"} }, wantField: "spec.bgp.ipv4IPIPTunnelAddr"},
		{name: "vxlan v4 tunnel is v6", mutate: func(n *Node) { n.Spec.IPv4VXLANTunnelAddr = "fd00::1" }, wantField: "spec.ipv4VXLANTunnelAddr"},
		{name: "vxlan v6 tunnel is v4", mutate: func(n *Node) { n.Spec.IPv6VXLANTunnelAddr = "10.0.0.1" }, wantField: "spec.ipv6VXLANTunnelAddr"},
		{name: "bad mac", mutate: func(n *Node) { n.Spec.VXLANTunnelMACAddr = "66:1e:2b" }, wantField: "spec.vxlanTunnelMACAddr"},
		{name: "bad wireguard addr", mutate: func(n *Node) { n.Spec.Wireguard = &NodeWireguardSpec{InterfaceIPv6Address: "10.0.0.1"} }, wantField: "spec.wireguard.interfaceIPv6Address"},
		{name: "orchref without orchestrator", mutate: func(n *Node) { n.Spec.OrchRefs = []OrchRef{{NodeName: "a"}} }, wantField: "spec.orchRefs[0].orchestrator"},
		{name: "bad address", mutate: func(n *Node) { n.Spec.Addresses = []NodeAddress{{Address: "node-1"}} }, wantField: "spec.addresses[0].address"},
		{name: "bad interface name", mutate: func(n *Node) { n.Spec.Interfaces = []NodeInterface{{Name: "an-interface-name-too-long"}} }, wantField: "spec.interfaces[0].name"},
		{name: "bad wireguard key", mutate: func(n *Node) { n.Status.WireguardPublicKeyV6 = "c2hvcnQ=" }, wantField: "status.wireguardPublicKeyV6"},
		{name: "bad pod cidr", mutate: func(n *Node) { n.Status.PodCIDRs = []string{"10.244.1.0"} }, wantField: "status.podCIDRs[0]"},
		{name: "bad name", mutate: func(n *Node) { n.Name = "Node_1" }, wantField: "metadata.name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := &Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-1"}}
			if tc.mutate != nil {
				tc.mutate(n)
			}
			expectDefaultIdempotent(t, n)
			expectValidation(t, n, tc.wantField)
		})
	}
}

func TestNodeEncodesEmptyStatus(t *testing.T) {
	n := &Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-1"}}
	SetTypeMeta(n)
	n.Default()
	out, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"status":{}`) {
		t.Fatalf("want status {} as upstream writes it, got %s", out)
	}
}

func TestNodeStrictDecode(t *testing.T) {
	expectStrictRoundTrip[Node](t, `
apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: k8s-test-master-1
  labels:
    i-am-a-route-reflector: "true"
spec:
  addresses:
  - address: 192.168.83.10/24
    type: CalicoNodeIP
  - address: 192.168.83.10
    type: InternalIP
  bgp:
    asNumber: "1.10"
    ipv4Address: 192.168.83.10/24
    ipv4IPIPTunnelAddr: 10.244.0.1
    routeReflectorClusterID: 224.0.0.1
  ipv4VXLANTunnelAddr: 10.244.0.2
  vxlanTunnelMACAddr: 66:4c:1e:2b:3c:4d
  orchRefs:
  - nodeName: k8s-test-master-1
    orchestrator: k8s
  wireguard:
    interfaceIPv4Address: 10.244.0.3
  interfaces:
  - name: eth0
    addresses: [192.168.83.10]
status:
  podCIDRs: [10.244.0.0/24]
`)
}
