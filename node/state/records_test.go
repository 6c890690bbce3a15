package state

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/resources"
)

func recordWEP(name, node string, labels map[string]string, ips ...string) *resources.WorkloadEndpoint {
	w := &resources.WorkloadEndpoint{}
	w.Namespace, w.Name, w.Labels = "ns1", name, labels
	w.Annotations = map[string]string{"big": "dropped"}
	w.Spec = resources.WorkloadEndpointSpec{Node: node, InterfaceName: "cali" + name, IPNetworks: ips,
		Profiles: []string{"kns.ns1", "ksa.ns1.default"}, ServiceAccountName: "default",
		IPNATs: []resources.IPNAT{{InternalIP: "10.0.0.1", ExternalIP: "192.0.2.1"}, {InternalIP: "bad", ExternalIP: "192.0.2.2"}}}
	return w
}

// TestEndpointRecord: what the model keeps of an endpoint, and label sets
// and profile lists shared between endpoints until the last one goes.
func TestEndpointRecord(t *testing.T) {
	m := NewModel()
	m.SetWorkloadEndpoint(recordWEP("a", "n1", map[string]string{"app": "web"}, "10.0.0.1/32", "10.0.0.9", "garbage"))
	m.SetWorkloadEndpoint(recordWEP("b", "n1", map[string]string{"app": "web"}, "10.0.0.2/32"))
	m.SetWorkloadEndpoint(recordWEP("c", "n2", map[string]string{"app": "db"}, "10.0.0.3/32"))
	a := m.WorkloadEndpoint(resources.Key{Namespace: "ns1", Name: "a"})
	want := &Endpoint{Key: resources.Key{Kind: "WorkloadEndpoint", Namespace: "ns1", Name: "a"}, Node: "n1", InterfaceName: "calia",
		ServiceAccount: "default", Networks: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32"), netip.MustParsePrefix("10.0.0.9/32")},
		NATs:   []NAT{{Internal: netip.MustParseAddr("10.0.0.1"), External: netip.MustParseAddr("192.0.2.1")}},
		Labels: map[string]string{"app": "web"}, Profiles: []string{"kns.ns1", "ksa.ns1.default"},
		labelsRef: a.labelsRef, profilesRef: a.profilesRef}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("record\n got %+v\nwant %+v", a, want)
	}
	b := m.WorkloadEndpoint(resources.Key{Namespace: "ns1", Name: "b"})
	if reflect.ValueOf(a.Labels).UnsafePointer() != reflect.ValueOf(b.Labels).UnsafePointer() || &a.Profiles[0] != &b.Profiles[0] {
		t.Error("a and b do not share their labels and profiles")
	}
	if len(m.labelSets) != 2 || len(m.profileLists) != 1 || m.labelSets[labelsKey(a.Labels)].refs != 2 {
		t.Errorf("%d label sets, %d profile lists", len(m.labelSets), len(m.profileLists))
	}
	// An update that changes only what the model drops is no change.
	w := recordWEP("b", "n1", map[string]string{"app": "web"}, "10.0.0.2/32")
	w.Spec.MAC, w.Annotations = "ee:ee:ee:ee:ee:ee", map[string]string{"other": "x"}
	if m.SetWorkloadEndpoint(w) {
		t.Error("a change of dropped fields reported as a change")
	}
	// Relabelled, then deleted: the sets go when nobody holds them.
	if !m.SetWorkloadEndpoint(recordWEP("b", "n1", map[string]string{"app": "db"}, "10.0.0.2/32")) {
		t.Error("a label change not reported")
	}
	if m.labelSets[labelsKey(map[string]string{"app": "web"})].refs != 1 || m.labelSets[labelsKey(map[string]string{"app": "db"})].refs != 2 {
		t.Errorf("label set refs after relabel: %+v", m.labelSets)
	}
	for _, n := range []string{"a", "b", "c"} {
		m.DeleteWorkloadEndpoint(resources.Key{Namespace: "ns1", Name: n})
	}
	if len(m.labelSets) != 0 || len(m.profileLists) != 0 || len(m.wepsByAddr) != 0 || len(m.wepsByNode) != 0 {
		t.Errorf("left behind: %d label sets, %d profile lists, %d addresses, %d nodes",
			len(m.labelSets), len(m.profileLists), len(m.wepsByAddr), len(m.wepsByNode))
	}
}

// TestSharedAddress: two endpoints claiming one address are both found
// by it, and each goes from the index with its endpoint.
func TestSharedAddress(t *testing.T) {
	m := NewModel()
	m.SetWorkloadEndpoint(recordWEP("a", "n1", nil, "10.0.0.1/32"))
	m.SetWorkloadEndpoint(recordWEP("b", "n2", nil, "10.0.0.1/32"))
	m.SetWorkloadEndpoint(recordWEP("c", "n2", nil, "10.0.0.1/32"))
	names := func() []string {
		var out []string
		for _, e := range m.WorkloadEndpointsIn(netip.MustParsePrefix("10.0.0.0/26")) {
			out = append(out, e.Key.Name)
		}
		slices.Sort(out)
		return out
	}
	if got := names(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("in the block: %v", got)
	}
	m.DeleteWorkloadEndpoint(resources.Key{Namespace: "ns1", Name: "a"})
	if got := names(); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("after deleting a: %v", got)
	}
	m.DeleteWorkloadEndpoint(resources.Key{Namespace: "ns1", Name: "c"})
	if got := names(); !slices.Equal(got, []string{"b"}) || len(m.wepsByAddrMore) != 0 {
		t.Errorf("after deleting c: %v (%d shared)", got, len(m.wepsByAddrMore))
	}
}

// TestBlockRecord: a block keeps its CIDR, affinity and tunnel
// allocations; a write that changes only other allocations is no change.
func TestBlockRecord(t *testing.T) {
	m := NewModel()
	cidr := netip.MustParsePrefix("10.0.0.0/26")
	b := ipam.NewBlock(cidr, "host:n1", time.Unix(0, 0))
	alloc := func(ord int, handle string) {
		i := len(b.Attributes)
		b.Allocations[ord] = &i
		b.Attributes = append(b.Attributes, ipam.AllocationAttribute{HandleID: &handle, ActiveOwnerAttrs: map[string]string{"node": "n1"}})
	}
	alloc(0, "vxlan-tunnel-addr-n1")
	alloc(1, "k8s-pod-network.abc")
	if !m.SetBlock(b) {
		t.Fatal("a new block is no change")
	}
	got := m.Block(cidr)
	if got.Host() != "n1" || !slices.Equal(got.Tunnels, []TunnelAllocation{{netip.MustParseAddr("10.0.0.0"), "vxlan-tunnel-addr-n1"}}) {
		t.Errorf("record %+v", got)
	}
	if h := m.TunnelHandle(netip.MustParseAddr("10.0.0.0")); h != "vxlan-tunnel-addr-n1" {
		t.Errorf("TunnelHandle(10.0.0.0) = %q", h)
	}
	if h := m.TunnelHandle(netip.MustParseAddr("10.0.0.1")); h != "" {
		t.Errorf("TunnelHandle of a pod's address = %q", h)
	}
	seq := m.Seq()
	alloc(2, "k8s-pod-network.def")
	if m.SetBlock(b) || m.Seq() != seq {
		t.Error("a new pod allocation recorded as a change of the block")
	}
	b.Affinity = "host:n2"
	if !m.SetBlock(b) || m.Block(cidr).Host() != "n2" || len(m.BlocksAffineTo("n1")) != 0 {
		t.Error("an affinity change not followed")
	}
}
