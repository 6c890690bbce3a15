package resources

import (
	"errors"
	"fmt"
	"strings"
)

// WorkloadEndpoint names are not free: upstream derives them from the
// endpoint's identifying fields. The fields are joined with a single '-',
// after every '-' inside a field has been doubled to "--"; no field may start
// or end with '-'. Which fields, in which order, depends on the orchestrator:
//
//	k8s         node-k8s-pod-endpoint
//	cni         node-cni-containerID-endpoint
//	libnetwork  node-libnetwork-libnetwork-endpoint
//	other       node-orchestrator-workload-endpoint
//
// For example node "worker-1", pod "web-7f9c", endpoint "eth0" give
// "worker--1-k8s-web--7f9c-eth0".

// WEPIdentifiers are the fields a WorkloadEndpoint name is made of.
type WEPIdentifiers struct {
	Node         string
	Orchestrator string
	Workload     string
	Pod          string
	ContainerID  string
	Endpoint     string
}

// The orchestrators whose names have a fixed segment layout.
const (
	OrchestratorKubernetes = "k8s"
	OrchestratorCNI        = "cni"
	OrchestratorLibnetwork = "libnetwork"
)

// WEPIdentifiersOf returns the identifying fields of a WorkloadEndpoint spec.
func WEPIdentifiersOf(s *WorkloadEndpointSpec) WEPIdentifiers {
	return WEPIdentifiers{
		Node: s.Node, Orchestrator: s.Orchestrator, Workload: s.Workload,
		Pod: s.Pod, ContainerID: s.ContainerID, Endpoint: s.Endpoint,
	}
}

// wepSegment is one name segment: its value and its JSON field path.
type wepSegment struct{ value, field string }

// segments lists the name segments for the orchestrator, in name order.
func (ids WEPIdentifiers) segments() []wepSegment {
	node := wepSegment{ids.Node, "spec.node"}
	orch := wepSegment{ids.Orchestrator, "spec.orchestrator"}
	end := wepSegment{ids.Endpoint, "spec.endpoint"}
	switch ids.Orchestrator {
	case OrchestratorKubernetes:
		return []wepSegment{node, orch, {ids.Pod, "spec.pod"}, end}
	case OrchestratorCNI:
		return []wepSegment{node, orch, {ids.ContainerID, "spec.containerID"}, end}
	case OrchestratorLibnetwork:
		return []wepSegment{node, orch, orch, end}
	default:
		return []wepSegment{node, orch, {ids.Workload, "spec.workload"}, end}
	}
}

// Name returns the WorkloadEndpoint name for ids. Every segment the
// orchestrator needs must be set; the error is a *FieldError naming the
// first one that is missing or malformed.
func (ids WEPIdentifiers) Name() (string, error) { return ids.name(false) }

// NamePrefix returns the name up to the first unset segment, ending in '-'
// (e.g. "node1-k8s-" with no pod), for prefix list queries. The node is
// always required. With every segment set it returns the full name. A
// prefix can also match endpoints with longer field values ("node1-k8s-pod-"
// matches pod "pod-1"), so check candidates with Matches.
func (ids WEPIdentifiers) NamePrefix() (string, error) { return ids.name(true) }

func (ids WEPIdentifiers) name(prefix bool) (string, error) {
	if ids.Node == "" {
		return "", &FieldError{Field: "spec.node", Value: "", Reason: "field should be assigned"}
	}
	parts := make([]string, 0, 4)
	for _, s := range ids.segments() {
		if s.value == "" {
			if !prefix {
				return "", &FieldError{Field: s.field, Value: "", Reason: "field should be assigned"}
			}
			return strings.Join(parts, "-") + "-", nil
		}
		if strings.HasPrefix(s.value, "-") {
			return "", &FieldError{Field: s.field, Value: s.value, Reason: "field must not begin with a '-'"}
		}
		if strings.HasSuffix(s.value, "-") {
			return "", &FieldError{Field: s.field, Value: s.value, Reason: "field must not end with a '-'"}
		}
		parts = append(parts, strings.ReplaceAll(s.value, "-", "--"))
	}
	return strings.Join(parts, "-"), nil
}

// Matches reports whether name is the name of an endpoint with these
// identifiers, treating unset identifiers as wildcards. The node and
// orchestrator must be set.
func (ids WEPIdentifiers) Matches(name string) bool {
	if ids.Node == "" || ids.Orchestrator == "" {
		return false
	}
	want := ids.segments()
	got := splitWEPName(name)
	if len(got) != len(want) {
		return false
	}
	for i, s := range want {
		if got[i] == "" || (s.value != "" && s.value != got[i]) {
			return false
		}
	}
	return true
}

// splitWEPName splits a name on single dashes and un-doubles "--" in each
// part. A dash at the very start belongs to the first part.
func splitWEPName(name string) []string {
	var parts []string
	start := 0
	for i := 1; i < len(name); i++ {
		if name[i] != '-' {
			continue
		}
		if i+1 < len(name) && name[i+1] == '-' {
			i++ // an escaped dash
			continue
		}
		parts = append(parts, strings.ReplaceAll(name[start:i], "--", "-"))
		start = i + 1
	}
	return append(parts, strings.ReplaceAll(name[start:], "--", "-"))
}

// ParseWEPName inverts Name (and NamePrefix): it splits name into the node,
// the orchestrator and the orchestrator's remaining segments. A shorter name
// (a prefix) leaves the missing identifiers empty.
func ParseWEPName(name string) (WEPIdentifiers, error) {
	if name == "" {
		return WEPIdentifiers{}, errors.New("cannot parse an empty WorkloadEndpoint name")
	}
	parts := splitWEPName(name)
	ids := WEPIdentifiers{Node: parts[0]}
	if len(parts) == 1 {
		return ids, nil
	}
	ids.Orchestrator = parts[1]
	var rest []*string
	switch ids.Orchestrator {
	case OrchestratorKubernetes:
		rest = []*string{&ids.Pod, &ids.Endpoint}
	case OrchestratorCNI:
		rest = []*string{&ids.ContainerID, &ids.Endpoint}
	case OrchestratorLibnetwork:
		var again string // the orchestrator, repeated
		rest = []*string{&again, &ids.Endpoint}
	default:
		rest = []*string{&ids.Workload, &ids.Endpoint}
	}
	if len(parts)-2 > len(rest) {
		return WEPIdentifiers{}, fmt.Errorf("cannot parse WorkloadEndpoint name %q: too many segments for orchestrator %q", name, ids.Orchestrator)
	}
	for i, p := range parts[2:] {
		*rest[i] = p
	}
	if ids.Orchestrator == OrchestratorLibnetwork && len(parts) > 2 && parts[2] != "" && parts[2] != OrchestratorLibnetwork {
		return WEPIdentifiers{}, fmt.Errorf("cannot parse WorkloadEndpoint name %q: the third segment of a libnetwork name must be %q", name, OrchestratorLibnetwork)
	}
	return ids, nil
}
