package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/config"
	"github.com/opencalico/calicoctl/internal/ipam/ipamstore"
	"github.com/opencalico/calicoctl/internal/version"
	"github.com/opencalico/calicoctl/node/agent"
	"github.com/opencalico/calicoctl/node/autodetect"
	"github.com/opencalico/calicoctl/node/bgp/speaker"
	nodeconfig "github.com/opencalico/calicoctl/node/config"
	"github.com/opencalico/calicoctl/node/policy"
	"github.com/opencalico/calicoctl/resources"
)

func newNodeCommand(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run and manage the Calico node agent",
	}
	cmd.AddCommand(newNodeRunCommand(f), newNodeInstallCNICommand(f), newNodeCheckSystemCommand(f), newNodeDiagsCommand(f), newNodeStatusCommand(f))
	return cmd
}

// NodeRunOptions drive `calicoctl node run`: the node agent, in this process.
type NodeRunOptions struct {
	f *Factory
	// Environ is the process environment (os.Environ); flags are added to
	// it as the calico-node variables they stand for.
	Environ func() []string
	// Geteuid reports the effective user (root is required).
	Geteuid func() int

	Name, IP, IP6, IPMethod, IP6Method, AS, Backend string
	NoDefaultPools                                  bool
	HealthAddr                                      string
	SyncInterval                                    time.Duration

	env     *nodeconfig.Config
	node    string
	mtuFile string
}

func newNodeRunCommand(f *Factory) *cobra.Command {
	o := &NodeRunOptions{f: f, Environ: os.Environ, Geteuid: os.Geteuid}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the Calico node agent in this process (no container needed)",
		Long: "Registers this host as a Calico Node, creates the default IP pool if there is none, allocates\n" +
			"its tunnel addresses and keeps routes, VXLAN/IPIP tunnels and NAT in the kernel converged on the\n" +
			"datastore until interrupted. Reads calico-node's environment (NODENAME, IP, IP6,\n" +
			"IP_AUTODETECTION_METHOD, CALICO_IPV4POOL_*, CALICO_NETWORKING_BACKEND, FELIX_*, ...);\n" +
			"the flags below override the variables they name.",
		Example: "  NODENAME=node1 CALICO_IPV4POOL_CIDR=10.244.0.0/16 CALICO_IPV4POOL_VXLAN=Always calicoctl node run\n" +
			"  calicoctl node run --name node1 --ip autodetect --ip-autodetection-method=interface=eth0",
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
	fl.StringVar(&o.Name, "name", "", "node name (NODENAME)")
	fl.StringVar(&o.IP, "ip", "", "IPv4 address: autodetect, none, or an address/CIDR (IP)")
	fl.StringVar(&o.IP6, "ip6", "", "IPv6 address: autodetect, none, or an address/CIDR (IP6)")
	fl.StringVar(&o.IPMethod, "ip-autodetection-method", "", "IPv4 autodetection method (IP_AUTODETECTION_METHOD)")
	fl.StringVar(&o.IP6Method, "ip6-autodetection-method", "", "IPv6 autodetection method (IP6_AUTODETECTION_METHOD)")
	fl.StringVar(&o.AS, "as", "", "this node's AS number (AS)")
	fl.StringVar(&o.Backend, "backend", "", "networking backend: bird, vxlan or none (CALICO_NETWORKING_BACKEND)")
	fl.BoolVar(&o.NoDefaultPools, "no-default-ippools", false, "do not create default IP pools (NO_DEFAULT_POOLS)")
	fl.StringVar(&o.HealthAddr, "health-addr", "", "serve /liveness and /readiness here (default FELIX_HEALTHHOST:FELIX_HEALTHPORT when FELIX_HEALTHENABLED)")
	fl.DurationVar(&o.SyncInterval, "sync-interval", time.Second, "how often the datastore is read")
	return cmd
}

// Complete merges the flags into the calico-node environment and parses it.
func (o *NodeRunOptions) Complete(cmd *cobra.Command) error {
	if !cmd.Flags().Changed("log-level") {
		// An agent logs what it detects and does: info unless told otherwise.
		setupLogging(o.f.Streams, "info")
	}
	environ := o.Environ()
	set := func(flag, name, val string) {
		if cmd.Flags().Changed(flag) {
			environ = append(environ, name+"="+val)
		}
	}
	set("name", "NODENAME", o.Name)
	set("ip", "IP", o.IP)
	set("ip6", "IP6", o.IP6)
	set("ip-autodetection-method", "IP_AUTODETECTION_METHOD", o.IPMethod)
	set("ip6-autodetection-method", "IP6_AUTODETECTION_METHOD", o.IP6Method)
	set("as", "AS", o.AS)
	set("backend", "CALICO_NETWORKING_BACKEND", o.Backend)
	if o.NoDefaultPools {
		environ = append(environ, "NO_DEFAULT_POOLS=true")
	}
	env, err := nodeconfig.FromEnviron(environ)
	if err != nil {
		return err
	}
	o.env = env
	lookup := func(k string) (string, bool) {
		for i := len(environ) - 1; i >= 0; i-- {
			if name, v, ok := strings.Cut(environ[i], "="); ok && name == k {
				return v, true
			}
		}
		return "", false
	}
	// CALICO_MTU_FILE (our addition) moves the pod MTU file calico-node
	// writes to /var/lib/calico/mtu, e.g. for several agents on one host.
	o.mtuFile, _ = lookup("CALICO_MTU_FILE")
	o.node, err = nodeconfig.ResolveNodeName(env, lookup, os.ReadFile, os.Hostname)
	return err
}

// Validate checks privileges.
func (o *NodeRunOptions) Validate() error {
	if o.Geteuid() != 0 {
		return errors.New("Need super user privileges: Operation not permitted")
	}
	if o.SyncInterval <= 0 {
		return fmt.Errorf("--sync-interval must be positive, got %s", o.SyncInterval)
	}
	return nil
}

// Run connects to the datastore and runs the agent until ctx ends.
func (o *NodeRunOptions) Run(ctx context.Context) error {
	cfg, err := o.f.Config()
	if err != nil {
		return err
	}
	ds, err := o.f.Datastore(ctx)
	if err != nil {
		return err
	}
	defer ds.Close()
	store, err := ipamstore.Open(ds)
	if err != nil {
		return err
	}
	kdd := cfg.Spec.DatastoreType == config.DatastoreKubernetes
	if err := os.MkdirAll(filepath.Dir(o.env.NodenameFile), 0o755); err == nil {
		// As calico-node: the CNI plugin reads the node name from here.
		_ = os.WriteFile(o.env.NodenameFile, []byte(o.node), 0o644)
	}
	log := slog.Default()
	log.Info("starting the node agent", "node", o.node, "datastore", cfg.Spec.DatastoreType, "backend", o.env.Backend)
	acfg := agent.Config{
		Env: o.env, NodeName: o.node, Datastore: ds, IPAM: store, Kubernetes: kdd,
		ClusterType: nodeClusterType(kdd, o.env.Backend), CalicoVersion: version.Version,
		Host: autodetect.System{}, K8sInternalIP: k8sInternalIP(ds, o.node),
		SyncInterval: o.SyncInterval, HealthAddr: o.HealthAddr, Logger: log, MTUFile: o.mtuFile,
	}
	if o.env.Policy == nodeconfig.PolicyEnforce {
		w, err := policy.NewWriter(nil, log)
		if err != nil {
			return fmt.Errorf("network policy: %w", err)
		}
		acfg.Policy = w
	} else if err := policy.DeleteTable(ctx); err != nil {
		// Off: a table left by an earlier enforcing run would go on
		// enforcing stale policy.
		log.Warn("network policy off: could not remove the policy table", "error", err)
	} else {
		log.Info("network policy off (CALICO_POLICY=off): nftables table inet " + policy.TableName + " removed if present")
	}
	if o.env.Backend == nodeconfig.BackendBird {
		sp, err := speaker.New(speaker.Options{Logger: log, StateDir: o.env.BGPStateDir, Version: version.Version})
		if err != nil {
			return fmt.Errorf("BGP speaker: %w", err)
		}
		acfg.BGP = sp
	}
	return agent.Run(ctx, acfg)
}

// nodeClusterType is what calico-node records in ClusterInformation.
func nodeClusterType(kdd bool, backend string) string {
	var parts []string
	if kdd {
		parts = append(parts, "k8s")
	}
	if backend == nodeconfig.BackendBird {
		parts = append(parts, "bgp")
	}
	// node/startup appends "kdd" on the Kubernetes datastore.
	return strings.Join(parts, ",")
}

// k8sInternalIP reads the InternalIP addresses Kubernetes recorded for the
// node (the kubernetes-internal-ip autodetection method).
func k8sInternalIP(ds datastore.Interface, node string) autodetect.K8sInternalIP {
	return func(ctx context.Context) ([]netip.Addr, error) {
		r, err := ds.Get(ctx, resources.Key{Kind: "Node", Name: node})
		if err != nil {
			return nil, err
		}
		var out []netip.Addr
		for _, a := range r.(*resources.Node).Spec.Addresses {
			if a.Type != "InternalIP" {
				continue
			}
			if p, err := netip.ParsePrefix(a.Address); err == nil {
				out = append(out, p.Addr())
			} else if ip, err := netip.ParseAddr(a.Address); err == nil {
				out = append(out, ip)
			}
		}
		return out, nil
	}
}
