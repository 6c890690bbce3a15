package kdd

import (
	"encoding/json"
	"maps"
	"regexp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opencalico/calicoctl/e2e/clitest"
	"github.com/opencalico/calicoctl/internal/kubetest"
	"github.com/opencalico/calicoctl/internal/kubetest/kubecrd"
)

// ippoolYAML is a small IPPool manifest with the given name and CIDR.
func ippoolYAML(name, cidr string) string {
	return "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: " + name + "\nspec:\n  cidr: " + cidr + "\n"
}

// TestClusterInformation: the first write initialises ClusterInformation
// default; create/apply are refused, patch and label work.
func TestClusterInformation(t *testing.T) {
	t.Parallel()
	srv := server(t)
	u := admin(t, srv)
	u.mustRun(t, "create", "-f", clitest.WriteFile(t, "pool.yaml", ippoolYAML("ci-pool", "10.200.0.0/24")))

	obj, _ := u.getYAML(t, "clusterinformation", "default")
	clitest.WantFields(t, "initial", obj, map[string]string{
		"kind":                `"ClusterInformation"`,
		"spec.datastoreReady": `true`,
	})
	if guid, _ := clitest.MustString(obj, "spec.clusterGUID"); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(guid) {
		t.Errorf("clusterGUID %q: want 32 hex digits", guid)
	}
	clitest.WantServerMeta(t, "initial", obj)

	file := testdata(t, "kinds/clusterinformation.yaml")
	r := u.run(t, "", "create", "-f", file)
	clitest.WantExact(t, "create stdout", r.Stdout, "")
	clitest.WantContains(t, "create stderr", r.Stderr, "failed to create 'ClusterInformation' resource: [resource already exists: ClusterInformation(default)")
	if r.Code != 1 {
		t.Errorf("create: exit %d, want 1", r.Code)
	}
	r = u.run(t, "", "apply", "-f", file)
	clitest.WantExact(t, "apply stdout", r.Stdout, "")
	clitest.WantContains(t, "apply stderr", r.Stderr, "operation apply is not supported on ClusterInformation(default): resource is readonly")
	if r.Code != 1 {
		t.Errorf("apply: exit %d, want 1", r.Code)
	}
	out := u.mustRun(t, "label", "clusterinformations", "default", "owner=kdd")
	clitest.WantExact(t, "label stdout", out, "Successfully set label owner on clusterinformations default\n")
	after, _ := u.getYAML(t, "clusterinformation", "default")
	clitest.WantFields(t, "after label", after, map[string]string{
		"metadata.labels":  `{"owner":"kdd"}`,
		"spec.clusterGUID": obj.Str("spec.clusterGUID"),
	})

	// Upstream's client writes clusterType "kdd" (appended to any existing
	// type) when it initialises ClusterInformation on this datastore, and
	// `version` shows it.
	if ct, _ := clitest.MustString(obj, "spec.clusterType"); !strings.Contains(ct, "kdd") {
		t.Errorf("ClusterInformation default has spec.clusterType %q, want it to contain \"kdd\" (upstream writes clusterType kdd on the Kubernetes datastore); `calicoctl version` prints %q",
			ct, clusterTypeLine(u.mustRun(t, "version")))
	}
	clitest.WantContains(t, "version", u.mustRun(t, "version"), "Cluster Type:      kdd")
}

func clusterTypeLine(version string) string {
	for _, l := range strings.Split(version, "\n") {
		if strings.HasPrefix(l, "Cluster Type:") {
			return l
		}
	}
	return ""
}

// TestNodeFromKubernetesNode: Calico nodes are the cluster's Kubernetes
// Nodes; Calico data lands in the Node's projectcalico.org annotations.
func TestNodeFromKubernetesNode(t *testing.T) {
	t.Parallel()
	srv := server(t)
	u := admin(t, srv)
	const name = "kdd-n1"
	srv.CreateNode(t, name, map[string]string{"rack": "r1"}, "10.0.0.5", "kdd-n1.example")
	nodes := srv.Clientset(t).CoreV1().Nodes()

	clitest.WantExact(t, "get node -o wide", u.mustRun(t, "get", "node", "-o", "wide"),
		table([]string{"NAME", "ASN", "IPV4", "IPV6"}, []string{name, "", "", ""}))
	obj, _ := u.getYAML(t, "node", name)
	clitest.WantFields(t, "node", obj, map[string]string{
		"metadata.labels": `{"rack":"r1"}`,
		"spec.orchRefs":   `[{"nodeName":"kdd-n1","orchestrator":"k8s"}]`,
		"spec.addresses":  `[{"address":"10.0.0.5","type":"InternalIP"}]`,
	})
	clitest.WantServerMeta(t, "node", obj)

	out := u.mustRun(t, "patch", "node", name, "-p", `{"spec":{"bgp":{"ipv4Address":"10.0.0.5/24","routeReflectorClusterID":"244.0.0.1"}}}`)
	clitest.WantExact(t, "patch stdout", out, "Successfully patched 1 'Node' resource\n")
	kn, err := nodes.Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"projectcalico.org/IPv4Address":             "10.0.0.5/24",
		"projectcalico.org/RouteReflectorClusterID": "244.0.0.1",
	} {
		if got, ok := kn.Annotations[k]; !ok || got != want {
			t.Errorf("k8s Node annotation %s = %q (present %v), want %q; annotations %v", k, got, ok, want, kn.Annotations)
		}
	}
	if kn.Labels["rack"] != "r1" {
		t.Errorf("k8s Node labels after patch: %v, want rack=r1 kept", kn.Labels)
	}
	clitest.WantExact(t, "get node -o wide after patch", u.mustRun(t, "get", "node", "-o", "wide"),
		table([]string{"NAME", "ASN", "IPV4", "IPV6"}, []string{name, "(64512)", "10.0.0.5/24", ""}))
	obj, _ = u.getYAML(t, "node", name)
	clitest.WantFields(t, "node after patch", obj, map[string]string{
		"spec.bgp.ipv4Address":             `"10.0.0.5/24"`,
		"spec.bgp.routeReflectorClusterID": `"244.0.0.1"`,
		"spec.addresses":                   `[{"address":"10.0.0.5/24","type":"CalicoNodeIP"},{"address":"10.0.0.5","type":"InternalIP"}]`,
	})

	out = u.mustRun(t, "label", "node", name, "calico-role=edge")
	clitest.WantExact(t, "label stdout", out, "Successfully set label calico-role on node "+name+"\n")
	obj, _ = u.getYAML(t, "node", name)
	clitest.WantFields(t, "node after label", obj, map[string]string{"metadata.labels": `{"calico-role":"edge","rack":"r1"}`})
	kn, err = nodes.Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if kn.Labels["rack"] != "r1" {
		t.Errorf("k8s Node labels after label: %v, want rack=r1 kept", kn.Labels)
	}
	// The label is kept on the Node: as a label or in the Calico labels annotation.
	var calicoLabels map[string]string
	if a := kn.Annotations["projectcalico.org/labels"]; a != "" {
		if err := json.Unmarshal([]byte(a), &calicoLabels); err != nil {
			t.Errorf("annotation projectcalico.org/labels %q: %v", a, err)
		}
	}
	if kn.Labels["calico-role"] != "edge" && calicoLabels["calico-role"] != "edge" {
		t.Errorf("k8s Node carries no calico-role=edge: labels %v annotations %v", kn.Labels, kn.Annotations)
	}
	out = u.mustRun(t, "label", "node", name, "calico-role", "--remove")
	clitest.WantExact(t, "label --remove stdout", out, "Successfully removed label calico-role from node "+name+"\n")
	obj, _ = u.getYAML(t, "node", name)
	clitest.WantFields(t, "node after label --remove", obj, map[string]string{"metadata.labels": `{"rack":"r1"}`})

	// Create and delete are refused in one line; the Node stays.
	r := u.run(t, "", "create", "-f", testdata(t, "kinds/node.yaml"))
	clitest.WantExact(t, "create stdout", r.Stdout, "")
	clitest.WantOneLine(t, "create stderr", r.Stderr)
	clitest.WantContains(t, "create stderr", r.Stderr, "failed to create 'Node' resource: [operation Create is not supported on Node(node1)", "through Kubernetes")
	if r.Code != 1 {
		t.Errorf("create: exit %d, want 1", r.Code)
	}
	r = u.run(t, "", "delete", "node", name)
	clitest.WantExact(t, "delete stdout", r.Stdout, "")
	clitest.WantOneLine(t, "delete stderr", r.Stderr)
	clitest.WantContains(t, "delete stderr", r.Stderr, "Failed to delete 'Node' resource: operation Delete is not supported on Node("+name+")")
	if r.Code != 1 {
		t.Errorf("delete: exit %d, want 1", r.Code)
	}
	if _, err := nodes.Get(t.Context(), name, metav1.GetOptions{}); err != nil {
		t.Errorf("k8s Node after refused delete: %v", err)
	}
	if _, err := nodes.Get(t.Context(), "node1", metav1.GetOptions{}); err == nil {
		t.Errorf("refused create left a k8s Node node1 behind")
	}
}

// TestApplyAndReplaceExportedNode: an exported Node (no resourceVersion)
// applies and replaces as an update of the Kubernetes Node, the
// kube-labels snapshot never becomes stored Calico data, and kinds that stay
// read-only say why. A dedicated API server: other tests list every Node.
func TestApplyAndReplaceExportedNode(t *testing.T) {
	t.Parallel()
	clitest.TrackSources(t)
	srv := kubetest.Start(t)
	kubecrd.Install(t, srv)
	u := admin(t, srv)
	const name = "kdd-exported"
	srv.CreateNode(t, name, map[string]string{"zone": "z1"}, "10.0.3.5")
	nodes := srv.Clientset(t).CoreV1().Nodes()

	obj, _ := u.getYAML(t, "node", name)
	clitest.WantFields(t, "node", obj, map[string]string{
		"metadata.annotations": `{"projectcalico.org/kube-labels":"{\"zone\":\"z1\"}"}`,
		"metadata.labels":      `{"zone":"z1"}`,
	})
	exported := u.mustRun(t, "get", "node", name, "--export", "-o", "yaml")
	if strings.Contains(exported, "resourceVersion") || !strings.Contains(exported, "projectcalico.org/kube-labels") {
		t.Fatalf("export:\n%s", exported)
	}
	edited := clitest.ParseObject(t, exported)
	edited.Set(t, "metadata.labels.i-am-a-route-reflector", "true")
	edited.Set(t, "spec.bgp.routeReflectorClusterID", "224.0.0.1")
	file := clitest.WriteFile(t, "node.yaml", edited.YAML(t))
	wantResult(t, "apply", u.run(t, "", "apply", "-f", file), "Successfully applied 1 'Node' resource(s)\n", "", 0)

	edited.Set(t, "spec.bgp.routeReflectorClusterID", "224.0.0.2")
	file = clitest.WriteFile(t, "node2.yaml", edited.YAML(t))
	wantResult(t, "replace", u.run(t, "", "replace", "-f", file), "Successfully replaced 1 'Node' resource(s)\n", "", 0)

	kn, err := nodes.Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"projectcalico.org/RouteReflectorClusterID": "224.0.0.2",
		"projectcalico.org/labels":                  `{"i-am-a-route-reflector":"true"}`,
	}
	if !maps.Equal(kn.Annotations, want) {
		t.Errorf("k8s Node annotations %v, want %v (no kube-labels snapshot, no Calico copy of k8s labels)", kn.Annotations, want)
	}
	if !maps.Equal(kn.Labels, map[string]string{"zone": "z1"}) {
		t.Errorf("k8s Node labels %v, want zone=z1 only", kn.Labels)
	}
	obj, _ = u.getYAML(t, "node", name)
	clitest.WantFields(t, "node after replace", obj, map[string]string{
		"metadata.labels":      `{"i-am-a-route-reflector":"true","zone":"z1"}`,
		"metadata.annotations": `{"projectcalico.org/kube-labels":"{\"zone\":\"z1\"}"}`,
		"spec.bgp":             `{"routeReflectorClusterID":"224.0.0.2"}`,
	})

	// A stale resourceVersion is still refused.
	edited.Set(t, "metadata.resourceVersion", "1")
	r := u.run(t, "", "replace", "-f", clitest.WriteFile(t, "stale.yaml", edited.YAML(t)))
	clitest.WantContains(t, "stale replace stderr", r.Stderr, "resource version '1' is out of date")
	if r.Code != 1 {
		t.Errorf("stale replace: exit %d, want 1", r.Code)
	}

	// Applying an export of a read-only kind says why it is read-only.
	srv.CreateNamespace(t, "exp-ns", nil)
	prof := clitest.WriteFile(t, "prof.yaml", u.mustRun(t, "get", "profile", "kns.exp-ns", "--export", "-o", "yaml"))
	r = u.run(t, "", "apply", "-f", prof)
	clitest.WantOneLine(t, "apply profile stderr", r.Stderr)
	clitest.WantContains(t, "apply profile stderr", r.Stderr, "is not supported on Profile(kns.exp-ns)", "profiles are derived from Kubernetes namespaces")
	if r.Code != 1 || r.Stdout != "" {
		t.Errorf("apply profile: exit %d stdout %q, want 1 and nothing", r.Code, r.Stdout)
	}
	da := clitest.WriteFile(t, "da.yaml", u.mustRun(t, "get", "profile", "projectcalico-default-allow", "--export", "-o", "yaml"))
	for _, verb := range []string{"apply", "replace", "create"} {
		r = u.run(t, "", verb, "-f", da)
		clitest.WantOneLine(t, verb+" default-allow stderr", r.Stderr)
		clitest.WantContains(t, verb+" default-allow stderr", r.Stderr, "Profile(projectcalico-default-allow): the built-in profile is read-only")
		if r.Code != 1 {
			t.Errorf("%s default-allow: exit %d, want 1", verb, r.Code)
		}
	}
}
