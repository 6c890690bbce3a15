// Package etcdserver runs a single-member etcd v3 server in-process, for the
// node agent's all-in-one mode, development and tests.
package etcdserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// DefaultStartTimeout bounds how long Start waits for the server to be ready.
const DefaultStartTimeout = 30 * time.Second

// TLS configures client-facing or peer TLS.
type TLS struct {
	// CertFile and KeyFile are the server's certificate and key (PEM).
	CertFile string
	KeyFile  string
	// TrustedCAFile verifies client certificates when ClientCertAuth is set.
	TrustedCAFile string
	// ClientCertAuth requires clients to present a certificate signed by TrustedCAFile.
	ClientCertAuth bool
}

// Config describes the server to start.
type Config struct {
	// DataDir holds the WAL and the database; created (mode 0700) if missing.
	DataDir string
	// ListenClient is host:port for clients, e.g. "127.0.0.1:2379". Port 0
	// picks a free port; Endpoints reports the bound address.
	ListenClient string
	// AdvertiseClient is host:port that other members and clients are told
	// to use (needed when ListenClient is 0.0.0.0); default ListenClient.
	AdvertiseClient string
	// ListenPeer is host:port for peer traffic; default "127.0.0.1:0".
	ListenPeer string
	// Name is the member name; default "calico".
	Name string
	// Logger receives etcd's warnings and errors; default slog.Default().
	Logger *slog.Logger
	// TLS, when set, serves clients over https.
	TLS *TLS
	// PeerTLS, when set, secures member-to-member traffic (https peer URLs).
	PeerTLS *TLS
	// InitialCluster, when set, lists the members of a new cluster as
	// "name=peerURL,..."; it must include Name, whose URL is advertised to
	// the peers. Empty means a single-member cluster.
	InitialCluster string
	// ClusterState is "new" (default) or "existing" (joining a running cluster).
	ClusterState string
	// ClusterToken tells clusters apart; default DefaultClusterToken.
	ClusterToken string
	// StartTimeout bounds the wait for readiness; default DefaultStartTimeout.
	StartTimeout time.Duration
	// recordPeerURL, set by Restore, is the peer URL recorded for the
	// member without serving it (the member is served later with it).
	recordPeerURL *url.URL
	// UnsafeNoFsync skips fsync on commit. Only for throwaway test servers:
	// a crash may lose acknowledged writes.
	UnsafeNoFsync bool
}

// Server is a running embedded etcd.
type Server struct {
	etcd      *embed.Etcd
	endpoints []string
	closeOnce sync.Once
	closing   *atomic.Bool
	lock      *dirLock
}

// Start launches etcd and waits until it serves requests or ctx/the start
// timeout ends.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	closing := new(atomic.Bool)
	ecfg, err := embedConfig(cfg, closing)
	if err != nil {
		return nil, err
	}
	// etcd wants its data directory private to the user.
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("etcd data directory: %w", err)
	}
	// Refuse at once when another process serves this directory: etcd
	// itself would wait forever on its database lock.
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if err := checkIdentity(cfg.DataDir, ecfg.Name, ecfg.InitialClusterToken); err != nil {
		lock.release()
		return nil, err
	}
	timeout := cfg.StartTimeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	// StartEtcd does not watch ctx; run it aside so a signal always ends Start.
	type started struct {
		e   *embed.Etcd
		err error
	}
	startc := make(chan started, 1)
	go func() {
		e, err := embed.StartEtcd(ecfg)
		startc <- started{e, err}
	}()
	var e *embed.Etcd
	select {
	case st := <-startc:
		if st.err != nil {
			lock.release()
			return nil, fmt.Errorf("start etcd in %s: %w", cfg.DataDir, st.err)
		}
		e = st.e
	case <-timer.C:
		closing.Store(true)
		return nil, fmt.Errorf("start etcd in %s: not started after %s", cfg.DataDir, timeout)
	case <-ctx.Done():
		closing.Store(true)
		return nil, fmt.Errorf("start etcd in %s: %w", cfg.DataDir, ctx.Err())
	}
	var startErr error
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		startErr = err
	case <-timer.C:
		startErr = fmt.Errorf("not ready after %s", timeout)
		if cfg.InitialCluster != "" {
			startErr = fmt.Errorf("not ready after %s: no quorum (are the other members of the initial cluster running and reachable?)", timeout)
		}
	case <-ctx.Done():
		startErr = ctx.Err()
	}
	if startErr != nil {
		closing.Store(true)
		if closeUnready(e, 5*time.Second) {
			lock.release()
		}
		return nil, fmt.Errorf("start etcd: %w", startErr)
	}
	if err := writeIdentity(cfg.DataDir, ecfg.Name, ecfg.InitialClusterToken); err != nil {
		closing.Store(true)
		e.Close()
		lock.release()
		return nil, err
	}
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
	}
	s := &Server{etcd: e, closing: closing, lock: lock}
	for _, l := range e.Clients {
		s.endpoints = append(s.endpoints, scheme+"://"+l.Addr().String())
	}
	return s, nil
}

// closeUnready stops a server that never became ready. embed's Close waits
// for client servers that only start once the server is ready, so it can
// block for good: bound the wait, then stop the raft loop. It reports
// whether the server closed fully (if not, its files stay locked until the
// process exits).
func closeUnready(e *embed.Etcd, wait time.Duration) bool {
	done := make(chan struct{})
	go func() {
		e.Close()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(wait):
	}
	stopped := make(chan struct{})
	go func() {
		e.Server.HardStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(wait):
	}
	return false
}

func embedConfig(cfg Config, closing *atomic.Bool) (*embed.Config, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("etcdserver: DataDir is required")
	}
	if cfg.ListenClient == "" {
		cfg.ListenClient = "127.0.0.1:2379"
	}
	if cfg.ListenPeer == "" {
		cfg.ListenPeer = "127.0.0.1:0"
	}
	if cfg.Name == "" {
		cfg.Name = "calico"
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	clientScheme := "http"
	if cfg.TLS != nil {
		clientScheme = "https"
	}
	clientURL, err := hostURL(clientScheme, cfg.ListenClient)
	if err != nil {
		return nil, fmt.Errorf("etcdserver: client address: %w", err)
	}
	peerScheme := "http"
	if cfg.PeerTLS != nil {
		peerScheme = "https"
	}
	peerURL, err := hostURL(peerScheme, cfg.ListenPeer)
	if err != nil {
		return nil, fmt.Errorf("etcdserver: peer address: %w", err)
	}
	advertisePeer := *peerURL
	if cfg.InitialCluster != "" {
		own, err := MemberPeerURL(cfg.InitialCluster, cfg.Name)
		if err != nil {
			return nil, err
		}
		if own.Scheme != peerScheme {
			return nil, fmt.Errorf("etcdserver: --initial-cluster gives %s for %s but peer traffic is %s", own, cfg.Name, peerScheme)
		}
		advertisePeer = *own
	}
	if cfg.recordPeerURL != nil {
		advertisePeer = *cfg.recordPeerURL
	}
	token := cfg.ClusterToken
	if token == "" {
		token = DefaultClusterToken
	}
	state := cfg.ClusterState
	switch state {
	case "":
		state = embed.ClusterStateFlagNew
	case embed.ClusterStateFlagNew, embed.ClusterStateFlagExisting:
	default:
		return nil, fmt.Errorf("etcdserver: cluster state %q: want %q or %q", state, embed.ClusterStateFlagNew, embed.ClusterStateFlagExisting)
	}

	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = cfg.DataDir
	ec.ListenClientUrls = []url.URL{*clientURL}
	ec.AdvertiseClientUrls = []url.URL{*clientURL}
	if cfg.AdvertiseClient != "" {
		adv, err := hostURL(clientScheme, cfg.AdvertiseClient)
		if err != nil {
			return nil, fmt.Errorf("etcdserver: advertised client address: %w", err)
		}
		ec.AdvertiseClientUrls = []url.URL{*adv}
	}
	ec.ListenPeerUrls = []url.URL{*peerURL}
	ec.AdvertisePeerUrls = []url.URL{advertisePeer}
	ec.InitialCluster = ec.InitialClusterFromName(cfg.Name)
	if cfg.InitialCluster != "" && cfg.recordPeerURL == nil {
		ec.InitialCluster = cfg.InitialCluster
	}
	ec.InitialClusterToken = token
	ec.ClusterState = state
	ec.ListenMetricsUrls = nil
	// The JSON gateway dials the configured address, which is wrong for
	// port 0; our clients speak gRPC only.
	ec.EnableGRPCGateway = false
	ec.UnsafeNoFsync = cfg.UnsafeNoFsync
	ec.Logger = "zap"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.New(newSlogCore(logger, zap.WarnLevel, closing)))
	if cfg.TLS != nil {
		ec.ClientTLSInfo.CertFile = cfg.TLS.CertFile
		ec.ClientTLSInfo.KeyFile = cfg.TLS.KeyFile
		ec.ClientTLSInfo.TrustedCAFile = cfg.TLS.TrustedCAFile
		ec.ClientTLSInfo.ClientCertAuth = cfg.TLS.ClientCertAuth
	}
	if cfg.PeerTLS != nil {
		ec.PeerTLSInfo.CertFile = cfg.PeerTLS.CertFile
		ec.PeerTLSInfo.KeyFile = cfg.PeerTLS.KeyFile
		ec.PeerTLSInfo.TrustedCAFile = cfg.PeerTLS.TrustedCAFile
		ec.PeerTLSInfo.ClientCertAuth = cfg.PeerTLS.ClientCertAuth
	}
	return ec, nil
}

func hostURL(scheme, hostPort string) (*url.URL, error) {
	if _, _, err := net.SplitHostPort(hostPort); err != nil {
		return nil, err
	}
	return &url.URL{Scheme: scheme, Host: hostPort}, nil
}

// Endpoints returns the client URLs the server listens on, with the real
// ports (useful when the configured port was 0).
func (s *Server) Endpoints() []string { return append([]string(nil), s.endpoints...) }

// Err reports a failure of the running server (a listener that stopped
// serving). It is closed after Close.
func (s *Server) Err() <-chan error { return s.etcd.Err() }

// Close stops the server gracefully: in-flight requests finish (bounded by
// etcd's request timeout) and every committed write is on disk before it
// returns. Safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		s.etcd.Close()
		s.lock.release()
	})
	return nil
}

// MemberClientURLs returns the client URLs of every member that has
// published them (members that never started are missing).
func (s *Server) MemberClientURLs() []string {
	var out []string
	for _, m := range s.etcd.Server.Cluster().Members() {
		out = append(out, m.ClientURLs...)
	}
	return out
}
