package policy

import (
	"reflect"
	"testing"

	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

func testWEP(ns, name, node, ip string) *resources.WorkloadEndpoint {
	w := &resources.WorkloadEndpoint{Spec: resources.WorkloadEndpointSpec{Node: node, InterfaceName: "cali" + name,
		IPNetworks: []string{ip}, Profiles: []string{"kns." + ns}}}
	w.Namespace, w.Name = ns, name
	w.Labels = map[string]string{"app": name}
	return w
}

// TestFromModel: every followed policy object and every endpoint of the
// cluster (not only this node's) reach the Input, in a stable order.
func TestFromModel(t *testing.T) {
	m := state.NewModel()
	order := 10.0
	tier := &resources.Tier{Spec: resources.TierSpec{Order: &order}}
	tier.Name = "net"
	gnp := &resources.GlobalNetworkPolicy{Spec: resources.GlobalNetworkPolicySpec{Selector: "all()"}}
	gnp.Name = "g"
	np2 := &resources.NetworkPolicy{Spec: resources.NetworkPolicySpec{Selector: "app == 'db'"}}
	np2.Namespace, np2.Name = "b", "knp.default.db"
	np1 := &resources.NetworkPolicy{}
	np1.Namespace, np1.Name = "a", "p"
	prof := &resources.Profile{Spec: resources.ProfileSpec{LabelsToApply: map[string]string{"pcns.tenant": "a"}}}
	prof.Name = "kns.a"
	gns := &resources.GlobalNetworkSet{Spec: resources.GlobalNetworkSetSpec{Nets: []string{"1.2.3.0/24"}}}
	gns.Name = "ext"
	ns := &resources.NetworkSet{Spec: resources.NetworkSetSpec{Nets: []string{"5.6.7.0/24"}}}
	ns.Namespace, ns.Name = "a", "partners"
	hep := &resources.HostEndpoint{Spec: resources.HostEndpointSpec{Node: "n1", InterfaceName: "eth0"}}
	hep.Name = "n1-eth0"
	for _, r := range []resources.Resource{tier, gnp, np2, np1, prof, gns, ns, hep} {
		if !m.SetPolicyObject(r) {
			t.Fatalf("%s not added", resources.KeyOf(r))
		}
	}
	m.SetWorkloadEndpoint(testWEP("b", "n2-k8s-db-eth0", "n2", "10.0.1.2/32"))
	m.SetWorkloadEndpoint(testWEP("a", "n1-k8s-web-eth0", "n1", "10.0.0.2/32"))
	m.SetWorkloadEndpoint(testWEP("a", "n1-k8s-api-eth0", "n1", "10.0.0.3/32"))

	felix := Settings{DefaultEndpointToHostAction: "Accept"}
	in := FromModel(m, "n1", felix)
	if in.NodeName != "n1" || in.Felix.DefaultEndpointToHostAction != "Accept" {
		t.Errorf("node %q, felix %+v", in.NodeName, in.Felix)
	}
	if len(in.Tiers) != 1 || in.Tiers[0] != tier || len(in.GlobalPolicies) != 1 || in.GlobalPolicies[0] != gnp ||
		len(in.Profiles) != 1 || in.Profiles[0] != prof || len(in.GlobalNetworkSets) != 1 || in.GlobalNetworkSets[0] != gns ||
		len(in.NetworkSets) != 1 || in.NetworkSets[0] != ns || len(in.HostEndpoints) != 1 || in.HostEndpoints[0] != hep {
		t.Errorf("input objects = %+v", in)
	}
	if len(in.Policies) != 2 || in.Policies[0] != np1 || in.Policies[1] != np2 {
		t.Errorf("policies not in namespace/name order: %v", in.Policies)
	}
	var eps []string
	for _, e := range in.Endpoints {
		eps = append(eps, e.Key.Namespace+"/"+e.Key.Name+"@"+e.Node)
	}
	want := []string{"a/n1-k8s-api-eth0@n1", "a/n1-k8s-web-eth0@n1", "b/n2-k8s-db-eth0@n2"}
	if !reflect.DeepEqual(eps, want) {
		t.Errorf("endpoints = %v, want %v", eps, want)
	}
	if e := in.Endpoints[0]; e.Labels["app"] != "n1-k8s-api-eth0" || len(e.Profiles) != 1 || e.Profiles[0] != "kns.a" {
		t.Errorf("endpoint record = %+v", e)
	}
	if empty := FromModel(state.NewModel(), "n1", Settings{}); len(empty.Endpoints) != 0 || len(empty.Policies) != 0 {
		t.Errorf("empty model gave %+v", empty)
	}
}

func TestSettingsFrom(t *testing.T) {
	ssh := resources.ProtoPort{Protocol: "tcp", Port: 22}
	tests := []struct {
		name string
		spec resources.FelixConfigurationSpec
		want Settings
	}{
		{"unset", resources.FelixConfigurationSpec{}, Settings{}},
		{"actions in any case", resources.FelixConfigurationSpec{DefaultEndpointToHostAction: "ACCEPT", NftablesFilterDenyAction: "reject"},
			Settings{DefaultEndpointToHostAction: "Accept", FilterDenyAction: "Reject"}},
		{"return", resources.FelixConfigurationSpec{DefaultEndpointToHostAction: "Return"}, Settings{DefaultEndpointToHostAction: "Return"}},
		{"iptables deny action when nftables' is unset", resources.FelixConfigurationSpec{IptablesFilterDenyAction: "Reject"},
			Settings{FilterDenyAction: "Reject"}},
		{"nftables deny action wins", resources.FelixConfigurationSpec{IptablesFilterDenyAction: "Reject", NftablesFilterDenyAction: "Drop"},
			Settings{FilterDenyAction: "Drop"}},
		{"failsafes", resources.FelixConfigurationSpec{FailsafeInboundHostPorts: &[]resources.ProtoPort{ssh}, FailsafeOutboundHostPorts: &[]resources.ProtoPort{}},
			Settings{FailsafeInboundHostPorts: []resources.ProtoPort{ssh}, FailsafeOutboundHostPorts: []resources.ProtoPort{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := resources.NewFelixConfiguration("default")
			fc.Spec = tt.spec
			got := SettingsFrom(fc)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SettingsFrom = %+v, want %+v", got, tt.want)
			}
			// Unset and set-but-empty failsafe lists differ (defaults vs none).
			if (got.FailsafeOutboundHostPorts == nil) != (tt.spec.FailsafeOutboundHostPorts == nil) {
				t.Errorf("outbound failsafes nil = %v, spec set = %v", got.FailsafeOutboundHostPorts == nil, tt.spec.FailsafeOutboundHostPorts != nil)
			}
		})
	}
	if got := SettingsFrom(nil); !reflect.DeepEqual(got, Settings{}) {
		t.Errorf("SettingsFrom(nil) = %+v", got)
	}
	// The result does not alias the FelixConfiguration.
	list := []resources.ProtoPort{ssh}
	fc := resources.NewFelixConfiguration("default")
	fc.Spec.FailsafeInboundHostPorts = &list
	SettingsFrom(fc).FailsafeInboundHostPorts[0].Port = 2222
	if list[0].Port != 22 {
		t.Error("SettingsFrom's failsafe list aliases the FelixConfiguration's")
	}
}
