package kubetest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
)

func TestTokenFileContent(t *testing.T) {
	tests := []struct {
		name   string
		tokens map[string]user
		want   string
	}{
		{"one group", map[string]user{"t1": {Name: "admin", Groups: []string{"system:masters"}}}, "t1,admin,admin,system:masters\n"},
		{"several groups are quoted", map[string]user{"t2": {Name: "bob", Groups: []string{"a", "b"}}}, "t2,bob,bob,\"a,b\"\n"},
		{"no groups, sorted by token", map[string]user{"z": {Name: "zed"}, "a": {Name: "amy"}}, "a,amy,amy\nz,zed,zed\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tokenFileContent(tc.tokens)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTokenWebhook(t *testing.T) {
	w := newTokenWebhook()
	alice := w.mint("alice", []string{"devs"})
	bob := w.mint("bob", nil)
	if alice == bob || len(alice) < 20 {
		t.Fatalf("tokens not unique or too short: %q %q", alice, bob)
	}
	srv := httptest.NewServer(w)
	defer srv.Close()

	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantAuth   bool
		wantUser   string
		wantGroups []string
	}{
		{"known token", review(alice), http.StatusOK, true, "alice", []string{"devs"}},
		{"no groups", review(bob), http.StatusOK, true, "bob", nil},
		{"unknown token", review("nope"), http.StatusOK, false, "", nil},
		{"garbage", "{", http.StatusBadRequest, false, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(srv.URL, "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if resp.StatusCode != http.StatusOK {
				return
			}
			var got authnv1.TokenReview
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if got.APIVersion != "authentication.k8s.io/v1" || got.Kind != "TokenReview" {
				t.Errorf("type = %s/%s", got.APIVersion, got.Kind)
			}
			if got.Status.Authenticated != tc.wantAuth || got.Status.User.Username != tc.wantUser || !slices.Equal(got.Status.User.Groups, tc.wantGroups) {
				t.Errorf("status = %+v, want authenticated=%v user=%q groups=%v", got.Status, tc.wantAuth, tc.wantUser, tc.wantGroups)
			}
		})
	}
}

func review(token string) string {
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}})
	return b.String()
}

func TestKubeconfigRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	ca := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	if err := writeKubeconfig(path, kubeconfig("https://127.0.0.1:6443", ca, "alice", "tok")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil {
		t.Fatalf("current context %q missing", cfg.CurrentContext)
	}
	cluster, auth := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
	if cluster == nil || auth == nil {
		t.Fatalf("context %+v points at missing entries", ctx)
	}
	if cluster.Server != "https://127.0.0.1:6443" || !bytes.Equal(cluster.CertificateAuthorityData, ca) || auth.Token != "tok" {
		t.Errorf("cluster=%+v auth token=%q", cluster, auth.Token)
	}
}

func TestNodeAddresses(t *testing.T) {
	got := nodeAddresses([]string{"10.0.0.1", "fd00::1", "node-1"})
	want := []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "10.0.0.1"},
		{Type: corev1.NodeInternalIP, Address: "fd00::1"},
		{Type: corev1.NodeHostName, Address: "node-1"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestAPIServerArgs(t *testing.T) {
	args := apiserverArgs(serverFlags{
		port:          6443,
		etcd:          []string{"http://127.0.0.1:1", "http://127.0.0.1:2"},
		pki:           &pki{certFile: "c", keyFile: "k", saKeyFile: "sk", saPubFile: "sp"},
		tokenFile:     "tokens.csv",
		webhookConfig: "wh",
		extra:         []string{"--v=4"},
	})
	for _, want := range []string{
		"--secure-port=6443",
		"--bind-address=127.0.0.1",
		"--etcd-servers=http://127.0.0.1:1,http://127.0.0.1:2",
		"--tls-cert-file=c",
		"--token-auth-file=tokens.csv",
		"--authentication-token-webhook-config-file=wh",
		"--authorization-mode=RBAC",
		"--service-account-signing-key-file=sk",
		"--service-account-key-file=sp",
		"--disable-admission-plugins=ServiceAccount",
		"--enable-priority-and-fairness=false",
	} {
		if !slices.Contains(args, want) {
			t.Errorf("missing %s in %v", want, args)
		}
	}
	if args[len(args)-1] != "--v=4" {
		t.Errorf("extra args must come last (to override), got %v", args)
	}

	// For real nodes: Node authorization, NodeRestriction, service accounts.
	args = apiserverArgs(serverFlags{port: 6443, pki: &pki{}, address: "10.77.255.1", cluster: true})
	for _, want := range []string{"--bind-address=10.77.255.1", "--advertise-address=10.77.255.1",
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--kubelet-preferred-address-types=InternalIP"} {
		if !slices.Contains(args, want) {
			t.Errorf("cluster mode: missing %s in %v", want, args)
		}
	}
	for _, a := range args {
		if strings.HasPrefix(a, "--disable-admission-plugins") {
			t.Errorf("cluster mode disables %s", a)
		}
	}
}
