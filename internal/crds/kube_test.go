package crds

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/internal/config"
)

const testKubeconfig = `apiVersion: v1
kind: Config
current-context: a
clusters:
- name: a
  cluster: {server: "https://a.example:6443", insecure-skip-tls-verify: true}
- name: b
  cluster: {server: "https://b.example:6443", insecure-skip-tls-verify: true}
users:
- name: ua
  user: {token: token-a}
- name: ub
  user: {token: token-b}
contexts:
- name: a
  context: {cluster: a, user: ua}
- name: b
  context: {cluster: b, user: ub}
`

func TestRESTConfig(t *testing.T) {
	// Not inside a pod, whatever machine runs the tests.
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(testKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		spec      config.Spec
		wantHost  string
		wantToken string
		wantQPS   float32
		wantBurst int
		wantErr   string
	}{
		{name: "kubeconfig current context", spec: config.Spec{Kubeconfig: path},
			wantHost: "https://a.example:6443", wantToken: "token-a"},
		{name: "k8sCurrentContext picks another", spec: config.Spec{Kubeconfig: path, K8sCurrentContext: "b"},
			wantHost: "https://b.example:6443", wantToken: "token-b"},
		{name: "endpoint and token override the file", spec: config.Spec{Kubeconfig: path, K8sAPIEndpoint: "https://c.example", K8sAPIToken: "token-c"},
			wantHost: "https://c.example", wantToken: "token-c"},
		{name: "endpoint without kubeconfig", spec: config.Spec{K8sAPIEndpoint: "https://d.example:443", K8sAPIToken: "token-d", K8sInsecureSkipTLSVerify: true},
			wantHost: "https://d.example:443", wantToken: "token-d"},
		{name: "inline kubeconfig wins over the file", spec: config.Spec{KubeconfigInline: strings.ReplaceAll(testKubeconfig, "current-context: a", "current-context: b"), Kubeconfig: "/nonexistent"},
			wantHost: "https://b.example:6443", wantToken: "token-b"},
		{name: "client rate limits", spec: config.Spec{Kubeconfig: path, K8sClientQPS: 7.5, K8sClientBurst: 11},
			wantHost: "https://a.example:6443", wantToken: "token-a", wantQPS: 7.5, wantBurst: 11},
		{name: "missing kubeconfig file", spec: config.Spec{Kubeconfig: filepath.Join(t.TempDir(), "nope")},
			wantErr: "kubernetes client configuration"},
		{name: "unknown context", spec: config.Spec{Kubeconfig: path, K8sCurrentContext: "zzz"},
			wantErr: "zzz"},
		{name: "nothing configured outside a pod", spec: config.Spec{},
			wantErr: "no Kubernetes configuration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := RESTConfig(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Host != tt.wantHost || cfg.BearerToken != tt.wantToken {
				t.Errorf("host=%q token=%q, want %q %q", cfg.Host, cfg.BearerToken, tt.wantHost, tt.wantToken)
			}
			if tt.wantQPS != 0 && (cfg.QPS != tt.wantQPS || cfg.Burst != tt.wantBurst) {
				t.Errorf("qps=%v burst=%d, want %v %d", cfg.QPS, cfg.Burst, tt.wantQPS, tt.wantBurst)
			}
		})
	}
}
