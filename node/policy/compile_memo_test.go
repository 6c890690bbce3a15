package policy

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

// The Compiler gives Compile's result for every fixture, one after the
// other (each a wholesale change of the one before).
func TestCompilerFixtures(t *testing.T) {
	k := NewCompiler()
	fixtures := []Input{seed001("slave2"), tiered(), nsSelector(), namedPorts(), knp(), hostEndpoints(), hostLayers(), seed001("slave1"), namedPorts()}
	for i, in := range fixtures {
		if got, want := k.Compile(in), Compile(in); !reflect.DeepEqual(got, want) {
			t.Errorf("fixture %d: Compiler and Compile differ", i)
		}
	}
}

// memoCluster is a small random cluster whose selectors read labels,
// namespaces, service accounts, named ports and network sets.
type memoCluster struct {
	rng *rand.Rand
	in  Input
	n   int // endpoints created
}

var (
	memoApps  = []string{"web", "api", "db", "cache"}
	memoTeams = []string{"red", "blue", "green"}
)

func (m *memoCluster) endpoint() *state.Endpoint {
	i := m.n
	m.n++
	ns := fmt.Sprintf("ns%d", m.rng.IntN(4))
	node := "n1"
	if m.rng.IntN(3) > 0 {
		node = "n2"
	}
	addrs := []string{fmt.Sprintf("10.65.%d.%d/32", i/250, i%250+1)}
	if m.rng.IntN(3) == 0 {
		addrs = append(addrs, fmt.Sprintf("fd00::%x/128", i+1))
	}
	e := ep(ns, fmt.Sprintf("%s-k8s-p%d-eth0", node, i), node, fmt.Sprintf("calim%d", i),
		map[string]string{"app": memoApps[m.rng.IntN(len(memoApps))]}, addrs, "kns."+ns, "ksa."+ns+".default")
	if m.rng.IntN(2) == 0 {
		e.ServiceAccount = "default"
	}
	if m.rng.IntN(3) == 0 {
		e.Ports = []resources.WorkloadEndpointPort{{Name: "http", Protocol: resources.ProtocolFromString("TCP"), Port: uint16(8000 + m.rng.IntN(3))}}
	}
	return e
}

func (m *memoCluster) nsProfile(ns int) *resources.Profile {
	name := fmt.Sprintf("ns%d", ns)
	return profile("kns."+name, map[string]string{"pcns.projectcalico.org/name": name, "pcns.team": memoTeams[m.rng.IntN(len(memoTeams))]}, allowAll, allowAll)
}

func (m *memoCluster) saProfile(ns int) *resources.Profile {
	return profile(fmt.Sprintf("ksa.ns%d.default", ns), map[string]string{"pcsa.role": memoApps[m.rng.IntN(2)]}, nil, nil)
}

func (m *memoCluster) netSet() *resources.GlobalNetworkSet {
	g := &resources.GlobalNetworkSet{}
	g.Name, g.Labels = "ext", map[string]string{"app": "db"}
	g.Spec.Nets = []string{fmt.Sprintf("198.51.%d.0/24", m.rng.IntN(4)), "2001:db8::/64"}
	return g
}

func (m *memoCluster) policy(i int) *resources.NetworkPolicy {
	app := memoApps[m.rng.IntN(len(memoApps))]
	return np(fmt.Sprintf("ns%d", i%4), fmt.Sprintf("p%d", i), fptr(float64(i)), "app == '"+app+"'",
		[]resources.Rule{
			{Action: resources.ActionAllow, Protocol: proto("TCP"),
				Source:      resources.EntityRule{Selector: "app == '" + memoApps[m.rng.IntN(len(memoApps))] + "'"},
				Destination: resources.EntityRule{Ports: ports("http", fmt.Sprint(9000+m.rng.IntN(5)))}},
			{Action: resources.ActionAllow, Source: resources.EntityRule{NamespaceSelector: "team == '" + memoTeams[m.rng.IntN(len(memoTeams))] + "'"}},
			{Action: resources.ActionAllow, Source: resources.EntityRule{ServiceAccounts: &resources.ServiceAccountMatch{Selector: "role == 'web'"}}},
		},
		[]resources.Rule{{Action: resources.ActionDeny, Destination: resources.EntityRule{Selector: "app == 'db'", NamespaceSelector: "all()"}}})
}

func newMemoCluster(seed uint64) *memoCluster {
	m := &memoCluster{rng: rand.New(rand.NewPCG(seed, 1))}
	m.in = Input{NodeName: "n1", GlobalNetworkSets: []*resources.GlobalNetworkSet{m.netSet()}}
	for ns := range 4 {
		m.in.Profiles = append(m.in.Profiles, m.nsProfile(ns), m.saProfile(ns))
	}
	for range 40 {
		m.in.Endpoints = append(m.in.Endpoints, m.endpoint())
	}
	for i := range 6 {
		m.in.Policies = append(m.in.Policies, m.policy(i))
	}
	m.in.GlobalPolicies = []*resources.GlobalNetworkPolicy{gnp("g", "", fptr(1), "all()", []resources.Rule{
		{Action: resources.ActionAllow, Source: resources.EntityRule{Selector: "app == 'db'", NamespaceSelector: "global()"}},
		{Action: resources.ActionAllow, Destination: resources.EntityRule{Ports: ports("http")}},
		{Action: resources.ActionAllow, HTTP: &resources.HTTPMatch{Methods: []string{"GET"}}}, // a note
	}, nil)}
	return m
}

// step makes one random change the way the agent does: changed objects
// are new objects, the Input's slices are rebuilt.
func (m *memoCluster) step() string {
	in := &m.in
	in.Endpoints = slices.Clone(in.Endpoints)
	in.Profiles = slices.Clone(in.Profiles)
	in.Policies = slices.Clone(in.Policies)
	i := m.rng.IntN(len(in.Endpoints))
	switch m.rng.IntN(8) {
	case 0, 1:
		e := *in.Endpoints[i]
		e.Labels = maps.Clone(e.Labels)
		e.Labels["app"] = memoApps[m.rng.IntN(len(memoApps))]
		in.Endpoints[i] = &e
		return "relabel endpoint"
	case 2:
		in.Endpoints = append(in.Endpoints, m.endpoint())
		return "add endpoint"
	case 3:
		in.Endpoints = slices.Delete(in.Endpoints, i, i+1)
		return "remove endpoint"
	case 4:
		j := m.rng.IntN(len(in.Policies))
		in.Policies[j] = m.policy(j)
		return "change policy"
	case 5:
		ns := m.rng.IntN(4)
		in.Profiles[2*ns] = m.nsProfile(ns)
		return "namespace labels"
	case 6:
		e := *in.Endpoints[i]
		e.Networks = []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("10.66.0.%d/32", m.rng.IntN(200)+1))}
		if m.rng.IntN(2) == 0 {
			e.ServiceAccount = ""
		}
		in.Endpoints[i] = &e
		return "endpoint address or service account"
	default:
		if m.rng.IntN(2) == 0 {
			ns := m.rng.IntN(4)
			in.Profiles[2*ns+1] = m.saProfile(ns)
			return "service account labels"
		}
		in.GlobalNetworkSets = []*resources.GlobalNetworkSet{m.netSet()}
		return "network set"
	}
}

// A Compiler fed a sequence of changes gives Compile's result after every
// one.
func TestCompilerSequence(t *testing.T) {
	for seed := range uint64(5) {
		m := newMemoCluster(seed)
		k := NewCompiler()
		for s := range 80 {
			what := "initial"
			if s > 0 {
				what = m.step()
			}
			got, want := k.Compile(m.in), Compile(m.in)
			if !reflect.DeepEqual(got, want) {
				gd, _ := Dump(got)
				wd, _ := Dump(want)
				t.Fatalf("seed %d step %d (%s): Compiler differs from Compile\n got %s\nwant %s", seed, s, what, gd, wd)
			}
		}
	}
}
