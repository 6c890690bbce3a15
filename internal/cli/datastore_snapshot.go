package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/opencalico/calicoctl/datastore/etcd"
	"github.com/opencalico/calicoctl/internal/etcdserver"
)

func newSnapshotCommand(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Back up (save) and restore an etcd datastore",
	}
	cmd.AddCommand(newSnapshotSaveCommand(f), newSnapshotRestoreCommand(f))
	return cmd
}

// SnapshotSaveOptions drive `calicoctl datastore snapshot save FILE`.
type SnapshotSaveOptions struct {
	f           *Factory
	File        string
	DialTimeout time.Duration
	Timeout     time.Duration
}

func newSnapshotSaveCommand(f *Factory) *cobra.Command {
	o := &SnapshotSaveOptions{f: f}
	cmd := &cobra.Command{
		Use:   "save FILE",
		Short: "Write a consistent snapshot of the etcd datastore (ETCD_* settings) to FILE",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.File = args[0]
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().DurationVar(&o.DialTimeout, "dial-timeout", 5*time.Second, "give up on an endpoint that does not answer in this time")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 10*time.Minute, "bound on the whole transfer")
	return cmd
}

// Run tries each endpoint in turn until one streams a snapshot.
func (o *SnapshotSaveOptions) Run(ctx context.Context) error {
	base, endpoints, err := etcdClientConfig(o.f, o.DialTimeout)
	if err != nil {
		return err
	}
	var lastErr error
	for _, ep := range endpoints {
		n, rev, err := o.saveFrom(ctx, base, ep)
		if err != nil {
			lastErr = err
			fmt.Fprintf(o.f.Streams.ErrOut, "snapshot from %s failed: %v\n", ep, err)
			continue
		}
		fmt.Fprintf(o.f.Streams.Out, "Snapshot saved to %s (%d bytes, revision %d, from %s)\n", o.File, n, rev, ep)
		return nil
	}
	return fmt.Errorf("snapshot save: no endpoint gave a snapshot: %w", lastErr)
}

func (o *SnapshotSaveOptions) saveFrom(ctx context.Context, base clientv3.Config, ep string) (int64, int64, error) {
	base.Endpoints = []string{ep}
	c, err := clientv3.New(base)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	sctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	st, err := c.Status(sctx, ep)
	cancel()
	if err != nil {
		return 0, 0, fmt.Errorf("cannot reach etcd: %w", err)
	}
	tctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	rc, err := c.Snapshot(tctx)
	if err != nil {
		return 0, 0, err
	}
	defer rc.Close()
	part := o.File + ".part"
	f, err := os.OpenFile(part, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, 0, err
	}
	n, err := io.Copy(f, rc)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// Check the sha256 trailer and that the database opens.
		_, err = etcdserver.ReadSnapshot(part)
	}
	if err == nil {
		err = os.Rename(part, o.File)
	}
	if err != nil {
		os.Remove(part)
		return 0, 0, err
	}
	return n, st.Header.Revision, nil
}

// etcdClientConfig builds a client configuration (without endpoints) and
// the endpoint list from the resolved ETCD_* settings.
func etcdClientConfig(f *Factory, dialTimeout time.Duration) (clientv3.Config, []string, error) {
	cfg, err := f.Config()
	if err != nil {
		return clientv3.Config{}, nil, err
	}
	spec := cfg.Spec
	endpoints := spec.EtcdEndpointList()
	if len(endpoints) == 0 {
		return clientv3.Config{}, nil, fmt.Errorf("this command needs an etcd datastore: set ETCD_ENDPOINTS (or etcdEndpoints in the config file)")
	}
	base := clientv3.Config{DialTimeout: dialTimeout, Logger: zap.NewNop(), Username: spec.EtcdUsername, Password: spec.EtcdPassword}
	tc, err := etcd.TLSSettings{CACertFile: spec.EtcdCACertFile, CertFile: spec.EtcdCertFile, KeyFile: spec.EtcdKeyFile,
		CACert: spec.EtcdCACert, Cert: spec.EtcdCert, Key: spec.EtcdKey}.ClientTLS()
	if err != nil {
		return clientv3.Config{}, nil, err
	}
	base.TLS = tc
	return base, endpoints, nil
}

// SnapshotRestoreOptions drive `calicoctl datastore snapshot restore FILE`.
type SnapshotRestoreOptions struct {
	f              *Factory
	File           string
	DataDir        string
	Name           string
	ClusterToken   string
	InitialCluster string
}

func newSnapshotRestoreCommand(f *Factory) *cobra.Command {
	o := &SnapshotRestoreOptions{f: f}
	cmd := &cobra.Command{
		Use:     "restore FILE --data-dir DIR",
		Short:   "Create a new single-member datastore in DIR from a snapshot",
		Example: "  calicoctl datastore snapshot restore backup.db --data-dir ./restored\n  calicoctl datastore serve --data-dir ./restored",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.File = args[0]
			if o.DataDir == "" {
				return fmt.Errorf("--data-dir is required")
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.DataDir, "data-dir", "", "new data directory (must not hold a datastore)")
	cmd.Flags().StringVar(&o.Name, "name", "calico", "member name to serve it with")
	cmd.Flags().StringVar(&o.ClusterToken, "initial-cluster-token", etcdserver.DefaultClusterToken, "cluster token to serve it with")
	cmd.Flags().StringVar(&o.InitialCluster, "initial-cluster", "", "the members to grow back to (name=https://ip:2380,...): records --name's peer URL; add the others with `datastore member add`")
	return cmd
}

// Run restores.
func (o *SnapshotRestoreOptions) Run(ctx context.Context) error {
	rc := etcdserver.RestoreConfig{
		SnapshotPath: o.File, DataDir: o.DataDir, Name: o.Name, ClusterToken: o.ClusterToken,
		Logger: slog.Default(),
	}
	if o.InitialCluster != "" {
		u, err := etcdserver.MemberPeerURL(o.InitialCluster, o.Name)
		if err != nil {
			return fmt.Errorf("invalid --initial-cluster: %w", err)
		}
		rc.PeerURL = u
	}
	n, err := etcdserver.Restore(ctx, rc)
	if err != nil {
		return err
	}
	if rc.PeerURL != nil {
		fmt.Fprintf(o.f.Streams.Out, "Restored %d keys from %s into %s as member %s (%s).\nServe it with --name %s --initial-cluster %s=%s, then add each other member with `calicoctl datastore member add` and start it with --initial-cluster-state existing.\n",
			n, o.File, o.DataDir, o.Name, rc.PeerURL, o.Name, o.Name, rc.PeerURL)
		return nil
	}
	fmt.Fprintf(o.f.Streams.Out, "Restored %d keys from %s into %s; serve it with: calicoctl datastore serve --data-dir %s --name %s\n", n, o.File, o.DataDir, o.DataDir, o.Name)
	return nil
}
