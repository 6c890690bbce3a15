package resources

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestBGPConfigurationValidate(t *testing.T) {
	cases := []struct {
		name      string
		objName   string
		spec      BGPConfigurationSpec
		wantField string
	}{
		{name: "empty default", objName: "default"},
		{name: "global settings", objName: "default", spec: BGPConfigurationSpec{
			LogSeverityScreen: "info", NodeToNodeMeshEnabled: ptr(false), ASNumber: ptr(ASNumber(63400)),
			ServiceClusterIPs:      []ServiceIPBlock{{CIDR: "10.96.0.0/12"}},
			ServiceExternalIPs:     []ServiceIPBlock{{CIDR: "192.0.2.0/24"}},
			ServiceLoadBalancerIPs: []ServiceIPBlock{{CIDR: "fd00:1::/112"}},
			ListenPort:             1790,
			Communities:            []Community{{Name: "gold", Value: "64512:100"}, {Name: "large", Value: "4200000000:1:2"}},
			PrefixAdvertisements:   []PrefixAdvertisement{{CIDR: "10.0.0.0/8", Communities: []string{"gold", "65000:1", "1:2:3"}}},
			BindMode:               ptr("NodeIP"), IgnoredInterfaces: []string{"docker*", "kube-ipvs0"},
			LocalWorkloadPeeringIPV4: "169.254.0.179", LocalWorkloadPeeringIPV6: "fe80::179",
			ProgramClusterRoutes: ptr("Enabled"),
		}},
		{name: "node config may set port and lb IPs", objName: "node.worker-1", spec: BGPConfigurationSpec{
			ListenPort: 179, ServiceLoadBalancerIPs: []ServiceIPBlock{{CIDR: "198.51.100.0/24"}}}},
		{name: "mesh password", objName: "default", spec: BGPConfigurationSpec{
			NodeMeshPassword:       &BGPPassword{SecretKeyRef: &SecretKeySelector{Name: "bgp-secrets", Key: "mesh"}},
			NodeMeshMaxRestartTime: &metav1.Duration{Duration: 2 * time.Minute}}},

		{name: "other name", objName: "global", wantField: "metadata.name"},
		{name: "node prefix only", objName: "node.", wantField: "metadata.name"},
		{name: "bad log level", objName: "default", spec: BGPConfigurationSpec{LogSeverityScreen: "Verbose"}, wantField: "spec.logSeverityScreen"},
		{name: "node sets mesh", objName: "node.a", spec: BGPConfigurationSpec{NodeToNodeMeshEnabled: ptr(true)}, wantField: "spec.nodeToNodeMeshEnabled"},
		{name: "node sets AS", objName: "node.a", spec: BGPConfigurationSpec{ASNumber: ptr(ASNumber(1))}, wantField: "spec.asNumber"},
		{name: "node sets cluster IPs", objName: "node.a", spec: BGPConfigurationSpec{ServiceClusterIPs: []ServiceIPBlock{{CIDR: "10.96.0.0/12"}}}, wantField: "spec.serviceClusterIPs"},
		{name: "node sets external IPs", objName: "node.a", spec: BGPConfigurationSpec{ServiceExternalIPs: []ServiceIPBlock{{CIDR: "10.0.0.0/24"}}}, wantField: "spec.serviceExternalIPs"},
		{name: "bad cluster IP cidr", objName: "default", spec: BGPConfigurationSpec{ServiceClusterIPs: []ServiceIPBlock{{CIDR: "10.96.0.0"}}}, wantField: "spec.serviceClusterIPs[0].cidr"},
		{name: "bad lb cidr", objName: "default", spec: BGPConfigurationSpec{ServiceLoadBalancerIPs: []ServiceIPBlock{{}, {CIDR: "x"}}}, wantField: "spec.serviceLoadBalancerIPs[1].cidr"},
		{name: "bad community value", objName: "default", spec: BGPConfigurationSpec{Communities: []Community{{Name: "c", Value: "65536:1"}}}, wantField: "spec.communities[0].value"},
		{name: "community not numeric", objName: "default", spec: BGPConfigurationSpec{Communities: []Community{{Name: "c", Value: "a:b"}}}, wantField: "spec.communities[0].value"},
		{name: "large community too big", objName: "default", spec: BGPConfigurationSpec{Communities: []Community{{Name: "c", Value: "4294967296:1:1"}}}, wantField: "spec.communities[0].value"},
		{name: "community without name", objName: "default", spec: BGPConfigurationSpec{Communities: []Community{{Value: "1:1"}}}, wantField: "spec.communities[0].name"},
		{name: "duplicate community", objName: "default", spec: BGPConfigurationSpec{Communities: []Community{{Name: "c", Value: "1:1"}, {Name: "c", Value: "1:2"}}}, wantField: "spec.communities[1].name"},
		{name: "unknown community name", objName: "default", spec: BGPConfigurationSpec{PrefixAdvertisements: []PrefixAdvertisement{{CIDR: "10.0.0.0/8", Communities: []string{"silver"}}}}, wantField: "spec.prefixAdvertisements[0].communities[0]"},
		{name: "prefix adv bad cidr", objName: "default", spec: BGPConfigurationSpec{PrefixAdvertisements: []PrefixAdvertisement{{CIDR: "10.0.0.0/40"}}}, wantField: "spec.prefixAdvertisements[0].cidr"},
		{name: "bad bind mode", objName: "default", spec: BGPConfigurationSpec{BindMode: ptr("All")}, wantField: "spec.bindMode"},
		{name: "bad aggregation", objName: "default", spec: BGPConfigurationSpec{ServiceLoadBalancerAggregation: ptr("On")}, wantField: "spec.serviceLoadBalancerAggregation"},
		{name: "bad program routes", objName: "default", spec: BGPConfigurationSpec{ProgramClusterRoutes: ptr("Yes")}, wantField: "spec.programClusterRoutes"},
		{name: "v6 in v4 peering", objName: "default", spec: BGPConfigurationSpec{LocalWorkloadPeeringIPV4: "fe80::1"}, wantField: "spec.localWorkloadPeeringIPV4"},
		{name: "bad ignored iface", objName: "default", spec: BGPConfigurationSpec{IgnoredInterfaces: []string{"this-name-is-far-too-long"}}, wantField: "spec.ignoredInterfaces[0]"},
		{name: "password with mesh off", objName: "default", spec: BGPConfigurationSpec{NodeToNodeMeshEnabled: ptr(false),
			NodeMeshPassword: &BGPPassword{SecretKeyRef: &SecretKeySelector{Name: "s", Key: "k"}}}, wantField: "spec.nodeMeshPassword"},
		{name: "restart time with mesh off", objName: "default", spec: BGPConfigurationSpec{NodeToNodeMeshEnabled: ptr(false),
			NodeMeshMaxRestartTime: &metav1.Duration{Duration: time.Minute}}, wantField: "spec.nodeMeshMaxRestartTime"},
		{name: "password without key", objName: "default", spec: BGPConfigurationSpec{
			NodeMeshPassword: &BGPPassword{SecretKeyRef: &SecretKeySelector{Name: "s"}}}, wantField: "spec.nodeMeshPassword.secretKeyRef.key"},
		{name: "password without name", objName: "default", spec: BGPConfigurationSpec{
			NodeMeshPassword: &BGPPassword{SecretKeyRef: &SecretKeySelector{Key: "k"}}}, wantField: "spec.nodeMeshPassword.secretKeyRef.name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: tc.objName}, Spec: tc.spec}
			c.Default()
			expectValidation(t, c, tc.wantField)
		})
	}
}

func TestBGPConfigurationDefault(t *testing.T) {
	c := &BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	expectDefaultIdempotent(t, c)
	if a := c.Spec.ServiceLoadBalancerAggregation; a == nil || *a != "Enabled" {
		t.Fatalf("serviceLoadBalancerAggregation = %v, want Enabled", a)
	}
	c.Spec.ServiceLoadBalancerAggregation = ptr("Disabled")
	c.Default()
	if *c.Spec.ServiceLoadBalancerAggregation != "Disabled" {
		t.Fatal("Default overwrote a user value")
	}
}

func TestBGPConfigurationStrictDecode(t *testing.T) {
	manifests := map[string]string{
		"seed": `
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata:
  name: default
spec:
  logSeverityScreen: Info
  nodeToNodeMeshEnabled: false
  asNumber: 63400
`,
		"full": `
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata:
  name: default
spec:
  logSeverityScreen: Debug
  nodeToNodeMeshEnabled: true
  asNumber: "1.10"
  listenPort: 178
  bindMode: NodeIP
  ignoredInterfaces: ["docker*"]
  localWorkloadPeeringIPV4: 169.254.0.179
  localWorkloadPeeringIPV6: "fe80::179"
  programClusterRoutes: Disabled
  serviceLoadBalancerAggregation: Disabled
  serviceClusterIPs: [{cidr: 10.96.0.0/12}]
  serviceExternalIPs: [{cidr: 104.244.42.129/32}, {cidr: 172.217.3.0/24}]
  serviceLoadBalancerIPs: [{cidr: 192.0.2.0/24}]
  communities:
  - name: bgp-large-community
    value: 63400:300:100
  prefixAdvertisements:
  - cidr: 172.218.4.0/26
    communities: [bgp-large-community, "63400:120"]
  nodeMeshPassword:
    secretKeyRef: {name: bgp-secrets, key: mesh-password}
  nodeMeshMaxRestartTime: 120s
`,
	}
	for name, m := range manifests {
		t.Run(name, func(t *testing.T) {
			c := expectStrictRoundTrip[BGPConfiguration](t, m)
			if c.Spec.ASNumber == nil || (*c.Spec.ASNumber != 63400 && *c.Spec.ASNumber != 1<<16+10) {
				t.Fatalf("asNumber = %v", c.Spec.ASNumber)
			}
		})
	}
}
