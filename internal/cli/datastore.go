package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/opencalico/calicoctl/datastore/etcd"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/internal/etcdserver"
	"github.com/opencalico/calicoctl/internal/version"
)

func newDatastoreCommand(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "datastore",
		Short: "Run or manage the Calico datastore",
	}
	cmd.AddCommand(newServeCommand(f), newCRDsCommand(f))
	cmd.AddCommand(newMigrateCommand(f))
	return cmd
}

// ServeOptions drive `calicoctl datastore serve`.
type ServeOptions struct {
	f       *Factory
	DataDir string
	Listen  string
	Peer    string
}

func newServeCommand(f *Factory) *cobra.Command {
	o := &ServeOptions{f: f}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run an embedded etcd v3 datastore in this process",
		Long: "Run an etcd v3 server in-process so a new cluster has a working Calico datastore with one command.\n" +
			"On first start it creates ClusterInformation and the built-in tiers. Ctrl-C stops it cleanly.",
		Example: "  calicoctl datastore serve --data-dir ./data &\n  export DATASTORE_TYPE=etcdv3 ETCD_ENDPOINTS=http://127.0.0.1:2379\n  calicoctl get ippool -o wide",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.DataDir, "data-dir", "./calico-data", "directory for the datastore's files")
	cmd.Flags().StringVar(&o.Listen, "listen", "127.0.0.1:2379", "client address (host:port)")
	cmd.Flags().StringVar(&o.Peer, "listen-peer", "127.0.0.1:2380", "peer address (host:port)")
	return cmd
}

// Validate checks the addresses.
func (o *ServeOptions) Validate() error {
	for _, a := range []struct{ flag, v string }{{"--listen", o.Listen}, {"--listen-peer", o.Peer}} {
		if _, err := url.Parse("http://" + a.v); err != nil || a.v == "" {
			return fmt.Errorf("invalid %s address %q: want host:port", a.flag, a.v)
		}
	}
	if o.DataDir == "" {
		return fmt.Errorf("--data-dir may not be empty")
	}
	return nil
}

// Run serves until ctx is cancelled (SIGINT/SIGTERM in main), then stops the
// server cleanly.
func (o *ServeOptions) Run(ctx context.Context) error {
	out := o.f.Streams.Out
	srv, err := etcdserver.Start(ctx, etcdserver.Config{
		DataDir:      o.DataDir,
		ListenClient: o.Listen,
		ListenPeer:   o.Peer,
		Logger:       slog.Default(),
	})
	if err != nil {
		return fmt.Errorf("starting embedded datastore: %w", err)
	}
	defer srv.Close()
	if err := o.initialize(ctx, srv.Endpoints()); err != nil {
		return err
	}
	fmt.Fprintf(out, "Calico datastore (embedded etcd) serving on %s, data in %s\n", srv.Endpoints()[0], o.DataDir)
	fmt.Fprintf(out, "Use it with: export DATASTORE_TYPE=etcdv3 ETCD_ENDPOINTS=%s\n", srv.Endpoints()[0])
	<-ctx.Done()
	fmt.Fprintln(out, "Shutting down the datastore...")
	return nil
}

func (o *ServeOptions) initialize(ctx context.Context, endpoints []string) error {
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ds, err := etcd.New(ictx, etcd.Config{Endpoints: endpoints})
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
