package bgp

import (
	"slices"
	"testing"

	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

// TestFromModel: the planner's input is read from the agent's model, with
// only this node's blocks and workloads.
func TestFromModel(t *testing.T) {
	m := state.NewModel()
	m.SetNode(mkNode("n1", "10.0.0.1/24"))
	m.SetNode(mkNode("n2", "10.0.0.2/24"))
	m.SetPool(pool("p", "10.244.0.0/16"))
	m.SetBlock(rawBlock("10.244.0.0/26", "n1"))
	m.SetBlock(rawBlock("10.244.0.64/26", "n2"))
	m.SetWorkloadEndpoint(rawWEP("n1", "a", nil, "10.244.0.64/32"))
	m.SetWorkloadEndpoint(rawWEP("n2", "b", nil, "10.244.0.65/32"))
	m.SetBGPConfiguration(meshOff())
	m.SetBGPPeer(bgpPeer("tor", resources.BGPPeerSpec{PeerIP: "192.0.2.1", ASNumber: 65000, Filters: []string{"f"}}))
	f := &resources.BGPFilter{Spec: resources.BGPFilterSpec{ExportV4: []resources.BGPFilterRuleV4{{Action: "Reject"}}}}
	f.Name = "f"
	m.SetBGPFilter(f)

	in := FromModel(m, "n1", Env{RouterID: "hash"})
	if in.NodeName != "n1" || len(in.Nodes) != 2 || len(in.Pools) != 1 || len(in.Peers) != 1 || in.Filters["f"] == nil || in.Configs["default"] == nil {
		t.Fatalf("input = %+v", in)
	}
	if len(in.Blocks) != 1 || in.Blocks[0].CIDR != pfx("10.244.0.0/26") {
		t.Errorf("blocks = %v, want n1's only", in.Blocks)
	}
	if len(in.Workloads) != 1 || in.Workloads[0].Key.Name != "a" {
		t.Errorf("workloads = %v, want n1's only", in.Workloads)
	}
	d := Compute(in)
	wantLines(t, "peers", summaries(d.Peers), []string{"Global_192_0_2_1 192.0.2.1:0 as65000"})
	wantLines(t, "paths", pathLines(d.Paths), []string{"10.244.0.0/26 block", "10.244.0.64/32 borrowed"})
	if d.Global.RouterID != HashToIPv4("n1") || len(d.Filters) != 1 {
		t.Errorf("router ID %v, %d filter chains", d.Global.RouterID, len(d.Filters))
	}
	if !slices.Equal(d.Peers[0].Filters, []string{"f"}) {
		t.Errorf("peer filters %v", d.Peers[0].Filters)
	}
}
