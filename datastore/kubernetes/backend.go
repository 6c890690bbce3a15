// Package kubernetes is the Kubernetes API datastore backend ("KDD"). Calico
// kinds are stored as custom resources in crd.projectcalico.org/v1 exactly as
// upstream stores them; Node, WorkloadEndpoint and Profile are views of
// native Kubernetes objects (Node, Pod, Namespace and ServiceAccount), and
// Kubernetes NetworkPolicies show up read-only as knp.default.* policies.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

// Defaults for Config.
const (
	DefaultPageSize     = 500
	DefaultQPS          = 100
	DefaultBurst        = 200
	DefaultProbeTimeout = 5 * time.Second
)

// ErrCRDsNotInstalled is returned when the cluster has no Calico CRDs, or
// not the one a kind needs.
var ErrCRDsNotInstalled = errors.New("Calico CRDs are not installed in this cluster: run 'calicoctl datastore crds install'")

// Config says how to reach the Kubernetes API server.
type Config struct {
	// Kubeconfig is a kubeconfig path or a colon-separated list of them.
	Kubeconfig string
	// Context picks a kubeconfig context other than the current one.
	Context string
	// APIEndpoint, CertFile, KeyFile, CAFile and Token override (or, without
	// a kubeconfig, make up) the connection settings.
	APIEndpoint, CertFile, KeyFile, CAFile, Token string
	InsecureSkipTLSVerify                         bool
	// QPS and Burst limit the client's request rate (defaults DefaultQPS,
	// DefaultBurst); a negative QPS turns the limit off.
	QPS   float32
	Burst int
	// PageSize is the limit of one list request (default DefaultPageSize).
	PageSize int64
	// InCluster uses the pod's service account when no kubeconfig or
	// endpoint is given.
	InCluster bool
	// SkipCRDCheck lets New succeed on a cluster without Calico CRDs (for
	// installing them); operations on CRD-backed kinds still fail clearly.
	SkipCRDCheck bool
	// Logger receives warnings about undecodable objects (default slog.Default()).
	Logger *slog.Logger
}

// Backend implements datastore.Interface on the Kubernetes API.
type Backend struct {
	kube     k8s.Interface
	dyn      dynamic.Interface
	disc     discovery.DiscoveryInterface
	rest     *rest.Config
	host     string
	pageSize int64
	log      *slog.Logger

	mu   sync.Mutex
	crds map[string]bool // plurals served in crd.projectcalico.org/v1
}

var (
	_ datastore.Interface    = (*Backend)(nil)
	_ datastore.BatchCreator = (*Backend)(nil)
)

// New builds the clients and checks, within DefaultProbeTimeout, that the API
// server answers and serves the Calico CRDs.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	rc, err := restConfig(cfg)
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = cfg.QPS, cfg.Burst
	if rc.QPS == 0 {
		rc.QPS = DefaultQPS
	}
	if rc.Burst <= 0 {
		rc.Burst = DefaultBurst
	}
	kube, err := k8s.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes dynamic client: %w", err)
	}
	probeCfg := rest.CopyConfig(rc)
	probeCfg.Timeout = DefaultProbeTimeout
	disc, err := discovery.NewDiscoveryClientForConfig(probeCfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes discovery client: %w", err)
	}
	b := newBackend(kube, dyn, disc, cfg)
	b.rest, b.host = rc, rc.Host
	if err := b.probe(ctx, cfg.SkipCRDCheck); err != nil {
		return nil, err
	}
	return b, nil
}

// newBackend wires a backend to existing clients (fakes in unit tests).
func newBackend(kube k8s.Interface, dyn dynamic.Interface, disc discovery.DiscoveryInterface, cfg Config) *Backend {
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Backend{kube: kube, dyn: dyn, disc: disc, pageSize: cfg.PageSize, log: cfg.Logger, host: "kubernetes"}
}

// restConfig turns Config into a client configuration: a kubeconfig (list)
// with overrides, explicit settings, the in-cluster account, or the default
// kubeconfig loading rules, in that order.
func restConfig(cfg Config) (*rest.Config, error) {
	overrides := &clientcmd.ConfigOverrides{CurrentContext: cfg.Context}
	overrides.ClusterInfo.Server = cfg.APIEndpoint
	overrides.ClusterInfo.CertificateAuthority = cfg.CAFile
	overrides.ClusterInfo.InsecureSkipTLSVerify = cfg.InsecureSkipTLSVerify
	overrides.AuthInfo.ClientCertificate = cfg.CertFile
	overrides.AuthInfo.ClientKey = cfg.KeyFile
	overrides.AuthInfo.Token = cfg.Token

	var rc *rest.Config
	var err error
	switch {
	case cfg.Kubeconfig != "":
		rules := &clientcmd.ClientConfigLoadingRules{Precedence: filepath.SplitList(cfg.Kubeconfig)}
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	case cfg.APIEndpoint != "":
		rc = &rest.Config{Host: cfg.APIEndpoint, BearerToken: cfg.Token}
		rc.TLSClientConfig = rest.TLSClientConfig{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, CAFile: cfg.CAFile}
	case cfg.InCluster:
		rc, err = rest.InClusterConfig()
		if err == nil && cfg.Token != "" {
			rc.BearerToken, rc.BearerTokenFile = cfg.Token, ""
		}
	default:
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client configuration: %w", err)
	}
	if cfg.InsecureSkipTLSVerify {
		rc.Insecure = true
		rc.CAFile, rc.CAData = "", nil
	}
	return rc, nil
}

// probe asks discovery for the CRD group: it proves the server answers, that
// the credentials work and which Calico kinds are installed.
func (b *Backend) probe(ctx context.Context, skipCRDCheck bool) error {
	errc := make(chan error, 1)
	go func() { errc <- b.refreshCRDs() }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(DefaultProbeTimeout + time.Second):
		err = fmt.Errorf("no answer within %s", DefaultProbeTimeout)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrCRDsNotInstalled):
		if skipCRDCheck {
			return nil
		}
		return err
	case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
		return b.forbidden("get", "", "/apis/"+CRDAPIVersion, "", err)
	}
	return &datastore.KeyError{Err: datastore.ErrUnavailable,
		Cause: fmt.Errorf("cannot reach the Kubernetes API server at %s: %w", b.host, err)}
}

// refreshCRDs re-reads which Calico CRDs the server serves.
func (b *Backend) refreshCRDs() error {
	list, err := b.disc.ServerResourcesForGroupVersion(CRDAPIVersion)
	if apierrors.IsNotFound(err) || (err == nil && len(list.APIResources) == 0) {
		b.mu.Lock()
		b.crds = map[string]bool{}
		b.mu.Unlock()
		return ErrCRDsNotInstalled
	}
	if err != nil {
		return err
	}
	crds := map[string]bool{}
	for _, r := range list.APIResources {
		if !strings.Contains(r.Name, "/") {
			crds[r.Name] = true
		}
	}
	b.mu.Lock()
	b.crds = crds
	b.mu.Unlock()
	return nil
}

// requireCRD fails with ErrCRDsNotInstalled unless the kind's CRD is served,
// asking discovery again when the cached answer says it is not.
func (b *Backend) requireCRD(plural string) error {
	b.mu.Lock()
	ok := b.crds[plural]
	b.mu.Unlock()
	if ok {
		return nil
	}
	if err := b.refreshCRDs(); err != nil {
		if errors.Is(err, ErrCRDsNotInstalled) {
			return err
		}
		return b.apiError(err, "get", resources.Key{}, call{resource: "/apis/" + CRDAPIVersion})
	}
	b.mu.Lock()
	ok = b.crds[plural]
	b.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w (no %s.%s)", ErrCRDsNotInstalled, plural, CRDGroup)
	}
	return nil
}

// Revision returns the API server's current resourceVersion, read from a
// one-item list (a quorum read): every write in the cluster moves it, pods
// and nodes included, so a reader can skip work while it stands still.
func (b *Backend) Revision(ctx context.Context) (string, error) {
	res, err := b.List(ctx, datastore.ListOptions{Kind: "IPPool", Limit: 1})
	if err != nil {
		return "", err
	}
	return res.Revision, nil
}

// Close releases idle connections.
func (b *Backend) Close() error { return nil }

// RESTConfig returns the client configuration (nil for a backend built on fakes).
func (b *Backend) RESTConfig() *rest.Config {
	if b == nil {
		return nil
	}
	return b.rest
}

// Clientset returns the typed Kubernetes client.
func (b *Backend) Clientset() k8s.Interface { return b.kube }

// ForbiddenError says the credentials may not do one request.
type ForbiddenError struct {
	Verb      string
	Resource  string // plural.group, or a path
	Namespace string // "" for the cluster scope
	User      string
	Cause     error
}

func (e *ForbiddenError) Error() string {
	scope := "at the cluster scope"
	if e.Namespace != "" {
		scope = fmt.Sprintf("in the namespace %q", e.Namespace)
	}
	msg := fmt.Sprintf("forbidden: cannot %s %s %s", e.Verb, e.Resource, scope)
	if e.User != "" {
		msg += fmt.Sprintf(" (user %q)", e.User)
	}
	if apierrors.IsUnauthorized(e.Cause) {
		msg = fmt.Sprintf("unauthorized: the API server rejected the credentials for %s %s", e.Verb, e.Resource)
	}
	return msg
}

func (e *ForbiddenError) Unwrap() error { return e.Cause }

var userInMessage = regexp.MustCompile(`User "([^"]*)"`)

func (b *Backend) forbidden(verb, group, resource, namespace string, err error) error {
	res := resource
	if group != "" {
		res += "." + group
	}
	user := ""
	if m := userInMessage.FindStringSubmatch(err.Error()); m != nil {
		user = m[1]
	}
	return &ForbiddenError{Verb: verb, Resource: res, Namespace: namespace, User: user, Cause: err}
}

// call describes one API request for error messages.
type call struct {
	group, resource, namespace string
}

// apiError maps an API error to the datastore's errors.
func (b *Backend) apiError(err error, verb string, key resources.Key, c call) error {
	if err == nil {
		return nil
	}
	var status apierrors.APIStatus
	isStatus := errors.As(err, &status)
	switch {
	case apierrors.IsNotFound(err):
		return datastore.NotFound(key)
	case apierrors.IsAlreadyExists(err):
		return datastore.Exists(key)
	case apierrors.IsConflict(err):
		return datastore.Conflict(key, "")
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		return b.forbidden(verb, c.group, c.resource, c.namespace, err)
	case apierrors.IsGone(err), apierrors.IsResourceExpired(err):
		return fmt.Errorf("%s %s: %w", verb, key, err)
	case isStatus:
		return fmt.Errorf("%s %s: %w", verb, key, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s %s: %w", verb, key, err)
	}
	return &datastore.KeyError{Err: datastore.ErrUnavailable, Key: key,
		Cause: fmt.Errorf("kubernetes API at %s: %s: %w", b.host, verb, err)}
}

// store is what each kind (or family of kinds) implements.
type store interface {
	get(ctx context.Context, key resources.Key) (resources.Resource, error)
	list(ctx context.Context, opts datastore.ListOptions) (*datastore.ListResult, error)
	create(ctx context.Context, r resources.Resource) (resources.Resource, error)
	update(ctx context.Context, r resources.Resource) (resources.Resource, error)
	delete(ctx context.Context, key resources.Key, revision string) (resources.Resource, error)
	watch(ctx context.Context, opts datastore.WatchOptions) (<-chan datastore.Event, error)
}

func (b *Backend) storeFor(kind string) (store, *resources.Kind, error) {
	k, isList := resources.LookupKind(kind)
	if k == nil || isList {
		return nil, nil, fmt.Errorf("kubernetes: unknown kind %q", kind)
	}
	switch k.Kind {
	case "Node":
		return &nodeStore{b: b, k: k}, k, nil
	case "WorkloadEndpoint":
		return &wepStore{b: b, k: k}, k, nil
	case "Profile":
		return &profileStore{b: b, k: k}, k, nil
	case "NetworkPolicy":
		return &policyStore{crStore: crStore{b: b, k: k}}, k, nil
	}
	return &crStore{b: b, k: k}, k, nil
}

func (b *Backend) storeOf(r resources.Resource) (store, error) {
	k := resources.KindOf(r)
	if k == nil {
		return nil, fmt.Errorf("kubernetes: unregistered resource type %T", r)
	}
	s, _, err := b.storeFor(k.Kind)
	return s, err
}

// Get reads one object.
func (b *Backend) Get(ctx context.Context, key resources.Key) (resources.Resource, error) {
	s, _, err := b.storeFor(key.Kind)
	if err != nil {
		return nil, err
	}
	return s.get(ctx, key)
}

// List reads the objects of one kind.
func (b *Backend) List(ctx context.Context, opts datastore.ListOptions) (*datastore.ListResult, error) {
	s, _, err := b.storeFor(opts.Kind)
	if err != nil {
		return nil, err
	}
	return s.list(ctx, opts)
}

// Create stores a new object.
func (b *Backend) Create(ctx context.Context, r resources.Resource) (resources.Resource, error) {
	s, err := b.storeOf(r)
	if err != nil {
		return nil, err
	}
	return s.create(ctx, r)
}

// Update replaces an object, guarded by its resourceVersion when set.
func (b *Backend) Update(ctx context.Context, r resources.Resource) (resources.Resource, error) {
	s, err := b.storeOf(r)
	if err != nil {
		return nil, err
	}
	return s.update(ctx, r)
}

// Delete removes an object, guarded by revision when set.
func (b *Backend) Delete(ctx context.Context, key resources.Key, revision string) (resources.Resource, error) {
	s, _, err := b.storeFor(key.Kind)
	if err != nil {
		return nil, err
	}
	return s.delete(ctx, key, revision)
}

// Watch streams the changes of one kind.
func (b *Backend) Watch(ctx context.Context, opts datastore.WatchOptions) (<-chan datastore.Event, error) {
	s, _, err := b.storeFor(opts.Kind)
	if err != nil {
		return nil, err
	}
	return s.watch(ctx, opts)
}

// CreateMany creates objects concurrently (a few requests in flight), in
// input order of results. A name repeated in the batch is created once, by
// its first occurrence; later ones get ErrExists.
func (b *Backend) CreateMany(ctx context.Context, rs []resources.Resource) ([]resources.Resource, []error) {
	out := make([]resources.Resource, len(rs))
	errs := make([]error, len(rs))
	first := map[resources.Key]int{}
	var later []int
	var todo []int
	for i, r := range rs {
		key := resources.KeyOf(r)
		if _, dup := first[key]; dup {
			later = append(later, i)
			continue
		}
		first[key] = i
		todo = append(todo, i)
	}
	const workers = 8
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, len(todo)) {
		wg.Go(func() {
			for i := range next {
				out[i], errs[i] = b.Create(ctx, rs[i])
			}
		})
	}
	for _, i := range todo {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, i := range later {
		out[i], errs[i] = b.Create(ctx, rs[i])
	}
	return out, errs
}

// gvr is the resource of a Calico kind's CRD.
func gvr(k *resources.Kind) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: CRDGroup, Version: CRDVersion, Resource: k.Plural}
}

// hasPrefix filters names for prefix lists (the API has no name prefix query).
func hasPrefix(name, prefix string) bool { return prefix == "" || strings.HasPrefix(name, prefix) }
