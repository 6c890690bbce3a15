package kubetest

import (
	"context"
	"crypto/rand"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestAPIServerSmoke starts the real API server and checks what the
// datastore tests rely on: the helpers' objects read back through
// client-go, kubeconfigs authenticate as the right users, and RBAC applies
// to minted users.
func TestAPIServerSmoke(t *testing.T) {
	s := Shared(t)
	t.Logf("startup time: %s", s.StartupTime)
	// The shared server outlives this test (-count=N reruns it), so names are unique.
	suffix := strings.ToLower(rand.Text()[:8])
	nsName, nodeName := "smoke-"+suffix, "node-"+suffix

	s.CreateNamespace(t, nsName, map[string]string{"team": "net"})
	s.CreateServiceAccount(t, nsName, "runner")
	s.CreateNode(t, nodeName, map[string]string{"kubernetes.io/os": "linux"}, "10.0.0.1", "fd00::1", "node-1.example")
	s.CreatePod(t, Pod{
		Namespace:      nsName,
		Name:           "web",
		NodeName:       nodeName,
		Labels:         map[string]string{"app": "web"},
		Annotations:    map[string]string{"cni.projectcalico.org/podIPs": "192.168.1.5/32,fd00:1::5/128"},
		IPs:            []string{"192.168.1.5", "fd00:1::5"},
		ServiceAccount: "runner",
	})
	s.CreatePod(t, Pod{Namespace: nsName, Name: "bare", NodeName: nodeName})

	// Read back through the admin kubeconfig file, as the CLI would.
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		t.Fatalf("load admin kubeconfig: %v", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	ns, err := cs.CoreV1().Namespaces().Get(ctx, nsName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get namespace: %v", err)
	}
	if ns.Labels["team"] != "net" {
		t.Errorf("namespace labels = %v, want team=net", ns.Labels)
	}
	for _, sa := range []struct{ ns, name string }{{nsName, "runner"}, {nsName, "default"}, {"default", "default"}, {"kube-system", "default"}} {
		if _, err := cs.CoreV1().ServiceAccounts(sa.ns).Get(ctx, sa.name, metav1.GetOptions{}); err != nil {
			t.Errorf("get service account %s/%s: %v", sa.ns, sa.name, err)
		}
	}

	node, err := cs.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get node: %v", err)
	}
	wantAddrs := []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "10.0.0.1"},
		{Type: corev1.NodeInternalIP, Address: "fd00::1"},
		{Type: corev1.NodeHostName, Address: "node-1.example"},
	}
	if !slices.Equal(node.Status.Addresses, wantAddrs) {
		t.Errorf("node addresses = %v, want %v", node.Status.Addresses, wantAddrs)
	}
	if node.Labels["kubernetes.io/os"] != "linux" {
		t.Errorf("node labels = %v", node.Labels)
	}

	pods := []struct {
		name, wantSA, wantIP string
		wantIPs              []corev1.PodIP
		wantLabels           map[string]string
		wantAnnotation       string
	}{
		{"web", "runner", "192.168.1.5", []corev1.PodIP{{IP: "192.168.1.5"}, {IP: "fd00:1::5"}}, map[string]string{"app": "web"}, "192.168.1.5/32,fd00:1::5/128"},
		{"bare", "default", "", nil, nil, ""},
	}
	for _, tc := range pods {
		t.Run("pod/"+tc.name, func(t *testing.T) {
			pod, err := cs.CoreV1().Pods(nsName).Get(ctx, tc.name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("get pod: %v", err)
			}
			if pod.Spec.NodeName != nodeName || pod.Spec.ServiceAccountName != tc.wantSA {
				t.Errorf("spec nodeName=%q serviceAccount=%q, want %s/%s", pod.Spec.NodeName, pod.Spec.ServiceAccountName, nodeName, tc.wantSA)
			}
			if pod.Status.Phase != corev1.PodRunning {
				t.Errorf("phase = %s, want Running", pod.Status.Phase)
			}
			if pod.Status.PodIP != tc.wantIP || !slices.Equal(pod.Status.PodIPs, tc.wantIPs) {
				t.Errorf("podIP=%q podIPs=%v, want %q %v", pod.Status.PodIP, pod.Status.PodIPs, tc.wantIP, tc.wantIPs)
			}
			for k, v := range tc.wantLabels {
				if pod.Labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, pod.Labels[k], v)
				}
			}
			if got := pod.Annotations["cni.projectcalico.org/podIPs"]; got != tc.wantAnnotation {
				t.Errorf("podIPs annotation = %q, want %q", got, tc.wantAnnotation)
			}
		})
	}

	// Each kubeconfig authenticates as its own user.
	identities := []struct {
		name       string
		kubeconfig string
		wantUser   string
		wantGroups []string
	}{
		{"admin", s.Kubeconfig, AdminUser, []string{"system:masters", "system:authenticated"}},
		{"minted", s.KubeconfigFor(t, "alice", "devs", "ops"), "alice", []string{"devs", "ops", "system:authenticated"}},
	}
	for _, tc := range identities {
		t.Run("whoami/"+tc.name, func(t *testing.T) {
			cfg, err := clientcmd.BuildConfigFromFlags("", tc.kubeconfig)
			if err != nil {
				t.Fatalf("load kubeconfig: %v", err)
			}
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("SelfSubjectReview: %v", err)
			}
			got := review.Status.UserInfo
			if got.Username != tc.wantUser {
				t.Errorf("user = %q, want %q", got.Username, tc.wantUser)
			}
			for _, g := range tc.wantGroups {
				if !slices.Contains(got.Groups, g) {
					t.Errorf("groups = %v, missing %q", got.Groups, g)
				}
			}
		})
	}

	t.Run("unknown token is unauthorized", func(t *testing.T) {
		cfg := s.RESTConfig()
		cfg.BearerToken = "not-a-minted-token"
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = cs.CoreV1().Pods(nsName).List(ctx, metav1.ListOptions{})
		if !apierrors.IsUnauthorized(err) {
			t.Errorf("list with a bogus token: err = %v, want Unauthorized", err)
		}
	})

	t.Run("rbac", func(t *testing.T) {
		eve := s.ClientsetFor(t, "eve", "pod-readers")
		_, err := eve.CoreV1().Pods(nsName).List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) {
			t.Fatalf("eve lists pods before any binding: err = %v, want Forbidden", err)
		}

		admin := s.Clientset(t)
		role := &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: nsName, Name: "pod-reader"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}},
		}
		if _, err := admin.RbacV1().Roles(nsName).Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		binding := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: nsName, Name: "pod-readers"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pod-reader"},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "pod-readers"}},
		}
		if _, err := admin.RbacV1().RoleBindings(nsName).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// The authorizer sees the binding once its informer catches up.
		if err := eventually(ctx, func() error {
			_, err := eve.CoreV1().Pods(nsName).List(ctx, metav1.ListOptions{})
			return err
		}); err != nil {
			t.Fatalf("eve lists pods after the group binding: %v", err)
		}
		_, err = eve.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("eve lists nodes: err = %v, want Forbidden", err)
		}
		_, err = s.ClientsetFor(t, "mallory", "other").CoreV1().Pods(nsName).List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("mallory (not in pod-readers) lists pods: err = %v, want Forbidden", err)
		}
	})
}

// TestSharedIsOnePerBinary checks that Shared hands every test the same
// running server rather than starting another.
func TestSharedIsOnePerBinary(t *testing.T) {
	a, b := Shared(t), Shared(t)
	if a != b {
		t.Fatalf("Shared returned two servers: %s and %s", a.URL, b.URL)
	}
	if _, err := a.Clientset(t).CoreV1().Namespaces().Get(t.Context(), metav1.NamespaceDefault, metav1.GetOptions{}); err != nil {
		t.Errorf("shared server does not answer: %v", err)
	}
}

// eventually retries f until it succeeds or 30 s pass.
func eventually(ctx context.Context, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-ticker.C:
		}
	}
}
