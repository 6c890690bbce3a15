package agent

import (
	"net/netip"

	"github.com/opencalico/calicoctl/node/plan"
	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

// planInput keeps one node's plan input (a plan.Incremental) in step with
// the follower's model one change at a time: it reads the model's change
// log (state.Model.ChangesSince) and patches only what each change
// touches. A change of a pool or of this node's FelixConfiguration
// recomputes the plan (the Incremental does that for the local node too);
// a model too far ahead for its change log is read whole again. It must
// always equal BuildSnapshot of the model (with the FELIX_* overrides
// laid over its Felix settings).
type planInput struct {
	node     string
	felixEnv FelixSettings
	inc      *plan.Incremental
	seq      uint64
	built    bool
	// Rebuilds counts reads of the whole model (tests, logs).
	rebuilds int
}

func newPlanInput(node string, felixEnv FelixSettings) *planInput {
	return &planInput{node: node, felixEnv: felixEnv}
}

// update folds the model's changes since the last call into the plan
// input. Call it inside Follower.Read.
func (in *planInput) update(m *state.Model) {
	changes, ok := m.ChangesSince(in.seq)
	if !in.built || !ok {
		in.rebuild(m)
		return
	}
	globals := false
	for _, c := range changes {
		switch c.Kind {
		case state.ChangedNode:
			if n := m.Node(c.Name); n != nil {
				in.inc.SetNode(nodeInfo(n))
			} else {
				in.inc.DeleteNode(c.Name)
			}
		case state.ChangedPool:
			globals = true
		case state.ChangedFelixConfiguration:
			globals = globals || c.Name == "default" || c.Name == "node."+in.node
		case state.ChangedWorkloadEndpoint:
			if w := m.WorkloadEndpoint(c.Key); w != nil {
				in.inc.SetEndpoint(endpointKey(c.Key), endpointOf(m, w, in.node))
			} else {
				in.inc.DeleteEndpoint(endpointKey(c.Key))
			}
		case state.ChangedBlock:
			in.block(m, c.CIDR)
		}
	}
	if globals {
		in.inc.SetGlobals(in.globals(m))
	}
	in.seq = m.Seq()
}

// block follows one block. Only a block's existence and affinity matter
// to the plan: a change of its allocations alone costs nothing. When they
// change, whether the remote endpoints with addresses in it borrow them
// may change too: those are found through the model's address index.
func (in *planInput) block(m *state.Model, cidr netip.Prefix) {
	old, had := in.inc.Block(cidr)
	b := m.Block(cidr)
	switch {
	case b == nil && !had:
		return
	case b == nil:
		in.inc.DeleteBlock(cidr)
	case had && old == b.Host():
		return
	default:
		in.inc.SetBlock(cidr, b.Host())
	}
	for _, w := range m.WorkloadEndpointsIn(cidr) {
		if w.Node != in.node {
			in.inc.SetEndpoint(endpointKey(w.Key), endpointOf(m, w, in.node))
		}
	}
}

// rebuild reads the whole model.
func (in *planInput) rebuild(m *state.Model) {
	in.inc = plan.NewIncremental(in.node)
	in.inc.SetGlobals(in.globals(m))
	for _, n := range m.Nodes() {
		in.inc.SetNode(nodeInfo(n))
	}
	for _, b := range m.Blocks() {
		in.inc.SetBlock(b.CIDR, b.Host())
	}
	for k, w := range m.WorkloadEndpoints() {
		in.inc.SetEndpoint(endpointKey(k), endpointOf(m, w, in.node))
	}
	in.seq, in.built = m.Seq(), true
	in.rebuilds++
}

func (in *planInput) globals(m *state.Model) plan.Globals {
	g := globalsOf(m, in.node)
	g.Felix = overrideFelix(g.Felix, in.felixEnv)
	return g
}

func endpointKey(k resources.Key) string { return k.Namespace + "/" + k.Name }
