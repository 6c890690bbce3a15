package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/e2e/clitest"
	"github.com/opencalico/calicoctl/resources"
)

// kindCase is one kind's round trip: create from testdata/kinds, read back,
// replace an edited copy, patch, label and delete.
type kindCase struct {
	kind string // canonical kind
	word string // what the user types (an alias, to exercise the registry)
	name string
	ns   string // namespace the object lands in; "" for cluster-scoped kinds
	// nsFlag passes -n ns to every command (else the namespace comes from the
	// manifest or defaults to "default").
	nsFlag bool
	// want are fields (dotted path -> JSON value) of `get -o yaml` after
	// create, defaults included.
	want map[string]string
	// editPath/editValue change the fetched YAML before `replace -f`.
	editPath  string
	editValue any
	editWant  string // JSON of the value read back
	// patch is the -p document; patchPath/patchWant what must be read back.
	patch     string
	patchPath string
	patchWant string
}

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
		kind: "Node", word: "no", name: "node1",
		want: map[string]string{
			"metadata.labels":                  `{"i-am-a-route-reflector":"true"}`,
			"spec.bgp.ipv4Address":             `"192.168.83.36/24"`,
			"spec.bgp.routeReflectorClusterID": `"244.0.0.1"`,
			"status":                           `{}`,
		},
		editPath: "spec.bgp.ipv4Address", editValue: "192.168.83.37/24", editWant: `"192.168.83.37/24"`,
		patch: `{"spec":{"bgp":{"asNumber":65001}}}`, patchPath: "spec.bgp.asNumber", patchWant: `65001`,
	},
	{
		kind: "Profile", word: "pro", name: "edge",
		want: map[string]string{
			"spec.labelsToApply":               `{"zone":"edge"}`,
			"spec.ingress.0.destination.ports": `[22]`,
			"spec.egress":                      `[{"action":"Allow"}]`,
		},
		editPath: "spec.labelsToApply", editValue: map[string]any{"zone": "core"}, editWant: `{"zone":"core"}`,
		patch: `{"spec":{"egress":[{"action":"Deny"}]}}`, patchPath: "spec.egress", patchWant: `[{"action":"Deny"}]`,
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
	{
		kind: "WorkloadEndpoint", word: "wep", name: "worker--1-k8s-web--7f9c-eth0", ns: "prod", nsFlag: true,
		want: map[string]string{
			"metadata.namespace": `"prod"`,
			"metadata.labels":    `{"app":"web","projectcalico.org/namespace":"prod","projectcalico.org/orchestrator":"k8s"}`,
			"spec.ipNetworks":    `["10.244.1.5/32"]`,
			"spec.ports.0":       `{"hostIP":"","hostPort":0,"name":"http","port":8080,"protocol":"TCP"}`,
		},
		editPath: "spec.ipNetworks", editValue: []any{"10.244.1.6/32"}, editWant: `["10.244.1.6/32"]`,
		patch: `{"spec":{"profiles":["kns.prod","ksa.prod.web"]}}`, patchPath: "spec.profiles", patchWant: `["kns.prod","ksa.prod.web"]`,
	},
}

// TestKindCasesCoverRegistry keeps the round trip honest: every registered
// kind has a case (ClusterInformation has its own test).
func TestKindCasesCoverRegistry(t *testing.T) {
	covered := map[string]bool{"ClusterInformation": true}
	for _, kc := range kindCases {
		covered[kc.kind] = true
		if _, err := resources.Lookup(kc.word); err != nil {
			t.Errorf("%s: CLI word %q is not registered: %v", kc.kind, kc.word, err)
		}
	}
	for _, k := range resources.Kinds() {
		if !covered[k.Kind] {
			t.Errorf("kind %s has no e2e round-trip case", k.Kind)
		}
	}
	if len(covered) != len(resources.Kinds()) {
		t.Errorf("cases cover %d kinds, registry has %d", len(covered), len(resources.Kinds()))
	}
}

func TestRoundTripEveryKind(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	for _, kc := range kindCases {
		t.Run(kc.kind, func(t *testing.T) {
			t.Parallel()
			roundTrip(t, c, kc)
		})
	}
}

func roundTrip(t *testing.T, c *cluster, kc kindCase) {
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

	// create
	file := testdata(t, "kinds/"+lower+".yaml")
	out, errOut, code := c.run(t, "", with("create", "-f", file)...)
	clitest.WantExact(t, "create stdout", out, fmt.Sprintf("Successfully created 1 '%s' resource(s)\n", kc.kind))
	clitest.WantExact(t, "create stderr", errOut, "")
	if code != 0 {
		t.Fatalf("create exit %d", code)
	}

	// get -o yaml
	obj, _ := c.getYAML(t, with(kc.word, kc.name)...)
	clitest.WantFields(t, "after create", obj, map[string]string{
		"apiVersion": `"projectcalico.org/v3"`, "kind": `"` + kc.kind + `"`, "metadata.name": `"` + kc.name + `"`,
	})
	if kc.ns == "" {
		clitest.WantFields(t, "after create", obj, map[string]string{"metadata.namespace": "<absent>"})
	}
	clitest.WantFields(t, "after create", obj, kc.want)
	rv1, uid, created := clitest.WantServerMeta(t, "after create", obj)

	// replace an edited copy (resourceVersion kept: it is current)
	obj.Set(t, kc.editPath, kc.editValue)
	edited := clitest.WriteFile(t, lower+"-edited.yaml", obj.YAML(t))
	out, errOut, code = c.run(t, "", with("replace", "-f", edited)...)
	clitest.WantExact(t, "replace stdout", out, fmt.Sprintf("Successfully replaced 1 '%s' resource(s)\n", kc.kind))
	clitest.WantExact(t, "replace stderr", errOut, "")
	if code != 0 {
		t.Fatalf("replace exit %d", code)
	}
	obj, _ = c.getYAML(t, with(kc.word, kc.name)...)
	clitest.WantFields(t, "after replace", obj, map[string]string{kc.editPath: kc.editWant})
	rv2, uid2, created2 := clitest.WantServerMeta(t, "after replace", obj)
	if rv2 == rv1 || uid2 != uid || created2 != created {
		t.Errorf("after replace: rv %s->%s uid %s->%s created %s->%s; want a new rv and the same uid/creationTimestamp",
			rv1, rv2, uid, uid2, created, created2)
	}

	// patch
	out, errOut, code = c.run(t, "", with("patch", kc.word, kc.name, "-p", kc.patch)...)
	clitest.WantExact(t, "patch stdout", out, fmt.Sprintf("Successfully patched 1 '%s' resource\n", kc.kind))
	clitest.WantExact(t, "patch stderr", errOut, "")
	if code != 0 {
		t.Fatalf("patch exit %d", code)
	}
	obj, _ = c.getYAML(t, with(kc.word, kc.name)...)
	clitest.WantFields(t, "after patch", obj, map[string]string{kc.patchPath: kc.patchWant})
	if kc.editPath != kc.patchPath {
		clitest.WantFields(t, "after patch", obj, map[string]string{kc.editPath: kc.editWant})
	}
	labelsBefore := obj.Str("metadata.labels")

	// label: set, refuse to overwrite silently, overwrite, remove
	labelSteps := []struct {
		args     []string
		stdout   string
		stderr   string
		code     int
		labelNow string // JSON of metadata.labels["e2e"] after the step
	}{
		{[]string{"e2e=one"}, fmt.Sprintf("Successfully set label e2e on %s %s\n", lower, kc.name), "", 0, `"one"`},
		{[]string{"e2e=two"}, "", fmt.Sprintf("failed to update label of %s %s, key e2e is already present. please use '--overwrite' to set a new value\n", lower, kc.name), 1, `"one"`},
		{[]string{"e2e=two", "--overwrite"}, fmt.Sprintf("Successfully updated label e2e on %s %s\n", lower, kc.name), "", 0, `"two"`},
		{[]string{"e2e", "--remove"}, fmt.Sprintf("Successfully removed label e2e from %s %s\n", lower, kc.name), "", 0, `<absent>`},
		{[]string{"e2e", "--remove"}, "", fmt.Sprintf("cannot remove label of %s %s, key e2e does not exist\n", lower, kc.name), 1, `<absent>`},
	}
	for _, st := range labelSteps {
		out, errOut, code = c.run(t, "", with(append([]string{"label", kc.word, kc.name}, st.args...)...)...)
		what := "label " + strings.Join(st.args, " ")
		clitest.WantExact(t, what+" stdout", out, st.stdout)
		clitest.WantExact(t, what+" stderr", errOut, st.stderr)
		if code != st.code {
			t.Errorf("%s: exit %d, want %d", what, code, st.code)
		}
		obj, _ = c.getYAML(t, with(kc.word, kc.name)...)
		labels, _ := obj.Lookup("metadata.labels")
		got := "<absent>"
		if m, ok := labels.(map[string]any); ok {
			got = object(m).Str("e2e")
		}
		if got != st.labelNow {
			t.Errorf("%s: label e2e = %s, want %s", what, got, st.labelNow)
		}
	}
	// The labels the manifest or the client set survive label edits.
	clitest.WantFields(t, "after label", obj, map[string]string{"metadata.labels": labelsBefore})

	// delete, then it is gone
	out, errOut, code = c.run(t, "", with("delete", kc.word, kc.name)...)
	clitest.WantExact(t, "delete stdout", out, fmt.Sprintf("Successfully deleted 1 '%s' resource(s)\n", kc.kind))
	clitest.WantExact(t, "delete stderr", errOut, "")
	if code != 0 {
		t.Fatalf("delete exit %d", code)
	}
	out, errOut, code = c.run(t, "", with("get", kc.word, kc.name)...)
	clitest.WantExact(t, "get after delete stdout", out, "")
	clitest.WantExact(t, "get after delete stderr", errOut, "resource does not exist: "+key+" with error: <nil>\n")
	if code != 1 {
		t.Errorf("get after delete: exit %d, want 1", code)
	}
}

// TestClusterInformation: the datastore server creates it; create and apply
// are refused, replace/patch/label work.
func TestClusterInformation(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	obj, _ := c.getYAML(t, "clusterinformation", "default")
	ver := strings.TrimPrefix(strings.SplitN(c.mustRun(t, "", "version", "--client"), "\n", 2)[0], "Client Version:")
	clitest.WantFields(t, "initial", obj, map[string]string{
		"kind":                "\"ClusterInformation\"",
		"spec.calicoVersion":  `"` + strings.TrimSpace(ver) + `"`,
		"spec.clusterType":    `"etcd"`,
		"spec.datastoreReady": `true`,
	})
	if guid, _ := clitest.MustString(obj, "spec.clusterGUID"); len(guid) != 32 {
		t.Errorf("clusterGUID %q: want 32 hex digits", guid)
	}
	clitest.WantServerMeta(t, "initial", obj)

	file := testdata(t, "kinds/clusterinformation.yaml")
	out, errOut, code := c.run(t, "", "create", "-f", file)
	clitest.WantExact(t, "create stdout", out, "")
	clitest.WantContains(t, "create stderr", errOut, "failed to create 'ClusterInformation' resource: [resource already exists: ClusterInformation(default) with error: <nil>")
	if code != 1 {
		t.Errorf("create: exit %d, want 1", code)
	}
	out, errOut, code = c.run(t, "", "apply", "-f", file)
	clitest.WantExact(t, "apply stdout", out, "")
	clitest.WantContains(t, "apply stderr", errOut, "operation apply is not supported on ClusterInformation(default): resource is readonly")
	if code != 1 {
		t.Errorf("apply: exit %d, want 1", code)
	}

	obj.Set(t, "spec.datastoreReady", false)
	out, errOut, code = c.run(t, "", "replace", "-f", clitest.WriteFile(t, "ci.yaml", obj.YAML(t)))
	clitest.WantExact(t, "replace stdout", out, "Successfully replaced 1 'ClusterInformation' resource(s)\n")
	if code != 0 {
		t.Errorf("replace: exit %d, stderr %q", code, errOut)
	}
	out = c.mustRun(t, "", "patch", "clusterinfo", "default", "-p", `{"spec":{"clusterType":"etcd,bgp"}}`)
	clitest.WantExact(t, "patch stdout", out, "Successfully patched 1 'ClusterInformation' resource\n")
	out = c.mustRun(t, "", "label", "clusterinformations", "default", "owner=e2e")
	clitest.WantExact(t, "label stdout", out, "Successfully set label owner on clusterinformation default\n")
	after, _ := c.getYAML(t, "clusterinformation", "default")
	clitest.WantFields(t, "after edits", after, map[string]string{
		"spec.datastoreReady": `false`,
		"spec.clusterType":    `"etcd,bgp"`,
		"spec.clusterGUID":    obj.Str("spec.clusterGUID"),
		"metadata.labels":     `{"owner":"e2e"}`,
	})
}
