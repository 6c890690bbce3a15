package policy

import (
	"net/netip"

	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

// Builders for compile test inputs.

func ep(ns, name, node, iface string, labels map[string]string, addrs []string, profiles ...string) *state.Endpoint {
	e := &state.Endpoint{
		Key:  resources.Key{Kind: "WorkloadEndpoint", Namespace: ns, Name: name},
		Node: node, InterfaceName: iface, Labels: labels, Profiles: profiles,
	}
	for _, a := range addrs {
		e.Networks = append(e.Networks, netip.MustParsePrefix(a))
	}
	return e
}

func proto(s string) *resources.Protocol { p := resources.ProtocolFromString(s); return &p }

func ports(ss ...string) []resources.Port {
	var out []resources.Port
	for _, s := range ss {
		p, err := resources.ParsePort(s)
		if err != nil {
			panic(err)
		}
		out = append(out, p)
	}
	return out
}

func fptr(f float64) *float64 { return &f }

func iptr(i int) *int { return &i }

func gnp(name, tier string, order *float64, sel string, in, out []resources.Rule, types ...resources.PolicyType) *resources.GlobalNetworkPolicy {
	p := &resources.GlobalNetworkPolicy{}
	p.Name = name
	p.Spec = resources.GlobalNetworkPolicySpec{Tier: tier, Order: order, Selector: sel, Ingress: in, Egress: out, Types: types}
	return p
}

func np(ns, name string, order *float64, sel string, in, out []resources.Rule, types ...resources.PolicyType) *resources.NetworkPolicy {
	p := &resources.NetworkPolicy{}
	p.Name, p.Namespace = name, ns
	p.Spec = resources.NetworkPolicySpec{Order: order, Selector: sel, Ingress: in, Egress: out, Types: types}
	return p
}

func profile(name string, labelsToApply map[string]string, in, out []resources.Rule) *resources.Profile {
	p := &resources.Profile{}
	p.Name = name
	p.Spec = resources.ProfileSpec{Ingress: in, Egress: out, LabelsToApply: labelsToApply}
	return p
}

func tier(name string, order float64, action resources.Action) *resources.Tier {
	t := &resources.Tier{}
	t.Name = name
	t.Spec.Order = &order
	t.Spec.DefaultAction = &action
	return t
}

var allowAll = []resources.Rule{{Action: resources.ActionAllow}}

// seed001 is seed 001's tenant: frontend x2 on slave1, the database on
// slave2; the database's profile allows TCP 3306 from the frontends only,
// and a policy lets the frontends' egress reach the database.
func seed001(node string) Input {
	return Input{
		NodeName: node,
		Profiles: []*resources.Profile{
			profile("profile-database", nil,
				[]resources.Rule{
					{Action: resources.ActionAllow, Protocol: proto("TCP"),
						Source:      resources.EntityRule{Selector: "app == 'frontend'"},
						Destination: resources.EntityRule{Ports: ports("3306")}},
					{Action: resources.ActionDeny},
				},
				allowAll),
		},
		GlobalPolicies: []*resources.GlobalNetworkPolicy{
			gnp("frontend-egress", "", fptr(100), "app == 'frontend'", nil,
				[]resources.Rule{{Action: resources.ActionAllow, Protocol: proto("TCP"),
					Destination: resources.EntityRule{Selector: "app == 'database'", Ports: ports("3306")}}},
				resources.PolicyTypeEgress),
		},
		Endpoints: []*state.Endpoint{
			ep("default", "slave1-k8s-frontend1-eth0", "slave1", "cali0ef24b1", map[string]string{"app": "frontend"}, []string{"192.168.0.1/32"}),
			ep("default", "slave1-k8s-frontend2-eth0", "slave1", "cali0ef24b2", map[string]string{"app": "frontend"}, []string{"192.168.0.2/32"}),
			ep("default", "slave2-k8s-database-eth0", "slave2", "cali0ef24b3", map[string]string{"app": "database"}, []string{"192.168.1.1/32", "fd00:1::1/128"}, "profile-database"),
		},
	}
}

// tiered has a security tier (Pass default) before default: the security
// tier passes traffic from the monitoring namespace, denies port 23 and
// has no verdict for the rest; default's NP allows 8080.
func tiered() Input {
	return Input{
		NodeName: "n1",
		Tiers:    []*resources.Tier{tier("security", 100, resources.ActionPass), tier("platform", 200, resources.ActionDeny)},
		GlobalPolicies: []*resources.GlobalNetworkPolicy{
			gnp("security.deny-telnet", "security", fptr(10), "all()", []resources.Rule{
				{Action: resources.ActionLog, Protocol: proto("TCP"), Destination: resources.EntityRule{Ports: ports("23")}},
				{Action: resources.ActionDeny, Protocol: proto("TCP"), Destination: resources.EntityRule{Ports: ports("23")}},
				{Action: resources.ActionPass, Source: resources.EntityRule{Nets: []string{"10.0.0.0/8", "fd00::/8"}}},
			}, nil),
			gnp("platform.icmp", "platform", nil, "app == 'web'", []resources.Rule{
				{Action: resources.ActionAllow, Protocol: proto("ICMP"), ICMP: &resources.ICMPFields{Type: iptr(8), Code: iptr(0)}},
				{Action: resources.ActionDeny, Protocol: proto("ICMP"), NotICMP: &resources.ICMPFields{Type: iptr(3), Code: iptr(4)}},
				{Action: resources.ActionPass, IPVersion: iptr(6), NotProtocol: proto("UDP"),
					Source: resources.EntityRule{NotNets: []string{"::/0"}}},
				{Action: resources.ActionPass},
			}, nil),
			gnp("staged-like-but-egress", "platform", fptr(5), "app == 'other'", nil, allowAll),
		},
		Policies: []*resources.NetworkPolicy{
			np("web", "allow-8080", fptr(50), "app == 'web'", []resources.Rule{
				{Action: resources.ActionAllow, Protocol: proto("TCP"),
					Source:      resources.EntityRule{NotSelector: "role == 'banned'"},
					Destination: resources.EntityRule{Ports: ports("8080", "9000:9100"), NotPorts: ports("9050")}},
			}, nil),
		},
		Profiles: []*resources.Profile{profile("kns.web", map[string]string{"pcns.projectcalico.org/name": "web"}, allowAll, allowAll)},
		Endpoints: []*state.Endpoint{
			ep("web", "n1-k8s-web-eth0", "n1", "calia1", map[string]string{"app": "web"}, []string{"10.65.0.10/32"}, "kns.web"),
			ep("web", "n2-k8s-banned-eth0", "n2", "calib1", map[string]string{"app": "web", "role": "banned"}, []string{"10.65.1.10/32"}, "kns.web"),
		},
	}
}

// nsSelector is a GNP whose rule admits the namespaces labelled
// team=blue, and one that admits global objects (a GlobalNetworkSet).
func nsSelector() Input {
	gns := &resources.GlobalNetworkSet{}
	gns.Name, gns.Labels = "monitoring", map[string]string{"role": "monitoring"}
	gns.Spec.Nets = []string{"198.51.100.0/24", "198.51.100.7/32", "2001:db8::/64"}
	ns := &resources.NetworkSet{}
	ns.Name, ns.Namespace, ns.Labels = "partners", "blue", map[string]string{"role": "monitoring"}
	ns.Spec.Nets = []string{"203.0.113.0/24"}
	return Input{
		NodeName: "n1",
		GlobalPolicies: []*resources.GlobalNetworkPolicy{
			gnp("db-from-blue", "", fptr(10), "app == 'db'", []resources.Rule{
				{Action: resources.ActionAllow, Protocol: proto("TCP"),
					Source:      resources.EntityRule{NamespaceSelector: "team == 'blue'", Selector: "app == 'client'"},
					Destination: resources.EntityRule{Ports: ports("5432")}},
				{Action: resources.ActionAllow, Source: resources.EntityRule{NamespaceSelector: "global()", Selector: "role == 'monitoring'"}},
				{Action: resources.ActionAllow, Source: resources.EntityRule{ServiceAccounts: &resources.ServiceAccountMatch{Names: []string{"backup"}}}},
			}, nil),
		},
		Profiles: []*resources.Profile{
			profile("kns.blue", map[string]string{"pcns.team": "blue", "pcns.projectcalico.org/name": "blue"}, allowAll, allowAll),
			profile("kns.red", map[string]string{"pcns.team": "red", "pcns.projectcalico.org/name": "red"}, allowAll, allowAll),
		},
		GlobalNetworkSets: []*resources.GlobalNetworkSet{gns},
		NetworkSets:       []*resources.NetworkSet{ns},
		Endpoints: []*state.Endpoint{
			ep("data", "n1-k8s-db-eth0", "n1", "calid1", map[string]string{"app": "db"}, []string{"10.65.0.20/32"}),
			ep("blue", "n2-k8s-client-eth0", "n2", "calic1", map[string]string{"app": "client"}, []string{"10.65.1.20/32"}, "kns.blue"),
			ep("red", "n2-k8s-client-eth0", "n2", "calic2", map[string]string{"app": "client"}, []string{"10.65.1.21/32"}, "kns.red"),
			func() *state.Endpoint {
				e := ep("ops", "n2-k8s-backup-eth0", "n2", "calic3", nil, []string{"10.65.1.22/32"})
				e.ServiceAccount = "backup"
				return e
			}(),
		},
	}
}

// namedPorts has a rule to the named port "http" of the api pods (one
// serves it on 8080, one on 8443) or numeric 9090.
func namedPorts() Input {
	api1 := ep("shop", "n1-k8s-api1-eth0", "n1", "calie1", map[string]string{"app": "api"}, []string{"10.65.0.30/32", "fd00::30/128"})
	api1.Ports = []resources.WorkloadEndpointPort{{Name: "http", Protocol: resources.ProtocolFromString("TCP"), Port: 8080}}
	api2 := ep("shop", "n2-k8s-api2-eth0", "n2", "calie2", map[string]string{"app": "api"}, []string{"10.65.1.30/32"})
	api2.Ports = []resources.WorkloadEndpointPort{
		{Name: "http", Protocol: resources.ProtocolFromString("TCP"), Port: 8443},
		{Name: "http", Protocol: resources.ProtocolFromString("UDP"), Port: 8443},
	}
	return Input{
		NodeName: "n1",
		Policies: []*resources.NetworkPolicy{
			np("shop", "api-http", nil, "app == 'api'", []resources.Rule{
				{Action: resources.ActionAllow, Protocol: proto("TCP"),
					Destination: resources.EntityRule{Selector: "app == 'api'", Ports: ports("http", "9090")}},
			}, nil),
		},
		Endpoints: []*state.Endpoint{api1, api2},
	}
}

// knp is a Kubernetes NetworkPolicy as the Kubernetes datastore presents
// it: knp.default.<name>, ingress from pods labelled role=frontend in its
// own namespace to TCP 6379, with the pods' kns/ksa profiles.
func knp() Input {
	redis := ep("cache", "n1-k8s-redis-eth0", "n1", "calif1", map[string]string{"app": "redis"}, []string{"10.65.0.40/32"}, "kns.cache", "ksa.cache.default")
	redis.ServiceAccount = "default"
	return Input{
		NodeName: "n1",
		Policies: []*resources.NetworkPolicy{
			np("cache", "knp.default.redis-from-frontend", nil, "projectcalico.org/orchestrator == 'k8s' && app == 'redis'", []resources.Rule{
				{Action: resources.ActionAllow, Protocol: proto("TCP"),
					Source:      resources.EntityRule{Selector: "projectcalico.org/orchestrator == 'k8s' && role == 'frontend'"},
					Destination: resources.EntityRule{Ports: ports("6379")}},
			}, nil, resources.PolicyTypeIngress),
		},
		Profiles: []*resources.Profile{
			profile("kns.cache", map[string]string{"pcns.projectcalico.org/name": "cache"}, allowAll, allowAll),
			profile("ksa.cache.default", map[string]string{"pcsa.projectcalico.org/name": "default"}, nil, nil),
		},
		Endpoints: []*state.Endpoint{
			withLabel(redis, "projectcalico.org/orchestrator", "k8s"),
			withLabel(ep("cache", "n2-k8s-web-eth0", "n2", "calif2", map[string]string{"role": "frontend"}, []string{"10.65.1.40/32"}, "kns.cache"), "projectcalico.org/orchestrator", "k8s"),
			withLabel(ep("other", "n2-k8s-web-eth0", "n2", "calif3", map[string]string{"role": "frontend"}, []string{"10.65.1.41/32"}), "projectcalico.org/orchestrator", "k8s"),
		},
	}
}

func withLabel(e *state.Endpoint, k, v string) *state.Endpoint {
	l := map[string]string{k: v}
	for a, b := range e.Labels {
		l[a] = b
	}
	e.Labels = l
	return e
}

// hostEndpoints has node n1's eth0 under a deny-all policy (failsafes
// still pass), an applyOnForward policy admitting only SSH through eth0,
// and a "*" endpoint with projectcalico-default-allow.
func hostEndpoints() Input {
	hep := func(name, iface string, labels map[string]string, profiles ...string) *resources.HostEndpoint {
		h := &resources.HostEndpoint{}
		h.Name, h.Labels = name, labels
		h.Spec = resources.HostEndpointSpec{Node: "n1", InterfaceName: iface, ExpectedIPs: []string{"192.0.2.1"}, Profiles: profiles}
		return h
	}
	fwd := gnp("fwd-ssh-only", "", fptr(10), "role == 'gateway'", []resources.Rule{
		{Action: resources.ActionAllow, Protocol: proto("TCP"), Destination: resources.EntityRule{Ports: ports("22")}},
	}, nil)
	fwd.Spec.ApplyOnForward = true
	in := []resources.ProtoPort{{Port: 22}, {Protocol: "udp", Port: 161, Net: "192.0.2.7/24"}}
	return Input{
		NodeName: "n1",
		GlobalPolicies: []*resources.GlobalNetworkPolicy{
			gnp("deny-all", "", fptr(100), "role == 'gateway'", []resources.Rule{{Action: resources.ActionDeny}},
				[]resources.Rule{{Action: resources.ActionDeny}}),
			fwd,
		},
		HostEndpoints: []*resources.HostEndpoint{
			hep("n1-eth0", "eth0", map[string]string{"role": "gateway"}),
			hep("n1-eth0-later", "eth0", nil), // a larger name for the same interface loses
			hep("n1-any", "*", nil, "projectcalico-default-allow"),
			hep("noiface", "", nil),
		},
		Endpoints: []*state.Endpoint{ep("ns1", "n1-k8s-a-eth0", "n1", "calia1", nil, []string{"10.65.0.1/32"}, "projectcalico-default-allow")},
		Felix:     Settings{FailsafeInboundHostPorts: in},
	}
}

// goldenCases are the inputs with a golden dump in testdata.
var goldenCases = []struct {
	name string
	in   func() Input
}{
	{"seed001-slave1", func() Input { return seed001("slave1") }},
	{"seed001-slave2", func() Input { return seed001("slave2") }},
	{"tiered", tiered},
	{"gnp-namespaceselector", nsSelector},
	{"named-ports", namedPorts},
	{"knp", knp},
	{"host-endpoints", hostEndpoints},
	{"host-endpoint-layers", hostLayers},
}

// hostLayers: eth0 and "*" host endpoints with a preDNAT policy (deny a
// network, allow 8080), a doNotTrack policy (allow TCP 7000 both ways) and
// a normal deny-all host policy.
func hostLayers() Input {
	hep := func(name, iface string) *resources.HostEndpoint {
		h := &resources.HostEndpoint{}
		h.Name, h.Labels = name, map[string]string{"hep": name}
		h.Spec = resources.HostEndpointSpec{Node: "n1", InterfaceName: iface, ExpectedIPs: []string{"192.0.2.1"}}
		return h
	}
	pre := gnp("pre-block", "", fptr(1), "has(hep)", []resources.Rule{
		{Action: resources.ActionDeny, Source: resources.EntityRule{Nets: []string{"198.51.100.0/24"}}},
		{Action: resources.ActionAllow, Protocol: proto("TCP"), Destination: resources.EntityRule{Ports: ports("8080")}},
	}, nil)
	pre.Spec.PreDNAT, pre.Spec.ApplyOnForward = true, true
	pre.Spec.Types = []resources.PolicyType{resources.PolicyTypeIngress}
	untracked := gnp("untracked", "", fptr(2), "has(hep)",
		[]resources.Rule{{Action: resources.ActionAllow, Protocol: proto("TCP"), Destination: resources.EntityRule{Ports: ports("7000")}}},
		[]resources.Rule{{Action: resources.ActionAllow, Protocol: proto("TCP"), Source: resources.EntityRule{Ports: ports("7000")}}})
	untracked.Spec.DoNotTrack, untracked.Spec.ApplyOnForward = true, true
	return Input{
		NodeName: "n1",
		GlobalPolicies: []*resources.GlobalNetworkPolicy{
			pre, untracked,
			gnp("host-deny", "", fptr(100), "has(hep)", []resources.Rule{{Action: resources.ActionDeny}}, []resources.Rule{{Action: resources.ActionDeny}}),
		},
		HostEndpoints: []*resources.HostEndpoint{hep("n1-eth0", "eth0"), hep("n1-any", "*")},
	}
}
