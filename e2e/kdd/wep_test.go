package kdd

import (
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/opencalico/calicoctl/e2e/clitest"
	"github.com/opencalico/calicoctl/internal/kubetest"
)

// vethName is upstream's host-side interface name for a pod: cali + the
// first 11 hex digits of SHA-1("<namespace>.<pod>").
func vethName(ns, pod string) string {
	sum := sha1.Sum([]byte(ns + "." + pod))
	return "cali" + hex.EncodeToString(sum[:])[:11]
}

func TestVethName(t *testing.T) {
	clitest.WantExact(t, "veth", vethName("prod", "web-1"), "cali91bef8fbcc9")
}

// TestWorkloadEndpointsFromPods: scheduled, non-host-network pods with IPs
// are WorkloadEndpoints; the table matches upstream's columns.
func TestWorkloadEndpointsFromPods(t *testing.T) {
	t.Parallel()
	srv := server(t)
	u := admin(t, srv)
	srv.CreateNamespace(t, "wep-a", map[string]string{"team": "a"})
	srv.CreateNamespace(t, "wep-b", nil)
	srv.CreateServiceAccount(t, "wep-a", "web")
	srv.CreatePod(t, kubetest.Pod{Namespace: "wep-a", Name: "web-1", NodeName: "kdd-w1", IPs: []string{"10.244.0.5", "fd00::5"}, ServiceAccount: "web", Labels: map[string]string{"app": "web"}})
	srv.CreatePod(t, kubetest.Pod{Namespace: "wep-b", Name: "db-1", NodeName: "kdd-w2", IPs: []string{"10.244.1.7"}})
	srv.CreatePod(t, kubetest.Pod{Namespace: "wep-b", Name: "host-1", NodeName: "kdd-w2", IPs: []string{"192.0.2.10"}, HostNetwork: true})
	srv.CreatePod(t, kubetest.Pod{Namespace: "wep-b", Name: "pending-1"})

	webIf, dbIf := vethName("wep-a", "web-1"), vethName("wep-b", "db-1")
	clitest.WantExact(t, "get wep -n wep-a", u.mustRun(t, "get", "wep", "-n", "wep-a"), table(
		[]string{"NAMESPACE", "WORKLOAD", "NODE", "NETWORKS", "INTERFACE"},
		[]string{"wep-a", "web-1", "kdd-w1", "10.244.0.5/32,fd00::5/128", webIf},
	))
	clitest.WantExact(t, "get wep -n wep-b -o wide", u.mustRun(t, "get", "wep", "-n", "wep-b", "-o", "wide"), table(
		[]string{"NAMESPACE", "NAME", "WORKLOAD", "NODE", "NETWORKS", "INTERFACE", "PROFILES", "NATS"},
		[]string{"wep-b", "kdd--w2-k8s-db--1-eth0", "db-1", "kdd-w2", "10.244.1.7/32", dbIf, "kns.wep-b,ksa.wep-b.default", ""},
	))

	// -A lists every namespace (other tests add pods too: look for ours).
	out := u.mustRun(t, "get", "wep", "-A")
	rows := tableRows(out)
	if len(rows) == 0 || strings.Join(rows[0], " ") != "NAMESPACE WORKLOAD NODE NETWORKS INTERFACE" {
		t.Errorf("get wep -A header: %q", out)
	}
	for _, want := range [][]string{
		{"wep-a", "web-1", "kdd-w1", "10.244.0.5/32,fd00::5/128", webIf},
		{"wep-b", "db-1", "kdd-w2", "10.244.1.7/32", dbIf},
	} {
		if got, ok := rowWith(rows, 1, want[1]); !ok || strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("get wep -A: row %v, want %v\n%s", got, want, out)
		}
	}
	for _, absent := range []string{"host-1", "pending-1"} {
		if strings.Contains(out, absent) {
			t.Errorf("get wep -A lists %s (host-network or unscheduled):\n%s", absent, out)
		}
	}

	obj, _ := u.getYAML(t, "wep", "kdd--w1-k8s-web--1-eth0", "-n", "wep-a")
	clitest.WantFields(t, "wep", obj, map[string]string{
		"kind":                    `"WorkloadEndpoint"`,
		"metadata.namespace":      `"wep-a"`,
		"metadata.labels":         `{"app":"web","projectcalico.org/namespace":"wep-a","projectcalico.org/orchestrator":"k8s","projectcalico.org/serviceaccount":"web"}`,
		"spec.orchestrator":       `"k8s"`,
		"spec.node":               `"kdd-w1"`,
		"spec.pod":                `"web-1"`,
		"spec.endpoint":           `"eth0"`,
		"spec.interfaceName":      `"` + webIf + `"`,
		"spec.ipNetworks":         `["10.244.0.5/32","fd00::5/128"]`,
		"spec.profiles":           `["kns.wep-a","ksa.wep-a.web"]`,
		"spec.serviceAccountName": `"web"`,
	})
	clitest.WantServerMeta(t, "wep", obj)

	// A WorkloadEndpoint is written by the CNI plugin, not created here.
	r := u.run(t, "", "create", "-f", testdata(t, "kinds/workloadendpoint.yaml"), "-n", "wep-a")
	clitest.WantExact(t, "create wep stdout", r.Stdout, "")
	clitest.WantOneLine(t, "create wep stderr", r.Stderr)
	clitest.WantContains(t, "create wep stderr", r.Stderr, "failed to create 'WorkloadEndpoint' resource: [")
	if r.Code != 1 {
		t.Errorf("create wep: exit %d, want 1", r.Code)
	}
	pods, err := srv.Clientset(t).CoreV1().Pods("wep-a").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 {
		t.Errorf("pods in wep-a after refused create: %d, want 1", len(pods.Items))
	}
}

// TestProfilesFromNamespacesAndServiceAccounts: namespaces are kns.<ns>,
// service accounts ksa.<ns>.<sa>, plus projectcalico-default-allow; none
// can be written.
func TestProfilesFromNamespacesAndServiceAccounts(t *testing.T) {
	t.Parallel()
	srv := server(t)
	u := admin(t, srv)
	srv.CreateNamespace(t, "pro-a", map[string]string{"team": "a"})
	srv.CreateServiceAccount(t, "pro-a", "builder")

	out := u.mustRun(t, "get", "profile")
	rows := tableRows(out)
	if len(rows) == 0 || rows[0][0] != "NAME" || len(rows[0]) != 1 {
		t.Errorf("get profile header: %q", out)
	}
	for _, want := range []string{"projectcalico-default-allow", "kns.default", "kns.pro-a", "ksa.pro-a.default", "ksa.pro-a.builder"} {
		if _, ok := rowWith(rows, 0, want); !ok {
			t.Errorf("get profile: no %s in\n%s", want, out)
		}
	}
	wide := tableRows(u.mustRun(t, "get", "profile", "-o", "wide"))
	for name, labels := range map[string]string{
		"kns.pro-a":         "pcns.kubernetes.io/metadata.name=pro-a,pcns.projectcalico.org/name=pro-a,pcns.team=a",
		"ksa.pro-a.builder": "pcsa.projectcalico.org/name=builder",
	} {
		if got, ok := rowWith(wide, 0, name); !ok || len(got) != 2 || got[1] != labels {
			t.Errorf("get profile -o wide: row %v, want [%s %s]", got, name, labels)
		}
	}
	obj, _ := u.getYAML(t, "profile", "kns.pro-a")
	clitest.WantFields(t, "kns.pro-a", obj, map[string]string{
		"spec.ingress":       `[{"action":"Allow"}]`,
		"spec.egress":        `[{"action":"Allow"}]`,
		"spec.labelsToApply": `{"pcns.kubernetes.io/metadata.name":"pro-a","pcns.projectcalico.org/name":"pro-a","pcns.team":"a"}`,
	})

	cases := []struct {
		what string
		args []string
		want string
	}{
		{"create", []string{"create", "-f", testdata(t, "kinds/profile.yaml")}, "operation Create is not supported on Profile(edge)"},
		{"delete", []string{"delete", "profile", "kns.pro-a"}, "operation Delete is not supported on Profile(kns.pro-a)"},
		{"label", []string{"label", "profile", "kns.pro-a", "x=y"}, "Profile(kns.pro-a)"},
		{"patch", []string{"patch", "profile", "ksa.pro-a.builder", "-p", `{"spec":{"labelsToApply":{"x":"y"}}}`}, "Profile(ksa.pro-a.builder)"},
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			r := u.run(t, "", c.args...)
			clitest.WantOneLine(t, "stderr", r.Stderr)
			clitest.WantContains(t, "stderr", r.Stderr, c.want)
			if r.Code != 1 {
				t.Errorf("exit %d, want 1", r.Code)
			}
		})
	}
	after, _ := u.getYAML(t, "profile", "kns.pro-a")
	clitest.WantFields(t, "kns.pro-a after refused writes", after, map[string]string{"spec.labelsToApply": obj.Str("spec.labelsToApply")})
	if _, err := srv.Clientset(t).CoreV1().Namespaces().Get(t.Context(), "pro-a", metav1.GetOptions{}); err != nil {
		t.Errorf("namespace after refused delete: %v", err)
	}
}

// TestKubernetesNetworkPolicy: a Kubernetes NetworkPolicy shows as the
// read-only knp.default.<name> NetworkPolicy.
func TestKubernetesNetworkPolicy(t *testing.T) {
	t.Parallel()
	srv := server(t)
	u := admin(t, srv)
	const ns = "knp-ns"
	srv.CreateNamespace(t, ns, nil)
	port := intstr.FromInt32(80)
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-ingress"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "fe"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: &port}},
			}},
		},
	}
	nps := srv.Clientset(t).NetworkingV1().NetworkPolicies(ns)
	if _, err := nps.Create(t.Context(), np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	clitest.WantExact(t, "get networkpolicy", u.mustRun(t, "get", "networkpolicy", "-n", ns),
		table([]string{"NAMESPACE", "NAME", "TIER"}, []string{ns, "knp.default.web-ingress", "default"}))
	obj, text := u.getYAML(t, "networkpolicy", "knp.default.web-ingress", "-n", ns)
	clitest.WantFields(t, "knp", obj, map[string]string{
		"metadata.namespace":    `"` + ns + `"`,
		"spec.tier":             `"default"`,
		"spec.order":            `1000`,
		"spec.types":            `["Ingress"]`,
		"spec.ingress.0.action": `"Allow"`,
	})
	clitest.WantContains(t, "knp selector", obj.Str("spec.selector"), "projectcalico.org/orchestrator == 'k8s'", "app == 'web'")

	// Writes through calicoctl are refused and leave the policy alone.
	edited := strings.Replace(text, "order: 1000", "order: 5", 1)
	cases := []struct {
		what string
		args []string
	}{
		{"delete", []string{"delete", "networkpolicy", "knp.default.web-ingress", "-n", ns}},
		{"replace", []string{"replace", "-f", clitest.WriteFile(t, "knp.yaml", edited)}},
		{"patch", []string{"patch", "networkpolicy", "knp.default.web-ingress", "-n", ns, "-p", `{"spec":{"order":5}}`}},
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			r := u.run(t, "", c.args...)
			if r.Code != 1 {
				t.Errorf("exit %d, want 1 (stdout %q)", r.Code, r.Stdout)
			}
			if !strings.Contains(r.Stderr, "knp.default.web-ingress") {
				t.Errorf("stderr does not name the policy: %q", r.Stderr)
			}
		})
	}
	if _, err := nps.Get(t.Context(), "web-ingress", metav1.GetOptions{}); apierrors.IsNotFound(err) {
		t.Errorf("the Kubernetes NetworkPolicy was deleted through calicoctl")
	}
	after, _ := u.getYAML(t, "networkpolicy", "knp.default.web-ingress", "-n", ns)
	clitest.WantFields(t, "knp after refused writes", after, map[string]string{"spec.order": `1000`})
}
