package resources

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const gnpManifest = `
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: security.allow-tcp-6379
  labels:
    team: storage
spec:
  tier: security
  order: 100.5
  selector: role == 'database'
  namespaceSelector: has(projectcalico.org/name)
  serviceAccountSelector: role == 'db'
  types:
  - Ingress
  - Egress
  performanceHints: [AssumeNeededOnEveryNode]
  ingress:
  - action: Allow
    protocol: TCP
    metadata:
      annotations:
        example.com/why: frontends reach redis
    source:
      selector: role == 'frontend'
      namespaceSelector: global()
      notNets: [10.9.0.0/16]
    destination:
      ports: [6379, "7000:7010", redis]
  - action: Allow
    protocol: ICMP
    ipVersion: 4
    icmp: {type: 8, code: 0}
  - action: Allow
    protocol: 6
    http:
      methods: [GET]
      paths:
      - exact: /healthz
      - prefix: /api/
    source:
      serviceAccounts:
        names: [web]
        selector: app == 'web'
  - action: Deny
    notProtocol: UDP
    notICMP: {type: 3}
    source:
      nets: [192.168.0.0/16]
      notSelector: quarantine == 'true'
  egress:
  - action: Allow
    protocol: UDP
    destination:
      services:
        name: kube-dns
        namespace: kube-system
  - action: Pass
`

func TestGlobalNetworkPolicyManifest(t *testing.T) {
	var p GlobalNetworkPolicy
	decodeStrictYAML(t, gnpManifest, &p)
	if err := p.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	in := p.Spec.Ingress
	if len(in) != 4 || len(p.Spec.Egress) != 2 {
		t.Fatalf("rules: %d ingress, %d egress", len(in), len(p.Spec.Egress))
	}
	wantPorts := []Port{SinglePort(6379), {MinPort: 7000, MaxPort: 7010}, NamedPort("redis")}
	if !reflect.DeepEqual(in[0].Destination.Ports, wantPorts) {
		t.Errorf("ports = %+v", in[0].Destination.Ports)
	}
	if *p.Spec.Order != 100.5 || !in[2].Protocol.IsNumeric() || !in[2].Protocol.Is(ProtocolTCP) {
		t.Errorf("order %v, protocol %v", *p.Spec.Order, in[2].Protocol)
	}
	out := assertJSONRoundTrip(t, &p)
	for _, want := range []string{`"ports":[6379,"7000:7010","redis"]`, `"protocol":6`, `"order":100.5`, `"icmp":{"type":8,"code":0}`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("JSON lacks %s:\n%s", want, out)
		}
	}
	// The YAML we would print decodes back strictly, too.
	y, err := yaml.Marshal(&p)
	if err != nil {
		t.Fatal(err)
	}
	var back GlobalNetworkPolicy
	decodeStrictYAML(t, string(y), &back)
	if !reflect.DeepEqual(back, p) {
		t.Errorf("YAML round trip differs:\n%s", y)
	}
}

func TestGlobalNetworkPolicyUnknownField(t *testing.T) {
	for _, doc := range []string{
		`{"kind":"GlobalNetworkPolicy","metadata":{"name":"a"},"spec":{"selectr":"all()"}}`,
		`{"kind":"GlobalNetworkPolicy","metadata":{"name":"a"},"spec":{"ingress":[{"action":"Allow","source":{"net":"10.0.0.0/8"}}]}}`,
		`{"kind":"GlobalNetworkPolicy","metadata":{"name":"a"},"spec":{"ingress":[{"action":"Allow","destination":{"ports":[{"int":3306}]}}]}}`,
	} {
		dec := json.NewDecoder(strings.NewReader(doc))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&GlobalNetworkPolicy{}); err == nil {
			t.Errorf("strict decode of %s succeeded, want error", doc)
		}
	}
}

func TestGlobalNetworkPolicyDefault(t *testing.T) {
	allow := []Rule{{Action: ActionAllow}}
	tests := []struct {
		name      string
		in        GlobalNetworkPolicy
		wantTier  string
		wantTypes []PolicyType
	}{
		{"empty", GlobalNetworkPolicy{}, "default", []PolicyType{PolicyTypeIngress}},
		{"egress only", GlobalNetworkPolicy{Spec: GlobalNetworkPolicySpec{Egress: allow}}, "default", []PolicyType{PolicyTypeEgress}},
		{"both", GlobalNetworkPolicy{Spec: GlobalNetworkPolicySpec{Ingress: allow, Egress: allow}}, "default", []PolicyType{PolicyTypeIngress, PolicyTypeEgress}},
		{"explicit types kept", GlobalNetworkPolicy{Spec: GlobalNetworkPolicySpec{Tier: "sec", Ingress: allow, Types: []PolicyType{PolicyTypeEgress}}}, "sec", []PolicyType{PolicyTypeEgress}},
		{"stale tier label replaced", GlobalNetworkPolicy{ObjectMeta: metaWithLabels("p", "", map[string]string{LabelTier: "old", "a": "b"}), Spec: GlobalNetworkPolicySpec{Tier: "new"}}, "new", []PolicyType{PolicyTypeIngress}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.in
			p.Default()
			if p.Spec.Tier != tt.wantTier || p.Labels[LabelTier] != tt.wantTier {
				t.Errorf("tier %q, label %q; want %q", p.Spec.Tier, p.Labels[LabelTier], tt.wantTier)
			}
			if !reflect.DeepEqual(p.Spec.Types, tt.wantTypes) {
				t.Errorf("types %v, want %v", p.Spec.Types, tt.wantTypes)
			}
			once, _ := json.Marshal(&p)
			p.Default()
			twice, _ := json.Marshal(&p)
			if !bytes.Equal(once, twice) {
				t.Errorf("Default is not idempotent:\n%s\n%s", once, twice)
			}
		})
	}
}

func TestGlobalNetworkPolicyValidate(t *testing.T) {
	svc := &ServiceMatch{Name: "api"}
	tests := []struct {
		name string
		meta string
		spec GlobalNetworkPolicySpec
		want string
	}{
		{"minimal", "allow-all", GlobalNetworkPolicySpec{}, ""},
		{"tier prefix", "sec.allow", GlobalNetworkPolicySpec{Tier: "sec"}, ""},
		{"two dots", "a.b.c", GlobalNetworkPolicySpec{}, "metadata.name = 'a.b.c'"},
		{"upper case", "Allow", GlobalNetworkPolicySpec{}, "metadata.name = 'Allow'"},
		{"leading dash", "-x", GlobalNetworkPolicySpec{}, "metadata.name"},
		{"long label is fine", strings.Repeat("a", 100), GlobalNetworkPolicySpec{}, ""},
		{"too long", strings.Repeat("a", 254), GlobalNetworkPolicySpec{}, "metadata.name"},
		{"bad tier", "p", GlobalNetworkPolicySpec{Tier: "Sec"}, "spec.tier = 'Sec'"},
		{"types", "p", GlobalNetworkPolicySpec{Types: []PolicyType{PolicyTypeEgress, PolicyTypeIngress}}, ""},
		{"bad type", "p", GlobalNetworkPolicySpec{Types: []PolicyType{"ingress"}}, "spec.types[0] = 'ingress'"},
		{"duplicate type", "p", GlobalNetworkPolicySpec{Types: []PolicyType{PolicyTypeIngress, PolicyTypeIngress}}, "'Ingress' type specified more than once"},
		{"bad hint", "p", GlobalNetworkPolicySpec{PerformanceHints: []PolicyPerformanceHint{"Fast"}}, "spec.performanceHints[0] = 'Fast'"},
		{"global() in selector", "p", GlobalNetworkPolicySpec{Selector: "global()"}, "spec.selector = 'global()'"},
		{"global() in namespaceSelector", "p", GlobalNetworkPolicySpec{NamespaceSelector: "global()"}, "spec.namespaceSelector"},
		{"doNotTrack with applyOnForward", "p", GlobalNetworkPolicySpec{DoNotTrack: true, ApplyOnForward: true}, ""},
		{"doNotTrack needs applyOnForward", "p", GlobalNetworkPolicySpec{DoNotTrack: true}, "spec.applyOnForward = 'false' (applyOnForward must be true"},
		{"preDNAT needs applyOnForward", "p", GlobalNetworkPolicySpec{PreDNAT: true}, "spec.applyOnForward"},
		{"preDNAT and doNotTrack", "p", GlobalNetworkPolicySpec{PreDNAT: true, DoNotTrack: true, ApplyOnForward: true}, "preDNAT and doNotTrack cannot both be true"},
		{"preDNAT no egress rules", "p", GlobalNetworkPolicySpec{PreDNAT: true, ApplyOnForward: true, Egress: []Rule{{Action: ActionAllow}}}, "preDNAT policy cannot have any egress rules"},
		{"preDNAT no egress type", "p", GlobalNetworkPolicySpec{PreDNAT: true, ApplyOnForward: true, Types: []PolicyType{PolicyTypeEgress}}, "preDNAT policy cannot have 'Egress' type"},
		{"bad rule path", "p", GlobalNetworkPolicySpec{Egress: []Rule{{Action: ActionAllow}, {Action: "Drop"}}}, "spec.egress[1].action = 'Drop'"},
		{"ingress source service needs namespace", "p", GlobalNetworkPolicySpec{Ingress: []Rule{{Action: ActionAllow, Source: EntityRule{Services: svc}}}}, "spec.ingress[0].source.services.namespace"},
		{"egress destination service needs namespace", "p", GlobalNetworkPolicySpec{Egress: []Rule{{Action: ActionAllow, Destination: EntityRule{Services: svc}}}}, "spec.egress[0].destination.services.namespace"},
		{"ingress destination service", "p", GlobalNetworkPolicySpec{Ingress: []Rule{{Action: ActionAllow, Destination: EntityRule{Services: &ServiceMatch{Name: "a", Namespace: "b"}}}}}, "not allowed in ingress rule destination"},
		{"egress source service", "p", GlobalNetworkPolicySpec{Egress: []Rule{{Action: ActionAllow, Source: EntityRule{Services: &ServiceMatch{Name: "a", Namespace: "b"}}}}}, "not allowed in egress rule source"},
		{"egress http", "p", GlobalNetworkPolicySpec{Egress: []Rule{{Action: ActionAllow, HTTP: &HTTPMatch{Methods: []string{"GET"}}}}}, "spec.egress[0].http = '' (not allowed in egress rules)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := GlobalNetworkPolicy{ObjectMeta: metaNamed(tt.meta, ""), Spec: tt.spec}
			p.Default()
			assertValidation(t, p.Validate(), tt.want)
		})
	}
}
