package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/datastore/datastoretest"
	"github.com/opencalico/calicoctl/internal/crds"
	"github.com/opencalico/calicoctl/internal/kubetest"
	"github.com/opencalico/calicoctl/internal/kubetest/kubecrd"
	"github.com/opencalico/calicoctl/resources"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// server returns the package's shared API server with the Calico CRDs.
func server(t *testing.T) *kubetest.APIServer {
	t.Helper()
	srv := kubetest.Shared(t)
	kubecrd.Install(t, srv)
	return srv
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func backendFor(t *testing.T, srv *kubetest.APIServer) *Backend {
	t.Helper()
	b, err := New(testCtx(t), Config{Kubeconfig: srv.Kubeconfig})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

var subtest atomic.Int64

func TestConformance(t *testing.T) {
	srv := server(t)
	admin := srv.Clientset(t)
	datastoretest.RunConformance(t, func(t *testing.T) datastore.Interface {
		return &isolated{inner: backendFor(t, srv), p: fmt.Sprintf("c%d-", subtest.Add(1)), admin: admin, namespaces: map[string]bool{}}
	})
}

// TestStorageFormat checks what lands in the API server: a CR in
// crd.projectcalico.org/v1 with the user's metadata in the annotation.
func TestStorageFormat(t *testing.T) {
	srv := server(t)
	b := backendFor(t, srv)
	ctx := testCtx(t)
	pool := &resources.IPPool{}
	pool.Name = "storage-pool"
	pool.Labels = map[string]string{"team": "a", "projectcalico.org/owned": "yes"}
	pool.Spec.CIDR = "10.20.0.0/16"
	created, err := b.Create(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	u, err := b.dyn.Resource(gvr(kind(t, "IPPool"))).Get(ctx, "storage-pool", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if u.GetAPIVersion() != "crd.projectcalico.org/v1" || u.GetKind() != "IPPool" {
		t.Fatalf("stored as %s %s", u.GetAPIVersion(), u.GetKind())
	}
	if l := u.GetLabels(); len(l) != 1 || l["projectcalico.org/owned"] != "yes" {
		t.Fatalf("CR labels %v, want only the Calico-owned one", l)
	}
	if ann := u.GetAnnotations()[MetadataAnnotation]; !strings.Contains(ann, `"team":"a"`) {
		t.Fatalf("metadata annotation %q lacks the user label", ann)
	}
	if cidr, _, _ := unstructuredString(u.Object, "spec", "cidr"); cidr != "10.20.0.0/16" {
		t.Fatalf("spec.cidr = %q", cidr)
	}
	if want, _ := ConvertUID(u.GetUID()); created.GetUID() != want {
		t.Fatalf("v3 uid %s, want ConvertUID(CR uid) = %s", created.GetUID(), want)
	}
	if created.GetResourceVersion() != u.GetResourceVersion() {
		t.Fatalf("resourceVersion %s, CR has %s", created.GetResourceVersion(), u.GetResourceVersion())
	}
	// A stale resourceVersion is a conflict.
	stale := resources.DeepCopy(created)
	created.SetLabels(map[string]string{"team": "b"})
	if _, err := b.Update(ctx, created); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Update(ctx, stale); !errors.Is(err, datastore.ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
}

func unstructuredString(obj map[string]any, path ...string) (string, bool, error) {
	var cur any = obj
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false, nil
		}
		cur = m[p]
	}
	s, ok := cur.(string)
	return s, ok, nil
}

// TestLegacyPolicyName reads a policy stored under the pre-3.32 name.
func TestLegacyPolicyName(t *testing.T) {
	srv := server(t)
	b := backendFor(t, srv)
	ctx := testCtx(t)
	srv.CreateNamespace(t, "legacy-ns", nil)
	old := map[string]any{"apiVersion": CRDAPIVersion, "kind": "NetworkPolicy",
		"metadata": map[string]any{"name": "default.old-pol", "namespace": "legacy-ns"},
		"spec":     map[string]any{"tier": "default", "selector": "all()"}}
	if _, err := b.dyn.Resource(gvr(kind(t, "NetworkPolicy"))).Namespace("legacy-ns").Create(ctx, unstructuredOf(old), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	key := resources.Key{Kind: "NetworkPolicy", Namespace: "legacy-ns", Name: "old-pol"}
	got, err := b.Get(ctx, key)
	if err != nil {
		t.Fatalf("get legacy policy: %v", err)
	}
	if got.GetName() != "old-pol" {
		t.Fatalf("name %q", got.GetName())
	}
	got.SetLabels(map[string]string{"x": "1"})
	if _, err := b.Update(ctx, got); err != nil {
		t.Fatalf("update legacy policy: %v", err)
	}
	list, err := b.List(ctx, datastore.ListOptions{Kind: "NetworkPolicy", Namespace: "legacy-ns", NamePrefix: "old"})
	if err != nil || len(list.Items) != 1 || list.Items[0].GetLabels()["x"] != "1" {
		t.Fatalf("list by prefix: %v, %v", list, err)
	}
	if _, err := b.Delete(ctx, key, ""); err != nil {
		t.Fatalf("delete legacy policy: %v", err)
	}
	if _, err := b.Get(ctx, key); !errors.Is(err, datastore.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestNodeRoundTrip(t *testing.T) {
	srv := server(t)
	b := backendFor(t, srv)
	ctx := testCtx(t)
	srv.CreateNode(t, "rt-node-1", map[string]string{"kubernetes.io/hostname": "rt-node-1"}, "10.0.0.11")
	got, err := b.Get(ctx, resources.Key{Kind: "Node", Name: "rt-node-1"})
	if err != nil {
		t.Fatal(err)
	}
	n := got.(*resources.Node)
	if !slices.Contains(n.Spec.Addresses, resources.NodeAddress{Address: "10.0.0.11", Type: "InternalIP"}) {
		t.Fatalf("addresses %v", n.Spec.Addresses)
	}
	asn := resources.ASNumber(64512)
	n.Spec.BGP = &resources.NodeBGPSpec{IPv4Address: "10.0.0.11/24", ASNumber: &asn}
	n.Spec.IPv4VXLANTunnelAddr = "192.168.5.1"
	n.Labels["rack"] = "r1"
	updated, err := b.Update(ctx, n)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	k8sNode, err := srv.Clientset(t).CoreV1().Nodes().Get(ctx, "rt-node-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a := k8sNode.Annotations; a[AnnotationIPv4Address] != "10.0.0.11/24" || a[AnnotationASNumber] != "64512" || a[AnnotationIPv4VXLANTunnelAddr] != "192.168.5.1" {
		t.Fatalf("node annotations %v", a)
	}
	if _, ok := k8sNode.Labels["rack"]; ok {
		t.Fatalf("Calico label written as a Kubernetes label")
	}
	again, err := b.Get(ctx, resources.Key{Kind: "Node", Name: "rt-node-1"})
	if err != nil {
		t.Fatal(err)
	}
	an := again.(*resources.Node)
	if an.Spec.BGP == nil || an.Spec.BGP.IPv4Address != "10.0.0.11/24" || an.Labels["rack"] != "r1" || an.GetResourceVersion() != updated.GetResourceVersion() {
		t.Fatalf("re-read %+v labels %v", an.Spec.BGP, an.Labels)
	}
	// The old revision is stale now.
	if _, err := b.Update(ctx, n); !errors.Is(err, datastore.ErrConflict) {
		t.Fatalf("stale node update: %v, want ErrConflict", err)
	}
	for _, op := range []func() error{
		func() error { _, err := b.Create(ctx, an); return err },
		func() error { _, err := b.Delete(ctx, resources.Key{Kind: "Node", Name: "rt-node-1"}, ""); return err },
	} {
		if err := op(); !errors.Is(err, datastore.ErrNotSupported) {
			t.Fatalf("node create/delete: %v, want ErrNotSupported", err)
		}
	}
}

func TestWorkloadEndpointsFromPods(t *testing.T) {
	srv := server(t)
	b := backendFor(t, srv)
	ctx := testCtx(t)
	srv.CreateNamespace(t, "wep-ns", nil)
	srv.CreatePod(t, kubetest.Pod{Namespace: "wep-ns", Name: "web-1", NodeName: "wep-node", Labels: map[string]string{"app": "web"}, IPs: []string{"10.10.3.2"}})
	srv.CreatePod(t, kubetest.Pod{Namespace: "wep-ns", Name: "hostnet", NodeName: "wep-node", HostNetwork: true})
	srv.CreatePod(t, kubetest.Pod{Namespace: "wep-ns", Name: "pending"})

	list, err := b.List(ctx, datastore.ListOptions{Kind: "WorkloadEndpoint", Namespace: "wep-ns"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("%d endpoints, want only the scheduled non-hostNetwork pod's", len(list.Items))
	}
	w := list.Items[0].(*resources.WorkloadEndpoint)
	if w.Name != "wep--node-k8s-web--1-eth0" || !slices.Equal(w.Spec.IPNetworks, []string{"10.10.3.2/32"}) ||
		!slices.Equal(w.Spec.Profiles, []string{"kns.wep-ns", "ksa.wep-ns.default"}) || w.Labels["app"] != "web" {
		t.Fatalf("endpoint %s %+v labels %v", w.Name, w.Spec, w.Labels)
	}
	key := resources.KeyOf(w)
	if _, err := b.Get(ctx, key); err != nil {
		t.Fatalf("get: %v", err)
	}
	// CNI patch mode: the endpoint's container ID and addresses land on the pod.
	w.Spec.ContainerID = "cid-1"
	w.Spec.IPNetworks = []string{"10.10.3.9/32"}
	if _, err := b.Update(ctx, w); err != nil {
		t.Fatalf("update: %v", err)
	}
	pod, err := srv.Clientset(t).CoreV1().Pods("wep-ns").Get(ctx, "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Annotations[AnnotationContainerID] != "cid-1" || pod.Annotations[AnnotationPodIP] != "10.10.3.9/32" || pod.Annotations[AnnotationPodIPs] != "10.10.3.9/32" {
		t.Fatalf("pod annotations %v", pod.Annotations)
	}
	if _, err := b.Delete(ctx, key, ""); err != nil {
		t.Fatalf("delete: %v", err)
	}
	pod, err = srv.Clientset(t).CoreV1().Pods("wep-ns").Get(ctx, "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := pod.Annotations[AnnotationPodIP]; !ok || v != "" {
		t.Fatalf("podIP annotation after delete: %q, %v; want blank", v, ok)
	}
}

func TestProfilesFromNamespaces(t *testing.T) {
	srv := server(t)
	b := backendFor(t, srv)
	ctx := testCtx(t)
	srv.CreateNamespace(t, "prof-ns", map[string]string{"env": "prod"})
	srv.CreateServiceAccount(t, "prof-ns", "builder")
	got, err := b.Get(ctx, resources.Key{Kind: "Profile", Name: "kns.prof-ns"})
	if err != nil {
		t.Fatal(err)
	}
	if p := got.(*resources.Profile); p.Spec.LabelsToApply["pcns.env"] != "prod" || len(p.Spec.Ingress) != 1 {
		t.Fatalf("namespace profile %+v", p.Spec)
	}
	list, err := b.List(ctx, datastore.ListOptions{Kind: "Profile"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range list.Items {
		names = append(names, r.GetName())
	}
	for _, want := range []string{"projectcalico-default-allow", "kns.prof-ns", "ksa.prof-ns.builder", "kns.default"} {
		if !slices.Contains(names, want) {
			t.Errorf("profiles %v lack %s", names, want)
		}
	}
	if !strings.Contains(list.Revision, "/") {
		t.Errorf("profile list revision %q, want <nsRV>/<saRV>", list.Revision)
	}
	if _, err := b.Create(ctx, got); !errors.Is(err, datastore.ErrNotSupported) {
		t.Fatalf("create profile: %v, want ErrNotSupported", err)
	}
}

func TestKubernetesNetworkPolicyVisible(t *testing.T) {
	srv := server(t)
	b := backendFor(t, srv)
	ctx := testCtx(t)
	srv.CreateNamespace(t, "knp-ns", nil)
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "knp-ns", Name: "deny-all"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
	if _, err := srv.Clientset(t).NetworkingV1().NetworkPolicies("knp-ns").Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cal := &resources.NetworkPolicy{}
	cal.Name, cal.Namespace = "calico-pol", "knp-ns"
	if _, err := b.Create(ctx, cal); err != nil {
		t.Fatal(err)
	}
	list, err := b.List(ctx, datastore.ListOptions{Kind: "NetworkPolicy", Namespace: "knp-ns"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range list.Items {
		names = append(names, r.GetName())
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"calico-pol", "knp.default.deny-all"}) {
		t.Fatalf("policies %v", names)
	}
	got, err := b.Get(ctx, resources.Key{Kind: "NetworkPolicy", Namespace: "knp-ns", Name: "knp.default.deny-all"})
	if err != nil {
		t.Fatal(err)
	}
	if p := got.(*resources.NetworkPolicy); *p.Spec.Order != 1000 || len(p.Spec.Ingress) != 0 {
		t.Fatalf("knp %+v", p.Spec)
	}
	if _, err := b.Delete(ctx, resources.KeyOf(got), ""); !errors.Is(err, datastore.ErrNotSupported) {
		t.Fatalf("delete knp: %v, want ErrNotSupported", err)
	}
	// Paging walks the Calico policies, then the Kubernetes ones.
	var paged []string
	opts := datastore.ListOptions{Kind: "NetworkPolicy", Namespace: "knp-ns", Limit: 1}
	for range 5 {
		res, err := b.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Items {
			paged = append(paged, r.GetName())
		}
		if res.Continue == "" {
			break
		}
		opts.Continue = res.Continue
	}
	slices.Sort(paged)
	if !slices.Equal(paged, names) {
		t.Fatalf("paged %v, want %v", paged, names)
	}
}

func TestForbidden(t *testing.T) {
	srv := server(t)
	ctx := testCtx(t)
	b, err := New(ctx, Config{APIEndpoint: srv.URL, CAFile: srv.CAFile, Token: srv.TokenFor("alice")})
	if err != nil {
		t.Fatalf("New as a user without rights: %v (discovery is open to every user)", err)
	}
	tests := []struct {
		name string
		do   func() error
		want string
	}{
		{"list cluster-scoped", func() error { _, err := b.List(ctx, datastore.ListOptions{Kind: "IPPool"}); return err },
			`forbidden: cannot list ippools.crd.projectcalico.org at the cluster scope (user "alice")`},
		{"get namespaced", func() error {
			_, err := b.Get(ctx, resources.Key{Kind: "NetworkPolicy", Namespace: "default", Name: "x"})
			return err
		}, `forbidden: cannot get networkpolicies.crd.projectcalico.org in the namespace "default" (user "alice")`},
		{"list nodes", func() error { _, err := b.List(ctx, datastore.ListOptions{Kind: "Node"}); return err },
			`forbidden: cannot list nodes at the cluster scope (user "alice")`},
	}
	for _, tc := range tests {
		err := tc.do()
		var fe *ForbiddenError
		if !errors.As(err, &fe) || err.Error() != tc.want {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// With the right granted, the same user can list.
	admin := srv.Clientset(t)
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "ippool-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{CRDGroup}, Resources: []string{"ippools"}, Verbs: []string{"list"}}}}
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "alice-ippools"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "ippool-reader"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "alice"}}}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// RBAC changes reach the authorizer through an informer: poll briefly.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := b.List(ctx, datastore.ListOptions{Kind: "IPPool"})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("list after binding: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestUnreachable(t *testing.T) {
	ctx := testCtx(t)
	start := time.Now()
	_, err := New(ctx, Config{APIEndpoint: "https://127.0.0.1:1", InsecureSkipTLSVerify: true})
	if !errors.Is(err, datastore.ErrUnavailable) {
		t.Fatalf("New: %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "https://127.0.0.1:1") {
		t.Fatalf("error %q does not name the URL", err)
	}
	if d := time.Since(start); d > 3*DefaultProbeTimeout {
		t.Fatalf("New took %s", d)
	}
}

// TestCRDsMissing runs against its own API server, which has no Calico CRDs.
func TestCRDsMissing(t *testing.T) {
	srv := kubetest.Start(t)
	ctx := testCtx(t)
	_, err := New(ctx, Config{Kubeconfig: srv.Kubeconfig})
	if !errors.Is(err, ErrCRDsNotInstalled) || err.Error() != "Calico CRDs are not installed in this cluster: run 'calicoctl datastore crds install'" {
		t.Fatalf("New without CRDs: %v", err)
	}
	b, err := New(ctx, Config{Kubeconfig: srv.Kubeconfig, SkipCRDCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.List(ctx, datastore.ListOptions{Kind: "IPPool"}); !errors.Is(err, ErrCRDsNotInstalled) {
		t.Fatalf("list without CRDs: %v", err)
	}
	// Kinds backed by native objects still work.
	if _, err := b.List(ctx, datastore.ListOptions{Kind: "Profile"}); err != nil {
		t.Fatalf("profiles without CRDs: %v", err)
	}
	// Install only the IPPool CRD: IPPools work, other kinds still say what is missing.
	all, err := crds.All()
	if err != nil {
		t.Fatal(err)
	}
	var pools []*crds.CustomResourceDefinition
	for _, c := range all {
		if c.Name == "ippools."+CRDGroup {
			pools = append(pools, c)
		}
	}
	if err := kubecrd.InstallList(ctx, srv, pools); err != nil {
		t.Fatal(err)
	}
	if _, err := b.List(ctx, datastore.ListOptions{Kind: "IPPool"}); err != nil {
		t.Fatalf("list after installing the IPPool CRD: %v", err)
	}
	_, err = b.List(ctx, datastore.ListOptions{Kind: "BGPPeer"})
	if !errors.Is(err, ErrCRDsNotInstalled) || !strings.Contains(err.Error(), "bgppeers.crd.projectcalico.org") {
		t.Fatalf("list of a kind without CRD: %v", err)
	}
}

func unstructuredOf(m map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: m}
}

// TestNativeWatches follows Profiles and Nodes from "now" on a real server.
func TestNativeWatches(t *testing.T) {
	srv := server(t)
	b := backendFor(t, srv)
	ctx := testCtx(t)
	profiles, err := b.Watch(ctx, datastore.WatchOptions{Kind: "Profile"})
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := b.Watch(ctx, datastore.WatchOptions{Kind: "Node"})
	if err != nil {
		t.Fatal(err)
	}
	srv.CreateNamespace(t, "watch-ns", map[string]string{"w": "1"})
	srv.CreateNode(t, "watch-node", nil, "10.0.0.99")

	for {
		ev := recv(t, ctx, profiles)
		if ev.Object.GetName() != "kns.watch-ns" {
			continue // e.g. another test's namespace or service account
		}
		if ev.Type != datastore.Added || !strings.Contains(ev.Revision, "/") {
			t.Fatalf("profile event %s rev %q", ev.Type, ev.Revision)
		}
		if p := ev.Object.(*resources.Profile); p.Spec.LabelsToApply["pcns.w"] != "1" {
			t.Fatalf("watched profile %+v", p.Spec)
		}
		break
	}
	for {
		ev := recv(t, ctx, nodes)
		if ev.Object.GetName() != "watch-node" {
			continue
		}
		if ev.Type != datastore.Added && ev.Type != datastore.Modified {
			t.Fatalf("node event %s", ev.Type)
		}
		break
	}
}
