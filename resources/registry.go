package resources

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Kind describes one resource kind: its names, its storage segment and how to
// make an empty value of it.
type Kind struct {
	// Kind is the canonical CamelCase kind, e.g. "IPPool".
	Kind string
	// Plural is the lower-case plural used in etcd keys, e.g. "ippools".
	Plural string
	// Namespaced reports whether objects of this kind live in a namespace.
	Namespaced bool
	// Aliases are the extra lower-case words accepted on the command line
	// besides the lower-case kind and Plural (e.g. "pool", "ipp").
	Aliases []string
	// Singleton names the only name the kind accepts ("default"), if any.
	Singleton bool

	newFn func() Resource
	typ   reflect.Type
}

// New returns a new, empty object of this kind with its type metadata set.
func (k *Kind) New() Resource {
	r := k.newFn()
	SetTypeMeta(r)
	return r
}

// ListKind is the kind name of a list of this kind, e.g. "IPPoolList".
func (k *Kind) ListKind() string { return k.Kind + "List" }

// Words returns every lower-case word that names this kind.
func (k *Kind) Words() []string {
	words := []string{strings.ToLower(k.Kind), k.Plural}
	return append(words, k.Aliases...)
}

func kind[T any, P interface {
	*T
	Resource
}](k Kind) *Kind {
	k.newFn = func() Resource { return P(new(T)) }
	k.typ = reflect.TypeFor[P]()
	return &k
}

// allKinds is the registry: every kind this binary knows.
var allKinds = []*Kind{
	kind[BGPConfiguration](Kind{Kind: "BGPConfiguration", Plural: "bgpconfigurations", Aliases: []string{"bgpconfig", "bgpconfigs"}}),
	kind[BGPFilter](Kind{Kind: "BGPFilter", Plural: "bgpfilters", Aliases: []string{"bgpf", "bgpfs", "bf", "bfs"}}),
	kind[BGPPeer](Kind{Kind: "BGPPeer", Plural: "bgppeers", Aliases: []string{"bgpp", "bgpps", "bp", "bps"}}),
	kind[CalicoNodeStatus](Kind{Kind: "CalicoNodeStatus", Plural: "caliconodestatuses", Aliases: []string{"nodestatus", "nodestatuses"}}),
	kind[ClusterInformation](Kind{Kind: "ClusterInformation", Plural: "clusterinformations", Aliases: []string{"clusterinfo", "clusterinfos"}, Singleton: true}),
	kind[FelixConfiguration](Kind{Kind: "FelixConfiguration", Plural: "felixconfigurations", Aliases: []string{"felixconfig", "felixconfigs"}}),
	kind[GlobalNetworkPolicy](Kind{Kind: "GlobalNetworkPolicy", Plural: "globalnetworkpolicies", Aliases: []string{"gnp", "gnps"}}),
	kind[GlobalNetworkSet](Kind{Kind: "GlobalNetworkSet", Plural: "globalnetworksets", Aliases: []string{"gnetset", "gnetsets"}}),
	kind[HostEndpoint](Kind{Kind: "HostEndpoint", Plural: "hostendpoints", Aliases: []string{"hep", "heps"}}),
	kind[IPPool](Kind{Kind: "IPPool", Plural: "ippools", Aliases: []string{"ipp", "ipps", "pool", "pools"}}),
	kind[IPReservation](Kind{Kind: "IPReservation", Plural: "ipreservations", Aliases: []string{"reservation", "reservations"}}),
	kind[KubeControllersConfiguration](Kind{Kind: "KubeControllersConfiguration", Plural: "kubecontrollersconfigurations", Aliases: []string{"kubecontrollersconfig", "kubecontrollersconfigs"}, Singleton: true}),
	kind[NetworkPolicy](Kind{Kind: "NetworkPolicy", Plural: "networkpolicies", Namespaced: true, Aliases: []string{"policy", "policies", "np", "nps", "pol", "pols"}}),
	kind[NetworkSet](Kind{Kind: "NetworkSet", Plural: "networksets", Namespaced: true, Aliases: []string{"netset", "netsets"}}),
	kind[Node](Kind{Kind: "Node", Plural: "nodes", Aliases: []string{"no", "nos"}}),
	kind[Profile](Kind{Kind: "Profile", Plural: "profiles", Aliases: []string{"pro", "pros"}}),
	kind[Tier](Kind{Kind: "Tier", Plural: "tiers"}),
	kind[WorkloadEndpoint](Kind{Kind: "WorkloadEndpoint", Plural: "workloadendpoints", Namespaced: true, Aliases: []string{"wep", "weps"}}),
}

var (
	byWord = map[string]*Kind{}
	byKind = map[string]*Kind{}
	byType = map[reflect.Type]*Kind{}
)

func init() {
	for _, k := range allKinds {
		byKind[k.Kind] = k
		byType[k.typ] = k
		for _, w := range k.Words() {
			if prev, dup := byWord[w]; dup {
				panic(fmt.Sprintf("resources: word %q names both %s and %s", w, prev.Kind, k.Kind))
			}
			byWord[w] = k
		}
	}
}

func typeKey(r Resource) reflect.Type { return reflect.TypeOf(r) }

// Kinds returns every registered kind, sorted by kind name.
func Kinds() []*Kind {
	out := append([]*Kind(nil), allKinds...)
	sort.Slice(out, func(i, j int) bool { return out[i].Kind < out[j].Kind })
	return out
}

// ErrUnknownKind is returned by Lookup for a word that names no kind.
type ErrUnknownKind struct{ Word string }

func (e *ErrUnknownKind) Error() string {
	return fmt.Sprintf("resource type '%s' is not supported", e.Word)
}

// Lookup finds a kind by any of its names, case-insensitively: the kind
// itself ("IPPool"), its plural ("ippools") or an alias ("pool").
func Lookup(word string) (*Kind, error) {
	if k, ok := byWord[strings.ToLower(strings.TrimSpace(word))]; ok {
		return k, nil
	}
	return nil, &ErrUnknownKind{Word: word}
}

// LookupKind finds a kind by its canonical name ("IPPool"), or by its list
// kind ("IPPoolList") with isList set.
func LookupKind(kindName string) (k *Kind, isList bool) {
	if k, ok := byKind[kindName]; ok {
		return k, false
	}
	if base, ok := strings.CutSuffix(kindName, "List"); ok {
		if k, ok := byKind[base]; ok {
			return k, true
		}
	}
	return nil, false
}
