package resources

import (
	"fmt"
	"regexp"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// FelixConfiguration is the projectcalico.org/v3 FelixConfiguration resource.
// "default" applies to every node, "node.<nodename>" overrides it for one
// node, and any other name applies to the nodes its spec.nodeSelector picks.
type FelixConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              FelixConfigurationSpec `json:"spec,omitempty"`
}

// FelixConfigurationSpec holds Felix's tunables. Every field is optional and
// keeps upstream's JSON name; an unset field means "Felix's built-in default"
// (see §6.2 of the compatibility notes). The list is the union of the newest
// upstream line and fields dropped from it (iptablesLockFilePath,
// iptablesLockTimeout, bpfKubeProxyEndpointSlicesEnabled), so objects written
// by any release still decode strictly and round-trip.
type FelixConfigurationSpec struct {
	// Datastore, process and dataplane driver.
	UseInternalDataplaneDriver *bool            `json:"useInternalDataplaneDriver,omitempty"`
	DataplaneDriver            string           `json:"dataplaneDriver,omitempty"`
	DataplaneWatchdogTimeout   *metav1.Duration `json:"dataplaneWatchdogTimeout,omitempty"`
	IPv6Support                *bool            `json:"ipv6Support,omitempty"`
	FeatureDetectOverride      string           `json:"featureDetectOverride,omitempty"`
	FeatureGates               string           `json:"featureGates,omitempty"`
	UsageReportingEnabled      *bool            `json:"usageReportingEnabled,omitempty"`
	UsageReportingInitialDelay *metav1.Duration `json:"usageReportingInitialDelay,omitempty"`
	UsageReportingInterval     *metav1.Duration `json:"usageReportingInterval,omitempty"`
	GoGCThreshold              *int             `json:"goGCThreshold,omitempty"`
	GoMemoryLimitMB            *int             `json:"goMemoryLimitMB,omitempty"`
	GoMaxProcs                 *int             `json:"goMaxProcs,omitempty"`
	RequireMTUFile             *bool            `json:"requireMTUFile,omitempty"`
	CgroupV2Path               string           `json:"cgroupV2Path,omitempty"`
	NodeSelector               string           `json:"nodeSelector,omitempty"`

	// Refresh intervals and timeouts.
	RouteRefreshInterval           *metav1.Duration `json:"routeRefreshInterval,omitempty"`
	InterfaceRefreshInterval       *metav1.Duration `json:"interfaceRefreshInterval,omitempty"`
	IptablesRefreshInterval        *metav1.Duration `json:"iptablesRefreshInterval,omitempty"`
	IptablesPostWriteCheckInterval *metav1.Duration `json:"iptablesPostWriteCheckInterval,omitempty"`
	IptablesLockFilePath           string           `json:"iptablesLockFilePath,omitempty"`
	IptablesLockTimeout            *metav1.Duration `json:"iptablesLockTimeout,omitempty"`
	IptablesLockProbeInterval      *metav1.Duration `json:"iptablesLockProbeInterval,omitempty"`
	IpsetsRefreshInterval          *metav1.Duration `json:"ipsetsRefreshInterval,omitempty"`
	XDPRefreshInterval             *metav1.Duration `json:"xdpRefreshInterval,omitempty"`
	NetlinkTimeout                 *metav1.Duration `json:"netlinkTimeout,omitempty"`
	NftablesRefreshInterval        *metav1.Duration `json:"nftablesRefreshInterval,omitempty"`

	// iptables and nftables.
	MaxIpsetSize                       *int    `json:"maxIpsetSize,omitempty"`
	IptablesBackend                    *string `json:"iptablesBackend,omitempty"`
	ChainInsertMode                    string  `json:"chainInsertMode,omitempty"`
	DefaultEndpointToHostAction        string  `json:"defaultEndpointToHostAction,omitempty"`
	IptablesFilterAllowAction          string  `json:"iptablesFilterAllowAction,omitempty"`
	IptablesMangleAllowAction          string  `json:"iptablesMangleAllowAction,omitempty"`
	IptablesFilterDenyAction           string  `json:"iptablesFilterDenyAction,omitempty"`
	IptablesMarkMask                   *uint32 `json:"iptablesMarkMask,omitempty"`
	IptablesNATOutgoingInterfaceFilter string  `json:"iptablesNATOutgoingInterfaceFilter,omitempty"`
	DisableConntrackInvalidCheck       *bool   `json:"disableConntrackInvalidCheck,omitempty"`
	NFTablesMode                       *string `json:"nftablesMode,omitempty"`
	NftablesFilterAllowAction          string  `json:"nftablesFilterAllowAction,omitempty"`
	NftablesMangleAllowAction          string  `json:"nftablesMangleAllowAction,omitempty"`
	NftablesFilterDenyAction           string  `json:"nftablesFilterDenyAction,omitempty"`
	NftablesMarkMask                   *uint32 `json:"nftablesMarkMask,omitempty"`
	NftablesFlowTableOffload           *string `json:"nftablesFlowTableOffload,omitempty"`
	XDPEnabled                         *bool   `json:"xdpEnabled,omitempty"`
	GenericXDPEnabled                  *bool   `json:"genericXDPEnabled,omitempty"`

	// Interfaces, metadata and OpenStack.
	MetadataAddr               string           `json:"metadataAddr,omitempty"`
	MetadataPort               *int             `json:"metadataPort,omitempty"`
	OpenstackRegion            string           `json:"openstackRegion,omitempty"`
	InterfacePrefix            string           `json:"interfacePrefix,omitempty"`
	InterfaceExclude           string           `json:"interfaceExclude,omitempty"`
	EndpointReportingEnabled   *bool            `json:"endpointReportingEnabled,omitempty"`
	EndpointReportingDelay     *metav1.Duration `json:"endpointReportingDelay,omitempty"`
	EndpointStatusPathPrefix   string           `json:"endpointStatusPathPrefix,omitempty"`
	PolicySyncPathPrefix       string           `json:"policySyncPathPrefix,omitempty"`
	SidecarAccelerationEnabled *bool            `json:"sidecarAccelerationEnabled,omitempty"`
	MTUIfacePattern            string           `json:"mtuIfacePattern,omitempty"`

	// Logging.
	LogPrefix               string  `json:"logPrefix,omitempty"`
	LogFilePath             string  `json:"logFilePath,omitempty"`
	LogSeverityFile         string  `json:"logSeverityFile,omitempty"`
	LogSeverityScreen       string  `json:"logSeverityScreen,omitempty"`
	LogSeveritySys          string  `json:"logSeveritySys,omitempty"`
	LogDebugFilenameRegex   string  `json:"logDebugFilenameRegex,omitempty"`
	LogActionRateLimit      *string `json:"logActionRateLimit,omitempty"`
	LogActionRateLimitBurst *int    `json:"logActionRateLimitBurst,omitempty"`

	// Encapsulation.
	IPIPEnabled                    *bool     `json:"ipipEnabled,omitempty"`
	IPIPMTU                        *int      `json:"ipipMTU,omitempty"`
	VXLANEnabled                   *bool     `json:"vxlanEnabled,omitempty"`
	VXLANMTU                       *int      `json:"vxlanMTU,omitempty"`
	VXLANMTUV6                     *int      `json:"vxlanMTUV6,omitempty"`
	VXLANPort                      *int      `json:"vxlanPort,omitempty"`
	VXLANVNI                       *int      `json:"vxlanVNI,omitempty"`
	AllowVXLANPacketsFromWorkloads *bool     `json:"allowVXLANPacketsFromWorkloads,omitempty"`
	AllowIPIPPacketsFromWorkloads  *bool     `json:"allowIPIPPacketsFromWorkloads,omitempty"`
	ExternalNodesCIDRList          *[]string `json:"externalNodesList,omitempty"`

	// Status reporting, health and metrics.
	ReportingInterval                 *metav1.Duration        `json:"reportingInterval,omitempty"`
	ReportingTTL                      *metav1.Duration        `json:"reportingTTL,omitempty"`
	HealthEnabled                     *bool                   `json:"healthEnabled,omitempty"`
	HealthHost                        *string                 `json:"healthHost,omitempty"`
	HealthPort                        *int                    `json:"healthPort,omitempty"`
	HealthTimeoutOverrides            []HealthTimeoutOverride `json:"healthTimeoutOverrides,omitempty"`
	PrometheusMetricsEnabled          *bool                   `json:"prometheusMetricsEnabled,omitempty"`
	PrometheusMetricsHost             string                  `json:"prometheusMetricsHost,omitempty"`
	PrometheusMetricsPort             *int                    `json:"prometheusMetricsPort,omitempty"`
	PrometheusMetricsCAFile           string                  `json:"prometheusMetricsCAFile,omitempty"`
	PrometheusMetricsCertFile         string                  `json:"prometheusMetricsCertFile,omitempty"`
	PrometheusMetricsKeyFile          string                  `json:"prometheusMetricsKeyFile,omitempty"`
	PrometheusMetricsClientAuth       string                  `json:"prometheusMetricsClientAuth,omitempty"`
	PrometheusGoMetricsEnabled        *bool                   `json:"prometheusGoMetricsEnabled,omitempty"`
	PrometheusProcessMetricsEnabled   *bool                   `json:"prometheusProcessMetricsEnabled,omitempty"`
	PrometheusWireGuardMetricsEnabled *bool                   `json:"prometheusWireGuardMetricsEnabled,omitempty"`

	// Host protection and NAT.
	FailsafeInboundHostPorts   *[]ProtoPort `json:"failsafeInboundHostPorts,omitempty"`
	FailsafeOutboundHostPorts  *[]ProtoPort `json:"failsafeOutboundHostPorts,omitempty"`
	KubeNodePortRanges         *[]Port      `json:"kubeNodePortRanges,omitempty"`
	NATPortRange               *Port        `json:"natPortRange,omitempty"`
	NATOutgoingAddress         string       `json:"natOutgoingAddress,omitempty"`
	NATOutgoingExclusions      *string      `json:"natOutgoingExclusions,omitempty"`
	ServiceLoopPrevention      string       `json:"serviceLoopPrevention,omitempty"`
	WorkloadSourceSpoofing     string       `json:"workloadSourceSpoofing,omitempty"`
	FloatingIPs                *string      `json:"floatingIPs,omitempty"`
	AWSSrcDstCheck             *string      `json:"awsSrcDstCheck,omitempty"`
	WindowsManageFirewallRules *string      `json:"windowsManageFirewallRules,omitempty"`

	// Routing.
	DeviceRouteSourceAddress                 string            `json:"deviceRouteSourceAddress,omitempty"`
	DeviceRouteSourceAddressIPv6             string            `json:"deviceRouteSourceAddressIPv6,omitempty"`
	DeviceRouteProtocol                      *int              `json:"deviceRouteProtocol,omitempty"`
	RemoveExternalRoutes                     *bool             `json:"removeExternalRoutes,omitempty"`
	ProgramClusterRoutes                     *string           `json:"programClusterRoutes,omitempty"`
	IPForwarding                             string            `json:"ipForwarding,omitempty"`
	RouteSource                              string            `json:"routeSource,omitempty"`
	RouteTableRanges                         *RouteTableRanges `json:"routeTableRanges,omitempty"`
	RouteTableRange                          *RouteTableRange  `json:"routeTableRange,omitempty"`
	RouteSyncDisabled                        *bool             `json:"routeSyncDisabled,omitempty"`
	IPv4NormalRoutePriority                  *int              `json:"ipv4NormalRoutePriority,omitempty"`
	IPv4ElevatedRoutePriority                *int              `json:"ipv4ElevatedRoutePriority,omitempty"`
	IPv6NormalRoutePriority                  *int              `json:"ipv6NormalRoutePriority,omitempty"`
	IPv6ElevatedRoutePriority                *int              `json:"ipv6ElevatedRoutePriority,omitempty"`
	LiveMigrationRouteConvergenceTime        *metav1.Duration  `json:"liveMigrationRouteConvergenceTime,omitempty"`
	LocalSubnetL2Reachability                *string           `json:"localSubnetL2Reachability,omitempty"`
	LocalSubnetL2ReachabilityRefreshInterval *metav1.Duration  `json:"localSubnetL2ReachabilityRefreshInterval,omitempty"`

	// Debugging.
	DebugMemoryProfilePath           string           `json:"debugMemoryProfilePath,omitempty"`
	DebugDisableLogDropping          *bool            `json:"debugDisableLogDropping,omitempty"`
	DebugSimulateCalcGraphHangAfter  *metav1.Duration `json:"debugSimulateCalcGraphHangAfter,omitempty"`
	DebugSimulateDataplaneHangAfter  *metav1.Duration `json:"debugSimulateDataplaneHangAfter,omitempty"`
	DebugSimulateDataplaneApplyDelay *metav1.Duration `json:"debugSimulateDataplaneApplyDelay,omitempty"`
	DebugHost                        *string          `json:"debugHost,omitempty"`
	DebugPort                        *int             `json:"debugPort,omitempty"`

	// eBPF dataplane.
	BPFEnabled                         *bool                 `json:"bpfEnabled,omitempty"`
	BPFDisableUnprivileged             *bool                 `json:"bpfDisableUnprivileged,omitempty"`
	BPFLogLevel                        string                `json:"bpfLogLevel"`
	BPFConntrackLogLevel               string                `json:"bpfConntrackLogLevel,omitempty"`
	BPFConntrackCleanupMode            *string               `json:"bpfConntrackMode,omitempty"`
	BPFConntrackTimeouts               *BPFConntrackTimeouts `json:"bpfConntrackTimeouts,omitempty"`
	BPFLogFilters                      *map[string]string    `json:"bpfLogFilters,omitempty"`
	BPFCTLBLogFilter                   string                `json:"bpfCTLBLogFilter,omitempty"`
	BPFDataIfacePattern                string                `json:"bpfDataIfacePattern,omitempty"`
	BPFL3IfacePattern                  string                `json:"bpfL3IfacePattern,omitempty"`
	BPFConnectTimeLoadBalancingEnabled *bool                 `json:"bpfConnectTimeLoadBalancingEnabled,omitempty"`
	BPFConnectTimeLoadBalancing        *string               `json:"bpfConnectTimeLoadBalancing,omitempty"`
	BPFHostNetworkedNATWithoutCTLB     *string               `json:"bpfHostNetworkedNATWithoutCTLB,omitempty"`
	BPFExternalServiceMode             string                `json:"bpfExternalServiceMode,omitempty"`
	BPFDSROptoutCIDRs                  *[]string             `json:"bpfDSROptoutCIDRs,omitempty"`
	BPFExtToServiceConnmark            *int                  `json:"bpfExtToServiceConnmark,omitempty"`
	BPFKubeProxyIptablesCleanupEnabled *bool                 `json:"bpfKubeProxyIptablesCleanupEnabled,omitempty"`
	BPFKubeProxyMinSyncPeriod          *metav1.Duration      `json:"bpfKubeProxyMinSyncPeriod,omitempty"`
	BPFKubeProxyEndpointSlicesEnabled  *bool                 `json:"bpfKubeProxyEndpointSlicesEnabled,omitempty"`
	BPFKubeProxyHealthzPort            *int                  `json:"bpfKubeProxyHealthzPort,omitempty"`
	BPFPSNATPorts                      *Port                 `json:"bpfPSNATPorts,omitempty"`
	BPFMapSizeNATFrontend              *int                  `json:"bpfMapSizeNATFrontend,omitempty"`
	BPFMapSizeNATBackend               *int                  `json:"bpfMapSizeNATBackend,omitempty"`
	BPFMapSizeNATAffinity              *int                  `json:"bpfMapSizeNATAffinity,omitempty"`
	BPFMapSizeRoute                    *int                  `json:"bpfMapSizeRoute,omitempty"`
	BPFMapSizeConntrack                *int                  `json:"bpfMapSizeConntrack,omitempty"`
	BPFMapSizePerCPUConntrack          *int                  `json:"bpfMapSizePerCpuConntrack,omitempty"`
	BPFMapSizeConntrackScaling         string                `json:"bpfMapSizeConntrackScaling,omitempty"`
	BPFMapSizeConntrackCleanupQueue    *int                  `json:"bpfMapSizeConntrackCleanupQueue,omitempty"`
	BPFMapSizeIPSets                   *int                  `json:"bpfMapSizeIPSets,omitempty"`
	BPFMapSizeIfState                  *int                  `json:"bpfMapSizeIfState,omitempty"`
	BPFMaglevMaxEndpointsPerService    *int                  `json:"bpfMaglevMaxEndpointsPerService,omitempty"`
	BPFMaglevMaxServices               *int                  `json:"bpfMaglevMaxServices,omitempty"`
	BPFHostConntrackBypass             *bool                 `json:"bpfHostConntrackBypass,omitempty"`
	BPFEnforceRPF                      string                `json:"bpfEnforceRPF,omitempty"`
	BPFPolicyDebugEnabled              *bool                 `json:"bpfPolicyDebugEnabled,omitempty"`
	BPFForceTrackPacketsFromIfaces     *[]string             `json:"bpfForceTrackPacketsFromIfaces,omitempty"`
	BPFDisableGROForIfaces             string                `json:"bpfDisableGROForIfaces,omitempty"`
	BPFExcludeCIDRsFromNAT             *[]string             `json:"bpfExcludeCIDRsFromNAT,omitempty"`
	BPFExportBufferSizeMB              *int                  `json:"bpfExportBufferSizeMB,omitempty"`
	BPFRedirectToPeer                  string                `json:"bpfRedirectToPeer,omitempty"`
	BPFProfiling                       string                `json:"bpfProfiling,omitempty"`
	BPFAttachType                      *string               `json:"bpfAttachType,omitempty"`
	BPFJITHardening                    *string               `json:"bpfJITHardening,omitempty"`
	BPFIPFragTimeout                   *metav1.Duration      `json:"bpfIPFragTimeout,omitempty"`
	BPFIPFragmentReassemblyEnabled     *bool                 `json:"bpfIPFragmentReassemblyEnabled,omitempty"`
	BPFOverlayHostSourceIP             *string               `json:"bpfOverlayHostSourceIP,omitempty"`

	// Flow logs and Istio.
	FlowLogsPolicyEvaluationMode *string             `json:"flowLogsPolicyEvaluationMode,omitempty"`
	FlowLogsFlushInterval        *metav1.Duration    `json:"flowLogsFlushInterval,omitempty"`
	FlowLogsCollectorDebugTrace  *bool               `json:"flowLogsCollectorDebugTrace,omitempty"`
	FlowLogsGoldmaneServer       *string             `json:"flowLogsGoldmaneServer,omitempty"`
	FlowLogsLocalReporter        *string             `json:"flowLogsLocalReporter,omitempty"`
	IstioAmbientMode             *string             `json:"istioAmbientMode,omitempty"`
	IstioDSCPMark                *intstr.IntOrString `json:"istioDSCPMark,omitempty"`

	// WireGuard.
	WireguardEnabled               *bool            `json:"wireguardEnabled,omitempty"`
	WireguardEnabledV6             *bool            `json:"wireguardEnabledV6,omitempty"`
	WireguardThreadingEnabled      *bool            `json:"wireguardThreadingEnabled,omitempty"`
	WireguardListeningPort         *int             `json:"wireguardListeningPort,omitempty"`
	WireguardListeningPortV6       *int             `json:"wireguardListeningPortV6,omitempty"`
	WireguardRoutingRulePriority   *int             `json:"wireguardRoutingRulePriority,omitempty"`
	WireguardInterfaceName         string           `json:"wireguardInterfaceName,omitempty"`
	WireguardInterfaceNameV6       string           `json:"wireguardInterfaceNameV6,omitempty"`
	WireguardMTU                   *int             `json:"wireguardMTU,omitempty"`
	WireguardMTUV6                 *int             `json:"wireguardMTUV6,omitempty"`
	WireguardHostEncryptionEnabled *bool            `json:"wireguardHostEncryptionEnabled,omitempty"`
	WireguardPersistentKeepAlive   *metav1.Duration `json:"wireguardKeepAlive,omitempty"`
}

// HealthTimeoutOverride overrides the watchdog timeout of one Felix component.
type HealthTimeoutOverride struct {
	Name    string          `json:"name"`
	Timeout metav1.Duration `json:"timeout"`
}

// RouteTableRange is an inclusive range of Linux routing table indices.
type RouteTableRange struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// RouteTableIDRange is one inclusive range in RouteTableRanges.
type RouteTableIDRange struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// RouteTableRanges is a set of routing table index ranges.
type RouteTableRanges []RouteTableIDRange

// ProtoPort is a failsafe port: protocol (default tcp), port and an optional
// CIDR restricting the remote side.
type ProtoPort struct {
	Protocol string `json:"protocol,omitempty"`
	Port     uint16 `json:"port"`
	Net      string `json:"net,omitempty"`
}

// BPFConntrackTimeouts overrides BPF conntrack timers. Each value is a
// duration or "Auto" (take the Linux conntrack setting).
type BPFConntrackTimeouts struct {
	CreationGracePeriod *string `json:"creationGracePeriod,omitempty"`
	TCPSynSent          *string `json:"tcpSynSent,omitempty"`
	TCPEstablished      *string `json:"tcpEstablished,omitempty"`
	TCPFinsSeen         *string `json:"tcpFinsSeen,omitempty"`
	TCPResetSeen        *string `json:"tcpResetSeen,omitempty"`
	UDPTimeout          *string `json:"udpTimeout,omitempty"`
	GenericTimeout      *string `json:"genericTimeout,omitempty"`
	ICMPTimeout         *string `json:"icmpTimeout,omitempty"`
}

var (
	keyValueList    = regexp.MustCompile(`^([a-zA-Z0-9-_]+=(true|false|),)*([a-zA-Z0-9-_]+=(true|false|))?$`)
	featureGateList = regexp.MustCompile(`^([a-zA-Z0-9-_]+=([^=,]+),)*([a-zA-Z0-9-_]+=([^=,]+))?$`)
	logPrefixChars  = regexp.MustCompile(`^([a-zA-Z0-9%: /_-])*$`)
	logRateLimit    = regexp.MustCompile(`^[1-9]\d{0,3}/(second|minute|hour|day)$`)
	conntrackTimer  = regexp.MustCompile(`^(([0-9]*(\.[0-9]*)?(ms|s|h|m|us)+)+|Auto)$`)
)

func strPtr(s string) *string { return &s }

// Default fills what upstream writes on create and update.
func (r *FelixConfiguration) Default() {
	s := &r.Spec
	if s.BPFConnectTimeLoadBalancing == nil {
		s.BPFConnectTimeLoadBalancing = strPtr("TCP")
	}
	if s.BPFHostNetworkedNATWithoutCTLB == nil {
		s.BPFHostNetworkedNATWithoutCTLB = strPtr("Enabled")
	}
	if s.FloatingIPs == nil {
		s.FloatingIPs = strPtr("Disabled")
	}
	if s.NFTablesMode == nil {
		s.NFTablesMode = strPtr("Auto")
	}
	if s.NftablesFlowTableOffload == nil {
		s.NftablesFlowTableOffload = strPtr("Disabled")
	}
	// bpfLogLevel is always written (as "" when unset): its JSON tag has no
	// omitempty, as upstream's does not.
}

// Validate checks the name, the enums and ranges users commonly set, CIDR
// and address fields, failsafe ports and route table ranges.
func (r *FelixConfiguration) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	s := &r.Spec
	if r.Name == "default" || strings.HasPrefix(r.Name, "node.") {
		if strings.HasPrefix(r.Name, "node.") && !IsNodeConfigName(r.Name) {
			v.Add("metadata.name", r.Name, "per-node configuration must be named node.<nodename>")
		}
		if s.NodeSelector != "" {
			v.Add("spec.nodeSelector", s.NodeSelector, "nodeSelector must not be set on the 'default' or per-node ('node.*') FelixConfiguration")
		}
	}
	ValidateSelector(&v, "spec.nodeSelector", s.NodeSelector)
	validateFelixEnums(&v, s)
	validateFelixNumbers(&v, s)
	validateFelixAddresses(&v, s)
	return v.Err()
}

func validateFelixEnums(v *Validator, s *FelixConfigurationSpec) {
	for _, f := range []struct{ name, val string }{
		{"logSeverityScreen", s.LogSeverityScreen}, {"logSeverityFile", s.LogSeverityFile}, {"logSeveritySys", s.LogSeveritySys},
	} {
		enumFieldFold(v, "spec."+f.name, f.val, logLevels...)
	}
	if s.IptablesBackend != nil {
		enumFieldFold(v, "spec.iptablesBackend", *s.IptablesBackend, "Legacy", "NFT", "Auto")
	}
	enumFieldFold(v, "spec.chainInsertMode", s.ChainInsertMode, "Insert", "Append")
	enumFieldFold(v, "spec.defaultEndpointToHostAction", s.DefaultEndpointToHostAction, "Drop", "Accept", "Return")
	for _, f := range []struct{ name, val string }{
		{"iptablesFilterAllowAction", s.IptablesFilterAllowAction}, {"iptablesMangleAllowAction", s.IptablesMangleAllowAction},
		{"nftablesFilterAllowAction", s.NftablesFilterAllowAction}, {"nftablesMangleAllowAction", s.NftablesMangleAllowAction},
	} {
		enumFieldFold(v, "spec."+f.name, f.val, "Accept", "Return")
	}
	enumFieldFold(v, "spec.iptablesFilterDenyAction", s.IptablesFilterDenyAction, "Drop", "Reject")
	enumFieldFold(v, "spec.nftablesFilterDenyAction", s.NftablesFilterDenyAction, "Drop", "Reject")
	enumFieldFold(v, "spec.bpfExternalServiceMode", s.BPFExternalServiceMode, "Tunnel", "DSR")
	enumFieldFold(v, "spec.bpfLogLevel", s.BPFLogLevel, "Off", "Info", "Debug")
	enumFieldFold(v, "spec.bpfEnforceRPF", s.BPFEnforceRPF, "Disabled", "Strict", "Loose")
	enumFieldFold(v, "spec.bpfMapSizeConntrackScaling", s.BPFMapSizeConntrackScaling, "Disabled", "DoubleIfFull")
	enumFieldFold(v, "spec.routeSource", s.RouteSource, "WorkloadIPs", "CalicoIPAM")
	enumFieldFold(v, "spec.serviceLoopPrevention", s.ServiceLoopPrevention, "Drop", "Reject", "Disabled")
	enumFieldFold(v, "spec.workloadSourceSpoofing", s.WorkloadSourceSpoofing, "Disabled", "Any")
	enumField(v, "spec.bpfConntrackLogLevel", s.BPFConntrackLogLevel, "Off", "Debug")
	enumField(v, "spec.bpfProfiling", s.BPFProfiling, "Enabled", "Disabled")
	enumField(v, "spec.ipForwarding", s.IPForwarding, "Enabled", "Disabled")
	// L2Only is deprecated upstream (treated as Enabled) but still accepted.
	enumField(v, "spec.bpfRedirectToPeer", s.BPFRedirectToPeer, "Enabled", "Disabled", "L2Only")
	enabledDisabled := []struct {
		name string
		val  *string
	}{
		{"floatingIPs", s.FloatingIPs}, {"bpfHostNetworkedNATWithoutCTLB", s.BPFHostNetworkedNATWithoutCTLB},
		{"windowsManageFirewallRules", s.WindowsManageFirewallRules}, {"programClusterRoutes", s.ProgramClusterRoutes},
		{"flowLogsLocalReporter", s.FlowLogsLocalReporter}, {"istioAmbientMode", s.IstioAmbientMode},
	}
	for _, f := range enabledDisabled {
		enumPtr(v, "spec."+f.name, f.val, "Enabled", "Disabled")
	}
	enumPtr(v, "spec.nftablesMode", s.NFTablesMode, "Disabled", "Enabled", "Auto")
	enumPtr(v, "spec.bpfConnectTimeLoadBalancing", s.BPFConnectTimeLoadBalancing, "TCP", "Enabled", "Disabled")
	enumPtr(v, "spec.bpfConntrackMode", s.BPFConntrackCleanupMode, "Auto", "Userspace", "BPFProgram")
	enumPtr(v, "spec.bpfAttachType", s.BPFAttachType, "TC", "TCX")
	enumPtr(v, "spec.bpfJITHardening", s.BPFJITHardening, "Auto", "Strict")
	enumPtr(v, "spec.bpfOverlayHostSourceIP", s.BPFOverlayHostSourceIP, "TunnelAddress", "HostAddress")
	enumPtr(v, "spec.awsSrcDstCheck", s.AWSSrcDstCheck, "DoNothing", "Enable", "Disable")
	enumPtr(v, "spec.natOutgoingExclusions", s.NATOutgoingExclusions, "IPPoolsOnly", "IPPoolsAndHostIPs")
	enumPtr(v, "spec.flowLogsPolicyEvaluationMode", s.FlowLogsPolicyEvaluationMode, "None", "Continuous")
	enumPtr(v, "spec.localSubnetL2Reachability", s.LocalSubnetL2Reachability, "Disabled", "PodsAndLoadBalancers")

	patternField(v, "spec.featureDetectOverride", s.FeatureDetectOverride, keyValueList, "a comma-separated list of Feature=true|false")
	patternField(v, "spec.featureGates", s.FeatureGates, featureGateList, "a comma-separated list of Feature=value")
	patternField(v, "spec.logPrefix", s.LogPrefix, logPrefixChars, "letters, digits and % : / _ - or space")
	if s.LogActionRateLimit != nil {
		patternField(v, "spec.logActionRateLimit", *s.LogActionRateLimit, logRateLimit, "N/unit with N 1-9999 and unit second, minute, hour or day")
	}
	for _, f := range []struct{ name, val string }{
		{"logDebugFilenameRegex", s.LogDebugFilenameRegex}, {"bpfDataIfacePattern", s.BPFDataIfacePattern},
		{"bpfL3IfacePattern", s.BPFL3IfacePattern}, {"bpfDisableGROForIfaces", s.BPFDisableGROForIfaces},
		{"mtuIfacePattern", s.MTUIfacePattern},
	} {
		regexpField(v, "spec."+f.name, f.val)
	}
	for _, f := range []struct{ name, val string }{
		{"wireguardInterfaceName", s.WireguardInterfaceName}, {"wireguardInterfaceNameV6", s.WireguardInterfaceNameV6},
	} {
		if f.val != "" && !IsInterfaceName(f.val) {
			v.Add("spec."+f.name, f.val, "invalid interface name")
		}
	}
	if t := s.BPFConntrackTimeouts; t != nil {
		for _, f := range []struct {
			name string
			val  *string
		}{
			{"creationGracePeriod", t.CreationGracePeriod}, {"tcpSynSent", t.TCPSynSent}, {"tcpEstablished", t.TCPEstablished},
			{"tcpFinsSeen", t.TCPFinsSeen}, {"tcpResetSeen", t.TCPResetSeen}, {"udpTimeout", t.UDPTimeout},
			{"genericTimeout", t.GenericTimeout}, {"icmpTimeout", t.ICMPTimeout},
		} {
			if f.val != nil && !conntrackTimer.MatchString(*f.val) {
				v.Add("spec.bpfConntrackTimeouts."+f.name, *f.val, "must be a duration or Auto")
			}
		}
	}
	for i, h := range s.HealthTimeoutOverrides {
		if h.Name == "" {
			v.Add(fmt.Sprintf("spec.healthTimeoutOverrides[%d].name", i), "", "name is required")
		}
	}
}

func validateFelixNumbers(v *Validator, s *FelixConfigurationSpec) {
	for _, f := range []struct {
		name    string
		val     *int
		nonZero bool
	}{
		{"healthPort", s.HealthPort, false}, {"prometheusMetricsPort", s.PrometheusMetricsPort, false},
		{"debugPort", s.DebugPort, false}, {"metadataPort", s.MetadataPort, false},
		{"vxlanPort", s.VXLANPort, false}, {"bpfKubeProxyHealthzPort", s.BPFKubeProxyHealthzPort, false},
		{"wireguardListeningPort", s.WireguardListeningPort, true}, {"wireguardListeningPortV6", s.WireguardListeningPortV6, true},
	} {
		portField(v, "spec."+f.name, f.val, f.nonZero)
	}
	// MTU 0 means auto-detect.
	for _, f := range []struct {
		name string
		val  *int
		min  int
	}{
		{"ipipMTU", s.IPIPMTU, 68}, {"vxlanMTU", s.VXLANMTU, 68}, {"wireguardMTU", s.WireguardMTU, 68},
		{"vxlanMTUV6", s.VXLANMTUV6, 1280}, {"wireguardMTUV6", s.WireguardMTUV6, 1280},
	} {
		if f.val != nil && *f.val != 0 && (*f.val < f.min || *f.val > 65535) {
			v.Add("spec."+f.name, *f.val, fmt.Sprintf("MTU must be 0 (auto-detect) or between %d and 65535", f.min))
		}
	}
	rangeField(v, "spec.vxlanVNI", s.VXLANVNI, 1, 1<<24-1)
	rangeField(v, "spec.deviceRouteProtocol", s.DeviceRouteProtocol, 0, 255)
	rangeField(v, "spec.wireguardRoutingRulePriority", s.WireguardRoutingRulePriority, 1, 32765)
	rangeField(v, "spec.bpfExtToServiceConnmark", s.BPFExtToServiceConnmark, 0, 1<<32-1)
	rangeField(v, "spec.bpfMapSizeConntrackCleanupQueue", s.BPFMapSizeConntrackCleanupQueue, 1, 1<<31-1)
	rangeField(v, "spec.logActionRateLimitBurst", s.LogActionRateLimitBurst, 0, 9999)
	for _, f := range []struct {
		name string
		val  *int
	}{{"goGCThreshold", s.GoGCThreshold}, {"goMemoryLimitMB", s.GoMemoryLimitMB}, {"goMaxProcs", s.GoMaxProcs}} {
		rangeField(v, "spec."+f.name, f.val, -1, 1<<31-1)
	}
	if s.RouteTableRange != nil && s.RouteTableRanges != nil {
		v.Add("spec.routeTableRanges", "set", "routeTableRange and routeTableRanges cannot both be set")
	}
	if rr := s.RouteTableRange; rr != nil && (rr.Min < 1 || rr.Max < rr.Min || rr.Max > 250) {
		v.Add("spec.routeTableRange", fmt.Sprintf("%d-%d", rr.Min, rr.Max), "must be a range of route table indices within 1..250")
	}
	if s.RouteTableRanges != nil {
		for i, rr := range *s.RouteTableRanges {
			if rr.Min < 1 || rr.Max < rr.Min || int64(rr.Max) > 1<<32-1 {
				v.Add(fmt.Sprintf("spec.routeTableRanges[%d]", i), fmt.Sprintf("%d-%d", rr.Min, rr.Max), "min must be at least 1 and not greater than max")
			}
		}
	}
	if s.KubeNodePortRanges != nil && len(*s.KubeNodePortRanges) > 7 {
		v.Add("spec.kubeNodePortRanges", len(*s.KubeNodePortRanges), "at most 7 port ranges are allowed")
	}
	for _, f := range []struct {
		name  string
		ports *[]ProtoPort
	}{{"failsafeInboundHostPorts", s.FailsafeInboundHostPorts}, {"failsafeOutboundHostPorts", s.FailsafeOutboundHostPorts}} {
		if f.ports == nil {
			continue
		}
		for i, pp := range *f.ports {
			fld := fmt.Sprintf("spec.%s[%d]", f.name, i)
			enumFieldFold(v, fld+".protocol", pp.Protocol, "TCP", "UDP", "SCTP")
			if pp.Net != "" {
				ValidateCIDR(v, fld+".net", pp.Net, true)
			}
		}
	}
}

func validateFelixAddresses(v *Validator, s *FelixConfigurationSpec) {
	ipFamilyField(v, "spec.natOutgoingAddress", s.NATOutgoingAddress, 4)
	ipFamilyField(v, "spec.deviceRouteSourceAddress", s.DeviceRouteSourceAddress, 4)
	ipFamilyField(v, "spec.deviceRouteSourceAddressIPv6", s.DeviceRouteSourceAddressIPv6, 6)
	for _, f := range []struct {
		name string
		val  *[]string
	}{
		{"bpfDSROptoutCIDRs", s.BPFDSROptoutCIDRs}, {"bpfExcludeCIDRsFromNAT", s.BPFExcludeCIDRsFromNAT},
		{"externalNodesList", s.ExternalNodesCIDRList},
	} {
		if f.val != nil {
			cidrListField(v, "spec."+f.name, *f.val)
		}
	}
}

// NewFelixConfiguration returns an empty FelixConfiguration with its type
// metadata set.
func NewFelixConfiguration(name string) *FelixConfiguration {
	fc := &FelixConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}}
	SetTypeMeta(fc)
	return fc
}
