package kdd

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/opencalico/calicoctl/e2e/clitest"
	"github.com/opencalico/calicoctl/internal/kubetest"
)

var kubectlOnce struct {
	sync.Once
	path string
	err  error
}

// kubectl returns the path of upstream kubectl, linked into pluginDir next to
// kubectl-calico: $KUBECTL_BIN, else the cached build of
// e2e/kubeapiserver/build.sh kubectl (building it unless -short).
func kubectl(t testing.TB) string {
	t.Helper()
	kubectlOnce.Do(func() {
		bin := os.Getenv("KUBECTL_BIN")
		if bin == "" && !testing.Short() {
			out, err := exec.Command(filepath.Join(moduleRoot, "e2e", "kubeapiserver", "build.sh"), "kubectl").Output()
			if err != nil {
				kubectlOnce.err = fmt.Errorf("build.sh kubectl: %w", err)
				return
			}
			bin = strings.TrimSpace(string(out))
		}
		if bin == "" {
			return
		}
		kubectlOnce.path = filepath.Join(pluginDir, "kubectl")
		kubectlOnce.err = os.Symlink(bin, kubectlOnce.path)
	})
	if kubectlOnce.err != nil {
		t.Fatalf("kubectl: %v", kubectlOnce.err)
	}
	if kubectlOnce.path == "" {
		t.Skip("no kubectl (set KUBECTL_BIN, or run without -short to build it)")
	}
	return kubectlOnce.path
}

// kubectlCalico runs `kubectl calico args...` with pluginDir first on PATH
// and the given environment (no DATASTORE_TYPE: kubernetes is the default).
func kubectlCalico(t testing.TB, home string, e env, args ...string) result {
	t.Helper()
	vars := env{"PATH": pluginDir + string(os.PathListSeparator) + os.Getenv("PATH")}
	for k, v := range e {
		vars[k] = v
	}
	return clitest.Exec(t, kubectl(t), home, vars, "", append([]string{"calico"}, args...)...)
}

// twoContextKubeconfig writes a kubeconfig whose current context "broken"
// points at a closed port and whose context "good" reaches srv as admin.
func twoContextKubeconfig(t testing.TB, srv *kubetest.APIServer) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["good"] = &clientcmdapi.Cluster{Server: srv.URL, CertificateAuthorityData: srv.CAData}
	cfg.Clusters["broken"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1", CertificateAuthorityData: srv.CAData}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: srv.Token}
	cfg.Contexts["good"] = &clientcmdapi.Context{Cluster: "good", AuthInfo: "admin"}
	cfg.Contexts["broken"] = &clientcmdapi.Context{Cluster: "broken", AuthInfo: "admin"}
	cfg.CurrentContext = "broken"
	p := filepath.Join(t.TempDir(), "two-contexts.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKubectlPlugin: the binary as `kubectl calico` behaves as calicoctl and
// honours --kubeconfig, --context and -n.
func TestKubectlPlugin(t *testing.T) {
	t.Parallel()
	srv := server(t)
	u := admin(t, srv)
	kubectl(t)
	u.mustRun(t, "create", "-f", clitest.WriteFile(t, "pool.yaml", ippoolYAML("plugin-pool", "10.201.0.0/24")))
	srv.CreateNamespace(t, "plug-a", nil)
	srv.CreateNamespace(t, "plug-b", nil)
	srv.CreatePod(t, kubetest.Pod{Namespace: "plug-a", Name: "api-1", NodeName: "kdd-p1", IPs: []string{"10.244.9.1"}})
	srv.CreatePod(t, kubetest.Pod{Namespace: "plug-b", Name: "api-2", NodeName: "kdd-p1", IPs: []string{"10.244.9.2"}})

	want := u.mustRun(t, "get", "ippool", "plugin-pool", "-o", "wide")
	clitest.WantContains(t, "calicoctl get ippool -o wide", want, "plugin-pool", "10.201.0.0/24")
	twoCtx := twoContextKubeconfig(t, srv)
	home := t.TempDir()

	cases := []struct {
		what string
		env  env
		args []string
		code int
		// stdout is compared exactly when set; else stdoutHas/stderrHas.
		stdout    string
		stdoutHas []string
		stdoutNot []string
		stderrHas []string
	}{
		{what: "KUBECONFIG", env: env{"KUBECONFIG": srv.Kubeconfig},
			args: []string{"get", "ippool", "plugin-pool", "-o", "wide"}, stdout: want},
		{what: "--kubeconfig", env: env{},
			args: []string{"--kubeconfig", srv.Kubeconfig, "get", "ippool", "plugin-pool", "-o", "wide"}, stdout: want},
		{what: "--context good", env: env{"KUBECONFIG": twoCtx},
			args: []string{"--context", "good", "get", "ippool", "plugin-pool", "-o", "wide"}, stdout: want},
		{what: "--kubeconfig and --context", env: env{},
			args: []string{"--kubeconfig", twoCtx, "--context", "good", "get", "ippool", "plugin-pool", "-o", "wide"}, stdout: want},
		{what: "current context broken", env: env{"KUBECONFIG": twoCtx},
			args: []string{"get", "ippool", "plugin-pool"}, code: 1, stderrHas: []string{"https://127.0.0.1:1"}},
		{what: "-n plug-a", env: env{"KUBECONFIG": srv.Kubeconfig},
			args: []string{"get", "wep", "-n", "plug-a"}, stdoutHas: []string{"plug-a", "api-1", "10.244.9.1/32"}, stdoutNot: []string{"api-2"}},
		{what: "--help names kubectl calico", env: env{},
			args: []string{"--help"}, stdoutHas: []string{"kubectl calico"}},
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			r := kubectlCalico(t, home, c.env, c.args...)
			if r.Code != c.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.Code, c.code, r.Stdout, r.Stderr)
			}
			if c.stdout != "" {
				clitest.WantExact(t, "stdout", r.Stdout, c.stdout)
			}
			clitest.WantContains(t, "stdout", r.Stdout, c.stdoutHas...)
			for _, no := range c.stdoutNot {
				if strings.Contains(r.Stdout, no) {
					t.Errorf("stdout has %q:\n%s", no, r.Stdout)
				}
			}
			clitest.WantContains(t, "stderr", r.Stderr, c.stderrHas...)
		})
	}
}
