package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Defaults of `calicoctl node install-cni`, as upstream's install-cni.
const (
	DefaultCNINetDir         = "/etc/cni/net.d"
	DefaultCNIBinDir         = "/opt/cni/bin"
	DefaultCNIConfName       = "10-calico.conflist"
	DefaultCNIKubeconfigName = "calico-kubeconfig"
	DefaultServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"
	DefaultCNIHostRoot       = "/host"
	DefaultCNILogFile        = "/var/log/calico/cni/cni.log"
)

// Placeholders a CNI_NETWORK_CONFIG template may use (upstream's names).
const (
	placeholderNodeName   = "__KUBERNETES_NODE_NAME__"
	placeholderKubeconfig = "__KUBECONFIG_FILEPATH__"
	placeholderMTU        = "__CNI_MTU__"
)

// InstallCNIOptions drive `calicoctl node install-cni`: it installs this
// binary as the CNI plugins calico and calico-ipam, a network configuration
// and a kubeconfig for the plugin built from the pod's service account.
type InstallCNIOptions struct {
	Streams IOStreams
	// Env reads the environment; Executable is os.Executable (tests inject both).
	Env        func(string) (string, bool)
	Executable func() (string, error)

	// NetDir and BinDir are the host's CNI directories as the plugin sees
	// them (the paths written into the configuration); HostRoot is where the
	// host's filesystem is mounted in this container ("" or "/" when this
	// runs on the host itself).
	NetDir, BinDir, HostRoot string
	ConfName, KubeconfigName string
	NodeName                 string
	MTU                      int
	LogLevel, LogFile        string
	// ServiceAccountDir holds token, ca.crt and namespace.
	ServiceAccountDir string
	// APIServer is the URL written into the kubeconfig (default from
	// KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT).
	APIServer string
	// CNIServiceAccount, when set, is the service account (of this pod's
	// namespace) the plugin acts as: its token is requested with the
	// TokenRequest API (lifetime TokenTTL) instead of copying this pod's own
	// token, so the plugin gets only that account's permissions.
	CNIServiceAccount string
	TokenTTL          time.Duration
	// RequestToken asks for a token of CNIServiceAccount (tests replace it).
	RequestToken func(ctx context.Context, ttl time.Duration) (token string, expires time.Time, err error)
	// SkipBinaries leaves the plugin binaries alone (e.g. a --watch sidecar).
	SkipBinaries bool
	// Watch keeps running and rewrites the kubeconfig (and the config) when
	// the token or CA changes, checking every WatchInterval.
	Watch         bool
	WatchInterval time.Duration

	template string
	renewAt  time.Time
}

func newNodeInstallCNICommand(f *Factory) *cobra.Command {
	return installCNICommand(&InstallCNIOptions{Streams: f.Streams, Env: f.Env, Executable: os.Executable})
}

func installCNICommand(o *InstallCNIOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "install-cni",
		Short: "Install this binary as the calico CNI plugins, with a network config and a kubeconfig",
		Long: "Run as the init container of the calico-node DaemonSet: copies this binary into the host's CNI\n" +
			"bin directory as calico and calico-ipam, writes a kubeconfig for the plugin from the pod's\n" +
			"service account (token and CA) and the network configuration list into the host's CNI net\n" +
			"directory. The host's filesystem is expected under --host-root. Environment (upstream's names):\n" +
			"CNI_NET_DIR, CNI_BIN_DIR (alias CNI_BIN_DIR_HOST), CNI_CONF_NAME, KUBERNETES_NODE_NAME or NODENAME,\n" +
			"CNI_MTU, CNI_NETWORK_CONFIG (a template with __KUBERNETES_NODE_NAME__, __KUBECONFIG_FILEPATH__,\n" +
			"__CNI_MTU__), KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT. Flags override them.",
		Example: "  KUBERNETES_NODE_NAME=node1 calicoctl node install-cni\n" +
			"  calicoctl node install-cni --host-root / --node-name node1 --watch",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(cmd); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.NetDir, "cni-net-dir", DefaultCNINetDir, "the host's CNI configuration directory (CNI_NET_DIR)")
	fl.StringVar(&o.BinDir, "cni-bin-dir", DefaultCNIBinDir, "the host's CNI plugin directory (CNI_BIN_DIR)")
	fl.StringVar(&o.HostRoot, "host-root", DefaultCNIHostRoot, "where the host's filesystem is mounted here")
	fl.StringVar(&o.ConfName, "conf-name", DefaultCNIConfName, "file name of the network configuration list (CNI_CONF_NAME)")
	fl.StringVar(&o.KubeconfigName, "kubeconfig-name", DefaultCNIKubeconfigName, "file name of the plugin's kubeconfig in the net dir")
	fl.StringVar(&o.NodeName, "node-name", "", "this node's name (KUBERNETES_NODE_NAME, NODENAME)")
	fl.IntVar(&o.MTU, "mtu", 0, "pod interface MTU; 0 lets the plugin use the agent's (CNI_MTU)")
	fl.StringVar(&o.LogLevel, "cni-log-level", "info", "the plugin's log level")
	fl.StringVar(&o.LogFile, "cni-log-file", DefaultCNILogFile, "the plugin's log file on the host")
	fl.StringVar(&o.ServiceAccountDir, "service-account-dir", DefaultServiceAccountDir, "the pod's service account token, ca.crt and namespace")
	fl.StringVar(&o.APIServer, "api-server", "", "API server URL for the plugin (default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)")
	fl.StringVar(&o.CNIServiceAccount, "cni-service-account", "", "request the plugin's token for this service account of the pod's namespace (CALICO_CNI_SERVICE_ACCOUNT); default: copy the pod's own token")
	fl.DurationVar(&o.TokenTTL, "token-ttl", 24*time.Hour, "lifetime of a requested token (--watch renews it at two thirds)")
	fl.BoolVar(&o.SkipBinaries, "skip-binaries", false, "do not install the plugin binaries")
	fl.BoolVar(&o.Watch, "watch", false, "keep running; rewrite the kubeconfig when the token or CA changes")
	fl.DurationVar(&o.WatchInterval, "watch-interval", 10*time.Second, "how often --watch checks the token")
	return cmd
}

// Complete fills unset flags from the environment.
func (o *InstallCNIOptions) Complete(cmd *cobra.Command) error {
	if o.Env == nil {
		o.Env = os.LookupEnv
	}
	env := func(keys ...string) string {
		for _, k := range keys {
			if v, ok := o.Env(k); ok && v != "" {
				return v
			}
		}
		return ""
	}
	from := func(flag string, dst *string, keys ...string) {
		if cmd != nil && cmd.Flags().Changed(flag) {
			return
		}
		if v := env(keys...); v != "" {
			*dst = v
		}
	}
	from("cni-net-dir", &o.NetDir, "CNI_NET_DIR")
	from("cni-bin-dir", &o.BinDir, "CNI_BIN_DIR", "CNI_BIN_DIR_HOST")
	from("conf-name", &o.ConfName, "CNI_CONF_NAME")
	from("node-name", &o.NodeName, "KUBERNETES_NODE_NAME", "NODENAME")
	if cmd == nil || !cmd.Flags().Changed("mtu") {
		if v := env("CNI_MTU"); v != "" {
			mtu, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("CNI_MTU=%q: not a number", v)
			}
			o.MTU = mtu
		}
	}
	if o.APIServer == "" {
		host, port := env("KUBERNETES_SERVICE_HOST"), env("KUBERNETES_SERVICE_PORT")
		if host != "" {
			if port == "" {
				port = "443"
			}
			o.APIServer = "https://" + net.JoinHostPort(host, port)
		}
	}
	from("cni-service-account", &o.CNIServiceAccount, "CALICO_CNI_SERVICE_ACCOUNT")
	o.template = env("CNI_NETWORK_CONFIG")
	if o.CNIServiceAccount != "" && o.RequestToken == nil {
		o.RequestToken = o.tokenRequester()
	}
	return nil
}

// Validate checks the options.
func (o *InstallCNIOptions) Validate() error {
	switch {
	case o.NodeName == "":
		return errors.New("the node name is required: set KUBERNETES_NODE_NAME (from spec.nodeName) or --node-name")
	case o.APIServer == "":
		return errors.New("no API server: KUBERNETES_SERVICE_HOST is unset and --api-server not given")
	case !filepath.IsAbs(o.NetDir) || !filepath.IsAbs(o.BinDir):
		return fmt.Errorf("--cni-net-dir %q and --cni-bin-dir %q must be absolute", o.NetDir, o.BinDir)
	case o.ConfName == "" || strings.Contains(o.ConfName, "/"):
		return fmt.Errorf("--conf-name %q: want a file name", o.ConfName)
	case o.KubeconfigName == "" || strings.Contains(o.KubeconfigName, "/"):
		return fmt.Errorf("--kubeconfig-name %q: want a file name", o.KubeconfigName)
	case o.MTU < 0 || o.MTU > 65535:
		return fmt.Errorf("--mtu %d: must be between 0 and 65535", o.MTU)
	case o.CNIServiceAccount != "" && o.TokenTTL < 10*time.Minute:
		return fmt.Errorf("--token-ttl %s: the API server's minimum is 10m", o.TokenTTL)
	case o.Watch && o.WatchInterval <= 0:
		return fmt.Errorf("--watch-interval must be positive, got %s", o.WatchInterval)
	}
	return nil
}

// hostPath is where a host path is reached from here.
func (o *InstallCNIOptions) hostPath(p string) string {
	if o.HostRoot == "" || o.HostRoot == "/" {
		return p
	}
	return filepath.Join(o.HostRoot, p)
}

// Run installs once, then (with --watch) keeps the kubeconfig current.
func (o *InstallCNIOptions) Run(ctx context.Context) error {
	log := slog.New(slog.NewTextHandler(o.Streams.ErrOut, nil))
	if !o.SkipBinaries {
		if err := o.installBinaries(); err != nil {
			return err
		}
		log.Info("installed the CNI plugins", "dir", o.BinDir, "plugins", "calico, calico-ipam")
	}
	last, err := o.installConfig(ctx)
	if err != nil {
		return err
	}
	log.Info("installed the CNI configuration", "conf", filepath.Join(o.NetDir, o.ConfName),
		"kubeconfig", filepath.Join(o.NetDir, o.KubeconfigName), "node", o.NodeName, "server", o.APIServer)
	if !o.Watch {
		return nil
	}
	t := time.NewTicker(o.WatchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		sum, err := o.credentialsSum()
		if err != nil {
			log.Warn("reading the service account", "err", err)
			continue
		}
		_, statErr := os.Stat(o.hostPath(filepath.Join(o.NetDir, o.ConfName)))
		if sum == last && statErr == nil && (o.CNIServiceAccount == "" || time.Now().Before(o.renewAt)) {
			continue
		}
		if last, err = o.installConfig(ctx); err != nil {
			log.Warn("rewriting the CNI configuration", "err", err)
			continue
		}
		log.Info("rewrote the CNI kubeconfig and configuration (token or CA changed)")
	}
}

// installBinaries copies this executable into the bin dir as calico and
// hardlinks calico-ipam to it (a copy when links are refused). Each name is
// replaced by rename, so a plugin running meanwhile keeps its old file.
func (o *InstallCNIOptions) installBinaries() error {
	self, err := o.Executable()
	if err != nil {
		return fmt.Errorf("finding this executable: %w", err)
	}
	dir := o.hostPath(o.BinDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	calico := filepath.Join(dir, "calico")
	if same, _ := sameContent(self, calico); !same {
		if err := copyFileAtomic(self, calico); err != nil {
			return err
		}
	}
	ipam := filepath.Join(dir, "calico-ipam")
	tmp := ipam + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Link(calico, tmp); err != nil {
		return copyFileAtomic(calico, ipam)
	}
	if err := os.Rename(tmp, ipam); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("installing %s: %w", ipam, err)
	}
	return nil
}

// sameContent reports whether two files have equal bytes.
func sameContent(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil || sa.Size() != sb.Size() {
		return false, err
	}
	ha, err := fileSum(a)
	if err != nil {
		return false, err
	}
	hb, err := fileSum(b)
	return err == nil && ha == hb, err
}

func fileSum(p string) ([32]byte, error) {
	var sum [32]byte
	f, err := os.Open(p)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// copyFileAtomic writes src to a temporary file beside dst and renames it.
func copyFileAtomic(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return fmt.Errorf("installing %s: %w", dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return fmt.Errorf("installing %s: %w", dst, err)
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("installing %s: %w", dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("installing %s: %w", dst, err)
	}
	return nil
}

// writeFileAtomic writes data to a temporary file beside path and renames it.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// credentialsSum fingerprints the token and CA, to notice a rotation.
func (o *InstallCNIOptions) credentialsSum() ([32]byte, error) {
	token, err := os.ReadFile(filepath.Join(o.ServiceAccountDir, "token"))
	if err != nil {
		return [32]byte{}, err
	}
	ca, err := os.ReadFile(filepath.Join(o.ServiceAccountDir, "ca.crt"))
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(append(append(token, 0), ca...)), nil
}

// installConfig writes the kubeconfig, then the network configuration (so
// the runtime never sees a config whose kubeconfig is missing). It returns
// the fingerprint of the credentials it wrote.
func (o *InstallCNIOptions) installConfig(ctx context.Context) ([32]byte, error) {
	sum, err := o.credentialsSum()
	if err != nil {
		return sum, fmt.Errorf("service account: %w", err)
	}
	own, _ := os.ReadFile(filepath.Join(o.ServiceAccountDir, "token"))
	ca, _ := os.ReadFile(filepath.Join(o.ServiceAccountDir, "ca.crt"))
	token := strings.TrimSpace(string(own))
	if o.CNIServiceAccount != "" {
		tok, exp, err := o.RequestToken(ctx, o.TokenTTL)
		if err != nil {
			return sum, fmt.Errorf("requesting a token for service account %s: %w", o.CNIServiceAccount, err)
		}
		token = tok
		o.renewAt = exp.Add(-time.Until(exp) / 3)
	}
	kc, err := PluginKubeconfig(o.APIServer, ca, token)
	if err != nil {
		return sum, err
	}
	dir := o.hostPath(o.NetDir)
	if err := writeFileAtomic(filepath.Join(dir, o.KubeconfigName), kc, 0o600); err != nil {
		return sum, fmt.Errorf("writing the kubeconfig: %w", err)
	}
	conf, err := o.NetworkConfig()
	if err != nil {
		return sum, err
	}
	if err := writeFileAtomic(filepath.Join(dir, o.ConfName), conf, 0o644); err != nil {
		return sum, fmt.Errorf("writing the network configuration: %w", err)
	}
	return sum, nil
}

// tokenRequester asks the API server, as this pod, for a token of
// CNIServiceAccount in the pod's namespace.
func (o *InstallCNIOptions) tokenRequester() func(ctx context.Context, ttl time.Duration) (string, time.Time, error) {
	return func(ctx context.Context, ttl time.Duration) (string, time.Time, error) {
		ns, err := os.ReadFile(filepath.Join(o.ServiceAccountDir, "namespace"))
		if err != nil {
			return "", time.Time{}, err
		}
		cfg := &rest.Config{
			Host:            o.APIServer,
			BearerTokenFile: filepath.Join(o.ServiceAccountDir, "token"),
			TLSClientConfig: rest.TLSClientConfig{CAFile: filepath.Join(o.ServiceAccountDir, "ca.crt")},
			Timeout:         30 * time.Second,
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return "", time.Time{}, err
		}
		secs := int64(ttl / time.Second)
		tr, err := cs.CoreV1().ServiceAccounts(strings.TrimSpace(string(ns))).CreateToken(ctx, o.CNIServiceAccount,
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs}}, metav1.CreateOptions{})
		if err != nil {
			return "", time.Time{}, err
		}
		return tr.Status.Token, tr.Status.ExpirationTimestamp.Time, nil
	}
}

// PluginKubeconfig is a kubeconfig that authenticates with token and trusts ca.
func PluginKubeconfig(server string, ca []byte, token string) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos["calico"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["calico"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "calico"}
	cfg.CurrentContext = "calico"
	return clientcmd.Write(*cfg)
}

// NetworkConfig is the configuration list: CNI_NETWORK_CONFIG with its
// placeholders filled in, or the default (the calico plugin with calico-ipam
// on the Kubernetes datastore). Either way it must be valid JSON.
func (o *InstallCNIOptions) NetworkConfig() ([]byte, error) {
	kubeconfig := filepath.Join(o.NetDir, o.KubeconfigName)
	if o.template != "" {
		s := strings.NewReplacer(placeholderNodeName, o.NodeName, placeholderKubeconfig, kubeconfig,
			placeholderMTU, strconv.Itoa(o.MTU)).Replace(o.template)
		if !json.Valid([]byte(s)) {
			return nil, errors.New("CNI_NETWORK_CONFIG is not valid JSON once its placeholders are filled in")
		}
		var b bytes.Buffer
		if err := json.Indent(&b, []byte(s), "", "  "); err != nil {
			return nil, err
		}
		return append(b.Bytes(), '\n'), nil
	}
	plugin := map[string]any{
		"type":           "calico",
		"log_level":      o.LogLevel,
		"log_file_path":  o.LogFile,
		"datastore_type": "kubernetes",
		"nodename":       o.NodeName,
		"mtu":            o.MTU,
		"ipam":           map[string]any{"type": "calico-ipam"},
		"policy":         map[string]any{"type": "k8s"},
		"kubernetes":     map[string]any{"kubeconfig": kubeconfig},
	}
	list := map[string]any{
		"name":       "k8s-pod-network",
		"cniVersion": "0.3.1",
		"plugins":    []any{plugin},
	}
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
