package policy

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

// FromModel is the Input of node for the followed state m, with the
// FelixConfiguration settings felix (see SettingsFrom). Call it inside
// Follower.Read: the Input shares m's objects and records, which stay
// valid after Read returns (the model replaces objects, never modifies
// them) but must not be modified. Every slice is in a stable order:
// objects by namespace/name, endpoints by namespace and name.
func FromModel(m *state.Model, node string, felix Settings) Input {
	eps := slices.Collect(maps.Values(m.WorkloadEndpoints()))
	slices.SortFunc(eps, func(a, b *state.Endpoint) int {
		return cmp.Or(strings.Compare(a.Key.Namespace, b.Key.Namespace), strings.Compare(a.Key.Name, b.Key.Name))
	})
	return Input{
		NodeName:          node,
		Tiers:             m.Tiers(),
		GlobalPolicies:    m.GlobalNetworkPolicies(),
		Policies:          m.NetworkPolicies(),
		Profiles:          m.Profiles(),
		GlobalNetworkSets: m.GlobalNetworkSets(),
		NetworkSets:       m.NetworkSets(),
		HostEndpoints:     m.HostEndpoints(),
		Endpoints:         eps,
		Felix:             felix,
	}
}

// SettingsFrom reads the fields policy uses from one FelixConfiguration
// (nil: all defaults). Actions are normalised to the capitalisation
// Settings documents (the API accepts any case, e.g. ACCEPT from
// FELIX_DEFAULTENDPOINTTOHOSTACTION); an unknown action is left as
// written. The deny action is nftablesFilterDenyAction (our dataplane is
// nftables), else iptablesFilterDenyAction. A failsafe list that is set
// but empty stays empty (no failsafes), unlike an unset one (nil:
// upstream's defaults).
func SettingsFrom(fc *resources.FelixConfiguration) Settings {
	if fc == nil {
		return Settings{}
	}
	s := &fc.Spec
	return Settings{
		DefaultEndpointToHostAction: canonical(s.DefaultEndpointToHostAction, "Drop", "Return", "Accept"),
		FilterDenyAction:            canonical(cmp.Or(s.NftablesFilterDenyAction, s.IptablesFilterDenyAction), "Drop", "Reject"),
		FailsafeInboundHostPorts:    failsafePorts(s.FailsafeInboundHostPorts),
		FailsafeOutboundHostPorts:   failsafePorts(s.FailsafeOutboundHostPorts),
	}
}

// canonical returns the one of names that v equals ignoring case, else v.
func canonical(v string, names ...string) string {
	for _, n := range names {
		if strings.EqualFold(v, n) {
			return n
		}
	}
	return v
}

// failsafePorts copies a failsafe list: nil when unset, non-nil when set (even
// to nothing).
func failsafePorts(p *[]resources.ProtoPort) []resources.ProtoPort {
	if p == nil {
		return nil
	}
	out := make([]resources.ProtoPort, len(*p))
	copy(out, *p)
	return out
}

// Add puts one object of a policy kind into the Input (a WorkloadEndpoint
// as its record, FelixConfiguration default as Settings) and reports
// whether it is one of them. It is how callers that read the datastore
// directly (`calicoctl policy explain`) and tests build an Input.
func (in *Input) Add(r resources.Resource) bool {
	switch r := r.(type) {
	case *resources.Tier:
		in.Tiers = append(in.Tiers, r)
	case *resources.GlobalNetworkPolicy:
		in.GlobalPolicies = append(in.GlobalPolicies, r)
	case *resources.NetworkPolicy:
		in.Policies = append(in.Policies, r)
	case *resources.Profile:
		in.Profiles = append(in.Profiles, r)
	case *resources.GlobalNetworkSet:
		in.GlobalNetworkSets = append(in.GlobalNetworkSets, r)
	case *resources.NetworkSet:
		in.NetworkSets = append(in.NetworkSets, r)
	case *resources.HostEndpoint:
		in.HostEndpoints = append(in.HostEndpoints, r)
	case *resources.WorkloadEndpoint:
		in.Endpoints = append(in.Endpoints, state.EndpointOf(r))
	case *resources.FelixConfiguration:
		if r.Name == "default" {
			in.Felix = SettingsFrom(r)
		}
	default:
		return false
	}
	return true
}
