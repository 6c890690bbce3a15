package resources

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

const wepManifest = `
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata:
  name: worker--1-k8s-web--7f9c-eth0
  namespace: prod
  labels:
    app: web
spec:
  orchestrator: k8s
  node: worker-1
  containerID: 4d1e9f0a7b2c
  pod: web-7f9c
  endpoint: eth0
  serviceAccountName: default
  ipNetworks: [10.244.1.5/32, "fd00:10:244::5/128"]
  ipNATs:
  - internalIP: 10.244.1.5
    externalIP: 172.16.0.5
  ipv4Gateway: 169.254.1.1
  ipv6Gateway: "fe80::ecee:eeff:feee:eeee"
  profiles: [kns.prod, ksa.prod.default]
  interfaceName: cali1234567890a
  mac: "0a:58:0a:f4:01:05"
  ports:
  - name: http
    protocol: TCP
    port: 8080
  - name: ""
    protocol: 17
    port: 53
    hostPort: 5353
    hostIP: 192.168.1.10
  allowSpoofedSourcePrefixes: [10.99.0.0/16]
  qosControls:
    ingressBandwidth: 1000000
    egressBurst: 4294967296
    dscp: AF11
`

func TestWorkloadEndpointManifest(t *testing.T) {
	var w WorkloadEndpoint
	decodeStrictYAML(t, wepManifest, &w)
	w.Default()
	if err := w.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := map[string]string{"app": "web", LabelNamespace: "prod", LabelOrchestrator: "k8s"}
	if !reflect.DeepEqual(w.Labels, want) {
		t.Errorf("labels = %v, want %v", w.Labels, want)
	}
	out := string(assertJSONRoundTrip(t, &w))
	for _, s := range []string{
		`{"name":"http","protocol":"TCP","port":8080,"hostPort":0,"hostIP":""}`,
		`{"name":"","protocol":17,"port":53,"hostPort":5353,"hostIP":"192.168.1.10"}`,
		`"dscp":"AF11"`, `"egressBurst":4294967296`,
	} {
		if !strings.Contains(out, s) {
			t.Errorf("JSON lacks %s:\n%s", s, out)
		}
	}
}

func TestWorkloadEndpointDefault(t *testing.T) {
	w := WorkloadEndpoint{
		ObjectMeta: metaWithLabels("", "default", map[string]string{LabelOrchestrator: "stale"}),
		Spec:       WorkloadEndpointSpec{Orchestrator: "cni", Node: "n1", ContainerID: "abc123", Endpoint: "eth0", InterfaceName: "caliabc123"},
	}
	w.Default()
	if w.Name != "n1-cni-abc123-eth0" {
		t.Errorf("name = %q", w.Name)
	}
	if w.Labels[LabelOrchestrator] != "cni" || w.Labels[LabelNamespace] != "default" || len(w.Labels) != 2 {
		t.Errorf("labels = %v", w.Labels)
	}
	once, _ := json.Marshal(&w)
	w.Default()
	twice, _ := json.Marshal(&w)
	if string(once) != string(twice) {
		t.Errorf("Default is not idempotent:\n%s\n%s", once, twice)
	}
	if err := w.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// validWEP returns an endpoint that passes validation, for tests to break.
func validWEP() WorkloadEndpoint {
	return WorkloadEndpoint{
		ObjectMeta: metaNamed("n1-k8s-pod-eth0", "default"),
		Spec: WorkloadEndpointSpec{
			Orchestrator: "k8s", Node: "n1", Pod: "pod", Endpoint: "eth0",
			InterfaceName: "cali0123456789a", IPNetworks: []string{"10.0.0.1/32", "fd00::1"},
		},
	}
}

func TestWorkloadEndpointValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(w *WorkloadEndpoint)
		want   string
	}{
		{"valid", func(*WorkloadEndpoint) {}, ""},
		{"name mismatch", func(w *WorkloadEndpoint) { w.Name = "n1-k8s-other-eth0" },
			"metadata.name = 'n1-k8s-other-eth0' (the WorkloadEndpoint name does not match the primary identifiers assigned in the Spec: expected name n1-k8s-pod-eth0)"},
		{"no node", func(w *WorkloadEndpoint) { w.Spec.Node = "" }, "spec.node = '' (field should be assigned)"},
		{"no pod", func(w *WorkloadEndpoint) { w.Spec.Pod = "" }, "spec.pod = '' (field should be assigned)"},
		{"bad orchestrator name", func(w *WorkloadEndpoint) {
			w.Spec.Orchestrator, w.Spec.Workload, w.Name = "Open_Stack", "vm", "n1-Open_Stack-vm-eth0"
		}, "spec.orchestrator = 'Open_Stack'"},
		{"bad container ID", func(w *WorkloadEndpoint) { w.Spec.ContainerID = "abc_def" }, "spec.containerID"},
		{"no interface", func(w *WorkloadEndpoint) { w.Spec.InterfaceName = "" }, "spec.interfaceName = '' (invalid interface name)"},
		{"long interface", func(w *WorkloadEndpoint) { w.Spec.InterfaceName = "cali0123456789ab" }, "spec.interfaceName"},
		{"network not a CIDR", func(w *WorkloadEndpoint) { w.Spec.IPNetworks = []string{"10.0.0.300/32"} }, "spec.ipNetworks[0] = '10.0.0.300/32' (invalid CIDR)"},
		{"network too big", func(w *WorkloadEndpoint) { w.Spec.IPNetworks = []string{"10.0.0.0/24"} }, "spec.ipNetworks[0] = '10.0.0.0/24' (IP network contains multiple addresses)"},
		{"nat", func(w *WorkloadEndpoint) { w.Spec.IPNATs = []IPNAT{{InternalIP: "10.0.0.1", ExternalIP: "172.16.0.1"}} }, ""},
		{"nat outside networks", func(w *WorkloadEndpoint) { w.Spec.IPNATs = []IPNAT{{InternalIP: "10.0.0.2", ExternalIP: "172.16.0.1"}} }, "spec.ipNATs[0].internalIP = '10.0.0.2' (NAT is not in the endpoint networks)"},
		{"nat families", func(w *WorkloadEndpoint) { w.Spec.IPNATs = []IPNAT{{InternalIP: "10.0.0.1", ExternalIP: "fd00::9"}} }, "mismatched IP versions"},
		{"nat bad IP", func(w *WorkloadEndpoint) { w.Spec.IPNATs = []IPNAT{{InternalIP: "10.0.0.1", ExternalIP: "x"}} }, "spec.ipNATs[0].externalIP = 'x'"},
		{"v4 gateway family", func(w *WorkloadEndpoint) { w.Spec.IPv4Gateway = "fe80::1" }, "spec.ipv4Gateway"},
		{"v6 gateway family", func(w *WorkloadEndpoint) { w.Spec.IPv6Gateway = "169.254.1.1" }, "spec.ipv6Gateway"},
		{"bad mac", func(w *WorkloadEndpoint) { w.Spec.MAC = "ee:ee" }, "spec.mac = 'ee:ee'"},
		{"bad profile", func(w *WorkloadEndpoint) { w.Spec.Profiles = []string{"ok", "Not OK"} }, "spec.profiles[1]"},
		{"port ok", func(w *WorkloadEndpoint) {
			w.Spec.Ports = []WorkloadEndpointPort{{Name: "http", Protocol: ProtocolFromString("TCP"), Port: 80}}
		}, ""},
		{"port without name or hostPort", func(w *WorkloadEndpoint) {
			w.Spec.Ports = []WorkloadEndpointPort{{Protocol: ProtocolFromString("TCP"), Port: 80}}
		}, "spec.ports[0].name = '' (port name must not be empty if no hostPort is specified)"},
		{"port bad protocol", func(w *WorkloadEndpoint) {
			w.Spec.Ports = []WorkloadEndpointPort{{Name: "p", Protocol: ProtocolFromString("ICMP"), Port: 80}}
		}, "spec.ports[0].protocol = 'ICMP'"},
		{"port zero", func(w *WorkloadEndpoint) {
			w.Spec.Ports = []WorkloadEndpointPort{{Name: "p", Protocol: ProtocolFromString("UDP")}}
		}, "spec.ports[0].port"},
		{"port bad name", func(w *WorkloadEndpoint) {
			w.Spec.Ports = []WorkloadEndpointPort{{Name: "HTTP", Protocol: ProtocolFromString("UDP"), Port: 1}}
		}, "spec.ports[0].name = 'HTTP'"},
		{"port bad hostIP", func(w *WorkloadEndpoint) {
			w.Spec.Ports = []WorkloadEndpointPort{{Protocol: ProtocolFromString("UDP"), Port: 1, HostPort: 2, HostIP: "1.2.3.4/24"}}
		}, "spec.ports[0].hostIP"},
		{"bad spoofed prefix", func(w *WorkloadEndpoint) { w.Spec.AllowSpoofedSourcePrefixes = []string{"10.0.0.0/8", "nope"} }, "spec.allowSpoofedSourcePrefixes[1]"},
		{"dscp number", func(w *WorkloadEndpoint) { d := DSCPFromInt(46); w.Spec.QoSControls = &QoSControls{DSCP: &d} }, ""},
		{"dscp too big", func(w *WorkloadEndpoint) { d := DSCPFromInt(64); w.Spec.QoSControls = &QoSControls{DSCP: &d} }, "spec.qosControls.dscp = '64'"},
		{"dscp unknown name", func(w *WorkloadEndpoint) { d := DSCPFromString("AF99"); w.Spec.QoSControls = &QoSControls{DSCP: &d} }, "AF99 is not a valid DSCP value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := validWEP()
			tt.change(&w)
			assertValidation(t, w.Validate(), tt.want)
		})
	}
}

func TestDSCPJSON(t *testing.T) {
	tests := []struct {
		in, out string
		value   uint8
		ok      bool
	}{
		{`"ef"`, `"ef"`, 46, true},
		{`"CS1"`, `"CS1"`, 8, true},
		{`10`, `10`, 10, true},
		{`"12"`, `12`, 12, true},
		{`"nope"`, `"nope"`, 0, false},
	}
	for _, tt := range tests {
		var d DSCP
		if err := json.Unmarshal([]byte(tt.in), &d); err != nil {
			t.Fatalf("Unmarshal(%s): %v", tt.in, err)
		}
		if v, ok := d.Value(); v != tt.value || ok != tt.ok {
			t.Errorf("%s: Value = %d, %v", tt.in, v, ok)
		}
		if out, _ := json.Marshal(d); string(out) != tt.out {
			t.Errorf("%s: Marshal = %s, want %s", tt.in, out, tt.out)
		}
	}
	var d DSCP
	if err := json.Unmarshal([]byte(`300`), &d); err == nil {
		t.Error("Unmarshal(300) succeeded")
	}
}
