package kdd

import (
	"fmt"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/e2e/clitest"
	"github.com/opencalico/calicoctl/resources"
)

// kindCase is one CRD-backed kind's round trip: create from the etcd
// suite's testdata/kinds, read back, replace an edited copy, patch, label
// and delete, with the same messages as on etcd.
type kindCase struct {
	kind string // canonical kind
	word string // what the user types (an alias)
	name string
	ns   string // namespace the object lands in; "" for cluster-scoped kinds
	// nsFlag passes -n ns to every command.
	nsFlag bool
	// want are fields (dotted path -> JSON value) of `get -o yaml` after
	// create, defaults included.
	want map[string]string
	// editPath/editValue change the fetched YAML before `replace -f`.
	editPath  string
	editValue any
	editWant  string
	// patch is the -p document; patchPath/patchWant what must be read back.
	patch     string
	patchPath string
	patchWant string
}

// kindCases covers every kind stored as a crd.projectcalico.org CR.
var kindCases = []kindCase{
	{
		kind: "BGPConfiguration", word: "bgpconfig", name: "default",
		want: map[string]string{
			"spec.asNumber":                       `63400`,
			"spec.logSeverityScreen":              `"Info"`,
			"spec.nodeToNodeMeshEnabled":          `false`,
			"spec.serviceLoadBalancerAggregation": `"Enabled"`,
		},
		editPath: "spec.logSeverityScreen", editValue: "Debug", editWant: `"Debug"`,
		patch: `{"spec":{"nodeToNodeMeshEnabled":true}}`, patchPath: "spec.nodeToNodeMeshEnabled", patchWant: `true`,
	},
	{
		kind: "BGPFilter", word: "bgpfilters", name: "only-pod-routes",
		want: map[string]string{
			"spec.exportV4.0.action":        `"Accept"`,
			"spec.exportV4.1.matchOperator": `"NotIn"`,
			"spec.importV4.0.cidr":          `"0.0.0.0/0"`,
			"spec.exportV6":                 `<absent>`,
		},
		editPath: "spec.importV4.0.action", editValue: "Accept", editWant: `"Accept"`,
		patch:     `{"spec":{"exportV6":[{"action":"Reject","matchOperator":"In","cidr":"fd00::/8"}]}}`,
		patchPath: "spec.exportV6", patchWant: `[{"action":"Reject","cidr":"fd00::/8","matchOperator":"In"}]`,
	},
	{
		kind: "BGPPeer", word: "bgpp", name: "rr-border",
		want: map[string]string{
			"spec.peerIP":       `"192.168.83.1"`,
			"spec.asNumber":     `64512`,
			"spec.nodeSelector": `"has(i-am-a-route-reflector)"`,
		},
		editPath: "spec.asNumber", editValue: 64513, editWant: `64513`,
		patch: `{"spec":{"peerIP":"192.168.83.2"}}`, patchPath: "spec.peerIP", patchWant: `"192.168.83.2"`,
	},
	{
		kind: "FelixConfiguration", word: "felixconfig", name: "default",
		want: map[string]string{
			"spec.reportingInterval":              `"0s"`,
			"spec.ipipEnabled":                    `true`,
			"spec.bpfConnectTimeLoadBalancing":    `"TCP"`,
			"spec.bpfHostNetworkedNATWithoutCTLB": `"Enabled"`,
			"spec.bpfLogLevel":                    `""`,
			"spec.floatingIPs":                    `"Disabled"`,
			"spec.nftablesMode":                   `"Auto"`,
			"spec.nftablesFlowTableOffload":       `"Disabled"`,
		},
		editPath: "spec.logSeverityScreen", editValue: "Warning", editWant: `"Warning"`,
		patch: `{"spec":{"bpfEnabled":true}}`, patchPath: "spec.bpfEnabled", patchWant: `true`,
	},
	{
		kind: "GlobalNetworkPolicy", word: "gnp", name: "allow-ping",
		want: map[string]string{
			"metadata.labels":          `{"projectcalico.org/tier":"default"}`,
			"spec.tier":                `"default"`,
			"spec.order":               `100`,
			"spec.ingress.0.icmp.type": `8`,
			"spec.types":               `["Ingress"]`,
		},
		editPath: "spec.order", editValue: 200, editWant: `200`,
		patch: `{"spec":{"selector":"role == 'web'"}}`, patchPath: "spec.selector", patchWant: `"role == 'web'"`,
	},
	{
		kind: "GlobalNetworkSet", word: "gnetsets", name: "blocked-ranges",
		want: map[string]string{
			"metadata.labels": `{"role":"blocked"}`,
			"spec.nets":       `["198.51.100.0/28","203.0.113.0/24"]`,
		},
		editPath: "spec.nets", editValue: []any{"192.0.2.0/24"}, editWant: `["192.0.2.0/24"]`,
		patch: `{"spec":{"nets":["198.51.100.0/28"]}}`, patchPath: "spec.nets", patchWant: `["198.51.100.0/28"]`,
	},
	{
		kind: "HostEndpoint", word: "hep", name: "node1-eth0",
		want: map[string]string{
			"spec.node":          `"node1"`,
			"spec.interfaceName": `"eth0"`,
			"spec.expectedIPs":   `["192.168.83.36"]`,
			"spec.ports.0":       `{"name":"ssh","port":22,"protocol":"TCP"}`,
		},
		editPath: "spec.interfaceName", editValue: "eth1", editWant: `"eth1"`,
		patch: `{"spec":{"expectedIPs":["192.168.83.37"]}}`, patchPath: "spec.expectedIPs", patchWant: `["192.168.83.37"]`,
	},
	{
		kind: "IPPool", word: "pool", name: "pool-blue",
		want: map[string]string{
			"spec.cidr":           `"10.96.0.0/20"`,
			"spec.natOutgoing":    `true`,
			"spec.ipipMode":       `"Never"`,
			"spec.vxlanMode":      `"Never"`,
			"spec.blockSize":      `26`,
			"spec.nodeSelector":   `"all()"`,
			"spec.allowedUses":    `["Workload","Tunnel"]`,
			"spec.assignmentMode": `"Automatic"`,
		},
		editPath: "spec.disabled", editValue: true, editWant: `true`,
		patch: `{"spec":{"vxlanMode":"CrossSubnet"}}`, patchPath: "spec.vxlanMode", patchWant: `"CrossSubnet"`,
	},
	{
		kind: "IPReservation", word: "reservation", name: "my-ipreservation-1",
		want: map[string]string{
			"spec.reservedCIDRs": `["192.168.2.3/32","10.0.2.3/32","cafe:f00d::/123"]`,
		},
		editPath: "spec.reservedCIDRs", editValue: []any{"192.168.2.0/30"}, editWant: `["192.168.2.0/30"]`,
		patch: `{"spec":{"reservedCIDRs":["10.0.2.3/32"]}}`, patchPath: "spec.reservedCIDRs", patchWant: `["10.0.2.3/32"]`,
	},
	{
		kind: "KubeControllersConfiguration", word: "kubecontrollersconfig", name: "default",
		want: map[string]string{
			"spec.healthChecks":                      `"Enabled"`,
			"spec.prometheusMetricsPort":             `9094`,
			"spec.controllers.node.leakGracePeriod":  `"15m0s"`,
			"spec.controllers.node.reconcilerPeriod": `"5m0s"`,
			"spec.controllers.node.syncLabels":       `"Enabled"`,
			"status":                                 `{}`,
		},
		editPath: "spec.healthChecks", editValue: "Disabled", editWant: `"Disabled"`,
		patch: `{"spec":{"logSeverityScreen":"Debug"}}`, patchPath: "spec.logSeverityScreen", patchWant: `"Debug"`,
	},
	{
		kind: "NetworkPolicy", word: "np", name: "allow-tcp-6379", ns: "default",
		want: map[string]string{
			"metadata.namespace":               `"default"`,
			"metadata.labels":                  `{"projectcalico.org/tier":"default"}`,
			"spec.tier":                        `"default"`,
			"spec.selector":                    `"role == 'database'"`,
			"spec.ingress.0.destination.ports": `[6379]`,
			"spec.ingress.0.source.selector":   `"role == 'frontend'"`,
		},
		editPath: "spec.order", editValue: 10, editWant: `10`,
		patch: `{"spec":{"types":["Ingress","Egress"]}}`, patchPath: "spec.types", patchWant: `["Ingress","Egress"]`,
	},
	{
		// The manifest names namespace prod, which TestRoundTripEveryKind creates.
		kind: "NetworkSet", word: "netset", name: "external-db", ns: "prod", nsFlag: true,
		want: map[string]string{
			"metadata.namespace": `"prod"`,
			"metadata.labels":    `{"role":"db"}`,
			"spec.nets":          `["203.0.113.10/32"]`,
		},
		editPath: "spec.nets", editValue: []any{"203.0.113.11/32"}, editWant: `["203.0.113.11/32"]`,
		patch: `{"spec":{"nets":["203.0.113.12/32","2001:db8::/64"]}}`, patchPath: "spec.nets", patchWant: `["203.0.113.12/32","2001:db8::/64"]`,
	},
	{
		kind: "Tier", word: "tiers", name: "security",
		want: map[string]string{
			"spec.order":         `300`,
			"spec.defaultAction": `"Deny"`,
			"status":             `{}`,
		},
		editPath: "spec.order", editValue: 400, editWant: `400`,
		patch: `{"spec":{"defaultAction":"Pass"}}`, patchPath: "spec.defaultAction", patchWant: `"Pass"`,
	},
}

// nativeKinds are backed by Kubernetes objects (or written by the client)
// and have their own tests.
var nativeKinds = map[string]string{
	"ClusterInformation": "TestClusterInformation",
	"Node":               "TestNodeFromKubernetesNode",
	"Profile":            "TestProfilesFromNamespacesAndServiceAccounts",
	"WorkloadEndpoint":   "TestWorkloadEndpointsFromPods",
}

// TestKindCasesCoverRegistry: every registered kind is either round-tripped
// here or covered by a test of its Kubernetes backing.
func TestKindCasesCoverRegistry(t *testing.T) {
	covered := map[string]bool{}
	for k := range nativeKinds {
		covered[k] = true
	}
	for _, kc := range kindCases {
		if covered[kc.kind] {
			t.Errorf("kind %s listed twice", kc.kind)
		}
		covered[kc.kind] = true
		if _, err := resources.Lookup(kc.word); err != nil {
			t.Errorf("%s: CLI word %q is not registered: %v", kc.kind, kc.word, err)
		}
	}
	for _, k := range resources.Kinds() {
		if !covered[k.Kind] {
			t.Errorf("kind %s has no kdd e2e case", k.Kind)
		}
	}
	if len(covered) != len(resources.Kinds()) {
		t.Errorf("cases cover %d kinds, registry has %d", len(covered), len(resources.Kinds()))
	}
}

func TestRoundTripEveryKind(t *testing.T) {
	t.Parallel()
	srv := server(t)
	srv.CreateNamespace(t, "prod", nil)
	u := admin(t, srv)
	for _, kc := range kindCases {
		t.Run(kc.kind, func(t *testing.T) {
			t.Parallel()
			roundTrip(t, u, kc)
		})
	}
}

// wantResult checks one invocation's stdout, stderr and exit code.
func wantResult(t testing.TB, what string, r result, stdout, stderr string, code int) {
	t.Helper()
	clitest.WantExact(t, what+" stdout", r.Stdout, stdout)
	clitest.WantExact(t, what+" stderr", r.Stderr, stderr)
	if r.Code != code {
		t.Errorf("%s: exit %d, want %d", what, r.Code, code)
	}
}

func roundTrip(t *testing.T, u *user, kc kindCase) {
	var nsArgs []string
	if kc.nsFlag {
		nsArgs = []string{"-n", kc.ns}
	}
	with := func(args ...string) []string { return append(args, nsArgs...) }
	key := kc.kind + "(" + kc.name + ")"
	if kc.ns != "" {
		key = kc.kind + "(" + kc.ns + "/" + kc.name + ")"
	}
	lower := strings.ToLower(kc.kind)

	r := u.run(t, "", with("create", "-f", testdata(t, "kinds/"+lower+".yaml"))...)
	wantResult(t, "create", r, fmt.Sprintf("Successfully created 1 '%s' resource(s)\n", kc.kind), "", 0)
	if r.Code != 0 {
		t.FailNow()
	}

	obj, _ := u.getYAML(t, with(kc.word, kc.name)...)
	clitest.WantFields(t, "after create", obj, map[string]string{
		"apiVersion": `"projectcalico.org/v3"`, "kind": `"` + kc.kind + `"`, "metadata.name": `"` + kc.name + `"`,
	})
	if kc.ns == "" {
		clitest.WantFields(t, "after create", obj, map[string]string{"metadata.namespace": "<absent>"})
	}
	clitest.WantFields(t, "after create", obj, kc.want)
	// What the CR stores is an implementation detail and must not leak.
	if ann := obj.Str("metadata.annotations"); strings.Contains(ann, "projectcalico.org/metadata") {
		t.Errorf("after create: internal annotation shown: %s", ann)
	}
	rv1, uid, created := clitest.WantServerMeta(t, "after create", obj)

	obj.Set(t, kc.editPath, kc.editValue)
	r = u.run(t, "", with("replace", "-f", clitest.WriteFile(t, lower+"-edited.yaml", obj.YAML(t)))...)
	wantResult(t, "replace", r, fmt.Sprintf("Successfully replaced 1 '%s' resource(s)\n", kc.kind), "", 0)
	obj, _ = u.getYAML(t, with(kc.word, kc.name)...)
	clitest.WantFields(t, "after replace", obj, map[string]string{kc.editPath: kc.editWant})
	rv2, uid2, created2 := clitest.WantServerMeta(t, "after replace", obj)
	if rv2 == rv1 || uid2 != uid || created2 != created {
		t.Errorf("after replace: rv %s->%s uid %s->%s created %s->%s; want a new rv and the same uid/creationTimestamp",
			rv1, rv2, uid, uid2, created, created2)
	}

	// A stale resourceVersion is refused with upstream's message.
	obj.Set(t, "metadata.resourceVersion", rv1)
	r = u.run(t, "", with("replace", "-f", clitest.WriteFile(t, lower+"-stale.yaml", obj.YAML(t)))...)
	clitest.WantContains(t, "stale replace stderr", r.Stderr, fmt.Sprintf("resource version '%s' is out of date (latest: %s)", rv1, rv2))
	if r.Code != 1 {
		t.Errorf("stale replace: exit %d, want 1", r.Code)
	}

	r = u.run(t, "", with("patch", kc.word, kc.name, "-p", kc.patch)...)
	wantResult(t, "patch", r, fmt.Sprintf("Successfully patched 1 '%s' resource\n", kc.kind), "", 0)
	obj, _ = u.getYAML(t, with(kc.word, kc.name)...)
	clitest.WantFields(t, "after patch", obj, map[string]string{kc.patchPath: kc.patchWant})
	if kc.editPath != kc.patchPath {
		clitest.WantFields(t, "after patch", obj, map[string]string{kc.editPath: kc.editWant})
	}
	labelsBefore := obj.Str("metadata.labels")

	labelSteps := []struct {
		args     []string
		stdout   string
		stderr   string
		code     int
		labelNow string
	}{
		{[]string{"e2e=one"}, fmt.Sprintf("Successfully set label e2e on %s %s\n", lower, kc.name), "", 0, `"one"`},
		{[]string{"e2e=two"}, "", fmt.Sprintf("failed to update label of %s %s, key e2e is already present. please use '--overwrite' to set a new value\n", lower, kc.name), 1, `"one"`},
		{[]string{"e2e=two", "--overwrite"}, fmt.Sprintf("Successfully updated label e2e on %s %s\n", lower, kc.name), "", 0, `"two"`},
		{[]string{"e2e", "--remove"}, fmt.Sprintf("Successfully removed label e2e from %s %s\n", lower, kc.name), "", 0, `<absent>`},
		{[]string{"e2e", "--remove"}, "", fmt.Sprintf("cannot remove label of %s %s, key e2e does not exist\n", lower, kc.name), 1, `<absent>`},
	}
	for _, st := range labelSteps {
		what := "label " + strings.Join(st.args, " ")
		r = u.run(t, "", with(append([]string{"label", kc.word, kc.name}, st.args...)...)...)
		wantResult(t, what, r, st.stdout, st.stderr, st.code)
		obj, _ = u.getYAML(t, with(kc.word, kc.name)...)
		got := "<absent>"
		if m, ok := obj["metadata"].(map[string]any)["labels"].(map[string]any); ok {
			got = object(m).Str("e2e")
		}
		if got != st.labelNow {
			t.Errorf("%s: label e2e = %s, want %s", what, got, st.labelNow)
		}
	}
	clitest.WantFields(t, "after label", obj, map[string]string{"metadata.labels": labelsBefore})

	r = u.run(t, "", with("delete", kc.word, kc.name)...)
	wantResult(t, "delete", r, fmt.Sprintf("Successfully deleted 1 '%s' resource(s)\n", kc.kind), "", 0)
	r = u.run(t, "", with("get", kc.word, kc.name)...)
	wantResult(t, "get after delete", r, "", "resource does not exist: "+key+" with error: <nil>\n", 1)
	r = u.run(t, "", with("delete", kc.word, kc.name)...)
	wantResult(t, "delete again", r, "", "Failed to delete '"+kc.kind+"' resource: resource does not exist: "+key+" with error: <nil>\n", 1)
}
