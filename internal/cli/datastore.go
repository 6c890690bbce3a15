package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opencalico/calicoctl/datastore/etcd"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/internal/config"
	"github.com/opencalico/calicoctl/internal/etcdserver"
	"github.com/opencalico/calicoctl/internal/version"
)

func newDatastoreCommand(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "datastore",
		Short: "Run or manage the Calico datastore",
	}
	cmd.AddCommand(newServeCommand(f), newCRDsCommand(f))
	cmd.AddCommand(newMigrateCommand(f), newCertsCommand(f), newSnapshotCommand(f), newDatastoreStatusCommand(f), newMemberCommand(f))
	return cmd
}

// ServeOptions drive `calicoctl datastore serve`.
type ServeOptions struct {
	f       *Factory
	DataDir string
	Listen  string
	Peer    string
	// Advertise is the client address told to other members and written
	// into calicoctl.cfg; default Listen (set it when Listen is 0.0.0.0).
	Advertise string
	// TLS serves clients and peers over https with required client
	// certificates; implied when Listen is not a loopback address.
	TLS bool
	// Insecure keeps plain http off loopback.
	Insecure bool
	// SANs are extra names or IPs for the server certificate.
	SANs []string
	// Name, InitialCluster, ClusterState and ClusterToken make a member of
	// a multi-member cluster.
	Name           string
	InitialCluster string
	ClusterState   string
	ClusterToken   string
	StartTimeout   time.Duration
}

func newServeCommand(f *Factory) *cobra.Command {
	o := &ServeOptions{f: f}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run an embedded etcd v3 datastore in this process",
		Long: "Run an etcd v3 server in-process so a new cluster has a working Calico datastore with one command.\n" +
			"On first start it creates ClusterInformation and the built-in tiers. Ctrl-C stops it cleanly.\n" +
			"Off loopback (or with --tls) it serves https and requires client certificates: the first start\n" +
			"creates a CA, a server and a client certificate under <data-dir>/pki and writes\n" +
			"<data-dir>/calicoctl.cfg. See docs/datastore.md.",
		Example: "  calicoctl datastore serve --data-dir ./data &\n  export DATASTORE_TYPE=etcdv3 ETCD_ENDPOINTS=http://127.0.0.1:2379\n  calicoctl get ippool -o wide\n" +
			"  calicoctl datastore serve --data-dir /var/lib/calico-datastore --listen 10.0.0.1:2379 --listen-peer 10.0.0.1:2380",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Complete(cmd.Flags().Changed("listen-peer"))
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.DataDir, "data-dir", "./calico-data", "directory for the datastore's files")
	fl.StringVar(&o.Listen, "listen", "127.0.0.1:2379", "client address (host:port)")
	fl.StringVar(&o.Advertise, "advertise-client", "", "client address (host:port) to tell members and clients when --listen is 0.0.0.0")
	fl.StringVar(&o.Peer, "listen-peer", "127.0.0.1:2380", "peer address (host:port); default with --initial-cluster: this member's peer URL")
	fl.BoolVar(&o.TLS, "tls", false, "serve https with required client certificates (implied off loopback)")
	fl.BoolVar(&o.Insecure, "insecure", false, "serve plain http even off loopback (anyone who can connect can read and write)")
	fl.StringArrayVar(&o.SANs, "san", nil, "extra IP or DNS name for the server certificate (repeatable)")
	fl.StringVar(&o.Name, "name", "calico", "member name")
	fl.StringVar(&o.InitialCluster, "initial-cluster", "", "members of a new cluster: name=https://ip:2380,... (must include --name)")
	fl.StringVar(&o.ClusterState, "initial-cluster-state", "new", "new, or existing to join a running cluster")
	fl.StringVar(&o.ClusterToken, "initial-cluster-token", etcdserver.DefaultClusterToken, "token that tells clusters apart")
	fl.DurationVar(&o.StartTimeout, "start-timeout", etcdserver.DefaultStartTimeout, "give up when the datastore is not ready in this time (e.g. no quorum)")
	cmd.AddCommand(newCertsCommand(f))
	return cmd
}

// Complete derives the security mode and the peer address: TLS is implied
// when the client or peer address (or this member's URL in
// --initial-cluster) is not loopback, unless --insecure; with
// --initial-cluster, --listen-peer defaults to this member's URL.
func (o *ServeOptions) Complete(peerSet bool) {
	if o.InitialCluster != "" && !peerSet {
		if own, err := etcdserver.MemberPeerURL(o.InitialCluster, o.Name); err == nil {
			o.Peer = own.Host
		}
	}
	if !o.Insecure && (!isLoopback(o.Listen) || !isLoopback(o.Peer)) {
		o.TLS = true
	}
}

// Validate checks the addresses, the security mode and the member list.
func (o *ServeOptions) Validate() error {
	for _, a := range []struct{ flag, v string }{{"--listen", o.Listen}, {"--listen-peer", o.Peer}, {"--advertise-client", o.Advertise}} {
		if a.v == "" && a.flag == "--advertise-client" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.v); err != nil || a.v == "" {
			return fmt.Errorf("invalid %s address %q: want host:port", a.flag, a.v)
		}
	}
	if o.DataDir == "" {
		return fmt.Errorf("--data-dir may not be empty")
	}
	if o.TLS && o.Insecure {
		return fmt.Errorf("--tls and --insecure contradict each other")
	}
	if o.ClusterState != "new" && o.ClusterState != "existing" {
		return fmt.Errorf("invalid --initial-cluster-state %q: want new or existing", o.ClusterState)
	}
	if o.InitialCluster != "" {
		if _, err := etcdserver.MemberPeerURL(o.InitialCluster, o.Name); err != nil {
			return fmt.Errorf("invalid --initial-cluster: %w", err)
		}
		members, _ := etcdserver.ParseInitialCluster(o.InitialCluster)
		want, mode := "http", "--insecure or loopback"
		if o.TLS {
			want, mode = "https", "TLS"
		}
		for _, m := range members {
			if m.PeerURL.Scheme != want {
				return fmt.Errorf("invalid --initial-cluster: member %s has a %s URL but peers use %s here (%s)", m.Name, m.PeerURL.Scheme, want, mode)
			}
		}
	}
	return nil
}

func isLoopback(hostPort string) bool {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		host = hostPort
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Run serves until ctx is cancelled (SIGINT/SIGTERM in main), then stops the
// server cleanly.
func (o *ServeOptions) Run(ctx context.Context) error {
	out, errOut := o.f.Streams.Out, o.f.Streams.ErrOut
	cfg := etcdserver.Config{
		DataDir:         o.DataDir,
		ListenClient:    o.Listen,
		AdvertiseClient: o.Advertise,
		ListenPeer:      o.Peer,
		Name:            o.Name,
		InitialCluster:  o.InitialCluster,
		ClusterState:    o.ClusterState,
		ClusterToken:    o.ClusterToken,
		StartTimeout:    o.StartTimeout,
		Logger:          slog.Default(),
	}
	var files etcdserver.PKIFiles
	if o.TLS {
		var err error
		files, err = etcdserver.EnsureMemberPKI(etcdserver.PKIDir(o.DataDir), o.requiredNames(), localNames(), func(format string, args ...any) {
			fmt.Fprintf(errOut, format+"\n", args...)
		})
		if err != nil {
			return fmt.Errorf("datastore certificates: %w", err)
		}
		tls := &etcdserver.TLS{CertFile: files.ServerCert, KeyFile: files.ServerKey, TrustedCAFile: files.CA, ClientCertAuth: true}
		cfg.TLS, cfg.PeerTLS = tls, tls
	} else if !isLoopback(o.Listen) || !isLoopback(o.Peer) {
		msg := "serving plain http off loopback (--insecure): anyone who can reach " + o.Listen + " can read and change the datastore"
		slog.Warn(msg)
		fmt.Fprintln(errOut, "WARNING: "+msg)
	}
	srv, err := etcdserver.Start(ctx, cfg)
	if err != nil {
		return fmt.Errorf("starting embedded datastore: %w", err)
	}
	defer srv.Close()
	dsCfg := etcd.Config{Endpoints: localEndpoints(srv.Endpoints())}
	if o.TLS {
		dsCfg.CACertFile, dsCfg.CertFile, dsCfg.KeyFile = files.CA, files.ClientCert, files.ClientKey
	}
	if err := o.initialize(ctx, dsCfg); err != nil {
		return err
	}
	endpoints := o.clientEndpoints(srv)
	fmt.Fprintf(out, "Calico datastore (embedded etcd) serving on %s, data in %s\n", endpoints[0], o.DataDir)
	if o.TLS {
		cfgPath, err := writeClientConfig(o.DataDir, endpoints, files)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "Use it with:\n  export DATASTORE_TYPE=etcdv3 ETCD_ENDPOINTS=%s\n  export ETCD_CA_CERT_FILE=%s ETCD_CERT_FILE=%s ETCD_KEY_FILE=%s\n",
			strings.Join(endpoints, ","), abs(files.CA), abs(files.ClientCert), abs(files.ClientKey))
		fmt.Fprintf(out, "or: calicoctl --config %s ...\n", cfgPath)
		if _, err := os.Stat(filepath.Join(etcdserver.PKIDir(o.DataDir), etcdserver.CAKeyFile)); err == nil {
			fmt.Fprintf(out, "Node certificates: calicoctl datastore certs issue NODE --data-dir %s\n", o.DataDir)
		}
	} else {
		fmt.Fprintf(out, "Use it with: export DATASTORE_TYPE=etcdv3 ETCD_ENDPOINTS=%s\n", strings.Join(endpoints, ","))
	}
	select {
	case <-ctx.Done():
	case err := <-srv.Err():
		if err != nil {
			return fmt.Errorf("datastore stopped: %w", err)
		}
	}
	fmt.Fprintln(out, "Shutting down the datastore...")
	return nil
}

// localNames are names the server certificate covers when this member's
// CA can issue it.
func localNames() []string {
	names := []string{"127.0.0.1", "::1", "localhost"}
	if h, err := os.Hostname(); err == nil {
		names = append(names, h)
	}
	return names
}

// requiredNames are the names the server certificate must cover: the
// listen addresses (unless unspecified) and --san.
func (o *ServeOptions) requiredNames() []string {
	var names []string
	for _, a := range []string{o.Listen, o.Peer, o.Advertise} {
		if h, _, err := net.SplitHostPort(a); err == nil {
			if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
				names = append(names, h)
			}
		}
	}
	return append(names, o.SANs...)
}

// clientEndpoints lists this member's endpoint (the advertised one when
// set) first, then the other members'.
func (o *ServeOptions) clientEndpoints(srv *etcdserver.Server) []string {
	eps := localEndpoints(srv.Endpoints())
	if o.Advertise != "" {
		u, _ := url.Parse(eps[0])
		eps = []string{u.Scheme + "://" + o.Advertise}
	}
	for _, u := range srv.MemberClientURLs() {
		if !slices.Contains(eps, u) {
			eps = append(eps, u)
		}
	}
	return eps
}

// localEndpoints replaces an unspecified host (0.0.0.0, ::) with
// 127.0.0.1, which the server certificate covers.
func localEndpoints(eps []string) []string {
	out := make([]string, 0, len(eps))
	for _, ep := range eps {
		u, err := url.Parse(ep)
		if err == nil {
			if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsUnspecified() {
				u.Host = net.JoinHostPort("127.0.0.1", u.Port())
				ep = u.String()
			}
		}
		out = append(out, ep)
	}
	return out
}

// writeClientConfig writes <data-dir>/calicoctl.cfg for this datastore.
func writeClientConfig(dataDir string, endpoints []string, files etcdserver.PKIFiles) (string, error) {
	path := filepath.Join(dataDir, "calicoctl.cfg")
	text := fmt.Sprintf("apiVersion: %s\nkind: %s\nmetadata: {}\nspec:\n  datastoreType: etcdv3\n  etcdEndpoints: %s\n  etcdCACertFile: %s\n  etcdCertFile: %s\n  etcdKeyFile: %s\n",
		config.APIVersion, config.Kind, strings.Join(endpoints, ","), abs(files.CA), abs(files.ClientCert), abs(files.ClientKey))
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return "", fmt.Errorf("write client config: %w", err)
	}
	return path, nil
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func (o *ServeOptions) initialize(ctx context.Context, cfg etcd.Config) error {
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ds, err := etcd.New(ictx, cfg)
	if err != nil {
		return fmt.Errorf("connecting to the embedded datastore: %w", err)
	}
	defer ds.Close()
	err = client.New(ds).EnsureInitialized(ictx, client.InitOptions{CalicoVersion: version.Version, ClusterType: "etcd"})
	if err != nil {
		return fmt.Errorf("initializing the datastore: %w", err)
	}
	return nil
}
