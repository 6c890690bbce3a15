// Package kubetest runs a real, kubelet-less kube-apiserver (with an
// in-process etcd) for the Kubernetes datastore's conformance tests and the
// CLI end-to-end tests. It is imported only by tests.
//
// One API server per test binary: call Start in the one test that needs it,
// or Shared from many tests with TestMain calling Main. There is no
// controller-manager, scheduler or kubelet, so nothing runs pods, issues
// service-account tokens, or finishes namespace deletion; the harness and
// the Create* helpers write what those components would: pod status, node
// status, and the "default" service account of namespaces default,
// kube-system and every namespace CreateNamespace makes.
package kubetest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/opencalico/calicoctl/internal/etcdserver"
)

// DefaultReadyTimeout bounds the wait for /readyz and the bootstrap objects.
const DefaultReadyTimeout = 90 * time.Second

// ServiceClusterIPRange is the service CIDR the API server allocates from.
const ServiceClusterIPRange = "10.96.0.0/12"

// Config describes an API server to start with New.
type Config struct {
	// Binary is the kube-apiserver executable; empty means FindBinary.
	Binary string
	// Build lets FindBinary run build.sh when no binary is cached.
	Build bool
	// Dir holds keys, certificates, the token file, etcd's data and the
	// logs. Empty means a fresh temporary directory that Close removes.
	Dir string
	// ReadyTimeout defaults to DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Logf receives progress messages; default slog.Info.
	Logf func(format string, args ...any)
	// Address is the IP the API server binds, advertises and has in its
	// serving certificate; default 127.0.0.1. Kubelets in other network
	// namespaces need an address they can route to.
	Address string
	// Cluster configures the server for real nodes: Node and RBAC
	// authorization, the NodeRestriction and ServiceAccount admission
	// plugins, and kubelets reached at their InternalIP. Without it the
	// server is kubelet-less (RBAC only, no ServiceAccount admission).
	Cluster bool
	// ExtraArgs are appended to kube-apiserver's command line (a repeated
	// flag overrides the harness's value).
	ExtraArgs []string
}

// APIServer is a running kube-apiserver backed by its own etcd.
type APIServer struct {
	// URL is the https base URL, e.g. https://127.0.0.1:41235.
	URL string
	// Kubeconfig is the path of an admin kubeconfig (token auth).
	Kubeconfig string
	// Token is the admin's bearer token (user AdminUser, group system:masters).
	Token string
	// CAData (PEM) and CAFile verify the serving certificate.
	CAData []byte
	CAFile string
	// Dir holds the server's files; LogFile is kube-apiserver's output.
	Dir     string
	LogFile string
	// EtcdEndpoints are the in-process etcd's client URLs.
	EtcdEndpoints []string
	// SAKeyFile is the service-account signing key (PEM), for a
	// controller-manager.
	SAKeyFile string
	// StartupTime is how long New took, binary lookup excluded.
	StartupTime time.Duration

	pki       *pki
	webhook   *tokenWebhook
	etcd      *etcdserver.Server
	etcdLog   *os.File
	proc      *Process
	removeDir bool
	adminMu   sync.Mutex
	adminCS   kubernetes.Interface
	closeOnce sync.Once
	closeErr  error
}

// New starts etcd, the token webhook and kube-apiserver, and returns once
// the API server is ready and its bootstrap objects (namespace default, the
// RBAC bootstrap roles) exist. The caller must Close it.
func New(ctx context.Context, cfg Config) (*APIServer, error) {
	logf := cfg.Logf
	if logf == nil {
		logf = func(format string, args ...any) { slog.Info(fmt.Sprintf(format, args...)) }
	}
	bin := cfg.Binary
	if bin == "" {
		var err error
		if bin, err = FindBinary(cfg.Build, logf); err != nil {
			return nil, err
		}
	}
	timeout := cfg.ReadyTimeout
	if timeout <= 0 {
		timeout = DefaultReadyTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	begin := time.Now()
	s := &APIServer{Dir: cfg.Dir}
	if s.Dir == "" {
		dir, err := os.MkdirTemp("", "kubetest-")
		if err != nil {
			return nil, fmt.Errorf("kubetest: temp dir: %w", err)
		}
		s.Dir, s.removeDir = dir, true
	}
	addr := net.ParseIP(cmpOr(cfg.Address, "127.0.0.1"))
	if addr == nil {
		return nil, fmt.Errorf("kubetest: Address %q is not an IP", cfg.Address)
	}
	if err := s.start(ctx, bin, addr, cfg.Cluster, cfg.ExtraArgs); err != nil {
		err = fmt.Errorf("kubetest: %w", err)
		if s.proc != nil {
			err = fmt.Errorf("%w\n--- %s (last 40 lines) ---\n%s", err, s.LogFile, s.LogTail(40))
		}
		return nil, errors.Join(err, s.Close())
	}
	s.StartupTime = time.Since(begin)
	return s, nil
}

func (s *APIServer) start(ctx context.Context, bin string, addr net.IP, cluster bool, extra []string) error {
	var err error
	if s.pki, err = newPKI(s.Dir, addr); err != nil {
		return err
	}
	s.CAData, s.CAFile, s.SAKeyFile = s.pki.caPEM, s.pki.caFile, s.pki.saKeyFile

	if s.etcdLog, err = os.Create(filepath.Join(s.Dir, "etcd.log")); err != nil {
		return fmt.Errorf("etcd log: %w", err)
	}
	s.etcd, err = etcdserver.Start(ctx, etcdserver.Config{
		DataDir:       filepath.Join(s.Dir, "etcd"),
		ListenClient:  "127.0.0.1:0",
		ListenPeer:    "127.0.0.1:0",
		Name:          "kubetest",
		Logger:        slog.New(slog.NewTextHandler(s.etcdLog, &slog.HandlerOptions{Level: slog.LevelWarn})),
		UnsafeNoFsync: true,
	})
	if err != nil {
		return err
	}
	s.EtcdEndpoints = s.etcd.Endpoints()

	s.webhook = newTokenWebhook()
	s.webhook.start(s.pki.serving)
	webhookConfig := filepath.Join(s.Dir, "authn-webhook.kubeconfig")
	if err := writeKubeconfig(webhookConfig, kubeconfig(s.webhook.srv.URL, s.pki.caPEM, "kube-apiserver", "")); err != nil {
		return err
	}

	s.Token = newToken()
	tokens, err := tokenFileContent(map[string]user{s.Token: {Name: AdminUser, Groups: []string{"system:masters"}}})
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	tokenFile := filepath.Join(s.Dir, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(tokens), 0o600); err != nil {
		return fmt.Errorf("token file: %w", err)
	}

	s.LogFile = filepath.Join(s.Dir, "kube-apiserver.log")
	flags := serverFlags{
		etcd:          s.EtcdEndpoints,
		pki:           s.pki,
		certDir:       filepath.Join(s.Dir, "certs"),
		tokenFile:     tokenFile,
		webhookConfig: webhookConfig,
		address:       addr.String(),
		cluster:       cluster,
		extra:         extra,
	}
	// A free port can be taken between probing and binding; try again then.
	for attempt := 1; ; attempt++ {
		if flags.port, err = freePort(addr.String()); err != nil {
			return err
		}
		s.URL = "https://" + net.JoinHostPort(addr.String(), strconv.Itoa(flags.port))
		if s.proc, err = StartProcess(bin, apiserverArgs(flags), s.LogFile); err != nil {
			return err
		}
		err = s.waitReady(ctx)
		if err == nil {
			break
		}
		if attempt < 3 && s.proc.HasExited() && strings.Contains(s.LogTail(20), "address already in use") {
			s.proc.Kill()
			continue
		}
		return err
	}

	s.Kubeconfig = filepath.Join(s.Dir, "admin.kubeconfig")
	if err := writeKubeconfig(s.Kubeconfig, kubeconfig(s.URL, s.CAData, AdminUser, s.Token)); err != nil {
		return err
	}
	if err := s.waitBootstrap(ctx); err != nil {
		return err
	}
	return s.createDefaultServiceAccounts(ctx, metav1.NamespaceDefault, metav1.NamespaceSystem)
}

// createDefaultServiceAccounts does the controller-manager's job of giving
// each namespace a "default" service account.
func (s *APIServer) createDefaultServiceAccounts(ctx context.Context, namespaces ...string) error {
	cs, err := kubernetes.NewForConfig(s.RESTConfig())
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	for _, ns := range namespaces {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}
		_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("service account %s/default: %w", ns, err)
		}
	}
	return nil
}

// serverFlags are the inputs of apiserverArgs.
type serverFlags struct {
	port          int
	etcd          []string
	pki           *pki
	certDir       string
	tokenFile     string
	webhookConfig string
	address       string // default 127.0.0.1
	cluster       bool
	extra         []string
}

// apiserverArgs is kube-apiserver's command line.
func apiserverArgs(f serverFlags) []string {
	addr := cmpOr(f.address, "127.0.0.1")
	args := []string{
		"--bind-address=" + addr,
		"--advertise-address=" + addr,
		"--secure-port=" + strconv.Itoa(f.port),
		"--etcd-servers=" + strings.Join(f.etcd, ","),
		"--cert-dir=" + f.certDir,
		"--tls-cert-file=" + f.pki.certFile,
		"--tls-private-key-file=" + f.pki.keyFile,
		"--token-auth-file=" + f.tokenFile,
		"--authentication-token-webhook-config-file=" + f.webhookConfig,
		"--authentication-token-webhook-version=v1",
		"--authorization-mode=" + map[bool]string{false: "RBAC", true: "Node,RBAC"}[f.cluster],
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + f.pki.saPubFile,
		"--service-account-signing-key-file=" + f.pki.saKeyFile,
		"--service-cluster-ip-range=" + ServiceClusterIPRange,
		// The kubernetes Service's endpoints may not be a loopback address.
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--allow-privileged=true",
	}
	if f.cluster {
		args = append(args, "--enable-admission-plugins=NodeRestriction",
			"--kubelet-preferred-address-types=InternalIP")
	} else {
		// No controller-manager runs, so nothing would create the default
		// service accounts or their tokens that this plugin insists on.
		args = append(args, "--disable-admission-plugins=ServiceAccount")
	}
	return append(args, f.extra...)
}

func freePort(addr string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// poll calls check until it reports done, the process exits or ctx ends.
// check returns a description of the last unmet condition for the error.
func (s *APIServer) poll(ctx context.Context, what string, check func(context.Context) (bool, string)) error {
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		done, detail := check(ctx)
		if done {
			return nil
		}
		select {
		case <-s.proc.Exited():
			return fmt.Errorf("kube-apiserver exited while waiting for %s: %v", what, s.proc.Err())
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %s)", what, ctx.Err(), detail)
		case <-ticker.C:
		}
	}
}

// waitReady polls /readyz with the admin token.
func (s *APIServer) waitReady(ctx context.Context) error {
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.pki.certPool(), MinVersion: tls.VersionTLS12}},
	}
	defer client.CloseIdleConnections()
	return s.poll(ctx, "/readyz", func(ctx context.Context) (bool, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/readyz", nil)
		if err != nil {
			return false, err.Error()
		}
		req.Header.Set("Authorization", "Bearer "+s.Token)
		resp, err := client.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode == http.StatusOK {
			return true, ""
		}
		return false, fmt.Sprintf("%s: %s", resp.Status, body)
	})
}

// waitBootstrap waits for what the API server creates after it is ready:
// the system namespaces and the RBAC bootstrap policy.
func (s *APIServer) waitBootstrap(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(s.RESTConfig())
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	checks := []struct {
		what string
		get  func(context.Context) error
	}{
		{"namespace default", func(ctx context.Context) error {
			_, err := cs.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{})
			return err
		}},
		{"namespace kube-system", func(ctx context.Context) error {
			_, err := cs.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
			return err
		}},
		{"clusterrole cluster-admin", func(ctx context.Context) error {
			_, err := cs.RbacV1().ClusterRoles().Get(ctx, "cluster-admin", metav1.GetOptions{})
			return err
		}},
		{"clusterrole view", func(ctx context.Context) error {
			_, err := cs.RbacV1().ClusterRoles().Get(ctx, "view", metav1.GetOptions{})
			return err
		}},
		{"clusterrolebinding cluster-admin", func(ctx context.Context) error {
			_, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, "cluster-admin", metav1.GetOptions{})
			return err
		}},
	}
	for _, c := range checks {
		err := s.poll(ctx, c.what, func(ctx context.Context) (bool, string) {
			err := c.get(ctx)
			if err == nil {
				return true, ""
			}
			if !apierrors.IsNotFound(err) {
				return false, err.Error()
			}
			return false, "not found"
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Pid is the kube-apiserver process's id (0 before it started), for
// benchmarks that read its CPU time from /proc.
func (s *APIServer) Pid() int {
	if s.proc == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// LogTail returns the last n lines of kube-apiserver's output.
func (s *APIServer) LogTail(n int) string {
	data, err := os.ReadFile(s.LogFile)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return tail(string(data), n)
}

// Close kills kube-apiserver, stops etcd and the token webhook, and removes
// the temporary directory New created. Safe to call more than once.
func (s *APIServer) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.proc != nil {
			s.proc.Kill()
		}
		if s.webhook != nil {
			s.webhook.close()
		}
		if s.etcd != nil {
			if err := s.etcd.Close(); err != nil {
				errs = append(errs, fmt.Errorf("stop etcd: %w", err))
			}
		}
		if s.etcdLog != nil {
			s.etcdLog.Close()
		}
		if s.removeDir {
			if err := os.RemoveAll(s.Dir); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", s.Dir, err))
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// cmpOr returns s, or def when s is empty.
func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
