package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/opencalico/calicoctl/internal/cni"
)

// installCNIFixture is a fake host root, service account and executable.
type installCNIFixture struct {
	root, sa, exe string
	env           map[string]string
	requestToken  func(context.Context, time.Duration) (string, time.Time, error)
}

func newInstallCNIFixture(t *testing.T) *installCNIFixture {
	t.Helper()
	dir := t.TempDir()
	fx := &installCNIFixture{root: filepath.Join(dir, "host"), sa: filepath.Join(dir, "sa"), exe: filepath.Join(dir, "calicoctl")}
	must(t, os.MkdirAll(fx.sa, 0o755))
	must(t, os.WriteFile(filepath.Join(fx.sa, "token"), []byte("tok-1\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(fx.sa, "ca.crt"), []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o600))
	must(t, os.WriteFile(fx.exe, []byte("#!binary v1"), 0o755))
	fx.env = map[string]string{
		"KUBERNETES_SERVICE_HOST": "10.77.255.1", "KUBERNETES_SERVICE_PORT": "6443",
		"KUBERNETES_NODE_NAME": "node-a",
	}
	return fx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// run executes `calicoctl node install-cni args...` against the fixture.
func (fx *installCNIFixture) run(ctx context.Context, t *testing.T, args ...string) (string, error) {
	t.Helper()
	var errOut bytes.Buffer
	o := &InstallCNIOptions{
		Streams:      IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &errOut},
		Env:          func(k string) (string, bool) { v, ok := fx.env[k]; return v, ok },
		Executable:   func() (string, error) { return fx.exe, nil },
		RequestToken: fx.requestToken,
	}
	cmd := installCNICommand(o)
	cmd.SetArgs(append([]string{"--host-root", fx.root, "--service-account-dir", fx.sa}, args...))
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(ctx)
	return errOut.String(), err
}

func TestInstallCNIWritesPluginsConfigAndKubeconfig(t *testing.T) {
	fx := newInstallCNIFixture(t)
	if logs, err := fx.run(context.Background(), t); err != nil {
		t.Fatalf("install-cni: %v\n%s", err, logs)
	}
	bin := filepath.Join(fx.root, "opt/cni/bin")
	for _, name := range []string{"calico", "calico-ipam"} {
		b, err := os.ReadFile(filepath.Join(bin, name))
		if err != nil || string(b) != "#!binary v1" {
			t.Fatalf("%s = %q, %v", name, b, err)
		}
		if st, _ := os.Stat(filepath.Join(bin, name)); st.Mode().Perm()&0o111 == 0 {
			t.Errorf("%s is not executable: %v", name, st.Mode())
		}
	}
	a, _ := os.Stat(filepath.Join(bin, "calico"))
	b, _ := os.Stat(filepath.Join(bin, "calico-ipam"))
	if !os.SameFile(a, b) {
		t.Errorf("calico-ipam is not a hard link to calico")
	}

	conf, err := os.ReadFile(filepath.Join(fx.root, "etc/cni/net.d/10-calico.conflist"))
	must(t, err)
	var list struct {
		CNIVersion string            `json:"cniVersion"`
		Plugins    []json.RawMessage `json:"plugins"`
	}
	must(t, json.Unmarshal(conf, &list))
	if len(list.Plugins) != 1 {
		t.Fatalf("plugins: %s", conf)
	}
	// The plugin itself accepts what we wrote, given the name and version
	// the runtime copies into each plugin of a list.
	var plugin map[string]any
	must(t, json.Unmarshal(list.Plugins[0], &plugin))
	plugin["name"], plugin["cniVersion"] = "k8s-pod-network", list.CNIVersion
	raw, _ := json.Marshal(plugin)
	nc, err := cni.ParseConf(raw)
	if err != nil {
		t.Fatalf("the calico plugin refuses the config: %v\n%s", err, conf)
	}
	if nc.Type != "calico" || nc.IPAM.Type != "calico-ipam" || nc.DatastoreType != "kubernetes" ||
		nc.Nodename != "node-a" || nc.Kubernetes.Kubeconfig != "/etc/cni/net.d/calico-kubeconfig" {
		t.Errorf("conf = %+v", nc)
	}

	kcPath := filepath.Join(fx.root, "etc/cni/net.d/calico-kubeconfig")
	st, err := os.Stat(kcPath)
	must(t, err)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v, want 0600 (it holds a token)", st.Mode())
	}
	kc, err := clientcmd.LoadFromFile(kcPath)
	must(t, err)
	rc, err := clientcmd.NewDefaultClientConfig(*kc, nil).ClientConfig()
	must(t, err)
	if rc.Host != "https://10.77.255.1:6443" || rc.BearerToken != "tok-1" || !bytes.Contains(rc.CAData, []byte("MIIB")) {
		t.Errorf("kubeconfig: host %q token %q ca %q", rc.Host, rc.BearerToken, rc.CAData)
	}
}

func TestInstallCNIEnvAndTemplate(t *testing.T) {
	fx := newInstallCNIFixture(t)
	fx.env["CNI_NET_DIR"] = "/var/cni/conf"
	fx.env["CNI_CONF_NAME"] = "05-calico.conflist"
	fx.env["CNI_MTU"] = "1400"
	fx.env["CNI_NETWORK_CONFIG"] = `{"name":"k8s-pod-network","cniVersion":"1.0.0","plugins":[{"type":"calico","nodename":"__KUBERNETES_NODE_NAME__","mtu":__CNI_MTU__,"ipam":{"type":"calico-ipam"},"kubernetes":{"kubeconfig":"__KUBECONFIG_FILEPATH__"}},{"type":"portmap","capabilities":{"portMappings":true}}]}`
	if logs, err := fx.run(context.Background(), t, "--skip-binaries"); err != nil {
		t.Fatalf("install-cni: %v\n%s", err, logs)
	}
	if _, err := os.Stat(filepath.Join(fx.root, "opt/cni/bin/calico")); !os.IsNotExist(err) {
		t.Errorf("--skip-binaries installed binaries: %v", err)
	}
	conf, err := os.ReadFile(filepath.Join(fx.root, "var/cni/conf/05-calico.conflist"))
	must(t, err)
	for _, want := range []string{`"nodename": "node-a"`, `"mtu": 1400`, `"kubeconfig": "/var/cni/conf/calico-kubeconfig"`, `"portmap"`} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("config lacks %s:\n%s", want, conf)
		}
	}

	fx.env["CNI_NETWORK_CONFIG"] = `{"name": __CNI_MTU__`
	if _, err := fx.run(context.Background(), t); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("a broken template: err = %v", err)
	}
}

func TestInstallCNIValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		drop string
		args []string
		want string
	}{
		{"no node", "KUBERNETES_NODE_NAME", nil, "node name is required"},
		{"no api server", "KUBERNETES_SERVICE_HOST", nil, "no API server"},
		{"relative dir", "", []string{"--cni-net-dir", "etc/cni"}, "must be absolute"},
		{"path as name", "", []string{"--conf-name", "a/b"}, "want a file name"},
		{"bad mtu", "", []string{"--mtu", "70000"}, "--mtu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newInstallCNIFixture(t)
			delete(fx.env, tc.drop)
			_, err := fx.run(context.Background(), t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// An upgrade replaces the binaries by rename: a process running the old
// calico keeps its file, and a reinstall of the same bytes rewrites nothing.
func TestInstallCNIReplacesBinariesByRename(t *testing.T) {
	fx := newInstallCNIFixture(t)
	_, err := fx.run(context.Background(), t)
	must(t, err)
	calico := filepath.Join(fx.root, "opt/cni/bin/calico")
	before, _ := os.Stat(calico)
	_, err = fx.run(context.Background(), t)
	must(t, err)
	again, _ := os.Stat(calico)
	if !os.SameFile(before, again) {
		t.Errorf("identical binary was rewritten")
	}
	must(t, os.WriteFile(fx.exe, []byte("#!binary v2"), 0o755))
	_, err = fx.run(context.Background(), t)
	must(t, err)
	after, _ := os.Stat(calico)
	if os.SameFile(before, after) {
		t.Errorf("new binary written in place, not renamed over")
	}
	if b, _ := os.ReadFile(filepath.Join(fx.root, "opt/cni/bin/calico-ipam")); string(b) != "#!binary v2" {
		t.Errorf("calico-ipam = %q", b)
	}
	if before.Sys().(*syscall.Stat_t).Nlink != 2 {
		t.Errorf("calico link count = %d", before.Sys().(*syscall.Stat_t).Nlink)
	}
}

// --watch rewrites the kubeconfig when the token rotates.
func TestInstallCNIWatchFollowsTokenRotation(t *testing.T) {
	fx := newInstallCNIFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := fx.run(ctx, t, "--watch", "--watch-interval", "20ms")
		done <- err
	}()
	kcPath := filepath.Join(fx.root, "etc/cni/net.d/calico-kubeconfig")
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if b, err := os.ReadFile(kcPath); err == nil && strings.Contains(string(b), want) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("kubeconfig never held %q", want)
	}
	waitFor("tok-1")
	must(t, os.WriteFile(filepath.Join(fx.sa, "token"), []byte("tok-2"), 0o600))
	waitFor("tok-2")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("watch: %v", err)
	}
}

// --cni-service-account puts a requested token in the kubeconfig, and
// --watch renews it before it expires.
func TestInstallCNIRequestsTheCNIServiceAccountToken(t *testing.T) {
	fx := newInstallCNIFixture(t)
	fx.env["CALICO_CNI_SERVICE_ACCOUNT"] = "calico-cni"
	var calls int
	fx.requestToken = func(_ context.Context, ttl time.Duration) (string, time.Time, error) {
		calls++
		// A lifetime short enough that the watch renews it at once.
		return fmt.Sprintf("cni-token-%d", calls), time.Now().Add(30 * time.Millisecond), nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := fx.run(ctx, t, "--watch", "--watch-interval", "20ms", "--skip-binaries")
		done <- err
	}()
	kcPath := filepath.Join(fx.root, "etc/cni/net.d/calico-kubeconfig")
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(kcPath)
		if strings.Contains(string(b), "cni-token-3") {
			break
		}
		if strings.Contains(string(b), "tok-1") {
			t.Fatalf("the pod's own token was installed:\n%s", b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the token was not renewed:\n%s", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
