package resources

import (
	"net/netip"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestBGPPeerValidate(t *testing.T) {
	secret := &BGPPassword{SecretKeyRef: &SecretKeySelector{Name: "bgp-secrets", Key: "rr-password"}}
	cases := []struct {
		name      string
		spec      BGPPeerSpec
		wantField string
	}{
		{name: "global peer", spec: BGPPeerSpec{PeerIP: "192.168.83.1", ASNumber: 64512}},
		{name: "v4 with port", spec: BGPPeerSpec{PeerIP: "192.168.83.1:1790", ASNumber: 64512}},
		{name: "v6", spec: BGPPeerSpec{PeerIP: "fd00::1", ASNumber: 64512}},
		{name: "v6 with port", spec: BGPPeerSpec{PeerIP: "[fd00::1]:179", ASNumber: 64512}},
		{name: "node specific", spec: BGPPeerSpec{Node: "worker-1", PeerIP: "10.0.0.1", ASNumber: 65001}},
		{name: "route reflector mesh", spec: BGPPeerSpec{NodeSelector: "!has(i-am-a-route-reflector)", PeerSelector: "has(i-am-a-route-reflector)"}},
		{name: "everything", spec: BGPPeerSpec{NodeSelector: "all()", PeerIP: "10.0.0.1", ASNumber: 65001,
			NextHopMode: ptr("Self"), Password: secret, SourceAddress: "None", NumAllowedLocalASNumbers: ptr(int32(1)),
			TTLSecurity: ptr(uint8(1)), ReachableBy: "10.0.0.254", Filters: []string{"export-only"},
			LocalASNumber: ptr(ASNumber(65002)), ReversePeering: ptr("Manual")}},
		{name: "local workloads", spec: BGPPeerSpec{LocalWorkloadSelector: "app == 'bird'", ASNumber: 65100}},
		{name: "keep next hop alone", spec: BGPPeerSpec{PeerIP: "10.0.0.1", ASNumber: 1, KeepOriginalNextHop: true}},

		{name: "bad peer ip", spec: BGPPeerSpec{PeerIP: "10.0.0", ASNumber: 1}, wantField: "spec.peerIP"},
		{name: "v6 without brackets and port", spec: BGPPeerSpec{PeerIP: "fd00::1:179x", ASNumber: 1}, wantField: "spec.peerIP"},
		{name: "v4 in brackets", spec: BGPPeerSpec{PeerIP: "[10.0.0.1]:179", ASNumber: 1}, wantField: "spec.peerIP"},
		{name: "port zero", spec: BGPPeerSpec{PeerIP: "10.0.0.1:0", ASNumber: 1}, wantField: "spec.peerIP"},
		{name: "port too big", spec: BGPPeerSpec{PeerIP: "10.0.0.1:65536", ASNumber: 1}, wantField: "spec.peerIP"},
		{name: "bad node name", spec: BGPPeerSpec{Node: "Worker_1"}, wantField: "spec.node"},
		{name: "node and selector", spec: BGPPeerSpec{Node: "a", NodeSelector: "all()"}, wantField: "spec.nodeSelector"},
		{name: "peer ip and selector", spec: BGPPeerSpec{PeerIP: "10.0.0.1", PeerSelector: "has(rr)"}, wantField: "spec.peerSelector"},
		{name: "AS with peer selector", spec: BGPPeerSpec{PeerSelector: "has(rr)", ASNumber: 1}, wantField: "spec.asNumber"},
		{name: "bad node selector", spec: BGPPeerSpec{NodeSelector: "has("}, wantField: "spec.nodeSelector"},
		{name: "bad peer selector", spec: BGPPeerSpec{PeerSelector: "x = 'y'"}, wantField: "spec.peerSelector"},
		{name: "workloads with peer ip", spec: BGPPeerSpec{LocalWorkloadSelector: "has(a)", PeerIP: "10.0.0.1", ASNumber: 1}, wantField: "spec.peerIP"},
		{name: "workloads with peer selector", spec: BGPPeerSpec{LocalWorkloadSelector: "has(a)", PeerSelector: "has(b)"}, wantField: "spec.peerSelector"},
		{name: "workloads without AS", spec: BGPPeerSpec{LocalWorkloadSelector: "has(a)"}, wantField: "spec.asNumber"},
		{name: "reachable without peer", spec: BGPPeerSpec{ReachableBy: "10.0.0.1"}, wantField: "spec.reachableBy"},
		{name: "reachable bad ip", spec: BGPPeerSpec{PeerIP: "10.0.0.1", ASNumber: 1, ReachableBy: "gw"}, wantField: "spec.reachableBy"},
		{name: "reachable other family", spec: BGPPeerSpec{PeerIP: "10.0.0.1", ASNumber: 1, ReachableBy: "fd00::1"}, wantField: "spec.reachableBy"},
		{name: "keep next hop and mode", spec: BGPPeerSpec{PeerIP: "10.0.0.1", ASNumber: 1, KeepOriginalNextHop: true, NextHopMode: ptr("Keep")}, wantField: "spec.nextHopMode"},
		{name: "bad next hop mode", spec: BGPPeerSpec{NextHopMode: ptr("self")}, wantField: "spec.nextHopMode"},
		{name: "bad source address", spec: BGPPeerSpec{SourceAddress: "NodeIP"}, wantField: "spec.sourceAddress"},
		{name: "bad reverse peering", spec: BGPPeerSpec{ReversePeering: ptr("Off")}, wantField: "spec.reversePeering"},
		{name: "password without name", spec: BGPPeerSpec{Password: &BGPPassword{SecretKeyRef: &SecretKeySelector{Key: "k"}}}, wantField: "spec.password.secretKeyRef.name"},
		{name: "password bad key", spec: BGPPeerSpec{Password: &BGPPassword{SecretKeyRef: &SecretKeySelector{Name: "s", Key: "a/b"}}}, wantField: "spec.password.secretKeyRef.key"},
		{name: "negative allowed AS", spec: BGPPeerSpec{NumAllowedLocalASNumbers: ptr(int32(-1))}, wantField: "spec.numAllowedLocalASNumbers"},
		{name: "bad filter name", spec: BGPPeerSpec{Filters: []string{"Bad Filter"}}, wantField: "spec.filters[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "peer"}, Spec: tc.spec}
			expectDefaultIdempotent(t, p)
			expectValidation(t, p, tc.wantField)
		})
	}
}

func TestParsePeerIP(t *testing.T) {
	cases := []struct {
		in      string
		want    netip.AddrPort
		wantErr bool
	}{
		{in: "10.0.0.1", want: netip.MustParseAddrPort("10.0.0.1:0")},
		{in: "10.0.0.1:179", want: netip.MustParseAddrPort("10.0.0.1:179")},
		{in: "fd00::1", want: netip.AddrPortFrom(netip.MustParseAddr("fd00::1"), 0)},
		{in: "[fd00::1]:1790", want: netip.MustParseAddrPort("[fd00::1]:1790")},
		{in: "", wantErr: true},
		{in: "fe80::1%eth0", wantErr: true},
		{in: "[fd00::1]", wantErr: true},
		{in: "10.0.0.1:x", wantErr: true},
		{in: "host:179", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParsePeerIP(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBGPPeerStrictDecode(t *testing.T) {
	manifests := map[string]string{
		"seed rr clients": `
kind: BGPPeer
apiVersion: projectcalico.org/v3
metadata:
  name: peer-to-rrs
spec:
  nodeSelector: "!has(i-am-a-route-reflector)"
  peerSelector: has(i-am-a-route-reflector)
`,
		"seed border": `
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: rr-border
spec:
  nodeSelector: has(i-am-a-route-reflector)
  peerIP: 192.168.83.1
  asNumber: 64512
`,
		"full": `
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: tor-a
spec:
  node: rack1-host1
  peerIP: "[2001:db8::1]:1790"
  asNumber: "65000.1"
  nextHopMode: Keep
  password:
    secretKeyRef: {name: bgp-secrets, key: tor-a}
  sourceAddress: None
  maxRestartTime: 2m0s
  keepaliveTime: 10s
  numAllowedLocalASNumbers: 2
  ttlSecurity: 1
  reachableBy: "2001:db8::fe"
  filters: [only-pods]
  localASNumber: 64999
  reversePeering: Manual
`,
	}
	for name, m := range manifests {
		t.Run(name, func(t *testing.T) { expectStrictRoundTrip[BGPPeer](t, m) })
	}
}
