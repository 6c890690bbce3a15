package resources

import (
	"reflect"
	"strings"
	"testing"
)

const npManifest = `
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: allow-web
  namespace: prod
spec:
  selector: app == 'web' && tier in {"frontend", "edge"}
  order: 10
  ingress:
  - action: Allow
    protocol: TCP
    source:
      selector: app == 'lb'
      namespaceSelector: kubernetes.io/metadata.name == 'ingress'
    destination:
      ports: ["8080:8090", 443, http]
      notPorts: ["8085"]
  - action: Log
    ipVersion: 6
    source:
      nets: ["fd00:10::/64"]
  egress:
  - action: Allow
    protocol: UDP
    destination:
      selector: k8s-app == 'kube-dns'
      namespaceSelector: global()
      ports: [53]
  - action: Deny
    protocol: SCTP
    destination:
      nets: [0.0.0.0/0]
      notNets: [10.0.0.0/8, 172.16.0.0/12]
      ports: ["1:1024"]
`

func TestNetworkPolicyManifest(t *testing.T) {
	var p NetworkPolicy
	decodeStrictYAML(t, npManifest, &p)
	p.Default()
	if err := p.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if p.Spec.Tier != "default" || p.Labels[LabelTier] != "default" {
		t.Errorf("tier %q, labels %v", p.Spec.Tier, p.Labels)
	}
	if !reflect.DeepEqual(p.Spec.Types, []PolicyType{PolicyTypeIngress, PolicyTypeEgress}) {
		t.Errorf("types %v", p.Spec.Types)
	}
	d := p.Spec.Ingress[0].Destination
	want := []Port{{MinPort: 8080, MaxPort: 8090}, SinglePort(443), NamedPort("http")}
	if !reflect.DeepEqual(d.Ports, want) || !reflect.DeepEqual(d.NotPorts, []Port{SinglePort(8085)}) {
		t.Errorf("ports %+v, notPorts %+v", d.Ports, d.NotPorts)
	}
	out := assertJSONRoundTrip(t, &p)
	for _, s := range []string{`"ports":["8080:8090",443,"http"]`, `"notPorts":[8085]`, `"ports":["1:1024"]`, `"tier":"default"`} {
		if !strings.Contains(string(out), s) {
			t.Errorf("JSON lacks %s:\n%s", s, out)
		}
	}
}

func TestNetworkPolicyValidate(t *testing.T) {
	tests := []struct {
		name, meta, ns string
		spec           NetworkPolicySpec
		want           string
	}{
		{"label", "allow-dns", "prod", NetworkPolicySpec{}, ""},
		{"label.label", "sec.allow-dns", "prod", NetworkPolicySpec{Tier: "sec"}, ""},
		{"knp prefix", "knp.default.allow.from.x", "prod", NetworkPolicySpec{}, ""},
		{"ossg prefix", "ossg.default.something", "prod", NetworkPolicySpec{}, ""},
		{"three labels", "a.b.c", "prod", NetworkPolicySpec{}, "metadata.name = 'a.b.c'"},
		{"knp without default", "knp.other.x", "prod", NetworkPolicySpec{}, "metadata.name"},
		{"upper case", "Web", "prod", NetworkPolicySpec{}, "metadata.name"},
		{"bad namespace", "p", "Prod", NetworkPolicySpec{}, "metadata.namespace = 'Prod'"},
		{"global() selector", "p", "prod", NetworkPolicySpec{Selector: "global()"}, "spec.selector"},
		{"global() sa selector", "p", "prod", NetworkPolicySpec{ServiceAccountSelector: "global()"}, "spec.serviceAccountSelector"},
		{"service without namespace is fine", "p", "prod", NetworkPolicySpec{Egress: []Rule{{Action: ActionAllow, Destination: EntityRule{Services: &ServiceMatch{Name: "api"}}}}}, ""},
		{"rule error path", "p", "prod", NetworkPolicySpec{Ingress: []Rule{{Action: ActionAllow}, {Action: ActionAllow, Source: EntityRule{Nets: []string{"nope"}}}}}, "spec.ingress[1].source.nets[0] = 'nope'"},
		{"bad type", "p", "prod", NetworkPolicySpec{Types: []PolicyType{"Both"}}, "spec.types[0] = 'Both'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NetworkPolicy{ObjectMeta: metaNamed(tt.meta, tt.ns), Spec: tt.spec}
			p.Default()
			assertValidation(t, p.Validate(), tt.want)
		})
	}
}

func TestNetworkPolicyDefault(t *testing.T) {
	p := NetworkPolicy{ObjectMeta: metaNamed("p", "ns"), Spec: NetworkPolicySpec{Tier: "sec", Egress: []Rule{{Action: ActionDeny}}}}
	p.Default()
	if p.Spec.Tier != "sec" || p.Labels[LabelTier] != "sec" || !reflect.DeepEqual(p.Spec.Types, []PolicyType{PolicyTypeEgress}) {
		t.Fatalf("after Default: tier %q labels %v types %v", p.Spec.Tier, p.Labels, p.Spec.Types)
	}
	before := p.Spec.Types
	p.Default()
	if !reflect.DeepEqual(p.Spec.Types, before) || len(p.Labels) != 1 {
		t.Fatalf("second Default changed the object: %v %v", p.Spec.Types, p.Labels)
	}
}

func TestPolicyManifestsThroughDecode(t *testing.T) {
	docs, err := Decode([]byte(gnpManifest+"\n---\n"+npManifest+"\n---\n"+profileManifest+"\n---\n"+wepManifest), "policies.yaml")
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	kinds := []string{}
	for _, d := range docs {
		d.Resource.Default()
		if err := d.Resource.Validate(); err != nil {
			t.Errorf("%s: %v", d.Source, err)
		}
		kinds = append(kinds, KindOf(d.Resource).Kind)
	}
	if want := []string{"GlobalNetworkPolicy", "NetworkPolicy", "Profile", "WorkloadEndpoint"}; !reflect.DeepEqual(kinds, want) {
		t.Fatalf("kinds = %v, want %v", kinds, want)
	}
	_, err = Decode([]byte(strings.Replace(npManifest, "notPorts:", "notPort:", 1)), "bad.yaml")
	if err == nil || !strings.Contains(err.Error(), "notPort") {
		t.Fatalf("Decode of a misspelt field: %v", err)
	}
}
