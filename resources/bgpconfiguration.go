package resources

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BGPConfiguration is the projectcalico.org/v3 BGPConfiguration resource. The
// object named "default" holds cluster-wide settings; "node.<nodename>"
// objects override some of them for one node.
type BGPConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BGPConfigurationSpec `json:"spec,omitempty"`
}

// BGPConfigurationSpec is the spec of a BGPConfiguration.
type BGPConfigurationSpec struct {
	// LogSeverityScreen is BIRD's log level (default Info).
	LogSeverityScreen string `json:"logSeverityScreen,omitempty"`
	// NodeToNodeMeshEnabled turns the full node-to-node mesh on (default) or
	// off. Global only.
	NodeToNodeMeshEnabled *bool `json:"nodeToNodeMeshEnabled,omitempty"`
	// ASNumber is the default AS of every node (default 64512). Global only.
	ASNumber *ASNumber `json:"asNumber,omitempty"`
	// ServiceLoadBalancerIPs are advertised from every node.
	ServiceLoadBalancerIPs []ServiceIPBlock `json:"serviceLoadBalancerIPs,omitempty"`
	// ServiceExternalIPs are advertised from every node. Global only.
	ServiceExternalIPs []ServiceIPBlock `json:"serviceExternalIPs,omitempty"`
	// ServiceClusterIPs are advertised from every node. Global only.
	ServiceClusterIPs []ServiceIPBlock `json:"serviceClusterIPs,omitempty"`
	// ListenPort is the port BIRD listens on (default 179).
	ListenPort uint16 `json:"listenPort,omitempty"`
	// Communities names BGP community values for use in prefixAdvertisements.
	Communities []Community `json:"communities,omitempty"`
	// PrefixAdvertisements attach communities to advertised prefixes.
	PrefixAdvertisements []PrefixAdvertisement `json:"prefixAdvertisements,omitempty"`
	// NodeMeshPassword protects the mesh sessions.
	NodeMeshPassword *BGPPassword `json:"nodeMeshPassword,omitempty"`
	// NodeMeshMaxRestartTime is the mesh graceful-restart time.
	NodeMeshMaxRestartTime *metav1.Duration `json:"nodeMeshMaxRestartTime,omitempty"`
	// BindMode is None (listen on all addresses) or NodeIP.
	BindMode *string `json:"bindMode,omitempty"`
	// IgnoredInterfaces are interface globs whose addresses BIRD ignores.
	IgnoredInterfaces []string `json:"ignoredInterfaces,omitempty"`
	// LocalWorkloadPeeringIPV4 is the node-side address for peering with
	// local workloads.
	LocalWorkloadPeeringIPV4 string `json:"localWorkloadPeeringIPV4,omitempty"`
	// LocalWorkloadPeeringIPV6 is the IPv6 counterpart.
	LocalWorkloadPeeringIPV6 string `json:"localWorkloadPeeringIPV6,omitempty"`
	// ProgramClusterRoutes is Enabled or Disabled: whether BIRD programs
	// routes for no-encapsulation and IPIP pools.
	ProgramClusterRoutes *string `json:"programClusterRoutes,omitempty"`
	// ServiceLoadBalancerAggregation is Enabled (default) or Disabled.
	ServiceLoadBalancerAggregation *string `json:"serviceLoadBalancerAggregation,omitempty"`
}

// ServiceIPBlock is one advertised service CIDR.
type ServiceIPBlock struct {
	CIDR string `json:"cidr,omitempty"`
}

// Community names a BGP community: "a:b" (standard) or "a:b:c" (large).
type Community struct {
	Name  string `json:"name,omitempty"`
	Value string `json:"value,omitempty"`
}

// PrefixAdvertisement lists the communities attached to one prefix; each
// entry is a community name or a literal value.
type PrefixAdvertisement struct {
	CIDR        string   `json:"cidr,omitempty"`
	Communities []string `json:"communities,omitempty"`
}

var (
	communityValue = regexp.MustCompile(`^(\d+):(\d+)$|^(\d+):(\d+):(\d+)$`)
	ifaceGlob      = regexp.MustCompile(`^[a-zA-Z0-9_.\-*?\[\]]{1,15}$`)
	logLevels      = []string{"Trace", "Debug", "Info", "Warning", "Error", "Fatal"}
)

// IsNodeConfigName reports whether name is "node.<nodename>" with a valid
// node name, the form of a per-node BGPConfiguration or FelixConfiguration.
func IsNodeConfigName(name string) bool {
	n, ok := strings.CutPrefix(name, "node.")
	return ok && n != "" && IsDNS1123Subdomain(n)
}

// Default fills serviceLoadBalancerAggregation: Enabled, as upstream does.
func (r *BGPConfiguration) Default() {
	if r.Spec.ServiceLoadBalancerAggregation == nil {
		s := "Enabled"
		r.Spec.ServiceLoadBalancerAggregation = &s
	}
}

// Validate checks the object: its name ("default" or "node.<nodename>"),
// enums, CIDRs, communities and the fields only the default may set.
func (r *BGPConfiguration) Validate() error {
	var v Validator
	ValidateMeta(&v, r, func(n string) bool { return n == "default" || IsNodeConfigName(n) })
	s := &r.Spec
	enumFieldFold(&v, "spec.logSeverityScreen", s.LogSeverityScreen, logLevels...)
	if r.Name != "default" {
		if s.NodeToNodeMeshEnabled != nil {
			v.Add("spec.nodeToNodeMeshEnabled", *s.NodeToNodeMeshEnabled, "can only be set on the default BGPConfiguration")
		}
		if s.ASNumber != nil {
			v.Add("spec.asNumber", *s.ASNumber, "can only be set on the default BGPConfiguration")
		}
		if len(s.ServiceExternalIPs) > 0 {
			v.Add("spec.serviceExternalIPs", s.ServiceExternalIPs, "can only be set on the default BGPConfiguration")
		}
		if len(s.ServiceClusterIPs) > 0 {
			v.Add("spec.serviceClusterIPs", s.ServiceClusterIPs, "can only be set on the default BGPConfiguration")
		}
	}
	for _, l := range []struct {
		name   string
		blocks []ServiceIPBlock
	}{
		{"serviceClusterIPs", s.ServiceClusterIPs},
		{"serviceExternalIPs", s.ServiceExternalIPs},
		{"serviceLoadBalancerIPs", s.ServiceLoadBalancerIPs},
	} {
		for i, b := range l.blocks {
			ValidateCIDR(&v, fmt.Sprintf("spec.%s[%d].cidr", l.name, i), b.CIDR, false)
		}
	}
	meshOff := s.NodeToNodeMeshEnabled != nil && !*s.NodeToNodeMeshEnabled
	if s.NodeMeshPassword != nil {
		if meshOff {
			v.Add("spec.nodeMeshPassword", "set", "cannot be set when nodeToNodeMeshEnabled is false")
		}
		validateBGPPassword(&v, "spec.nodeMeshPassword", s.NodeMeshPassword)
	}
	if s.NodeMeshMaxRestartTime != nil && meshOff {
		v.Add("spec.nodeMeshMaxRestartTime", s.NodeMeshMaxRestartTime.Duration.String(), "cannot be set when nodeToNodeMeshEnabled is false")
	}
	enumPtr(&v, "spec.bindMode", s.BindMode, "None", "NodeIP")
	enumPtr(&v, "spec.programClusterRoutes", s.ProgramClusterRoutes, "Enabled", "Disabled")
	enumPtr(&v, "spec.serviceLoadBalancerAggregation", s.ServiceLoadBalancerAggregation, "Enabled", "Disabled")
	ipFamilyField(&v, "spec.localWorkloadPeeringIPV4", s.LocalWorkloadPeeringIPV4, 4)
	ipFamilyField(&v, "spec.localWorkloadPeeringIPV6", s.LocalWorkloadPeeringIPV6, 6)
	for i, g := range s.IgnoredInterfaces {
		patternField(&v, fmt.Sprintf("spec.ignoredInterfaces[%d]", i), g, ifaceGlob, "an interface name or glob of at most 15 characters")
	}

	names := map[string]bool{}
	for i, c := range s.Communities {
		f := fmt.Sprintf("spec.communities[%d]", i)
		if c.Name == "" || strings.ContainsAny(c.Name, ": \t") {
			v.Add(f+".name", c.Name, "community name must be non-empty without ':' or spaces")
		} else if names[c.Name] {
			v.Add(f+".name", c.Name, "duplicate community name")
		}
		names[c.Name] = true
		validateCommunityValue(&v, f+".value", c.Value)
	}
	for i, pa := range s.PrefixAdvertisements {
		f := fmt.Sprintf("spec.prefixAdvertisements[%d]", i)
		ValidateCIDR(&v, f+".cidr", pa.CIDR, false)
		for j, c := range pa.Communities {
			cf := fmt.Sprintf("%s.communities[%d]", f, j)
			if communityValue.MatchString(c) {
				validateCommunityValue(&v, cf, c)
			} else if !names[c] {
				v.Add(cf, c, "must be a community value (a:b or a:b:c) or the name of an entry in spec.communities")
			}
		}
	}
	return v.Err()
}

// validateCommunityValue checks "a:b" (two 16-bit parts) or "a:b:c" (three
// 32-bit parts).
func validateCommunityValue(v *Validator, field, value string) {
	if !communityValue.MatchString(value) {
		v.Add(field, value, "must be a standard (aa:nn) or large (aa:nn:mm) community")
		return
	}
	parts := strings.Split(value, ":")
	bits := 16
	if len(parts) == 3 {
		bits = 32
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, bits); err != nil {
			v.Add(field, value, fmt.Sprintf("each part must fit in %d bits", bits))
			return
		}
	}
}
