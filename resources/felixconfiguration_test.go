package resources

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFelixConfigurationValidate(t *testing.T) {
	pp := func(ps ...ProtoPort) *[]ProtoPort { return &ps }
	cases := []struct {
		name      string
		objName   string
		spec      FelixConfigurationSpec
		wantField string
	}{
		{name: "empty default", objName: "default"},
		{name: "node override", objName: "node.worker-1", spec: FelixConfigurationSpec{DefaultEndpointToHostAction: "Return"}},
		{name: "selector scoped", objName: "edge-nodes", spec: FelixConfigurationSpec{NodeSelector: "has(edge)"}},
		{name: "common settings", objName: "default", spec: FelixConfigurationSpec{
			LogSeverityScreen: "info", LogSeverityFile: "Warning", LogSeveritySys: "DEBUG",
			IptablesBackend: ptr("NFT"), ChainInsertMode: "append", DefaultEndpointToHostAction: "ACCEPT",
			BPFEnabled: ptr(true), BPFExternalServiceMode: "dsr", BPFLogLevel: "Debug", NFTablesMode: ptr("Enabled"),
			HealthPort: ptr(9099), PrometheusMetricsPort: ptr(9091), VXLANPort: ptr(4789), VXLANVNI: ptr(4096),
			IPIPMTU: ptr(1480), VXLANMTU: ptr(0), VXLANMTUV6: ptr(1430), WireguardMTU: ptr(1420),
			WireguardListeningPort: ptr(51820), WireguardInterfaceName: "wireguard.cali",
			FailsafeInboundHostPorts: pp(ProtoPort{Protocol: "tcp", Port: 22}, ProtoPort{Port: 6443, Net: "10.0.0.0/8"}),
			RouteTableRanges:         &RouteTableRanges{{Min: 1, Max: 250}, {Min: 1000, Max: 2000}},
			DeviceRouteProtocol:      ptr(80), NATOutgoingAddress: "192.0.2.1", BPFDSROptoutCIDRs: &[]string{"10.0.0.0/8"},
			FeatureDetectOverride: "SNATFullyRandom=true,MASQFullyRandom=false,RestoreSupportsLock=",
			LogPrefix:             "calico-%t-%n", LogActionRateLimit: ptr("10/second"), GoGCThreshold: ptr(-1),
			BPFConntrackTimeouts: &BPFConntrackTimeouts{TCPEstablished: ptr("1h"), TCPFinsSeen: ptr("Auto")},
			FloatingIPs:          ptr("Enabled"), BPFRedirectToPeer: "L2Only", BPFAttachType: ptr("TCX"),
		}},

		{name: "node prefix without node", objName: "node.", wantField: "metadata.name"},
		{name: "selector on default", objName: "default", spec: FelixConfigurationSpec{NodeSelector: "all()"}, wantField: "spec.nodeSelector"},
		{name: "selector on node config", objName: "node.a", spec: FelixConfigurationSpec{NodeSelector: "all()"}, wantField: "spec.nodeSelector"},
		{name: "bad selector", objName: "edge", spec: FelixConfigurationSpec{NodeSelector: "has("}, wantField: "spec.nodeSelector"},
		{name: "bad log screen", objName: "default", spec: FelixConfigurationSpec{LogSeverityScreen: "Verbose"}, wantField: "spec.logSeverityScreen"},
		{name: "bad log file", objName: "default", spec: FelixConfigurationSpec{LogSeverityFile: "Warn"}, wantField: "spec.logSeverityFile"},
		{name: "bad iptables backend", objName: "default", spec: FelixConfigurationSpec{IptablesBackend: ptr("nftables")}, wantField: "spec.iptablesBackend"},
		{name: "bad chain insert", objName: "default", spec: FelixConfigurationSpec{ChainInsertMode: "prepend"}, wantField: "spec.chainInsertMode"},
		{name: "bad endpoint action", objName: "default", spec: FelixConfigurationSpec{DefaultEndpointToHostAction: "Reject"}, wantField: "spec.defaultEndpointToHostAction"},
		{name: "bad allow action", objName: "default", spec: FelixConfigurationSpec{IptablesFilterAllowAction: "Drop"}, wantField: "spec.iptablesFilterAllowAction"},
		{name: "bad service mode", objName: "default", spec: FelixConfigurationSpec{BPFExternalServiceMode: "Direct"}, wantField: "spec.bpfExternalServiceMode"},
		{name: "bad nftables mode", objName: "default", spec: FelixConfigurationSpec{NFTablesMode: ptr("auto")}, wantField: "spec.nftablesMode"},
		{name: "bad bpf log level", objName: "default", spec: FelixConfigurationSpec{BPFLogLevel: "Trace"}, wantField: "spec.bpfLogLevel"},
		{name: "bad ctlb", objName: "default", spec: FelixConfigurationSpec{BPFConnectTimeLoadBalancing: ptr("UDP")}, wantField: "spec.bpfConnectTimeLoadBalancing"},
		{name: "bad floating ips", objName: "default", spec: FelixConfigurationSpec{FloatingIPs: ptr("On")}, wantField: "spec.floatingIPs"},
		{name: "bad aws check", objName: "default", spec: FelixConfigurationSpec{AWSSrcDstCheck: ptr("Disabled")}, wantField: "spec.awsSrcDstCheck"},
		{name: "health port too big", objName: "default", spec: FelixConfigurationSpec{HealthPort: ptr(65536)}, wantField: "spec.healthPort"},
		{name: "negative metrics port", objName: "default", spec: FelixConfigurationSpec{PrometheusMetricsPort: ptr(-1)}, wantField: "spec.prometheusMetricsPort"},
		{name: "wireguard port zero", objName: "default", spec: FelixConfigurationSpec{WireguardListeningPort: ptr(0)}, wantField: "spec.wireguardListeningPort"},
		{name: "vni zero", objName: "default", spec: FelixConfigurationSpec{VXLANVNI: ptr(0)}, wantField: "spec.vxlanVNI"},
		{name: "vni too big", objName: "default", spec: FelixConfigurationSpec{VXLANVNI: ptr(1 << 24)}, wantField: "spec.vxlanVNI"},
		{name: "mtu too small", objName: "default", spec: FelixConfigurationSpec{IPIPMTU: ptr(10)}, wantField: "spec.ipipMTU"},
		{name: "v6 mtu too small", objName: "default", spec: FelixConfigurationSpec{VXLANMTUV6: ptr(1200)}, wantField: "spec.vxlanMTUV6"},
		{name: "failsafe bad protocol", objName: "default", spec: FelixConfigurationSpec{FailsafeOutboundHostPorts: pp(ProtoPort{Protocol: "icmp", Port: 1})}, wantField: "spec.failsafeOutboundHostPorts[0].protocol"},
		{name: "failsafe bad net", objName: "default", spec: FelixConfigurationSpec{FailsafeInboundHostPorts: pp(ProtoPort{Port: 22}, ProtoPort{Port: 22, Net: "nowhere"})}, wantField: "spec.failsafeInboundHostPorts[1].net"},
		{name: "route table range over 250", objName: "default", spec: FelixConfigurationSpec{RouteTableRange: &RouteTableRange{Min: 1, Max: 251}}, wantField: "spec.routeTableRange"},
		{name: "route table range inverted", objName: "default", spec: FelixConfigurationSpec{RouteTableRange: &RouteTableRange{Min: 10, Max: 5}}, wantField: "spec.routeTableRange"},
		{name: "route table ranges min 0", objName: "default", spec: FelixConfigurationSpec{RouteTableRanges: &RouteTableRanges{{Min: 0, Max: 5}}}, wantField: "spec.routeTableRanges[0]"},
		{name: "both route table forms", objName: "default", spec: FelixConfigurationSpec{RouteTableRange: &RouteTableRange{Min: 1, Max: 5}, RouteTableRanges: &RouteTableRanges{{Min: 1, Max: 5}}}, wantField: "spec.routeTableRanges"},
		{name: "nat address v6", objName: "default", spec: FelixConfigurationSpec{NATOutgoingAddress: "fd00::1"}, wantField: "spec.natOutgoingAddress"},
		{name: "route source v4 in v6", objName: "default", spec: FelixConfigurationSpec{DeviceRouteSourceAddressIPv6: "10.0.0.1"}, wantField: "spec.deviceRouteSourceAddressIPv6"},
		{name: "bad dsr cidr", objName: "default", spec: FelixConfigurationSpec{BPFDSROptoutCIDRs: &[]string{"10.0.0.0/8", "x"}}, wantField: "spec.bpfDSROptoutCIDRs[1]"},
		{name: "bad external nodes", objName: "default", spec: FelixConfigurationSpec{ExternalNodesCIDRList: &[]string{"10.0.0.1"}}, wantField: "spec.externalNodesList[0]"},
		{name: "bad feature override", objName: "default", spec: FelixConfigurationSpec{FeatureDetectOverride: "SNATFullyRandom=maybe"}, wantField: "spec.featureDetectOverride"},
		{name: "bad log prefix", objName: "default", spec: FelixConfigurationSpec{LogPrefix: "calico;drop"}, wantField: "spec.logPrefix"},
		{name: "bad rate limit", objName: "default", spec: FelixConfigurationSpec{LogActionRateLimit: ptr("10/week")}, wantField: "spec.logActionRateLimit"},
		{name: "bad regexp", objName: "default", spec: FelixConfigurationSpec{MTUIfacePattern: "^(eth"}, wantField: "spec.mtuIfacePattern"},
		{name: "bad wireguard iface", objName: "default", spec: FelixConfigurationSpec{WireguardInterfaceNameV6: "wireguard-v6.calico"}, wantField: "spec.wireguardInterfaceNameV6"},
		{name: "bad conntrack timer", objName: "default", spec: FelixConfigurationSpec{BPFConntrackTimeouts: &BPFConntrackTimeouts{UDPTimeout: ptr("soon")}}, wantField: "spec.bpfConntrackTimeouts.udpTimeout"},
		{name: "health override without name", objName: "default", spec: FelixConfigurationSpec{HealthTimeoutOverrides: []HealthTimeoutOverride{{}}}, wantField: "spec.healthTimeoutOverrides[0].name"},
		{name: "gc below -1", objName: "default", spec: FelixConfigurationSpec{GoGCThreshold: ptr(-2)}, wantField: "spec.goGCThreshold"},
		{name: "route protocol over 255", objName: "default", spec: FelixConfigurationSpec{DeviceRouteProtocol: ptr(256)}, wantField: "spec.deviceRouteProtocol"},
		{name: "too many node port ranges", objName: "default", spec: FelixConfigurationSpec{KubeNodePortRanges: &[]Port{
			SinglePort(1), SinglePort(2), SinglePort(3), SinglePort(4), SinglePort(5), SinglePort(6), SinglePort(7), SinglePort(8)}}, wantField: "spec.kubeNodePortRanges"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fc := &FelixConfiguration{ObjectMeta: metav1.ObjectMeta{Name: tc.objName}, Spec: tc.spec}
			fc.Default()
			expectValidation(t, fc, tc.wantField)
		})
	}
}

func TestFelixConfigurationDefault(t *testing.T) {
	fc := NewFelixConfiguration("default")
	expectDefaultIdempotent(t, fc)
	out, _ := json.Marshal(fc)
	var got struct {
		Spec map[string]any `json:"spec"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"bpfConnectTimeLoadBalancing":    "TCP",
		"bpfHostNetworkedNATWithoutCTLB": "Enabled",
		"bpfLogLevel":                    "",
		"floatingIPs":                    "Disabled",
		"nftablesMode":                   "Auto",
		"nftablesFlowTableOffload":       "Disabled",
	}
	if !reflect.DeepEqual(got.Spec, want) {
		t.Fatalf("defaulted spec = %v, want %v", got.Spec, want)
	}

	user := &FelixConfiguration{Spec: FelixConfigurationSpec{NFTablesMode: ptr("Disabled"), BPFLogLevel: "Info"}}
	user.Default()
	if *user.Spec.NFTablesMode != "Disabled" || user.Spec.BPFLogLevel != "Info" {
		t.Fatal("Default overwrote user values")
	}
}

// Every field has a distinct lower-camel JSON name, so a manifest using any
// of them decodes strictly.
func TestFelixConfigurationJSONNames(t *testing.T) {
	typ := reflect.TypeFor[FelixConfigurationSpec]()
	seen := map[string]string{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name[0] < 'a' || name[0] > 'z' {
			t.Errorf("field %s has JSON name %q", f.Name, name)
		}
		if prev, dup := seen[name]; dup {
			t.Errorf("JSON name %q used by %s and %s", name, prev, f.Name)
		}
		seen[name] = f.Name
		if opts != "omitempty" && name != "bpfLogLevel" {
			t.Errorf("field %s lacks omitempty", f.Name)
		}
	}
	if len(seen) < 185 {
		t.Fatalf("only %d fields; the upstream spec has about 190", len(seen))
	}
}

func TestFelixConfigurationStrictDecode(t *testing.T) {
	fc := expectStrictRoundTrip[FelixConfiguration](t, `
apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata:
  name: default
spec:
  bpfConnectTimeLoadBalancing: TCP
  bpfHostNetworkedNATWithoutCTLB: Enabled
  bpfLogLevel: ""
  floatingIPs: Disabled
  healthPort: 9099
  logSeverityScreen: Info
  reportingInterval: 0s
  ipipEnabled: true
  ipipMTU: 1440
  vxlanEnabled: false
  vxlanVNI: 4096
  vxlanPort: 4789
  wireguardEnabled: false
  wireguardKeepAlive: 25s
  routeRefreshInterval: 1m30s
  iptablesRefreshInterval: 10s
  iptablesBackend: Auto
  iptablesMarkMask: 4294901760
  chainInsertMode: Insert
  defaultEndpointToHostAction: Drop
  failsafeInboundHostPorts:
  - {protocol: tcp, port: 22}
  - {protocol: udp, port: 68}
  - {protocol: tcp, port: 6443, net: 10.0.0.0/8}
  failsafeOutboundHostPorts:
  - {protocol: udp, port: 53}
  kubeNodePortRanges: ["30000:32767", 8080]
  natPortRange: "32768:65535"
  bpfPSNATPorts: 20000:29999
  interfacePrefix: cali
  natOutgoingAddress: 192.0.2.10
  deviceRouteProtocol: 80
  routeSource: CalicoIPAM
  routeTableRanges: [{min: 1, max: 250}]
  mtuIfacePattern: ^((en|wl|ww|sl|ib)[Pcopsvx].*|(eth|wlan|wwan).*)
  nftablesMode: Auto
  nftablesFlowTableOffload: Disabled
  bpfConntrackTimeouts: {tcpEstablished: 1h, tcpFinsSeen: Auto}
  bpfLogFilters: {all: "tcp port 80"}
  healthTimeoutOverrides: [{name: InternalDataplaneMainLoop, timeout: 1m0s}]
  istioDSCPMark: 23
  featureGates: BPFConnectTimeLoadBalancingWorkaround=enabled
  bpfAttachType: TCX
  bpfMaglevMaxServices: 100
  localSubnetL2Reachability: Disabled
  iptablesLockTimeout: 0s
`)
	if fc.Spec.KubeNodePortRanges == nil || len(*fc.Spec.KubeNodePortRanges) != 2 {
		t.Fatalf("kubeNodePortRanges = %v", fc.Spec.KubeNodePortRanges)
	}
	if fc.Spec.IstioDSCPMark == nil || fc.Spec.IstioDSCPMark.IntValue() != 23 {
		t.Fatalf("istioDSCPMark = %v", fc.Spec.IstioDSCPMark)
	}
	if fc.Spec.ReportingInterval == nil || fc.Spec.ReportingInterval.Duration != 0 {
		t.Fatalf("reportingInterval = %v", fc.Spec.ReportingInterval)
	}

	expectStrictRoundTrip[FelixConfiguration](t, `
apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata:
  name: node.worker-1
spec:
  defaultEndpointToHostAction: Return
`)
}
