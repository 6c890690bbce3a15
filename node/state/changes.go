package state

import (
	"net/netip"

	"github.com/opencalico/calicoctl/resources"
)

// ChangeKind says what kind of object a Change is about.
type ChangeKind uint8

// The kinds of object the model records changes of.
const (
	ChangedNode ChangeKind = iota + 1
	ChangedPool
	ChangedFelixConfiguration
	ChangedWorkloadEndpoint
	ChangedBlock
	ChangedBGP
	// ChangedPolicy: a Tier, GlobalNetworkPolicy, NetworkPolicy, Profile,
	// GlobalNetworkSet, NetworkSet or HostEndpoint; Key says which (Kind,
	// Namespace, Name), Name repeats Key.Name.
	ChangedPolicy
)

// Change names one object that was added, modified or removed: by Name
// (nodes, pools, FelixConfigurations, BGP objects), Key (workload
// endpoints, policy objects) or CIDR (blocks). Look the object up in the model to learn
// its current state (absent: removed).
type Change struct {
	Kind ChangeKind
	Name string
	Key  resources.Key
	CIDR netip.Prefix
}

// changeLogCap bounds the change log: a reader further behind than this
// rebuilds from the whole model.
const changeLogCap = 8192

// changeLog is the model's recent changes: entry i has sequence number
// first+i.
type changeLog struct {
	first   uint64
	entries []Change
}

func (m *Model) record(c Change) {
	l := &m.changes
	if len(l.entries) >= changeLogCap {
		drop := len(l.entries) / 2
		l.entries = append(l.entries[:0], l.entries[drop:]...)
		l.first += uint64(drop)
	}
	l.entries = append(l.entries, c)
}

// Seq is the number of changes the model has recorded: a reader that has
// folded in everything up to Seq asks ChangesSince(Seq) next time.
func (m *Model) Seq() uint64 { return m.changes.first + uint64(len(m.changes.entries)) }

// ChangesSince returns the changes recorded after sequence number seq, in
// order (an object may appear more than once); false when some of them are
// no longer kept and the reader must rebuild from the whole model. The
// slice is the model's: read it inside Follower.Read only.
func (m *Model) ChangesSince(seq uint64) ([]Change, bool) {
	l := &m.changes
	if seq < l.first || seq > m.Seq() {
		return nil, false
	}
	return l.entries[seq-l.first:], true
}
