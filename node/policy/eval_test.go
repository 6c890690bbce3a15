package policy

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/resources"
)

// inputOf decodes YAML documents into an Input, as the datastore would
// hold them (WorkloadEndpoints defaulted: name and system labels).
func inputOf(t *testing.T, docs ...string) Input {
	t.Helper()
	var in Input
	for i, d := range docs {
		ds, err := resources.Decode([]byte(d), "doc")
		if err != nil {
			t.Fatalf("doc %d: %v", i, err)
		}
		for _, doc := range ds {
			if w, ok := doc.Resource.(*resources.WorkloadEndpoint); ok {
				w.Default()
			}
			if !in.Add(doc.Resource) {
				t.Fatalf("doc %d: unexpected %T", i, doc.Resource)
			}
		}
	}
	return in
}

func seed(t *testing.T, extra ...string) Input {
	t.Helper()
	b, err := os.ReadFile("testdata/seed001.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return inputOf(t, append([]string{string(b)}, extra...)...)
}

func wep(ns, pod string) Ref {
	node := "slave1"
	if pod == "database" || pod == "batch" {
		node = "slave2"
	}
	return Ref{Key: resources.Key{Kind: "WorkloadEndpoint", Namespace: ns, Name: node + "-k8s-" + pod + "-eth0"}}
}

func ip(s string) Ref { return Ref{Addr: netip.MustParseAddr(s)} }

func tcp(src, dst Ref, port uint16) Packet {
	return Packet{Src: src, Dst: dst, Protocol: 6, SrcPort: 40000, DstPort: port}
}

func icmp(src, dst Ref, typ, code int) Packet {
	return Packet{Src: src, Dst: dst, Protocol: 1, ICMPType: &typ, ICMPCode: &code}
}

var (
	frontend = wep("tenant", "frontend1")
	database = wep("tenant", "database")
	batch    = wep("tenant", "batch")
)

// gnp is a GlobalNetworkPolicy selecting the database, with the given
// ingress rules (YAML list items, indented for spec.ingress).
func gnpYAML(name, extraSpec, ingress string) string {
	return "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: " + name +
		"\nspec:\n  selector: service == 'database'\n" + extraSpec + "  ingress:\n" + ingress
}

type want struct {
	action string
	// reason is a substring of the deciding direction's Reason (ingress
	// unless egress denied).
	reason string
	// mismatch is a substring expected in some rule's mismatch.
	mismatch string
	// note is a substring expected in some rule's note.
	note string
}

func check(t *testing.T, v Verdict, w want) {
	t.Helper()
	if v.Action != w.action {
		t.Errorf("action %s, want %s\negress: %s\ningress: %s", v.Action, w.action, v.Egress.Reason, v.Ingress.Reason)
	}
	d := v.Ingress
	if v.Egress.Action == Deny {
		d = v.Egress
	}
	if !strings.Contains(d.Reason, w.reason) {
		t.Errorf("reason %q, want it to contain %q", d.Reason, w.reason)
	}
	var mms, notes []string
	for _, dir := range []Direction{v.Egress, v.Ingress} {
		var all []PolicyTrace
		for _, tt := range dir.Tiers {
			all = append(all, tt.Policies...)
		}
		all = append(all, dir.Profiles...)
		for _, p := range all {
			for _, r := range p.Rules {
				mms = append(mms, r.Mismatch.String())
				notes = append(notes, r.Note)
			}
		}
	}
	if w.mismatch != "" && !strings.Contains(strings.Join(mms, "\n"), w.mismatch) {
		t.Errorf("no mismatch contains %q; have:\n%s", w.mismatch, strings.Join(mms, "\n"))
	}
	if w.note != "" && !strings.Contains(strings.Join(notes, "\n"), w.note) {
		t.Errorf("no note contains %q; have %q", w.note, notes)
	}
}

func TestEvaluateSeed001(t *testing.T) {
	deny, err := os.ReadFile("testdata/seed001-deny-first.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		extra []string
		p     Packet
		want  want
	}{
		{"frontend to database 3306", nil, tcp(frontend, database, 3306),
			want{action: Allow, reason: "profile profile-database rule 0"}},
		{"second frontend by address", nil, tcp(ip("172.16.1.2"), ip("172.16.1.3"), 3306),
			want{action: Allow, reason: "profile profile-database rule 0"}},
		{"frontend to database on another port", nil, tcp(frontend, database, 80),
			want{action: Deny, reason: "no profile allowed", mismatch: "destination.ports: port 80 is not in [3306]"}},
		{"frontend to database over udp", nil, Packet{Src: frontend, Dst: database, Protocol: 17, DstPort: 3306},
			want{action: Deny, reason: "no profile allowed", mismatch: "protocol: packet is udp, rule wants TCP"}},
		{"batch is not a frontend", nil, tcp(batch, database, 3306),
			want{action: Deny, reason: "no profile allowed", mismatch: "source.selector: WorkloadEndpoint tenant/slave2-k8s-batch-eth0 does not match service == \"frontend\""}},
		{"an outside address", nil, tcp(ip("10.9.9.9"), database, 3306),
			want{action: Deny, reason: "no profile allowed", mismatch: "10.9.9.9 is not a Calico endpoint or network set"}},
		{"database has no egress to check on the frontend's side", nil, tcp(database, frontend, 8080),
			want{action: Deny, reason: "no profile allowed"}},
		{"deny first", []string{string(deny)}, tcp(frontend, database, 3306),
			want{action: Deny, reason: "tier default: NetworkPolicy tenant/namespace-default rule 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, Evaluate(seed(t, tc.extra...), tc.p), tc.want)
		})
	}
}

func TestEvaluateSeed001Trace(t *testing.T) {
	v := Evaluate(seed(t), tcp(frontend, database, 3306))
	if !v.Egress.Policed || v.Egress.Reason != "profile profile-frontend rule 0" {
		t.Errorf("egress %+v", v.Egress)
	}
	if v.Src.Kind != "WorkloadEndpoint" || v.Src.Addr != netip.MustParseAddr("172.16.1.1") || v.Dst.Addr != netip.MustParseAddr("172.16.1.3") {
		t.Errorf("src %+v dst %+v", v.Src, v.Dst)
	}
	if v.Src.Labels[LabelNamespace] != "tenant" {
		t.Errorf("labels %v", v.Src.Labels)
	}
	if len(v.Ingress.Tiers) != 0 || len(v.Ingress.Profiles) != 1 || v.Ingress.Profiles[0].Rule != 0 {
		t.Errorf("ingress %+v", v.Ingress)
	}
	// An address Calico does not know is not policed on its side.
	v = Evaluate(seed(t), tcp(frontend, ip("8.8.8.8"), 53))
	if v.Action != Allow || v.Ingress.Policed {
		t.Errorf("to the outside: %+v", v)
	}
}

const tiersYAML = `
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: platform}
spec: {order: 200, defaultAction: Pass}
`

func TestEvaluateTiers(t *testing.T) {
	allowAll := "    - action: Allow\n"
	for _, tc := range []struct {
		name  string
		extra []string
		p     Packet
		want  want
	}{
		{"a Pass rule falls through to the next tier",
			[]string{tiersYAML, gnpYAML("sec", "  tier: security\n", "    - action: Pass\n"), gnpYAML("allow", "", allowAll)},
			tcp(batch, database, 5432), want{action: Allow, reason: "tier default: GlobalNetworkPolicy allow rule 0"}},
		{"end-of-tier drop when no rule matches",
			[]string{tiersYAML, gnpYAML("sec", "  tier: security\n", "    - action: Allow\n      protocol: UDP\n"), gnpYAML("allow", "", allowAll)},
			tcp(frontend, database, 3306), want{action: Deny, reason: "tier security: end of tier", mismatch: "protocol: packet is tcp, rule wants UDP"}},
		{"defaultAction Pass falls through to the profiles",
			[]string{tiersYAML, gnpYAML("plat", "  tier: platform\n", "    - action: Deny\n      protocol: UDP\n")},
			tcp(frontend, database, 3306), want{action: Allow, reason: "profile profile-database rule 0"}},
		{"a Pass in the last tier reaches the profiles",
			[]string{gnpYAML("pass", "", "    - action: Pass\n")},
			tcp(batch, database, 3306), want{action: Deny, reason: "no profile allowed"}},
		{"the lower order decides within a tier",
			[]string{gnpYAML("b-deny", "  order: 10\n", "    - action: Deny\n"), gnpYAML("a-allow", "  order: 20\n", allowAll)},
			tcp(frontend, database, 3306), want{action: Deny, reason: "GlobalNetworkPolicy b-deny rule 0"}},
		{"no order sorts last",
			[]string{gnpYAML("a-deny", "", "    - action: Deny\n"), gnpYAML("z-allow", "  order: 1000\n", allowAll)},
			tcp(frontend, database, 3306), want{action: Allow, reason: "GlobalNetworkPolicy z-allow rule 0"}},
		{"equal orders break by name",
			[]string{gnpYAML("b-deny", "  order: 5\n", "    - action: Deny\n"), gnpYAML("a-allow", "  order: 5\n", allowAll)},
			tcp(frontend, database, 3306), want{action: Allow, reason: "GlobalNetworkPolicy a-allow rule 0"}},
		{"a policy in a missing tier acts in a Deny tier after the others",
			[]string{gnpYAML("lost", "  tier: nowhere\n", "    - action: Pass\n      protocol: UDP\n")},
			tcp(frontend, database, 3306), want{action: Deny, reason: "tier nowhere: end of tier"}},
		{"a policy that does not select the endpoint is skipped",
			[]string{"apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: other}\nspec:\n  selector: service == 'nothing'\n  ingress:\n    - action: Deny\n"},
			tcp(frontend, database, 3306), want{action: Allow, reason: "profile profile-database rule 0"}},
		{"types default to Ingress: egress untouched",
			[]string{"apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: all-in}\nspec:\n  selector: all()\n  ingress:\n    - action: Allow\n"},
			tcp(database, frontend, 80), want{action: Allow, reason: "tier default: GlobalNetworkPolicy all-in rule 0"}},
		{"types Egress with only ingress rules: egress denied at end of tier",
			[]string{"apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: eg}\nspec:\n  selector: service == 'frontend'\n  types: [Egress]\n  ingress:\n    - action: Allow\n"},
			tcp(frontend, database, 3306), want{action: Deny, reason: "tier default: end of tier"}},
		{"Log does not decide",
			[]string{gnpYAML("log", "", "    - action: Log\n    - action: Deny\n")},
			tcp(frontend, database, 3306), want{action: Deny, reason: "GlobalNetworkPolicy log rule 1", note: "logged"}},
		{"http is reported as not enforced",
			[]string{gnpYAML("http", "", "    - action: Allow\n      protocol: TCP\n      http:\n        methods: [GET]\n")},
			tcp(batch, database, 80), want{action: Allow, reason: "GlobalNetworkPolicy http rule 0", note: "http match not enforced"}},
		{"preDNAT policy is not applied to workloads",
			[]string{"apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: pre}\nspec:\n  selector: all()\n  preDNAT: true\n  applyOnForward: true\n  ingress:\n    - action: Deny\n"},
			tcp(frontend, database, 3306), want{action: Allow, reason: "profile profile-database"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, Evaluate(seed(t, tc.extra...), tc.p), tc.want)
		})
	}
}

const scopingYAML = `
apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: kns.tenant}
spec:
  labelsToApply: {pcns.team: a, pcns.projectcalico.org/name: tenant}
---
apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: kns.other}
spec:
  labelsToApply: {pcns.team: b, pcns.projectcalico.org/name: other}
  egress: [{action: Allow}]
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata:
  namespace: other
  labels: {service: frontend}
spec:
  orchestrator: k8s
  node: slave1
  pod: frontend1
  endpoint: eth0
  interfaceName: cali11111111111
  serviceAccountName: web
  ipNetworks: [172.16.2.1/32]
  profiles: [kns.other]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata:
  name: partners
  labels: {role: partner}
spec:
  nets: [192.0.2.0/24]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata:
  name: partner-lab
  labels: {role: lab}
spec:
  nets: [192.0.2.128/25]
---
apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata:
  name: office
  namespace: tenant
  labels: {role: office}
spec:
  nets: [198.51.100.0/24]
`

func npYAML(name, ingress string) string {
	return "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: " + name +
		"\n  namespace: tenant\nspec:\n  selector: service == 'database'\n  ingress:\n" + ingress
}

func TestEvaluateSelectorScoping(t *testing.T) {
	other := wep("other", "frontend1")
	for _, tc := range []struct {
		name  string
		extra []string
		p     Packet
		want  want
	}{
		{"a NetworkPolicy's selector matches its own namespace",
			[]string{npYAML("fe", "    - action: Allow\n      source:\n        selector: service == 'frontend'\n")},
			tcp(frontend, database, 9000), want{action: Allow, reason: "NetworkPolicy tenant/fe rule 0"}},
		{"a NetworkPolicy's selector does not match another namespace",
			[]string{npYAML("fe", "    - action: Allow\n      source:\n        selector: service == 'frontend'\n")},
			tcp(other, database, 9000), want{action: Deny, reason: "tier default: end of tier", mismatch: `is in namespace "other"; a NetworkPolicy's selectors only match namespace "tenant"`}},
		{"a NetworkPolicy's notSelector alone still scopes to the namespace",
			[]string{npYAML("not", "    - action: Allow\n      source:\n        notSelector: service == 'batch'\n")},
			tcp(other, database, 9000), want{action: Deny, mismatch: "only match namespace"}},
		{"namespaceSelector replaces the own-namespace restriction",
			[]string{npYAML("ns", "    - action: Allow\n      source:\n        namespaceSelector: team == 'b'\n        selector: service == 'frontend'\n")},
			tcp(other, database, 9000), want{action: Allow, reason: "NetworkPolicy tenant/ns rule 0"}},
		{"namespaceSelector that does not match",
			[]string{npYAML("ns", "    - action: Allow\n      source:\n        namespaceSelector: team == 'a'\n")},
			tcp(other, database, 9000), want{action: Deny, mismatch: "source.namespaceSelector: WorkloadEndpoint other/slave1-k8s-frontend1-eth0's namespace does not match"}},
		{"namespaceSelector all() is any namespaced endpoint",
			[]string{npYAML("ns", "    - action: Allow\n      source:\n        namespaceSelector: all()\n")},
			tcp(other, database, 9000), want{action: Allow}},
		{"namespaceSelector all() is not a global network set",
			[]string{npYAML("ns", "    - action: Allow\n      source:\n        namespaceSelector: all()\n")},
			tcp(ip("192.0.2.9"), database, 9000), want{action: Deny, mismatch: "namespace does not match all()"}},
		{"namespaceSelector global() matches a global network set",
			[]string{npYAML("ns", "    - action: Allow\n      source:\n        namespaceSelector: global()\n        selector: role == 'partner'\n")},
			tcp(ip("192.0.2.9"), database, 9000), want{action: Allow}},
		{"namespaceSelector global() does not match a pod",
			[]string{npYAML("ns", "    - action: Allow\n      source:\n        namespaceSelector: global()\n")},
			tcp(other, database, 9000), want{action: Deny, mismatch: "does not match global()"}},
		{"a GlobalNetworkPolicy's selector is not scoped",
			[]string{gnpYAML("fe", "", "    - action: Allow\n      source:\n        selector: service == 'frontend'\n")},
			tcp(other, database, 9000), want{action: Allow}},
		{"an address in nested sets matches the outer set's labels too",
			[]string{gnpYAML("partners", "", "    - action: Allow\n      source:\n        selector: role == 'partner'\n")},
			tcp(ip("192.0.2.200"), database, 9000), want{action: Allow}},
		{"a namespaced network set matches a NetworkPolicy of its namespace",
			[]string{npYAML("office", "    - action: Allow\n      source:\n        selector: role == 'office'\n")},
			tcp(ip("198.51.100.7"), database, 9000), want{action: Allow}},
		{"serviceAccounts names",
			[]string{gnpYAML("sa", "", "    - action: Allow\n      source:\n        serviceAccounts:\n          names: [api]\n")},
			tcp(other, database, 9000), want{action: Deny, mismatch: `has service account "web", not one of [api]`}},
		{"serviceAccounts names match",
			[]string{gnpYAML("sa", "", "    - action: Allow\n      source:\n        serviceAccounts:\n          names: [web]\n")},
			tcp(other, database, 9000), want{action: Allow}},
		{"GlobalNetworkPolicy namespaceSelector picks endpoints",
			[]string{"apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: team-a}\nspec:\n  namespaceSelector: projectcalico.org/name == 'tenant'\n  ingress: [{action: Deny}]\n"},
			tcp(frontend, database, 3306), want{action: Deny, reason: "GlobalNetworkPolicy team-a rule 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := seed(t, append([]string{scopingYAML}, tc.extra...)...)
			check(t, Evaluate(in, tc.p), tc.want)
		})
	}
}

func TestEvaluateRuleFields(t *testing.T) {
	rule := func(fields string) []string {
		return []string{gnpYAML("r", "", "    - action: Allow\n"+fields)}
	}
	v6 := Packet{Src: ip("fd00::1"), Dst: ip("fd00::3"), Protocol: 6, DstPort: 3306}
	for _, tc := range []struct {
		name   string
		fields string
		p      Packet
		want   want
	}{
		{"nets", "      source:\n        nets: [172.16.1.0/30]\n", tcp(frontend, database, 1), want{action: Allow}},
		{"nets miss", "      source:\n        nets: [10.0.0.0/8, 172.16.1.4/32]\n", tcp(frontend, database, 1),
			want{action: Deny, mismatch: "source.nets: 172.16.1.1 is not in [10.0.0.0/8, 172.16.1.4/32]"}},
		{"nets of the other family", "      source:\n        nets: [fd00::/8]\n", tcp(frontend, database, 1),
			want{action: Deny, mismatch: "only IPv6 nets"}},
		{"notNets", "      source:\n        notNets: [172.16.1.0/24]\n", tcp(frontend, database, 1),
			want{action: Deny, mismatch: "source.notNets: 172.16.1.1 is in 172.16.1.0/24"}},
		{"destination nets", "      destination:\n        nets: [172.16.1.3/32]\n", tcp(frontend, database, 1), want{action: Allow}},
		{"port range", "      protocol: TCP\n      destination:\n        ports: ['3000:4000']\n", tcp(frontend, database, 3306), want{action: Allow}},
		{"port range miss", "      protocol: TCP\n      destination:\n        ports: ['3000:3305', 80]\n", tcp(frontend, database, 3306),
			want{action: Deny, mismatch: "destination.ports: port 3306 is not in [3000:3305, 80]"}},
		{"notPorts", "      protocol: TCP\n      destination:\n        notPorts: ['3300:3310']\n", tcp(frontend, database, 3306),
			want{action: Deny, mismatch: "destination.notPorts: port 3306 is in 3300:3310"}},
		{"source ports", "      protocol: TCP\n      source:\n        ports: ['32768:60999']\n", tcp(frontend, database, 3306), want{action: Allow}},
		{"named port", "      protocol: TCP\n      destination:\n        ports: [mysql]\n", tcp(frontend, database, 3306), want{action: Allow}},
		{"named port on another port", "      protocol: TCP\n      destination:\n        ports: [mysql]\n", tcp(frontend, database, 3307),
			want{action: Deny, mismatch: "port 3307 is not in [mysql]"}},
		{"named port of another protocol", "      protocol: UDP\n      destination:\n        ports: [mysql]\n",
			Packet{Src: frontend, Dst: database, Protocol: 17, DstPort: 3306}, want{action: Deny, mismatch: "destination.ports"}},
		{"protocol by number", "      protocol: 6\n", tcp(frontend, database, 1), want{action: Allow}},
		{"notProtocol", "      notProtocol: TCP\n", tcp(frontend, database, 1), want{action: Deny, mismatch: "notProtocol: packet is tcp"}},
		{"icmp type", "      protocol: ICMP\n      icmp: {type: 8}\n", icmp(frontend, database, 8, 0), want{action: Allow}},
		{"icmp type miss", "      protocol: ICMP\n      icmp: {type: 8}\n", icmp(frontend, database, 0, 0),
			want{action: Deny, mismatch: "icmp: packet is type 0 code 0, rule wants type 8"}},
		{"icmp code", "      protocol: ICMP\n      icmp: {type: 3, code: 4}\n", icmp(frontend, database, 3, 1), want{action: Deny, mismatch: "rule wants type 3 code 4"}},
		{"notICMP", "      protocol: ICMP\n      notICMP: {type: 8}\n", icmp(frontend, database, 8, 0), want{action: Deny, mismatch: "notICMP: packet is type 8"}},
		{"notICMP other type", "      protocol: ICMP\n      notICMP: {type: 8}\n", icmp(frontend, database, 0, 0), want{action: Allow}},
		{"ipVersion", "      ipVersion: 6\n", tcp(frontend, database, 1), want{action: Deny, mismatch: "ipVersion: rule is for IPv6, packet is IPv4"}},
		{"ipVersion 6 matches v6", "      ipVersion: 6\n", v6, want{action: Allow}},
		{"icmp implies IPv4", "      protocol: ICMP\n", Packet{Src: ip("fd00::1"), Dst: ip("fd00::3"), Protocol: 1}, want{action: Deny, mismatch: "ICMP implies IPv4"}},
		{"selector and notSelector", "      source:\n        selector: service == 'frontend'\n        notSelector: has(canary)\n", tcp(frontend, database, 1), want{action: Allow}},
		{"notSelector", "      source:\n        notSelector: service == 'frontend'\n", tcp(frontend, database, 1),
			want{action: Deny, mismatch: "source.notSelector: WorkloadEndpoint tenant/slave1-k8s-frontend1-eth0 matches"}},
		{"notSelector matches an outside address", "      source:\n        notSelector: service == 'frontend'\n", tcp(ip("10.1.1.1"), database, 1), want{action: Allow}},
		{"destination selector", "      destination:\n        selector: service == 'database'\n", tcp(frontend, database, 1), want{action: Allow}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := seed(t, rule(tc.fields)...)
			if tc.p.Src.Addr.Is6() {
				in = seed(t, append(rule(tc.fields), "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata: {namespace: tenant, labels: {service: database}}\nspec:\n  orchestrator: k8s\n  node: slave2\n  pod: database6\n  endpoint: eth0\n  interfaceName: cali66\n  ipNetworks: ['fd00::3/128']\n  profiles: [profile-database]\n")...)
			}
			v := Evaluate(in, tc.p)
			if tc.want.action == Deny && tc.want.reason == "" {
				tc.want.reason = "end of tier"
			}
			check(t, v, tc.want)
		})
	}
}

const kubernetesYAML = `
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: knp.default.db-from-frontend
  namespace: tenant
spec:
  tier: default
  order: 1000
  selector: projectcalico.org/orchestrator == 'k8s' && service == 'database'
  types: [Ingress]
  ingress:
    - action: Allow
      protocol: TCP
      source:
        selector: projectcalico.org/orchestrator == 'k8s' && service == 'frontend'
      destination:
        ports: [3306]
`

func TestEvaluateKubernetesNetworkPolicy(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Packet
		want want
	}{
		{"frontend allowed", tcp(frontend, database, 3306), want{action: Allow, reason: "tier default: NetworkPolicy tenant/knp.default.db-from-frontend rule 0"}},
		{"batch dropped at end of tier (the profile is not reached)", tcp(batch, database, 3306), want{action: Deny, reason: "tier default: end of tier"}},
		{"another port dropped", tcp(frontend, database, 22), want{action: Deny, reason: "end of tier", mismatch: "port 22 is not in [3306]"}},
		{"egress is not governed by an Ingress policy", tcp(database, frontend, 80), want{action: Deny, reason: "no profile allowed"}},
	} {
		t.Run(tc.name, func(t *testing.T) { check(t, Evaluate(seed(t, kubernetesYAML), tc.p), tc.want) })
	}
}

const hostYAML = `
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata:
  name: slave2-eth0
  labels: {role: host}
spec:
  node: slave2
  interfaceName: eth0
  expectedIPs: [192.168.40.12]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: host-deny}
spec:
  selector: role == 'host'
  types: [Ingress, Egress]
  ingress: [{action: Deny}]
  egress: [{action: Deny}]
`

func TestEvaluateHostEndpoints(t *testing.T) {
	hep := Ref{Key: resources.Key{Kind: "HostEndpoint", Name: "slave2-eth0"}}
	for _, tc := range []struct {
		name  string
		felix Settings
		p     Packet
		want  want
	}{
		{"host policy denies", Settings{}, tcp(ip("10.0.0.1"), hep, 8080), want{action: Deny, reason: "GlobalNetworkPolicy host-deny rule 0"}},
		{"failsafe ssh survives a deny-all", Settings{}, tcp(ip("10.0.0.1"), ip("192.168.40.12"), 22), want{action: Allow, reason: "failsafe port tcp:22"}},
		{"configured failsafes replace the defaults", Settings{FailsafeInboundHostPorts: []resources.ProtoPort{{Protocol: "tcp", Port: 2222}}},
			tcp(ip("10.0.0.1"), hep, 22), want{action: Deny, reason: "host-deny rule 0"}},
		{"outbound failsafe dns", Settings{}, Packet{Src: hep, Dst: ip("10.0.0.53"), Protocol: 17, DstPort: 53}, want{action: Allow}},
		{"host egress denied", Settings{}, tcp(hep, ip("10.0.0.1"), 8080), want{action: Deny, reason: "host-deny rule 0"}},
		{"workload to its host: Drop by default", Settings{}, tcp(batch, hep, 8080), want{action: Deny, reason: "DefaultEndpointToHostAction Drop"}},
		{"workload to its host: Accept", Settings{DefaultEndpointToHostAction: "Accept"}, tcp(batch, hep, 8080), want{action: Allow, reason: "DefaultEndpointToHostAction Accept"}},
		{"workload to its host: Return", Settings{DefaultEndpointToHostAction: "Return"}, tcp(batch, hep, 8080), want{action: Allow, reason: "Return"}},
		{"workload to another host: host policy", Settings{DefaultEndpointToHostAction: "Accept"}, tcp(frontend, hep, 8080), want{action: Deny, reason: "host-deny rule 0"}},
		{"host to a local workload is not policed", Settings{}, tcp(hep, database, 9999), want{action: Allow, reason: "host to a local workload"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := seed(t, hostYAML)
			in.Felix = tc.felix
			check(t, Evaluate(in, tc.p), tc.want)
		})
	}
}

func TestEvaluateNoPolicyNoProfile(t *testing.T) {
	in := seed(t, "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata: {namespace: tenant}\nspec:\n  orchestrator: k8s\n  node: slave1\n  pod: bare\n  endpoint: eth0\n  interfaceName: cali99\n  ipNetworks: [172.16.1.9/32]\n")
	check(t, Evaluate(in, tcp(frontend, wep("tenant", "bare"), 80)), want{action: Deny, reason: "no policy applies and the endpoint has no profiles"})
	v := Evaluate(in, tcp(Ref{Key: resources.Key{Kind: "WorkloadEndpoint", Namespace: "tenant", Name: "nope"}}, database, 3306))
	if len(v.Notes) == 0 || !strings.Contains(v.Notes[0], `"nope" not found`) {
		t.Errorf("notes %q", v.Notes)
	}
}
