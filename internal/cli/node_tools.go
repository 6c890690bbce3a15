package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/spf13/cobra"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/version"
	"github.com/opencalico/calicoctl/node/checksystem"
	nodeconfig "github.com/opencalico/calicoctl/node/config"
	"github.com/opencalico/calicoctl/node/diags"
	"github.com/opencalico/calicoctl/resources"
)

// errNotRoot is upstream's refusal for every `node` subcommand.
var errNotRoot = errors.New("Need super user privileges: Operation not permitted")

// nodeToolsDatastoreTimeout bounds the optional datastore reads of
// checksystem and diags: an unreachable datastore is reported, not waited on.
const nodeToolsDatastoreTimeout = 10 * time.Second

// NodeCheckSystemOptions drive `calicoctl node checksystem`.
type NodeCheckSystemOptions struct {
	f            *Factory
	Geteuid      func() int
	Kernel       checksystem.Kernel
	KernelConfig string
}

func newNodeCheckSystemCommand(f *Factory) *cobra.Command {
	o := &NodeCheckSystemOptions{f: f, Geteuid: os.Geteuid, Kernel: checksystem.System{}}
	cmd := &cobra.Command{
		Use:   "checksystem",
		Short: "Check that this host can run the Calico node agent",
		Long: "Probes the kernel features the node agent needs (veth, VXLAN and bridge devices, IPIP, nftables\n" +
			"NAT, conntrack, IPv6) and the ip_forward sysctl, and prints a verdict. Devices and nftables tables\n" +
			"are only created in throwaway network namespaces. Missing IPIP is a warning unless an IP pool\n" +
			"uses IPIP (checked in the datastore when it is reachable). Exits 1 when a required feature is missing.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Geteuid() != 0 {
				return errNotRoot
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVarP(&o.KernelConfig, "kernel-config", "f", "",
		"kernel config file (accepted for compatibility; the running kernel is probed directly)")
	return cmd
}

// Run checks, prints the table and the verdict; a failed verdict exits 1.
func (o *NodeCheckSystemOptions) Run(ctx context.Context) error {
	rs := checksystem.Check(ctx, checksystem.Config{Geteuid: o.Geteuid, Kernel: o.Kernel, IPIPPools: o.ipipPools})
	header, rows := checksystem.Rows(rs)
	renderUnwrapped(o.f.Streams.Out, header, rows)
	ok, verdict := checksystem.Verdict(rs)
	fmt.Fprintf(o.f.Streams.Out, "\n%s\n", verdict)
	if !ok {
		return ErrSilent
	}
	return nil
}

// ipipPools lists the enabled pools with IPIP on.
func (o *NodeCheckSystemOptions) ipipPools(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, nodeToolsDatastoreTimeout)
	defer cancel()
	ds, err := o.f.Datastore(ctx)
	if err != nil {
		return nil, err
	}
	defer ds.Close()
	list, err := ds.List(ctx, datastore.ListOptions{Kind: "IPPool"})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range list.Items {
		p := r.(*resources.IPPool)
		if !p.Spec.Disabled && p.Spec.IPIPMode.On() {
			out = append(out, p.Name)
		}
	}
	return out, nil
}

// NodeDiagsOptions drive `calicoctl node diags`.
type NodeDiagsOptions struct {
	f       *Factory
	Geteuid func() int
	Environ func() []string
	Now     func() time.Time

	LogDir   string
	LogFiles []string
	Output   string
	Name     string

	logDirSet bool
}

func newNodeDiagsCommand(f *Factory) *cobra.Command {
	o := &NodeDiagsOptions{f: f, Geteuid: os.Geteuid, Environ: os.Environ, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "diags",
		Short: "Collect diagnostics from this node into a tarball",
		Long: "Writes a tar.gz with this node's routes (IPv4 and IPv6), links, addresses, neighbours, the\n" +
			"vxlan.calico forwarding entries, the nftables ruleset, its Node resource and the IP pools (when the\n" +
			"datastore is reachable), the calicoctl version and the tail of the agent's logs.",
		Example: "  calicoctl node diags\n  calicoctl node diags --log-file /var/log/calico/node.log --output /tmp/node1-diags.tar.gz",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Geteuid() != 0 {
				return errNotRoot
			}
			o.logDirSet = cmd.Flags().Changed("log-dir")
			return o.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.LogDir, "log-dir", "/var/log/calico", "directory of agent logs to include (skipped when the default is absent)")
	fl.StringArrayVar(&o.LogFiles, "log-file", nil, "an agent log file to include (repeatable)")
	fl.StringVar(&o.Output, "output", "", "where to write the tarball (default /tmp/calico-diags-<YYYYMMDD_HHMMSS>.tar.gz)")
	fl.StringVar(&o.Name, "name", "", "this node's name (default as `node run`: NODENAME, /var/lib/calico/nodename, hostname)")
	return cmd
}

// Run collects and prints what it wrote.
func (o *NodeDiagsOptions) Run(ctx context.Context) error {
	cfg := diags.Config{Output: o.Output, Now: o.Now, LogTail: diags.DefaultLogTail, Logs: append([]string(nil), o.LogFiles...)}
	if _, err := os.Stat(o.LogDir); err == nil || o.logDirSet {
		cfg.Logs = append(cfg.Logs, o.LogDir)
	}
	cfg.NodeName = o.nodeName()

	dsCtx, cancel := context.WithTimeout(ctx, nodeToolsDatastoreTimeout)
	defer cancel()
	ds, err := o.f.Datastore(dsCtx)
	info := version.Info{}
	if err != nil {
		cfg.DatastoreErr = err
		info.ClusterErr = err
	} else {
		defer ds.Close()
		cfg.Datastore = ds
		if r, err := ds.Get(dsCtx, resources.Key{Kind: "ClusterInformation", Name: "default"}); err == nil {
			ci := r.(*resources.ClusterInformation)
			info.ClusterVersion, info.ClusterType = ci.Spec.CalicoVersion, ci.Spec.ClusterType
		} else {
			info.ClusterErr = err
		}
	}
	var ver bytes.Buffer
	version.WriteVersion(&ver, info)
	cfg.Version = strings.TrimRight(ver.String(), "\n")

	fmt.Fprintln(o.f.Streams.Out, "Collecting diagnostics")
	res, err := diags.Collect(dsCtx, cfg)
	if err != nil {
		return err
	}
	header := []string{"FILE", "SIZE", "NOTE"}
	var rows [][]string
	for _, e := range res.Entries {
		note := ""
		if e.Err != nil {
			note = e.Err.Error()
		}
		rows = append(rows, []string{e.Name, fmt.Sprint(e.Size), note})
	}
	renderUnwrapped(o.f.Streams.Out, header, rows)
	fmt.Fprintf(o.f.Streams.Out, "Diags saved to %s\n", res.Path)
	return nil
}

// nodeName resolves the node name as `node run` does; "" if it cannot.
func (o *NodeDiagsOptions) nodeName() string {
	if o.Name != "" {
		return o.Name
	}
	environ := o.Environ()
	env, err := nodeconfig.FromEnviron(environ)
	if err != nil {
		return ""
	}
	lookup := func(k string) (string, bool) {
		for i := len(environ) - 1; i >= 0; i-- {
			if name, v, ok := strings.Cut(environ[i], "="); ok && name == k {
				return v, true
			}
		}
		return "", false
	}
	name, err := nodeconfig.ResolveNodeName(env, lookup, os.ReadFile, os.Hostname)
	if err != nil {
		return ""
	}
	return name
}

// renderUnwrapped renders a table whose long detail cells wrap at 80 columns.
func renderUnwrapped(w io.Writer, header []string, rows [][]string) {
	tw := tablewriter.NewWriter(w)
	tw.SetColWidth(80)
	tw.SetHeader(header)
	tw.AppendBulk(rows)
	tw.Render()
}
