package state

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/resources"
)

func TestChangeLog(t *testing.T) {
	m := NewModel()
	n := &resources.Node{}
	n.Name = "n1"
	m.SetNode(n)
	seq := m.Seq()
	m.SetNode(n) // no visible change: not recorded
	w := &resources.WorkloadEndpoint{}
	w.Namespace, w.Name = "default", "w1"
	w.Spec = resources.WorkloadEndpointSpec{Node: "n1", IPNetworks: []string{"10.0.0.5/32"}}
	m.SetWorkloadEndpoint(w)
	m.SetBlock(&ipam.Block{CIDR: netip.MustParsePrefix("10.0.0.0/26"), Affinity: "host:n1"})
	m.DeleteNode("n1")
	got, ok := m.ChangesSince(seq)
	want := []Change{{Kind: ChangedWorkloadEndpoint, Key: resources.Key{Kind: "WorkloadEndpoint", Namespace: "default", Name: "w1"}},
		{Kind: ChangedBlock, CIDR: netip.MustParsePrefix("10.0.0.0/26")}, {Kind: ChangedNode, Name: "n1"}}
	if !ok || !slices.Equal(got, want) {
		t.Fatalf("ChangesSince = %+v, %v; want %+v", got, ok, want)
	}
	if keys := m.WorkloadEndpointsIn(netip.MustParsePrefix("10.0.0.0/26")); len(keys) != 1 || keys[0].Key.Name != "w1" {
		t.Errorf("WorkloadEndpointsIn = %v", keys)
	}
	if keys := m.WorkloadEndpointsIn(netip.MustParsePrefix("10.0.0.0/8")); len(keys) != 1 {
		t.Errorf("WorkloadEndpointsIn(/8) = %v", keys)
	}
	m.DeleteWorkloadEndpoint(resources.Key{Namespace: "default", Name: "w1"})
	if keys := m.WorkloadEndpointsIn(netip.MustParsePrefix("10.0.0.0/26")); len(keys) != 0 {
		t.Errorf("WorkloadEndpointsIn after delete = %v", keys)
	}
	// A reader too far behind is told to read the whole model.
	for i := range changeLogCap + 10 {
		p := &resources.IPPool{}
		p.Name = fmt.Sprint("p", i)
		m.SetPool(p)
	}
	if _, ok := m.ChangesSince(seq); ok {
		t.Error("ChangesSince a trimmed sequence number succeeded")
	}
	if got, ok := m.ChangesSince(m.Seq()); !ok || len(got) != 0 {
		t.Errorf("ChangesSince(Seq) = %v, %v", got, ok)
	}
}
