package kdd

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opencalico/calicoctl/e2e/clitest"
	"github.com/opencalico/calicoctl/internal/kubetest"
	"github.com/opencalico/calicoctl/internal/kubetest/kubecrd"
)

// seed004Node is one Kubernetes Node of the seed-004 walkthrough, with the
// BGP address calico-node would have annotated it with.
type seed004Node struct {
	name, ip string
	master   bool
}

var seed004Nodes = []seed004Node{
	{"k8s-test-master-1.fjf", "192.168.83.36", true},
	{"k8s-test-master-2.fjf", "192.168.83.49", true},
	{"k8s-test-master-3.fjf", "192.168.83.54", true},
	{"node1", "192.168.83.22", false},
}

// TestSeed004RouteReflectors walks seed 004 ("Calico's BGP joins the
// Kubernetes network and the LAN") on a dedicated API server: calicoctl
// configured by a CalicoAPIConfig file passed with -c, `version`, the
// masters exported, marked as route reflectors (the label unquoted,
// `i-am-a-route-reflector: true`, as the seed writes it) and applied back, the three
// BGPPeers, the tables, and label/unlabel; every output is compared whole,
// and the Kubernetes Nodes are checked afterwards.
func TestSeed004RouteReflectors(t *testing.T) {
	t.Parallel()
	clitest.TrackSources(t)
	srv := kubetest.Start(t)
	kubecrd.Install(t, srv)
	cs := srv.Clientset(t)

	// What calico-node would have done on each node: register the BGP
	// address, and initialise ClusterInformation for a k8s, BGP, KDD cluster.
	for _, n := range seed004Nodes {
		labels := map[string]string{"kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux"}
		if n.master {
			labels["node-role.kubernetes.io/control-plane"] = ""
		}
		kn := srv.CreateNode(t, n.name, labels, n.ip)
		if kn.Annotations == nil {
			kn.Annotations = map[string]string{}
		}
		kn.Annotations["projectcalico.org/IPv4Address"] = n.ip + "/24"
		if _, err := cs.CoreV1().Nodes().Update(t.Context(), kn, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("annotate node %s: %v", n.name, err)
		}
	}
	home := t.TempDir()
	run := func(t *testing.T, stdin string, args ...string) result {
		t.Helper()
		return clitest.Exec(t, binPath, home, env{}, stdin, args...)
	}
	clientVersion := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(run(t, "", "version", "--client").Stdout, "\n", 2)[0], "Client Version:"))
	ci := `{"apiVersion":"crd.projectcalico.org/v1","kind":"ClusterInformation","metadata":{"name":"default"},` +
		`"spec":{"calicoVersion":"` + clientVersion + `","clusterGUID":"0123456789abcdef0123456789abcdef","clusterType":"k8s,bgp,kdd","datastoreReady":true}}`
	if _, err := cs.Discovery().RESTClient().Post().AbsPath("/apis/crd.projectcalico.org/v1/clusterinformations").
		SetHeader("Content-Type", "application/json").Body([]byte(ci)).DoRaw(t.Context()); err != nil {
		t.Fatalf("create ClusterInformation: %v", err)
	}

	// 2. /etc/calico/calicoctl.cfg, passed with -c.
	cfg := clitest.WriteFile(t, "calicoctl.cfg", "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata:\nspec:\n"+
		"  datastoreType: \"kubernetes\"\n  kubeconfig: \""+srv.Kubeconfig+"\"\n")
	ctl := func(t *testing.T, stdin string, args ...string) result {
		t.Helper()
		return run(t, stdin, append([]string{"-c", cfg}, args...)...)
	}
	must := func(t *testing.T, what string, r result, stdout string) {
		t.Helper()
		clitest.WantExact(t, what+" stdout", r.Stdout, stdout)
		clitest.WantExact(t, what+" stderr", r.Stderr, "")
		if r.Code != 0 {
			t.Errorf("%s: exit %d, want 0", what, r.Code)
		}
	}

	// `calicoctl version`: labels padded so values start at column 20.
	client := strings.SplitN(run(t, "", "version", "--client").Stdout, "\n", 3)
	if len(client) < 3 || !strings.HasPrefix(client[0], "Client Version:    ") || !strings.HasPrefix(client[1], "Git commit:        ") {
		t.Fatalf("version --client: %q", client)
	}
	must(t, "version", ctl(t, "", "version"), client[0]+"\n"+client[1]+"\n"+
		"Cluster Version:   "+clientVersion+"\n"+
		"Cluster Type:      k8s,bgp,kdd\n")

	// 3. Export each master, mark it as a route reflector, apply it back.
	for _, n := range seed004Nodes[:3] {
		kubeLabels := `{"kubernetes.io/hostname":"` + n.name + `","kubernetes.io/os":"linux","node-role.kubernetes.io/control-plane":""}`
		exported := "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n" +
			"  annotations:\n    projectcalico.org/kube-labels: '" + kubeLabels + "'\n" +
			"  labels:\n    kubernetes.io/hostname: " + n.name + "\n    kubernetes.io/os: linux\n    node-role.kubernetes.io/control-plane: \"\"\n" +
			"  name: " + n.name + "\n" +
			"spec:\n  addresses:\n  - address: " + n.ip + "/24\n    type: CalicoNodeIP\n  - address: " + n.ip + "\n    type: InternalIP\n" +
			"  bgp:\n    ipv4Address: " + n.ip + "/24\n" +
			"  orchRefs:\n  - nodeName: " + n.name + "\n    orchestrator: k8s\n" +
			"status: {}\n"
		r := ctl(t, "", "get", "node", n.name, "--export", "-o", "yaml")
		must(t, "export "+n.name, r, exported)
		edited := strings.Replace(r.Stdout, "  labels:\n", "  labels:\n    i-am-a-route-reflector: true\n", 1)
		edited = strings.Replace(edited, "  bgp:\n", "  bgp:\n    routeReflectorClusterID: 224.0.0.1\n", 1)
		file := clitest.WriteFile(t, n.name+".yml", edited)
		must(t, "apply "+n.name, ctl(t, "", "apply", "-f", file), "Successfully applied 1 'Node' resource(s)\n")

		obj := clitest.ParseObject(t, ctl(t, "", "get", "node", n.name, "-o", "yaml").Stdout)
		clitest.WantFields(t, n.name+" after apply", obj, map[string]string{
			"metadata.labels": `{"i-am-a-route-reflector":"true","kubernetes.io/hostname":"` + n.name +
				`","kubernetes.io/os":"linux","node-role.kubernetes.io/control-plane":""}`,
			"metadata.annotations": `{"projectcalico.org/kube-labels":` + jsonString(kubeLabels) + `}`,
			"spec.bgp":             `{"ipv4Address":"` + n.ip + `/24","routeReflectorClusterID":"224.0.0.1"}`,
		})
	}
	// Applying the same edited export again changes nothing and succeeds.
	again := clitest.WriteFile(t, "again.yml", ctl(t, "", "get", "node", seed004Nodes[0].name, "--export", "-o", "yaml").Stdout)
	must(t, "apply again", ctl(t, "", "apply", "-f", again), "Successfully applied 1 'Node' resource(s)\n")

	// 3. The peerings: other nodes to the reflectors, the reflectors to each
	// other; 4. the reflectors to the core switch.
	for _, peer := range []string{
		"kind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata:\n  name: peer-to-rrs\nspec:\n  nodeSelector: \"!has(i-am-a-route-reflector)\"\n  peerSelector: has(i-am-a-route-reflector)\n",
		"kind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata:\n  name: rr-mesh\nspec:\n  nodeSelector: has(i-am-a-route-reflector)\n  peerSelector: has(i-am-a-route-reflector)\n",
		"apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: rr-border\nspec:\n  nodeSelector: has(i-am-a-route-reflector)\n  peerIP: 192.168.83.1\n  asNumber: 64512\n",
	} {
		must(t, "apply bgppeer", ctl(t, peer, "apply", "-f", "-"), "Successfully applied 1 'BGPPeer' resource(s)\n")
	}
	must(t, "get bgppeer", ctl(t, "", "get", "bgppeer"), table(
		[]string{"NAME", "PEERIP", "NODE", "ASN"},
		[]string{"peer-to-rrs", "", "!has(i-am-a-route-reflector)", "0"},
		[]string{"rr-border", "192.168.83.1", "has(i-am-a-route-reflector)", "64512"},
		[]string{"rr-mesh", "", "has(i-am-a-route-reflector)", "0"},
	))
	wide := [][]string{{"NAME", "ASN", "IPV4", "IPV6"}}
	for _, n := range seed004Nodes {
		wide = append(wide, []string{n.name, "(64512)", n.ip + "/24", ""})
	}
	must(t, "get node -o wide", ctl(t, "", "get", "node", "-o", "wide"), table(wide...))

	// Label and unlabel a worker; upstream echoes KIND as typed.
	must(t, "label", ctl(t, "", "label", "nodes", "node1", "rack=r1"), "Successfully set label rack on nodes node1\n")
	obj := clitest.ParseObject(t, ctl(t, "", "get", "node", "node1", "-o", "yaml").Stdout)
	clitest.WantFields(t, "node1 labelled", obj, map[string]string{
		"metadata.labels": `{"kubernetes.io/hostname":"node1","kubernetes.io/os":"linux","rack":"r1"}`,
	})
	if kn, err := cs.CoreV1().Nodes().Get(t.Context(), "node1", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	} else if kn.Annotations["projectcalico.org/labels"] != `{"rack":"r1"}` || kn.Labels["rack"] != "" {
		t.Errorf("node1 after label: labels %v, annotations %v; want rack=r1 in projectcalico.org/labels only", kn.Labels, kn.Annotations)
	}
	must(t, "unlabel", ctl(t, "", "label", "nodes", "node1", "rack", "--remove"), "Successfully removed label rack from nodes node1\n")
	obj = clitest.ParseObject(t, ctl(t, "", "get", "node", "node1", "-o", "yaml").Stdout)
	clitest.WantFields(t, "node1 unlabelled", obj, map[string]string{
		"metadata.labels": `{"kubernetes.io/hostname":"node1","kubernetes.io/os":"linux"}`,
	})

	// The Kubernetes Nodes: Calico data in annotations, Kubernetes labels
	// untouched, no bookkeeping snapshot stored.
	for _, n := range seed004Nodes {
		kn, err := cs.CoreV1().Nodes().Get(t.Context(), n.name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"projectcalico.org/IPv4Address": n.ip + "/24"}
		wantLabels := map[string]string{"kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux"}
		if n.master {
			want["projectcalico.org/RouteReflectorClusterID"] = "224.0.0.1"
			want["projectcalico.org/labels"] = `{"i-am-a-route-reflector":"true"}`
			wantLabels["node-role.kubernetes.io/control-plane"] = ""
		}
		if !maps.Equal(kn.Annotations, want) {
			t.Errorf("k8s Node %s annotations %v, want %v", n.name, kn.Annotations, want)
		}
		if !maps.Equal(kn.Labels, wantLabels) {
			t.Errorf("k8s Node %s labels %v, want %v", n.name, kn.Labels, wantLabels)
		}
	}
}

// jsonString is s as a JSON string literal.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
