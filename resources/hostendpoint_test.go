package resources

import (
	"strings"
	"testing"
)

// A v3 rendering of the hostEndpoint example in the shared seeds.
const hepManifest = `
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata:
  name: myhost-eth0
  labels:
    type: production
spec:
  node: myhost
  interfaceName: eth0
  expectedIPs: [192.168.0.1, "fd00::1"]
  profiles: [profile1, profile2]
  ports:
  - name: ssh
    protocol: TCP
    port: 22
  - name: snmp
    protocol: 17
    port: 161
`

func TestHostEndpointManifest(t *testing.T) {
	var h HostEndpoint
	decodeStrictYAML(t, hepManifest, &h)
	h.Default()
	if err := h.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	out := string(assertJSONRoundTrip(t, &h))
	if !strings.Contains(out, `"ports":[{"name":"ssh","protocol":"TCP","port":22},{"name":"snmp","protocol":17,"port":161}]`) {
		t.Errorf("JSON: %s", out)
	}
}

func TestHostEndpointValidate(t *testing.T) {
	tcp := ProtocolFromString("TCP")
	tests := []struct {
		name string
		spec HostEndpointSpec
		want string
	}{
		{"interface", HostEndpointSpec{Node: "n1", InterfaceName: "eth0"}, ""},
		{"all interfaces", HostEndpointSpec{Node: "n1", InterfaceName: "*"}, ""},
		{"expected IPs only", HostEndpointSpec{Node: "n1", ExpectedIPs: []string{"10.0.0.1"}}, ""},
		{"no node", HostEndpointSpec{InterfaceName: "eth0"}, "spec.node = '' (no node has been specified)"},
		{"bad node", HostEndpointSpec{Node: "N_1", InterfaceName: "eth0"}, "spec.node = 'N_1'"},
		{"neither interface nor IPs", HostEndpointSpec{Node: "n1"}, "spec.interfaceName = '' (no interface or expected IPs have been specified)"},
		{"bad interface", HostEndpointSpec{Node: "n1", InterfaceName: "eth 0"}, "spec.interfaceName = 'eth 0'"},
		{"bad expected IP", HostEndpointSpec{Node: "n1", ExpectedIPs: []string{"10.0.0.1", "10.0.0.0/24"}}, "spec.expectedIPs[1] = '10.0.0.0/24'"},
		{"bad profile", HostEndpointSpec{Node: "n1", InterfaceName: "eth0", Profiles: []string{"_x"}}, "spec.profiles[0]"},
		{"port", HostEndpointSpec{Node: "n1", InterfaceName: "eth0", Ports: []EndpointPort{{Name: "web", Protocol: tcp, Port: 80}}}, ""},
		{"port needs name", HostEndpointSpec{Node: "n1", InterfaceName: "eth0", Ports: []EndpointPort{{Protocol: tcp, Port: 80}}}, "spec.ports[0].name = ''"},
		{"port protocol", HostEndpointSpec{Node: "n1", InterfaceName: "eth0", Ports: []EndpointPort{{Name: "x", Protocol: ProtocolFromString("ICMPv6"), Port: 80}}}, "spec.ports[0].protocol = 'ICMPv6'"},
		{"port number", HostEndpointSpec{Node: "n1", InterfaceName: "eth0", Ports: []EndpointPort{{Name: "x", Protocol: tcp}}}, "spec.ports[0].port = '0'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := HostEndpoint{ObjectMeta: metaNamed("hep", ""), Spec: tt.spec}
			assertValidation(t, h.Validate(), tt.want)
		})
	}
}
