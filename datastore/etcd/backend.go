// Package etcd is the etcd v3 datastore backend. It stores projectcalico.org/v3
// resources under upstream Calico's keys and JSON encoding, so a cluster can
// be managed by this calicoctl and upstream's components side by side.
package etcd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

// Defaults for Config.
const (
	DefaultDialTimeout = 5 * time.Second
	// DefaultPageSize is how many keys one internal range read returns.
	// etcd counts every remaining key of the range on each page, so a list
	// of n keys costs O(n²/page): 5,000 keeps a 50,000-key list at ~0.25 s
	// (500 took ~0.9 s) while a page of WorkloadEndpoints stays a few MB.
	DefaultPageSize = 5000
	// DefaultRequestTimeout bounds one read or write (a txn of up to
	// batchMaxItems puts included). A healthy etcd answers in milliseconds;
	// without a deadline a request to a dead server waits forever.
	DefaultRequestTimeout = 5 * time.Second
)

// Config says how to reach etcd.
type Config struct {
	// Endpoints are client URLs, e.g. "https://10.0.0.1:2379".
	Endpoints []string
	// Username and Password enable etcd's password authentication.
	Username, Password string
	// KeyFile and CertFile are a client certificate; CACertFile verifies the server.
	KeyFile, CertFile, CACertFile string
	// Key, Cert and CACert are the same as inline PEM (calicoctl.cfg's
	// etcdKey, etcdCert, etcdCACert); each replaces its file.
	Key, Cert, CACert string
	// DialTimeout bounds connecting and the reachability probe in New
	// (default DefaultDialTimeout).
	DialTimeout time.Duration
	// PageSize is how many keys one range read returns (default DefaultPageSize).
	PageSize int64
	// Logger receives warnings such as undecodable stored values (default slog.Default()).
	Logger *slog.Logger
	// RequestTimeout bounds each Get/Create/Update/Delete and each bulk-create
	// txn (default DefaultRequestTimeout). A write that times out is re-read
	// to learn whether it landed.
	RequestTimeout time.Duration
}

// Backend implements datastore.Interface and datastore.BatchCreator on etcd v3.
type Backend struct {
	client    *clientv3.Client
	endpoints string
	pageSize  int64
	log       *slog.Logger
	timeout   time.Duration
}

var (
	_ datastore.Interface    = (*Backend)(nil)
	_ datastore.BatchCreator = (*Backend)(nil)
)

// connectError reports a failure to reach or authenticate to etcd. It wraps
// datastore.ErrUnavailable and the cause.
type connectError struct {
	msg   string
	cause error
}

func (e *connectError) Error() string   { return e.msg + ": " + e.cause.Error() }
func (e *connectError) Unwrap() []error { return []error{datastore.ErrUnavailable, e.cause} }

// New connects to etcd and checks, within DialTimeout, that it answers.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints configured")
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	endpoints := strings.Join(cfg.Endpoints, ",")
	tlsCfg, err := TLSSettings{CACertFile: cfg.CACertFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile,
		CACert: cfg.CACert, Cert: cfg.Cert, Key: cfg.Key}.ClientTLS()
	if err != nil {
		return nil, err
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		Username:    cfg.Username,
		Password:    cfg.Password,
		TLS:         tlsCfg,
		// Keepalives let gRPC notice a dead connection (a peer that
		// vanished without a reset) and redial, instead of every request
		// timing out on it for minutes: long-lived clients (the node agent)
		// recover by themselves.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		PermitWithoutStream:  true,
		Logger:               zap.NewNop(),
		Context:              context.WithoutCancel(ctx),
	})
	if err != nil {
		return nil, &connectError{msg: connectFailure(endpoints, err), cause: err}
	}
	probeCtx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if _, err := client.Get(probeCtx, Prefix, clientv3.WithCountOnly(), clientv3.WithLimit(1)); err != nil {
		_ = client.Close()
		msg := connectFailure(endpoints, err)
		if !isAuthError(err) {
			if why := diagnose(ctx, cfg.Endpoints, tlsCfg, min(cfg.DialTimeout, 2*time.Second)); why != "" {
				err = fmt.Errorf("%w (%s)", err, why)
			}
		}
		return nil, &connectError{msg: msg, cause: err}
	}
	return &Backend{client: client, endpoints: endpoints, pageSize: cfg.PageSize, log: cfg.Logger, timeout: cfg.RequestTimeout}, nil
}

func connectFailure(endpoints string, err error) string {
	if isAuthError(err) {
		return "etcd at " + endpoints + " refused the credentials"
	}
	return "cannot reach etcd at " + endpoints
}

func isAuthError(err error) bool {
	if errors.Is(err, rpctypes.ErrAuthFailed) || errors.Is(err, rpctypes.ErrPermissionDenied) ||
		errors.Is(err, rpctypes.ErrInvalidAuthToken) || errors.Is(err, rpctypes.ErrUserEmpty) {
		return true
	}
	switch status.Code(err) {
	case codes.Unauthenticated, codes.PermissionDenied:
		return true
	}
	return false
}

// Client exposes the underlying etcd client for code that needs raw keys
// (IPAM blocks, datastore migration).
func (b *Backend) Client() *clientv3.Client {
	if b == nil {
		return nil
	}
	return b.client
}

// Revision returns the store's current revision: it changes on every write
// to the cluster (Calico's keys or IPAM's), so a reader can skip work when it
// has not moved. One point read of a key that never exists; O(1).
func (b *Backend) Revision(ctx context.Context) (string, error) {
	resp, err := b.client.Get(ctx, "/calico/.revision-probe", clientv3.WithCountOnly())
	if err != nil {
		return "", b.opError("revision", resources.Key{}, err)
	}
	return strconv.FormatInt(resp.Header.Revision, 10), nil
}

// Close releases the connection.
func (b *Backend) Close() error { return b.client.Close() }

// opError wraps an error returned by the etcd client. Everything that is not
// a request the server understood and refused is treated as the datastore
// being unavailable.
func (b *Backend) opError(op string, key resources.Key, err error) error {
	if errors.Is(err, rpctypes.ErrCompacted) || errors.Is(err, rpctypes.ErrFutureRev) {
		return fmt.Errorf("etcd %s %s: %w", op, key, err)
	}
	if errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded {
		err = fmt.Errorf("no answer within %s (%w)", b.timeout, err)
	}
	return &datastore.KeyError{Err: datastore.ErrUnavailable, Key: key,
		Cause: fmt.Errorf("etcd %s at %s: %w", op, b.endpoints, err)}
}

// request bounds one etcd request by the backend's request timeout.
func (b *Backend) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.timeout)
}

// ambiguous reports whether a failed write may still have been applied: the
// request may have reached the server but its answer did not come back.
// Errors the server answered with (too many operations, too large, auth)
// are definite refusals.
func ambiguous(err error) bool {
	if errors.Is(err, rpctypes.ErrTooManyOps) || errors.Is(err, rpctypes.ErrRequestTooLarge) ||
		errors.Is(err, rpctypes.ErrGRPCDuplicateKey) || isAuthError(err) {
		return false
	}
	return true
}

// settle decides the outcome of writes whose request failed ambiguously, by
// re-reading their keys (one txn, its own deadline, even when ctx is
// cancelled). landed[i] is the mod revision at which values[i] is stored
// under keys[i], or 0 when it is not there. A failed re-read returns an
// error: the outcome is then unknown.
func (b *Backend) settle(ctx context.Context, keys []string, values [][]byte) ([]int64, error) {
	rctx, cancel := b.request(context.WithoutCancel(ctx))
	defer cancel()
	ops := make([]clientv3.Op, len(keys))
	for i, k := range keys {
		ops[i] = clientv3.OpGet(k)
	}
	resp, err := b.client.Txn(rctx).Then(ops...).Commit()
	if err != nil {
		return nil, err
	}
	landed := make([]int64, len(keys))
	for i, r := range resp.Responses {
		if i >= len(keys) {
			break
		}
		kvs := r.GetResponseRange().GetKvs()
		if len(kvs) == 1 && bytes.Equal(kvs[0].Value, values[i]) {
			landed[i] = kvs[0].ModRevision
		}
	}
	return landed, nil
}

// unknownOutcome is the error for a write whose fate could not be learned.
func (b *Backend) unknownOutcome(op string, key resources.Key, writeErr, readErr error) error {
	return &datastore.KeyError{Err: datastore.ErrUnknownOutcome, Key: key,
		Cause: fmt.Errorf("etcd %s at %s got no answer (%v) and re-reading the object failed too (%v); run the command again to converge",
			op, b.endpoints, unwrapDeadline(writeErr, b.timeout), unwrapDeadline(readErr, b.timeout))}
}

func unwrapDeadline(err error, timeout time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded {
		return fmt.Sprintf("no answer within %s", timeout)
	}
	return err.Error()
}

// writeFailed turns a failed single-key write into its outcome: landed
// after all (the re-read finds value), not applied (opError), or unknown.
func (b *Backend) writeFailed(ctx context.Context, op string, k *resources.Kind, key resources.Key, ek string, value []byte, err error) (resources.Resource, error) {
	if !ambiguous(err) {
		return nil, b.opError(op, key, err)
	}
	landed, rerr := b.settle(ctx, []string{ek}, [][]byte{value})
	if rerr != nil {
		return nil, b.unknownOutcome(op, key, err, rerr)
	}
	if landed[0] != 0 {
		return decode(k, ek, value, landed[0])
	}
	return nil, b.opError(op, key, err)
}

func parseRevision(key resources.Key, rv string) (int64, error) {
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || n <= 0 {
		return 0, datastore.Conflict(key, fmt.Sprintf("invalid resourceVersion %q", rv))
	}
	return n, nil
}

func (b *Backend) target(r resources.Resource) (*resources.Kind, resources.Key, string, error) {
	k := resources.KindOf(r)
	if k == nil {
		return nil, resources.Key{}, "", fmt.Errorf("etcd: unregistered resource type %T", r)
	}
	key := resources.KeyOf(r)
	ek, err := etcdKey(k, key.Namespace, key.Name)
	return k, key, ek, err
}

func (b *Backend) lookup(key resources.Key) (*resources.Kind, string, error) {
	k, err := kindOf(key.Kind)
	if err != nil {
		return nil, "", err
	}
	ek, err := etcdKey(k, key.Namespace, key.Name)
	return k, ek, err
}

// Get reads one object.
func (b *Backend) Get(ctx context.Context, key resources.Key) (resources.Resource, error) {
	k, ek, err := b.lookup(key)
	if err != nil {
		return nil, err
	}
	rctx, cancel := b.request(ctx)
	defer cancel()
	resp, err := b.client.Get(rctx, ek)
	if err != nil {
		return nil, b.opError("get", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, datastore.NotFound(key)
	}
	kv := resp.Kvs[0]
	return decode(k, ek, kv.Value, kv.ModRevision)
}

// Create stores a new object; any resourceVersion on r is ignored.
func (b *Backend) Create(ctx context.Context, r resources.Resource) (resources.Resource, error) {
	k, key, ek, err := b.target(r)
	if err != nil {
		return nil, err
	}
	value, err := encode(k, r)
	if err != nil {
		return nil, err
	}
	return b.create(ctx, k, key, ek, value)
}

func (b *Backend) create(ctx context.Context, k *resources.Kind, key resources.Key, ek string, value []byte) (resources.Resource, error) {
	rctx, cancel := b.request(ctx)
	defer cancel()
	resp, err := b.client.Txn(rctx).
		If(clientv3.Compare(clientv3.Version(ek), "=", 0)).
		Then(clientv3.OpPut(ek, string(value))).
		Commit()
	if err != nil {
		return b.writeFailed(ctx, "create", k, key, ek, value, err)
	}
	if !resp.Succeeded {
		return nil, datastore.Exists(key)
	}
	return decode(k, ek, value, resp.Header.Revision)
}

// Update replaces a stored object. A non-empty resourceVersion must match
// the stored mod revision (ErrConflict otherwise); an empty one replaces
// whatever is stored, as long as something is.
func (b *Backend) Update(ctx context.Context, r resources.Resource) (resources.Resource, error) {
	k, key, ek, err := b.target(r)
	if err != nil {
		return nil, err
	}
	cmp := clientv3.Compare(clientv3.Version(ek), ">", 0)
	if rv := r.GetResourceVersion(); rv != "" {
		rev, err := parseRevision(key, rv)
		if err != nil {
			return nil, err
		}
		cmp = clientv3.Compare(clientv3.ModRevision(ek), "=", rev)
	}
	value, err := encode(k, r)
	if err != nil {
		return nil, err
	}
	rctx, cancel := b.request(ctx)
	defer cancel()
	resp, err := b.client.Txn(rctx).
		If(cmp).
		Then(clientv3.OpPut(ek, string(value))).
		Else(clientv3.OpGet(ek, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return b.writeFailed(ctx, "update", k, key, ek, value, err)
	}
	if !resp.Succeeded {
		if len(resp.Responses) > 0 && len(resp.Responses[0].GetResponseRange().GetKvs()) == 0 {
			return nil, datastore.NotFound(key)
		}
		return nil, datastore.Conflict(key, "")
	}
	return decode(k, ek, value, resp.Header.Revision)
}

// Delete removes an object, guarded by revision when it is non-empty, and
// returns the object as it was (with its last resourceVersion).
func (b *Backend) Delete(ctx context.Context, key resources.Key, revision string) (resources.Resource, error) {
	k, ek, err := b.lookup(key)
	if err != nil {
		return nil, err
	}
	cmp := clientv3.Compare(clientv3.Version(ek), ">", 0)
	if revision != "" {
		rev, err := parseRevision(key, revision)
		if err != nil {
			return nil, err
		}
		cmp = clientv3.Compare(clientv3.ModRevision(ek), "=", rev)
	}
	rctx, cancel := b.request(ctx)
	defer cancel()
	resp, err := b.client.Txn(rctx).
		If(cmp).
		Then(clientv3.OpDelete(ek, clientv3.WithPrevKV())).
		Else(clientv3.OpGet(ek, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return nil, b.opError("delete", key, err)
	}
	if !resp.Succeeded {
		if len(resp.Responses) > 0 && len(resp.Responses[0].GetResponseRange().GetKvs()) == 0 {
			return nil, datastore.NotFound(key)
		}
		return nil, datastore.Conflict(key, "")
	}
	del := resp.Responses[0].GetResponseDeleteRange()
	if del == nil || len(del.PrevKvs) == 0 {
		return nil, datastore.NotFound(key)
	}
	prev := del.PrevKvs[0]
	return decode(k, ek, prev.Value, prev.ModRevision)
}
