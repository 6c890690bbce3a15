package resources

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestKubeControllersConfigurationValidate(t *testing.T) {
	tmpl := func(mut func(*HostEndpointTemplate)) ControllersConfig {
		tp := HostEndpointTemplate{GenerateName: "edge", InterfaceCIDRs: []string{"10.0.0.0/8"}}
		if mut != nil {
			mut(&tp)
		}
		return ControllersConfig{Node: &NodeControllerConfig{HostEndpoint: &AutoHostEndpointConfig{
			AutoCreate: "Enabled", Templates: []HostEndpointTemplate{tp}}}}
	}
	cases := []struct {
		name      string
		objName   string
		spec      KubeControllersConfigurationSpec
		wantField string
	}{
		{name: "empty", objName: "default"},
		{name: "typical", objName: "default", spec: KubeControllersConfigurationSpec{
			LogSeverityScreen: "Info", HealthChecks: "Enabled", PrometheusMetricsPort: ptr(9094), DebugProfilePort: ptr(int32(0)),
			Controllers: ControllersConfig{
				Node:            &NodeControllerConfig{SyncLabels: "Enabled", ReconcilerPeriod: &metav1.Duration{Duration: 5 * time.Minute}},
				Policy:          &PolicyControllerConfig{},
				LoadBalancer:    &LoadBalancerControllerConfig{AssignIPs: "RequestedServicesOnly"},
				PolicyMigration: &PolicyMigrationConfig{Enabled: "Disabled"},
			}}},
		{name: "template with pattern", objName: "default", spec: KubeControllersConfigurationSpec{Controllers: tmpl(func(tp *HostEndpointTemplate) {
			tp.InterfaceCIDRs = nil
			tp.InterfacePattern = "^eth[0-9]+$"
			tp.NodeSelector = "has(edge)"
			tp.Labels = map[string]string{"role": "edge"}
		})}},

		{name: "not default", objName: "other", wantField: "metadata.name"},
		{name: "bad log level", objName: "default", spec: KubeControllersConfigurationSpec{LogSeverityScreen: "Trace"}, wantField: "spec.logSeverityScreen"},
		{name: "bad health checks", objName: "default", spec: KubeControllersConfigurationSpec{HealthChecks: "On"}, wantField: "spec.healthChecks"},
		{name: "bad metrics port", objName: "default", spec: KubeControllersConfigurationSpec{PrometheusMetricsPort: ptr(70000)}, wantField: "spec.prometheusMetricsPort"},
		{name: "bad debug port", objName: "default", spec: KubeControllersConfigurationSpec{DebugProfilePort: ptr(int32(-1))}, wantField: "spec.debugProfilePort"},
		{name: "bad sync labels", objName: "default", spec: KubeControllersConfigurationSpec{Controllers: ControllersConfig{Node: &NodeControllerConfig{SyncLabels: "yes"}}}, wantField: "spec.controllers.node.syncLabels"},
		{name: "bad assign IPs", objName: "default", spec: KubeControllersConfigurationSpec{Controllers: ControllersConfig{LoadBalancer: &LoadBalancerControllerConfig{AssignIPs: "Some"}}}, wantField: "spec.controllers.loadBalancer.assignIPs"},
		{name: "template without name", objName: "default", spec: KubeControllersConfigurationSpec{Controllers: tmpl(func(tp *HostEndpointTemplate) { tp.GenerateName = "" })}, wantField: "spec.controllers.node.hostEndpoint.templates[0].generateName"},
		{name: "template without match", objName: "default", spec: KubeControllersConfigurationSpec{Controllers: tmpl(func(tp *HostEndpointTemplate) { tp.InterfaceCIDRs = nil })}, wantField: "spec.controllers.node.hostEndpoint.templates[0]"},
		{name: "template bad cidr", objName: "default", spec: KubeControllersConfigurationSpec{Controllers: tmpl(func(tp *HostEndpointTemplate) { tp.InterfaceCIDRs = []string{"x"} })}, wantField: "spec.controllers.node.hostEndpoint.templates[0].interfaceCIDRs[0]"},
		{name: "template bad selector", objName: "default", spec: KubeControllersConfigurationSpec{Controllers: tmpl(func(tp *HostEndpointTemplate) { tp.NodeSelector = "((" })}, wantField: "spec.controllers.node.hostEndpoint.templates[0].nodeSelector"},
		{name: "bad autoCreate", objName: "default", spec: KubeControllersConfigurationSpec{Controllers: ControllersConfig{Node: &NodeControllerConfig{HostEndpoint: &AutoHostEndpointConfig{AutoCreate: "true"}}}}, wantField: "spec.controllers.node.hostEndpoint.autoCreate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := &KubeControllersConfiguration{ObjectMeta: metav1.ObjectMeta{Name: tc.objName}, Spec: tc.spec}
			expectDefaultIdempotent(t, k)
			expectValidation(t, k, tc.wantField)
		})
	}
}

func TestKubeControllersConfigurationDuplicateTemplates(t *testing.T) {
	tp := HostEndpointTemplate{GenerateName: "edge", InterfacePattern: "eth0"}
	k := &KubeControllersConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: KubeControllersConfigurationSpec{
		Controllers: ControllersConfig{Node: &NodeControllerConfig{HostEndpoint: &AutoHostEndpointConfig{Templates: []HostEndpointTemplate{tp, tp}}}}}}
	expectValidation(t, k, "spec.controllers.node.hostEndpoint.templates[1].generateName")
}

func TestKubeControllersConfigurationDefault(t *testing.T) {
	k := &KubeControllersConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: KubeControllersConfigurationSpec{
		Controllers: ControllersConfig{Node: &NodeControllerConfig{}, LoadBalancer: &LoadBalancerControllerConfig{}}}}
	SetTypeMeta(k)
	expectDefaultIdempotent(t, k)
	out, _ := json.Marshal(k)
	for _, want := range []string{`"prometheusMetricsPort":9094`, `"leakGracePeriod":"15m0s"`, `"assignIPs":"AllServices"`, `"status":{}`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("defaulted object lacks %s: %s", want, out)
		}
	}

	bare := &KubeControllersConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	bare.Default()
	if bare.Spec.Controllers.Node != nil {
		t.Fatal("Default must not enable the node controller")
	}
	own := &KubeControllersConfiguration{Spec: KubeControllersConfigurationSpec{PrometheusMetricsPort: ptr(0),
		Controllers: ControllersConfig{Node: &NodeControllerConfig{LeakGracePeriod: &metav1.Duration{}}}}}
	own.Default()
	if *own.Spec.PrometheusMetricsPort != 0 || own.Spec.Controllers.Node.LeakGracePeriod.Duration != 0 {
		t.Fatal("Default overwrote explicit zero values")
	}
}

func TestKubeControllersConfigurationStrictDecode(t *testing.T) {
	expectStrictRoundTrip[KubeControllersConfiguration](t, `
apiVersion: projectcalico.org/v3
kind: KubeControllersConfiguration
metadata:
  name: default
spec:
  logSeverityScreen: Info
  healthChecks: Enabled
  etcdV3CompactionPeriod: 10m0s
  prometheusMetricsPort: 9094
  debugProfilePort: 0
  controllers:
    node:
      reconcilerPeriod: 5m0s
      syncLabels: Enabled
      leakGracePeriod: 15m0s
      hostEndpoint:
        autoCreate: Disabled
        createDefaultHostEndpoint: Enabled
        templates:
        - generateName: edge
          interfaceCIDRs: [10.0.0.0/8]
          nodeSelector: has(edge)
          labels: {role: edge}
    policy: {reconcilerPeriod: 5m0s}
    workloadEndpoint: {reconcilerPeriod: 5m0s}
    serviceAccount: {reconcilerPeriod: 5m0s}
    namespace: {reconcilerPeriod: 5m0s}
    loadBalancer: {assignIPs: AllServices}
    policyMigration: {enabled: Enabled}
status:
  environmentVars:
    ENABLED_CONTROLLERS: node
  runningConfig:
    controllers:
      node: {syncLabels: Disabled}
`)
}
