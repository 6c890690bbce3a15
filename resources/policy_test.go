package resources

import (
	"math"
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func pointerTo[T any](v T) *T { return &v }

func protoPtr(s string) *Protocol { p := ProtocolFromString(s); return &p }

// validateOneRule runs the rule checks on r as the first ingress rule.
func validateOneRule(r Rule) error {
	var v Validator
	validateRule(&v, "spec.ingress[0]", r)
	return v.Err()
}

func TestValidateRule(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
		want string // substring of the error; "" = valid
	}{
		{"allow all", Rule{Action: ActionAllow}, ""},
		{"every action", Rule{Action: ActionPass}, ""},
		{"log", Rule{Action: ActionLog}, ""},
		{"missing action", Rule{}, "spec.ingress[0].action = ''"},
		{"bad action", Rule{Action: "allow"}, "spec.ingress[0].action = 'allow'"},
		{"ipVersion 6", Rule{Action: ActionDeny, IPVersion: pointerTo(6)}, ""},
		{"ipVersion 5", Rule{Action: ActionDeny, IPVersion: pointerTo(5)}, "spec.ingress[0].ipVersion = '5'"},
		{"protocol name lower case", Rule{Action: ActionAllow, Protocol: protoPtr("udp")}, ""},
		{"protocol number", Rule{Action: ActionAllow, Protocol: protoPtr("47")}, ""},
		{"protocol unknown", Rule{Action: ActionAllow, Protocol: protoPtr("GRE")}, "spec.ingress[0].protocol = 'GRE' (protocol name invalid)"},
		{"protocol zero", Rule{Action: ActionAllow, Protocol: protoPtr("0")}, "spec.ingress[0].protocol = '0' (protocol number invalid)"},
		{"notProtocol unknown", Rule{Action: ActionAllow, NotProtocol: protoPtr("any")}, "spec.ingress[0].notProtocol = 'any'"},
		{"icmp with ICMP", Rule{Action: ActionAllow, Protocol: protoPtr("ICMP"), ICMP: &ICMPFields{Type: pointerTo(8), Code: pointerTo(0)}}, ""},
		{"icmp with protocol 58", Rule{Action: ActionAllow, Protocol: protoPtr("58"), ICMP: &ICMPFields{Type: pointerTo(128)}}, ""},
		{"icmp without protocol", Rule{Action: ActionAllow, ICMP: &ICMPFields{Type: pointerTo(8)}}, "spec.ingress[0].icmp = '' (rules that specify ICMP fields must set protocol to ICMP or ICMPv6)"},
		{"icmp with TCP", Rule{Action: ActionAllow, Protocol: protoPtr("TCP"), ICMP: &ICMPFields{Type: pointerTo(8)}}, "spec.ingress[0].icmp"},
		{"icmp type 255", Rule{Action: ActionAllow, Protocol: protoPtr("ICMP"), ICMP: &ICMPFields{Type: pointerTo(255)}}, "spec.ingress[0].icmp.type = '255'"},
		{"icmp code 256", Rule{Action: ActionAllow, Protocol: protoPtr("ICMP"), ICMP: &ICMPFields{Type: pointerTo(3), Code: pointerTo(256)}}, "spec.ingress[0].icmp.code = '256'"},
		{"icmp code without type", Rule{Action: ActionAllow, Protocol: protoPtr("ICMP"), ICMP: &ICMPFields{Code: pointerTo(1)}}, "ICMP code specified without an ICMP type"},
		{"notICMP code without type", Rule{Action: ActionAllow, NotICMP: &ICMPFields{Code: pointerTo(1)}}, "spec.ingress[0].notICMP.code"},
		{"ICMP needs ipVersion 4", Rule{Action: ActionAllow, Protocol: protoPtr("ICMP"), IPVersion: pointerTo(6)}, "must set ipversion to '4' with protocol icmp"},
		{"ICMPv6 needs ipVersion 6", Rule{Action: ActionAllow, NotProtocol: protoPtr("ICMPv6"), IPVersion: pointerTo(4)}, "must set ipversion to '6' with protocol icmpv6"},
		{"numeric port with TCP", Rule{Action: ActionAllow, Protocol: protoPtr("TCP"), Destination: EntityRule{Ports: []Port{SinglePort(443), {MinPort: 8000, MaxPort: 9000}}}}, ""},
		{"numeric port with protocol 17", Rule{Action: ActionAllow, Protocol: protoPtr("17"), Source: EntityRule{NotPorts: []Port{SinglePort(53)}}}, ""},
		{"numeric port with SCTP", Rule{Action: ActionAllow, Protocol: protoPtr("SCTP"), Destination: EntityRule{Ports: []Port{SinglePort(9)}}}, ""},
		{"numeric port without protocol", Rule{Action: ActionAllow, Destination: EntityRule{Ports: []Port{SinglePort(80)}}}, "spec.ingress[0].destination.ports[0] = '80' (rules that specify ports must set protocol to TCP or UDP or SCTP)"},
		{"numeric notPort with ICMP", Rule{Action: ActionAllow, Protocol: protoPtr("ICMP"), Source: EntityRule{NotPorts: []Port{SinglePort(80)}}}, "spec.ingress[0].source.notPorts[0]"},
		{"named port without protocol", Rule{Action: ActionAllow, Destination: EntityRule{Ports: []Port{NamedPort("http")}}}, ""},
		{"named port with UDP", Rule{Action: ActionAllow, Protocol: protoPtr("UDP"), Destination: EntityRule{Ports: []Port{NamedPort("dns")}}}, ""},
		{"named port with ICMP", Rule{Action: ActionAllow, Protocol: protoPtr("ICMP"), Destination: EntityRule{Ports: []Port{NamedPort("http")}}}, "spec.ingress[0].destination.ports[0] = 'http'"},
		{"bad port name", Rule{Action: ActionAllow, Destination: EntityRule{Ports: []Port{NamedPort("Not_A_Name")}}}, "invalid port name"},
		{"port name without letter", Rule{Action: ActionAllow, Destination: EntityRule{Ports: []Port{NamedPort("1-2")}}}, "invalid port name"},
		{"port zero", Rule{Action: ActionAllow, Protocol: protoPtr("TCP"), Destination: EntityRule{Ports: []Port{SinglePort(0)}}}, "port number must be between 1 and 65535"},
		{"port range reversed", Rule{Action: ActionAllow, Protocol: protoPtr("TCP"), Destination: EntityRule{Ports: []Port{{MinPort: 9, MaxPort: 1}}}}, "port range invalid"},
		{"nets v4", Rule{Action: ActionAllow, Source: EntityRule{Nets: []string{"10.0.0.0/8", "192.168.1.1/32"}}}, ""},
		{"nets and notNets v6", Rule{Action: ActionAllow, IPVersion: pointerTo(6), Source: EntityRule{Nets: []string{"fd00::/8"}, NotNets: []string{"fd00:1::/64"}}}, ""},
		{"nets not a CIDR", Rule{Action: ActionAllow, Source: EntityRule{Nets: []string{"10.0.0.0/33"}}}, "spec.ingress[0].source.nets[0] = '10.0.0.0/33' (invalid CIDR)"},
		{"nets bare address", Rule{Action: ActionAllow, Destination: EntityRule{Nets: []string{"10.0.0.1"}}}, "spec.ingress[0].destination.nets[0] = '10.0.0.1' (invalid CIDR)"},
		{"nets not masked", Rule{Action: ActionAllow, Destination: EntityRule{Nets: []string{"10.0.0.1/24"}}}, "not strictly masked"},
		{"nets mixed families", Rule{Action: ActionAllow, Source: EntityRule{Nets: []string{"10.0.0.0/8", "fd00::/8"}}}, "rule contains both IPv4 and IPv6 CIDRs"},
		{"families across source and destination", Rule{Action: ActionAllow, Source: EntityRule{Nets: []string{"10.0.0.0/8"}}, Destination: EntityRule{NotNets: []string{"fd00::/8"}}}, "spec.ingress[0].destination.notNets"},
		{"nets vs ipVersion", Rule{Action: ActionAllow, IPVersion: pointerTo(6), Source: EntityRule{Nets: []string{"10.0.0.0/8"}}}, "rule IP version doesn't match CIDR version"},
		{"notNets everything v4", Rule{Action: ActionAllow, Source: EntityRule{NotNets: []string{"0.0.0.0/0"}}}, "spec.ingress[0].source.notNets[0] = '0.0.0.0/0'"},
		{"notNets everything v6", Rule{Action: ActionAllow, Destination: EntityRule{NotNets: []string{"::/0"}}}, "spec.ingress[0].destination.notNets[0] = '::/0'"},
		{"nets everything is fine", Rule{Action: ActionAllow, Source: EntityRule{Nets: []string{"0.0.0.0/0"}}}, ""},
		{"selectors", Rule{Action: ActionAllow, Source: EntityRule{Selector: "role == 'db'", NotSelector: "has(x)", NamespaceSelector: "all()"}}, ""},
		{"global() namespaceSelector", Rule{Action: ActionAllow, Destination: EntityRule{NamespaceSelector: "global()"}}, ""},
		{"global() combined", Rule{Action: ActionAllow, Destination: EntityRule{NamespaceSelector: "global() && a == 'b'"}}, "global() cannot be combined with other selectors"},
		{"global() in selector", Rule{Action: ActionAllow, Source: EntityRule{Selector: "global()"}}, "spec.ingress[0].source.selector = 'global()'"},
		{"service accounts", Rule{Action: ActionAllow, Source: EntityRule{ServiceAccounts: &ServiceAccountMatch{Names: []string{"api"}, Selector: "app == 'x'"}}}, ""},
		{"services", Rule{Action: ActionAllow, Source: EntityRule{Services: &ServiceMatch{Name: "kube-dns", Namespace: "kube-system"}}}, ""},
		{"services without name", Rule{Action: ActionAllow, Source: EntityRule{Services: &ServiceMatch{Namespace: "x"}}}, "must specify a service name"},
		{"services with selector", Rule{Action: ActionAllow, Source: EntityRule{Services: &ServiceMatch{Name: "a"}, Selector: "a == 'b'"}}, "cannot specify Selector/NotSelector and Services"},
		{"services with namespaceSelector", Rule{Action: ActionAllow, Source: EntityRule{Services: &ServiceMatch{Name: "a"}, NamespaceSelector: "all()"}}, "cannot specify NamespaceSelector and Services"},
		{"services with nets", Rule{Action: ActionAllow, Source: EntityRule{Services: &ServiceMatch{Name: "a"}, Nets: []string{"10.0.0.0/8"}}}, "cannot specify Nets/NotNets and Services"},
		{"services with service accounts", Rule{Action: ActionAllow, Source: EntityRule{Services: &ServiceMatch{Name: "a"}, ServiceAccounts: &ServiceAccountMatch{Names: []string{"b"}}}}, "cannot specify ServiceAccounts and Services"},
		{"services with ports", Rule{Action: ActionAllow, Protocol: protoPtr("TCP"), Destination: EntityRule{Services: &ServiceMatch{Name: "a"}, Ports: []Port{SinglePort(80)}}}, "cannot specify ports with a service selector"},
		{"http on allow TCP", Rule{Action: ActionAllow, Protocol: protoPtr("TCP"), HTTP: &HTTPMatch{Methods: []string{"GET", "PUT"}, Paths: []HTTPPath{{Exact: "/a"}, {Prefix: "/b/"}}}}, ""},
		{"http without protocol", Rule{Action: ActionAllow, HTTP: &HTTPMatch{Methods: []string{"GET"}}}, ""},
		{"http on deny", Rule{Action: ActionDeny, HTTP: &HTTPMatch{Methods: []string{"GET"}}}, "HTTP match is only valid on Allow rules"},
		{"http with UDP", Rule{Action: ActionAllow, Protocol: protoPtr("UDP"), HTTP: &HTTPMatch{}}, "must set protocol to TCP or empty"},
		{"http duplicate methods", Rule{Action: ActionAllow, HTTP: &HTTPMatch{Methods: []string{"GET", "GET"}}}, "spec.ingress[0].http.methods[1]"},
		{"http both exact and prefix", Rule{Action: ActionAllow, HTTP: &HTTPMatch{Paths: []HTTPPath{{Exact: "/a", Prefix: "/b"}}}}, "both 'exact' and 'prefix'"},
		{"http neither exact nor prefix", Rule{Action: ActionAllow, HTTP: &HTTPMatch{Paths: []HTTPPath{{}}}}, "either 'exact' or 'prefix'"},
		{"http path without slash", Rule{Action: ActionAllow, HTTP: &HTTPMatch{Paths: []HTTPPath{{Prefix: "api"}}}}, "spec.ingress[0].http.paths[0] = 'api'"},
		{"http path with query", Rule{Action: ActionAllow, HTTP: &HTTPMatch{Paths: []HTTPPath{{Exact: "/a?b"}}}}, "invalid path"},
		{"rule annotations", Rule{Action: ActionAllow, Metadata: &RuleMetadata{Annotations: map[string]string{"example.com/owner": "team a"}}}, ""},
		{"bad rule annotation key", Rule{Action: ActionAllow, Metadata: &RuleMetadata{Annotations: map[string]string{"bad key!": "x"}}}, "spec.ingress[0].metadata.annotations = 'bad key!'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertValidation(t, validateOneRule(tt.rule), tt.want)
		})
	}
}

func TestDefaultPolicyTypes(t *testing.T) {
	r := []Rule{{Action: ActionAllow}}
	tests := []struct {
		name            string
		ingress, egress []Rule
		want            []PolicyType
	}{
		{"no rules", nil, nil, []PolicyType{PolicyTypeIngress}},
		{"ingress only", r, nil, []PolicyType{PolicyTypeIngress}},
		{"egress only", nil, r, []PolicyType{PolicyTypeEgress}},
		{"both", r, r, []PolicyType{PolicyTypeIngress, PolicyTypeEgress}},
	}
	for _, tt := range tests {
		if got := DefaultPolicyTypes(tt.ingress, tt.egress); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: DefaultPolicyTypes = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestIsPortName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"http", true}, {"dns-tcp", true}, {"h2c", true}, {"a", true}, {"abcdefghijklmno", true},
		{"abcdefghijklmnop", false}, {"8080", false}, {"-http", false}, {"http-", false},
		{"ht--tp", false}, {"HTTP", false}, {"my_port", false}, {"", false},
	}
	for _, tt := range tests {
		if got := IsPortName(tt.name); got != tt.ok {
			t.Errorf("IsPortName(%q) = %v, want %v", tt.name, got, tt.ok)
		}
	}
}

func TestValidateOrderAndFormat(t *testing.T) {
	tests := []struct {
		order *float64
		want  string
	}{
		{nil, ""}, {pointerTo(100.5), ""}, {pointerTo(-3.0), ""},
		{pointerTo(math.NaN()), "order must be a finite number"},
		{pointerTo(math.Inf(1)), "spec.order"},
	}
	for _, tt := range tests {
		var v Validator
		validateOrder(&v, "spec.order", tt.order)
		assertValidation(t, v.Err(), tt.want)
	}
	for in, want := range map[float64]string{1e6: "1000000", 1e7: "10000000", 100.5: "100.5", 0: "0"} {
		if got := FormatOrder(in); got != want {
			t.Errorf("FormatOrder(%v) = %q, want %q", in, got, want)
		}
	}
}

// TestInvalidSelectorsRejected needs the real selector parser (the stub in
// resources/selector accepts everything).
func TestInvalidSelectorsRejected(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"rule selector", validateOneRule(Rule{Action: ActionAllow, Source: EntityRule{Selector: "role == "}}), "spec.ingress[0].source.selector"},
		{"rule notSelector", validateOneRule(Rule{Action: ActionAllow, Destination: EntityRule{NotSelector: "has("}}), "spec.ingress[0].destination.notSelector"},
		{"rule namespaceSelector", validateOneRule(Rule{Action: ActionAllow, Source: EntityRule{NamespaceSelector: "a = 'b'"}}), "spec.ingress[0].source.namespaceSelector"},
		{"service account selector", validateOneRule(Rule{Action: ActionAllow, Source: EntityRule{ServiceAccounts: &ServiceAccountMatch{Selector: "((a"}}}), "spec.ingress[0].source.serviceAccounts.selector"},
		{"policy selector", (&GlobalNetworkPolicy{ObjectMeta: metaNamed("p", ""), Spec: GlobalNetworkPolicySpec{Selector: "a ==="}}).Validate(), "spec.selector"},
		{"policy namespaceSelector", (&GlobalNetworkPolicy{ObjectMeta: metaNamed("p", ""), Spec: GlobalNetworkPolicySpec{NamespaceSelector: "!"}}).Validate(), "spec.namespaceSelector"},
		{"np serviceAccountSelector", (&NetworkPolicy{ObjectMeta: metaNamed("p", "ns"), Spec: NetworkPolicySpec{ServiceAccountSelector: "x in {"}}).Validate(), "spec.serviceAccountSelector"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assertValidation(t, tt.err, tt.want) })
	}
}

func metaNamed(name, namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace}
}

func metaWithLabels(name, namespace string, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels}
}
