package resources

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KubeControllersConfiguration is the projectcalico.org/v3 singleton
// ("default") configuring calico-kube-controllers.
type KubeControllersConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              KubeControllersConfigurationSpec   `json:"spec,omitempty"`
	Status            KubeControllersConfigurationStatus `json:"status,omitempty"`
}

// KubeControllersConfigurationSpec is the spec of a
// KubeControllersConfiguration.
type KubeControllersConfigurationSpec struct {
	// LogSeverityScreen is None, Debug, Info, Warning, Error, Fatal or Panic.
	LogSeverityScreen string `json:"logSeverityScreen,omitempty"`
	// HealthChecks is Enabled or Disabled.
	HealthChecks string `json:"healthChecks,omitempty"`
	// EtcdV3CompactionPeriod is how often to compact etcd (0 disables).
	EtcdV3CompactionPeriod *metav1.Duration `json:"etcdV3CompactionPeriod,omitempty"`
	// PrometheusMetricsPort serves metrics (default 9094; 0 disables).
	PrometheusMetricsPort *int `json:"prometheusMetricsPort,omitempty"`
	// DebugProfilePort serves pprof when set (0 disables).
	DebugProfilePort *int32 `json:"debugProfilePort,omitempty"`
	// Controllers enables and configures each controller; a nil entry
	// disables it.
	Controllers ControllersConfig `json:"controllers"`
}

// ControllersConfig holds the per-controller settings.
type ControllersConfig struct {
	Node             *NodeControllerConfig             `json:"node,omitempty"`
	Policy           *PolicyControllerConfig           `json:"policy,omitempty"`
	WorkloadEndpoint *WorkloadEndpointControllerConfig `json:"workloadEndpoint,omitempty"`
	ServiceAccount   *ServiceAccountControllerConfig   `json:"serviceAccount,omitempty"`
	Namespace        *NamespaceControllerConfig        `json:"namespace,omitempty"`
	LoadBalancer     *LoadBalancerControllerConfig     `json:"loadBalancer,omitempty"`
	PolicyMigration  *PolicyMigrationConfig            `json:"policyMigration,omitempty"`
}

// NodeControllerConfig configures the node controller.
type NodeControllerConfig struct {
	ReconcilerPeriod *metav1.Duration `json:"reconcilerPeriod,omitempty"`
	// SyncLabels is Enabled or Disabled.
	SyncLabels string `json:"syncLabels,omitempty"`
	// HostEndpoint configures automatic host endpoints.
	HostEndpoint *AutoHostEndpointConfig `json:"hostEndpoint,omitempty"`
	// LeakGracePeriod is how long an IP may look leaked before it is
	// released (default 15m; 0 disables IP garbage collection).
	LeakGracePeriod *metav1.Duration `json:"leakGracePeriod,omitempty"`
}

// AutoHostEndpointConfig configures automatic host endpoint creation.
type AutoHostEndpointConfig struct {
	// AutoCreate is Enabled or Disabled.
	AutoCreate string `json:"autoCreate,omitempty"`
	// CreateDefaultHostEndpoint is Enabled or Disabled.
	CreateDefaultHostEndpoint string `json:"createDefaultHostEndpoint,omitempty"`
	// Templates describe extra host endpoints to create.
	Templates []HostEndpointTemplate `json:"templates,omitempty"`
}

// HostEndpointTemplate describes host endpoints generated for matching nodes.
type HostEndpointTemplate struct {
	GenerateName     string            `json:"generateName,omitempty"`
	InterfaceCIDRs   []string          `json:"interfaceCIDRs,omitempty"`
	InterfacePattern string            `json:"interfacePattern,omitempty"`
	Labels           map[string]string `json:"labels,omitempty"`
	NodeSelector     string            `json:"nodeSelector,omitempty"`
}

// PolicyControllerConfig configures the policy controller.
type PolicyControllerConfig struct {
	ReconcilerPeriod *metav1.Duration `json:"reconcilerPeriod,omitempty"`
}

// WorkloadEndpointControllerConfig configures the workload endpoint
// controller.
type WorkloadEndpointControllerConfig struct {
	ReconcilerPeriod *metav1.Duration `json:"reconcilerPeriod,omitempty"`
}

// ServiceAccountControllerConfig configures the service account controller.
type ServiceAccountControllerConfig struct {
	ReconcilerPeriod *metav1.Duration `json:"reconcilerPeriod,omitempty"`
}

// NamespaceControllerConfig configures the namespace controller.
type NamespaceControllerConfig struct {
	ReconcilerPeriod *metav1.Duration `json:"reconcilerPeriod,omitempty"`
}

// LoadBalancerControllerConfig configures LoadBalancer IP assignment.
type LoadBalancerControllerConfig struct {
	// AssignIPs is AllServices (default) or RequestedServicesOnly.
	AssignIPs string `json:"assignIPs,omitempty"`
}

// PolicyMigrationConfig configures the policy name migration controller.
type PolicyMigrationConfig struct {
	// Enabled is Enabled or Disabled.
	Enabled string `json:"enabled,omitempty"`
}

// KubeControllersConfigurationStatus is what the controllers report.
type KubeControllersConfigurationStatus struct {
	// RunningConfig is the configuration in effect after environment
	// overrides.
	RunningConfig *KubeControllersConfigurationSpec `json:"runningConfig,omitempty"`
	// EnvironmentVars are the environment variables that override it.
	EnvironmentVars map[string]string `json:"environmentVars,omitempty"`
}

// Default fills what upstream's client fills: prometheusMetricsPort 9094,
// leakGracePeriod 15m0s when the node controller is configured, and
// assignIPs AllServices when the load balancer controller is.
func (r *KubeControllersConfiguration) Default() {
	s := &r.Spec
	if s.PrometheusMetricsPort == nil {
		p := 9094
		s.PrometheusMetricsPort = &p
	}
	if n := s.Controllers.Node; n != nil && n.LeakGracePeriod == nil {
		n.LeakGracePeriod = &metav1.Duration{Duration: 15 * time.Minute}
	}
	if lb := s.Controllers.LoadBalancer; lb != nil && lb.AssignIPs == "" {
		lb.AssignIPs = "AllServices"
	}
}

// Validate checks enums, ports and host endpoint templates.
func (r *KubeControllersConfiguration) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	s := &r.Spec
	enumField(&v, "spec.logSeverityScreen", s.LogSeverityScreen, "None", "Debug", "Info", "Warning", "Error", "Fatal", "Panic")
	enumField(&v, "spec.healthChecks", s.HealthChecks, "Enabled", "Disabled")
	portField(&v, "spec.prometheusMetricsPort", s.PrometheusMetricsPort, false)
	rangeField(&v, "spec.debugProfilePort", s.DebugProfilePort, 0, 65535)
	c := &s.Controllers
	if lb := c.LoadBalancer; lb != nil {
		enumField(&v, "spec.controllers.loadBalancer.assignIPs", lb.AssignIPs, "AllServices", "RequestedServicesOnly")
	}
	if pm := c.PolicyMigration; pm != nil {
		enumField(&v, "spec.controllers.policyMigration.enabled", pm.Enabled, "Enabled", "Disabled")
	}
	n := c.Node
	if n == nil {
		return v.Err()
	}
	enumField(&v, "spec.controllers.node.syncLabels", n.SyncLabels, "Enabled", "Disabled")
	if h := n.HostEndpoint; h != nil {
		enumField(&v, "spec.controllers.node.hostEndpoint.autoCreate", h.AutoCreate, "Enabled", "Disabled")
		enumField(&v, "spec.controllers.node.hostEndpoint.createDefaultHostEndpoint", h.CreateDefaultHostEndpoint, "Enabled", "Disabled")
		names := map[string]bool{}
		for i, t := range h.Templates {
			f := fmt.Sprintf("spec.controllers.node.hostEndpoint.templates[%d]", i)
			switch {
			case t.GenerateName == "":
				v.Add(f+".generateName", "", "template name must be specified")
			case len(t.GenerateName) > 253:
				v.Add(f+".generateName", t.GenerateName, "template name must be at most 253 characters")
			case names[t.GenerateName]:
				v.Add(f+".generateName", t.GenerateName, "template name must be unique")
			}
			names[t.GenerateName] = true
			if len(t.InterfaceCIDRs) == 0 && t.InterfacePattern == "" {
				v.Add(f, t.GenerateName, "interfaceCIDRs or interfacePattern must be specified")
			}
			for j, cidr := range t.InterfaceCIDRs {
				ValidateCIDR(&v, fmt.Sprintf("%s.interfaceCIDRs[%d]", f, j), cidr, true)
			}
			regexpField(&v, f+".interfacePattern", t.InterfacePattern)
			ValidateLabels(&v, f+".labels", t.Labels)
			ValidateSelector(&v, f+".nodeSelector", t.NodeSelector)
		}
	}
	return v.Err()
}
