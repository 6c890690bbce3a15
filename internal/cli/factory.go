package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/internal/config"
	"github.com/opencalico/calicoctl/internal/version"
	"github.com/opencalico/calicoctl/resources"
)

// Factory builds what commands need (configuration, datastore, client) from
// the global options, once per command run.
type Factory struct {
	Streams IOStreams
	Env     func(string) (string, bool)
	Options Options

	// NewDatastore, when set, replaces datastore construction (tests).
	NewDatastore func(ctx context.Context, cfg *config.Resolved) (datastore.Interface, error)

	resolved *config.Resolved
}

// Config resolves the client configuration (flags > env > file > defaults).
func (f *Factory) Config() (*config.Resolved, error) {
	if f.resolved != nil {
		return f.resolved, nil
	}
	overrides := map[string]string{}
	if f.Options.Context != "" {
		overrides["k8sCurrentContext"] = f.Options.Context
	}
	if f.Options.Kubeconfig != "" {
		overrides["kubeconfig"] = f.Options.Kubeconfig
	}
	r, err := config.Load(config.Options{
		ConfigFile:    f.Options.ConfigFile,
		ConfigFileSet: f.Options.configFileSet && f.Options.ConfigFile != DefaultConfigFile,
		Context:       f.Options.Context,
		Env:           f.Env,
		Overrides:     overrides,
	})
	if err != nil {
		return nil, err
	}
	f.resolved = r
	return r, nil
}

// Datastore connects to the configured datastore.
func (f *Factory) Datastore(ctx context.Context) (datastore.Interface, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	if f.NewDatastore != nil {
		return f.NewDatastore(ctx, cfg)
	}
	return client.Connect(ctx, cfg.Spec, f.Env)
}

// Client connects and wraps the datastore in a Calico client. The error text
// follows upstream: "Failed to create Calico API client: <err>".
func (f *Factory) Client(ctx context.Context) (*client.Client, error) {
	if _, err := f.Config(); err != nil {
		return nil, err // configuration errors are reported as they are
	}
	ds, err := f.Datastore(ctx)
	if err != nil {
		return nil, fmt.Errorf("Failed to create Calico API client: %w", err)
	}
	return client.New(ds), nil
}

// CheckVersion compares the client with ClusterInformation's calicoVersion
// unless the user allowed a mismatch. A same-minor difference prints a warning.
func (f *Factory) CheckVersion(ctx context.Context, c *client.Client) error {
	if f.Options.AllowVersionMismatch || version.AllowMismatchFromEnv(f.Env) {
		return nil
	}
	ci, err := c.Get(ctx, resources.Key{Kind: "ClusterInformation", Name: "default"})
	if errors.Is(err, datastore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unable to get Cluster Information to verify version mismatch: %w\nUse --allow-version-mismatch to override", err)
	}
	warn, err := version.Check(version.Version, clusterVersion(ci))
	if warn != "" {
		fmt.Fprintln(f.Streams.ErrOut, warn)
	}
	return err
}

// connect is what every datastore command does first: client + version check,
// with a bounded timeout for the whole command's setup.
func (f *Factory) connect(ctx context.Context) (*client.Client, error) {
	c, err := f.Client(ctx)
	if err != nil {
		return nil, err
	}
	if err := f.CheckVersion(ctx, c); err != nil {
		c.DS.Close()
		return nil, err
	}
	return c, nil
}

// connectForWrite also ensures the datastore is initialized (ClusterInformation
// and built-in tiers), ignoring failures as upstream does.
func (f *Factory) connectForWrite(ctx context.Context) (*client.Client, error) {
	c, err := f.connect(ctx)
	if err != nil {
		return nil, err
	}
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var opts client.InitOptions
	if cfg, err := f.Config(); err == nil && cfg.Spec.DatastoreType == config.DatastoreKubernetes {
		opts.ClusterType = client.KDDClusterType("")
	}
	if err := c.EnsureInitialized(ictx, opts); err != nil {
		slog.Debug("datastore initialization incomplete", "err", err)
	}
	return c, nil
}

func clusterVersion(ci resources.Resource) string {
	if v, ok := ci.(*resources.ClusterInformation); ok && v.Spec.CalicoVersion != "" {
		return v.Spec.CalicoVersion
	}
	return ""
}
