package resources

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opencalico/calicoctl/resources/selector"
)

// IPPool is the projectcalico.org/v3 IPPool resource: a range of addresses
// that Calico IPAM hands out, and how traffic to it is encapsulated.
type IPPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              IPPoolSpec `json:"spec,omitempty"`
}

// EncapMode is the value of ipipMode and vxlanMode.
type EncapMode string

// Encapsulation modes of a pool.
const (
	EncapNever       EncapMode = "Never"
	EncapAlways      EncapMode = "Always"
	EncapCrossSubnet EncapMode = "CrossSubnet"
)

// ParseEncapMode accepts the spellings of a mode seen in environment
// variables and older manifests, case-insensitive: "" and "off" mean Never,
// "cross-subnet" means CrossSubnet.
func ParseEncapMode(s string) (EncapMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "off", "never":
		return EncapNever, nil
	case "always":
		return EncapAlways, nil
	case "crosssubnet", "cross-subnet":
		return EncapCrossSubnet, nil
	}
	return "", fmt.Errorf("encapsulation mode %q: must be Always, CrossSubnet or Never", s)
}

// Normal is m in its canonical spelling; anything unknown is Never.
func (m EncapMode) Normal() EncapMode {
	n, err := ParseEncapMode(string(m))
	if err != nil {
		return EncapNever
	}
	return n
}

// On reports whether the mode encapsulates some traffic: Always or
// CrossSubnet (in any accepted spelling).
func (m EncapMode) On() bool { return m.Normal() != EncapNever }

// Encaps reports whether traffic to a node is encapsulated under mode m:
// always for Always, only across subnets for CrossSubnet.
func (m EncapMode) Encaps(sameSubnet bool) bool {
	switch m.Normal() {
	case EncapAlways:
		return true
	case EncapCrossSubnet:
		return !sameSubnet
	}
	return false
}

// IPPoolAllowedUse is one purpose a pool may serve.
type IPPoolAllowedUse string

// Allowed uses of a pool.
const (
	AllowedUseWorkload     IPPoolAllowedUse = "Workload"
	AllowedUseTunnel       IPPoolAllowedUse = "Tunnel"
	AllowedUseLoadBalancer IPPoolAllowedUse = "LoadBalancer"
)

// AssignmentMode says whether IPAM picks from the pool on its own.
type AssignmentMode string

// Assignment modes.
const (
	AssignmentAutomatic AssignmentMode = "Automatic"
	AssignmentManual    AssignmentMode = "Manual"
)

// IPPoolSpec is the spec of an IPPool.
type IPPoolSpec struct {
	// CIDR is the pool's range, e.g. 10.244.0.0/16.
	CIDR string `json:"cidr"`
	// VXLANMode is Never (default), Always or CrossSubnet.
	VXLANMode EncapMode `json:"vxlanMode,omitempty"`
	// IPIPMode is Never (default), Always or CrossSubnet; IPv4 pools only.
	IPIPMode EncapMode `json:"ipipMode,omitempty"`
	// NATOutgoing masquerades traffic from the pool to destinations outside
	// all pools.
	NATOutgoing bool `json:"natOutgoing,omitempty"`
	// Disabled stops IPAM assigning new addresses from the pool.
	Disabled bool `json:"disabled,omitempty"`
	// DisableBGPExport keeps the pool's routes out of BGP.
	DisableBGPExport bool `json:"disableBGPExport,omitempty"`
	// BlockSize is the prefix length of the blocks carved from the pool
	// (default 26 for IPv4, 122 for IPv6).
	BlockSize int `json:"blockSize,omitempty"`
	// NodeSelector picks the nodes that may allocate from the pool.
	NodeSelector string `json:"nodeSelector,omitempty"`
	// NamespaceSelector picks the namespaces whose pods may use the pool.
	NamespaceSelector string `json:"namespaceSelector,omitempty"`
	// IPIP is the API v1 form of ipipMode, kept so old stored objects decode;
	// it may not be set.
	IPIP *LegacyIPIPConfiguration `json:"ipip,omitempty"`
	// NATOutgoingV1 is the API v1 form of natOutgoing; it may not be set.
	NATOutgoingV1 bool `json:"nat-outgoing,omitempty"`
	// AllowedUses lists what the pool is for (default [Workload, Tunnel]).
	AllowedUses []IPPoolAllowedUse `json:"allowedUses,omitempty"`
	// AssignmentMode is Automatic (default) or Manual.
	AssignmentMode *AssignmentMode `json:"assignmentMode,omitempty"`
}

// LegacyIPIPConfiguration is the API v1 IPIP setting of a pool.
type LegacyIPIPConfiguration struct {
	Enabled bool   `json:"enabled,omitempty"`
	Mode    string `json:"mode,omitempty"`
}

// Block sizes accepted per family, and the defaults.
const (
	DefaultBlockSizeV4 = 26
	DefaultBlockSizeV6 = 122
	minBlockSizeV4     = 20
	minBlockSizeV6     = 116
)

var (
	linkLocalV4 = netip.MustParsePrefix("169.254.0.0/16")
	linkLocalV6 = netip.MustParsePrefix("fe80::/10")
)

// Default fills what upstream writes on create: block size by family, the
// all() node selector, Never encapsulation, [Workload, Tunnel] and Automatic.
func (r *IPPool) Default() {
	s := &r.Spec
	// Stored in canonical form, as upstream stores it ("10.0.0.0/016" ->
	// "10.0.0.0/16").
	if p, err := ParsePrefix(s.CIDR); err == nil {
		s.CIDR = p.String()
	}
	if s.BlockSize == 0 {
		if p, err := netip.ParsePrefix(s.CIDR); err == nil {
			s.BlockSize = DefaultBlockSizeV4
			if p.Addr().Is6() && !p.Addr().Is4In6() {
				s.BlockSize = DefaultBlockSizeV6
			}
		}
	}
	if s.NodeSelector == "" {
		s.NodeSelector = "all()"
	}
	if s.IPIPMode == "" {
		s.IPIPMode = EncapNever
	}
	if s.VXLANMode == "" {
		s.VXLANMode = EncapNever
	}
	if len(s.AllowedUses) == 0 {
		s.AllowedUses = []IPPoolAllowedUse{AllowedUseWorkload, AllowedUseTunnel}
	}
	if s.AssignmentMode == nil {
		m := AssignmentAutomatic
		s.AssignmentMode = &m
	}
}

// Validate checks the pool as upstream's validator does.
func (r *IPPool) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	s := &r.Spec

	var pool netip.Prefix
	poolOK := false
	if s.CIDR == "" {
		v.Add("spec.cidr", "", "cidr is required")
	} else if p, ok := ValidateCIDR(&v, "spec.cidr", s.CIDR, false); ok {
		pool, poolOK = p, true
		if p.Masked() != p {
			v.Add("spec.cidr", s.CIDR, fmt.Sprintf("IP pool CIDR is not strictly masked (did you mean %s?)", p.Masked()))
		}
	}
	isV6 := poolOK && pool.Addr().Is6()

	if poolOK {
		ll := linkLocalV4
		if isV6 {
			ll = linkLocalV6
		}
		if pool.Overlaps(ll) {
			v.Add("spec.cidr", s.CIDR, "IP pool range overlaps with the link-local range "+ll.String())
		}
		lo, hi := minBlockSizeV4, 32
		if isV6 {
			lo, hi = minBlockSizeV6, 128
		}
		switch {
		case s.BlockSize == 0:
			// Filled by Default.
		case s.BlockSize < lo || s.BlockSize > hi:
			v.Add("spec.blockSize", s.BlockSize, fmt.Sprintf("block size must be between %d and %d for this IP family", lo, hi))
		case pool.Bits() > s.BlockSize:
			v.Add("spec.blockSize", s.BlockSize, fmt.Sprintf("IP pool /%d is smaller than one block (/%d)", pool.Bits(), s.BlockSize))
		}
	}

	ipipOK := enumField(&v, "spec.ipipMode", string(s.IPIPMode), "Never", "Always", "CrossSubnet")
	vxlanOK := enumField(&v, "spec.vxlanMode", string(s.VXLANMode), "Never", "Always", "CrossSubnet")
	ipipOn := ipipOK && s.IPIPMode != "" && s.IPIPMode != EncapNever
	vxlanOn := vxlanOK && s.VXLANMode != "" && s.VXLANMode != EncapNever
	if ipipOn && vxlanOn {
		v.Add("spec.vxlanMode", s.VXLANMode, "ipipMode and vxlanMode cannot both be enabled")
	}
	if ipipOn && isV6 {
		v.Add("spec.ipipMode", s.IPIPMode, "IPIP is not supported on an IPv6 IP pool")
	}
	if s.IPIP != nil {
		v.Add("spec.ipip", "set", "field is for API v1 compatibility only and must not be set; use ipipMode")
	}
	if s.NATOutgoingV1 {
		v.Add("spec.nat-outgoing", true, "field is for API v1 compatibility only and must not be set; use natOutgoing")
	}

	nodeSel := validatePoolSelector(&v, "spec.nodeSelector", s.NodeSelector)
	validatePoolSelector(&v, "spec.namespaceSelector", s.NamespaceSelector)

	seen := map[IPPoolAllowedUse]bool{}
	for i, u := range s.AllowedUses {
		f := fmt.Sprintf("spec.allowedUses[%d]", i)
		if u != AllowedUseWorkload && u != AllowedUseTunnel && u != AllowedUseLoadBalancer {
			v.Add(f, u, "must be one of Workload, Tunnel, LoadBalancer")
			continue
		}
		if seen[u] {
			v.Add(f, u, "duplicate allowed use")
		}
		seen[u] = true
	}
	if slices.Contains(s.AllowedUses, AllowedUseLoadBalancer) {
		if seen[AllowedUseWorkload] || seen[AllowedUseTunnel] {
			v.Add("spec.allowedUses", s.AllowedUses, "LoadBalancer cannot be combined with Workload or Tunnel")
		}
		if ipipOn || vxlanOn {
			v.Add("spec.allowedUses", s.AllowedUses, "LoadBalancer pools must not use IPIP or VXLAN encapsulation")
		}
		if nodeSel != nil && !nodeSel.IsAll() {
			v.Add("spec.nodeSelector", s.NodeSelector, "LoadBalancer pools must use the all() node selector")
		}
		if s.DisableBGPExport {
			v.Add("spec.disableBGPExport", true, "LoadBalancer pools must be exported over BGP")
		}
	}
	if s.AssignmentMode != nil {
		enumPtr(&v, "spec.assignmentMode", s.AssignmentMode, "Automatic", "Manual")
	}
	return v.Err()
}

// validatePoolSelector checks a pool selector parses and does not use
// global(); it returns the parsed selector when valid.
func validatePoolSelector(v *Validator, field, s string) *selector.Selector {
	if s == "" || !checkSelectorLen(v, field, s) {
		return nil
	}
	sel, err := selector.Parse(s)
	if err != nil {
		v.Add(field, s, "invalid selector: "+err.Error())
		return nil
	}
	if sel.UsesGlobal() {
		v.Add(field, s, "global() is not allowed in an IP pool selector")
		return nil
	}
	return sel
}
