package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/node/bgp/status"
	"github.com/opencalico/calicoctl/node/policy"
	"github.com/opencalico/calicoctl/resources"
)

// errNotRunning is upstream's message when no agent runs on this host.
var errNotRunning = errors.New("Calico process is not running.")

// socketEnv overrides the agent's BGP status socket.
const socketEnv = "CALICO_BGP_STATUS_SOCKET"

// NodeStatusOptions drive `calicoctl node status`.
type NodeStatusOptions struct {
	f       *Factory
	Geteuid func() int
	Now     func() time.Time
	// Fetch reads the local agent's report (status.Fetch).
	Fetch func(ctx context.Context, socket string, withRoutes bool) (status.Report, error)
	// Counters reads this host's policy rule counters (policy.ReadCounters).
	Counters func(ctx context.Context) ([]policy.RuleCounter, error)

	Socket string
	Routes bool
	Policy bool
	Output string
	Node   string
}

func newNodeStatusCommand(f *Factory) *cobra.Command {
	o := &NodeStatusOptions{f: f, Geteuid: os.Geteuid, Now: time.Now, Fetch: status.Fetch, Counters: policy.ReadCounters}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the BGP sessions of the Calico node agent",
		Long: "Prints upstream's report: whether the agent runs, then its IPv4 and IPv6 BGP sessions\n" +
			"(PEER ADDRESS, PEER TYPE, STATE, SINCE, INFO). It asks the local agent on its status socket\n" +
			"(--socket, $" + socketEnv + ", default " + status.DefaultSocket + "); with --node it reads that\n" +
			"node's CalicoNodeStatus from the datastore instead, so it works from any host.",
		Example: "  calicoctl node status\n  calicoctl node status --routes -o json\n  calicoctl node status --node node2\n  calicoctl node status --policy",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Socket, "socket", "", "the agent's BGP status socket (default $"+socketEnv+" or "+status.DefaultSocket+")")
	fl.BoolVar(&o.Routes, "routes", false, "also list the BGP routes")
	fl.BoolVar(&o.Policy, "policy", false, "list this host's network policy rules with their packet and byte counters instead")
	fl.StringVarP(&o.Output, "output", "o", "", "output format: table (default) or json")
	fl.StringVar(&o.Node, "node", "", "read this node's CalicoNodeStatus from the datastore instead of the local agent")
	return cmd
}

// Complete fills the socket from the environment.
func (o *NodeStatusOptions) Complete() error {
	if o.Socket == "" && o.f.Env != nil {
		if v, ok := o.f.Env(socketEnv); ok {
			o.Socket = v
		}
	}
	if o.Socket == "" {
		o.Socket = status.DefaultSocket
	}
	return nil
}

// Validate checks the output format and, for the local agent, root.
func (o *NodeStatusOptions) Validate() error {
	if o.Output != "" && o.Output != "table" && o.Output != "json" {
		return fmt.Errorf("unknown output format %q: use table or json", o.Output)
	}
	if o.Policy && (o.Node != "" || o.Routes) {
		return errors.New("--policy reads this host's kernel: it cannot be combined with --node or --routes")
	}
	if o.Node == "" && o.Geteuid() != 0 {
		return errNotRoot
	}
	return nil
}

// Run prints the report.
func (o *NodeStatusOptions) Run(ctx context.Context) error {
	if o.Policy {
		return o.runPolicy(ctx)
	}
	var rep status.Report
	if o.Node != "" {
		r, err := o.fromDatastore(ctx)
		if err != nil {
			return err
		}
		rep = r
	} else {
		r, err := o.Fetch(ctx, o.Socket, o.Routes)
		if errors.Is(err, status.ErrNotRunning) {
			return errNotRunning
		}
		if err != nil {
			return err
		}
		rep = r
	}
	out := o.f.Streams.Out
	if o.Output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	renderNodeStatus(out, rep, o.Routes, o.Now())
	return nil
}

// fromDatastore rebuilds a report from the node's CalicoNodeStatus (the
// first one with the BGP class).
func (o *NodeStatusOptions) fromDatastore(ctx context.Context) (status.Report, error) {
	ds, err := o.f.Datastore(ctx)
	if err != nil {
		return status.Report{}, fmt.Errorf("Failed to create Calico API client: %w", err)
	}
	defer ds.Close()
	list, err := ds.List(ctx, datastore.ListOptions{Kind: "CalicoNodeStatus"})
	if err != nil {
		return status.Report{}, fmt.Errorf("list CalicoNodeStatus: %w", err)
	}
	for _, it := range list.Items {
		c, ok := it.(*resources.CalicoNodeStatus)
		if !ok || c.Spec.Node != o.Node || !containsString(c.Spec.Classes, resources.NodeStatusClassBGP) {
			continue
		}
		if c.Status.LastUpdated.IsZero() {
			return status.Report{}, fmt.Errorf("CalicoNodeStatus %s for node %s has no status yet (is the agent running there?)", c.Name, o.Node)
		}
		return reportFromNodeStatus(c), nil
	}
	return status.Report{}, fmt.Errorf("no CalicoNodeStatus with class BGP for node %s: create one (spec.node: %s, classes: [BGP], updatePeriodSeconds: 10)", o.Node, o.Node)
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

var nodeStatusPeerTypes = map[string]string{"NodeMesh": "node-to-node mesh", "NodePeer": "node specific", "GlobalPeer": "global"}

// reportFromNodeStatus is the report a CalicoNodeStatus holds.
func reportFromNodeStatus(c *resources.CalicoNodeStatus) status.Report {
	rep := status.Report{Running: true, Peers: []status.Peer{}}
	if a := c.Status.Agent.BIRDV4; a.State != "" {
		rep.Running, rep.RouterID, rep.Version = a.State == "Ready", a.RouterID, a.Version
	}
	for _, ps := range [][]resources.CalicoNodePeer{c.Status.BGP.PeersV4, c.Status.BGP.PeersV6} {
		for _, p := range ps {
			sp := status.Peer{Address: p.PeerIP, Type: nodeStatusPeerTypes[p.Type], BGPState: p.State, State: "start"}
			if p.State == "Established" {
				sp.State = "up"
			}
			if t, err := time.ParseInLocation("2006-01-02 15:04:05", p.Since, time.UTC); err == nil {
				sp.Since = t
			}
			rep.Peers = append(rep.Peers, sp)
		}
	}
	for _, rs := range [][]resources.CalicoNodeRoute{c.Status.Routes.RoutesV4, c.Status.Routes.RoutesV6} {
		for _, r := range rs {
			rep.Routes = append(rep.Routes, status.Route{Prefix: r.Destination, NextHop: r.Gateway, Peer: r.LearnedFrom.PeerIP,
				Best: r.Type == "FIB", Local: r.LearnedFrom.SourceType == "Static"})
		}
	}
	return rep
}

// renderNodeStatus prints upstream's layout.
func renderNodeStatus(w io.Writer, rep status.Report, withRoutes bool, now time.Time) {
	fmt.Fprintln(w, "Calico process is running.")
	if !rep.Running {
		fmt.Fprint(w, "\nThe BGP backend process (BIRD) is not running.\n\n")
		return
	}
	for _, v6 := range []bool{false, true} {
		fam := "IPv4"
		if v6 {
			fam = "IPv6"
		}
		fmt.Fprintf(w, "\n%s BGP status\n", fam)
		var rows [][]string
		for _, p := range rep.Peers {
			if p.IPv6() != v6 || p.Type == "" || p.Type == "local workload" {
				continue // upstream lists only Mesh_, Node_ and Global_ peers
			}
			rows = append(rows, []string{p.Address, p.Type, p.State, sinceCell(p.Since, now), p.Info()})
		}
		if len(rows) == 0 {
			fmt.Fprintf(w, "No %s peers found.\n", fam)
			continue
		}
		renderBoxTable(w, []string{"PEER ADDRESS", "PEER TYPE", "STATE", "SINCE", "INFO"}, rows)
	}
	if withRoutes {
		fmt.Fprint(w, "\nBGP routes\n")
		if len(rep.Routes) == 0 {
			fmt.Fprintln(w, "No routes found.")
		} else {
			var rows [][]string
			for _, r := range rep.Routes {
				from := r.Peer
				if r.Local {
					from = "(local)"
				}
				best := ""
				if r.Best {
					best = "*"
				}
				rows = append(rows, []string{r.Prefix, r.NextHop, from, best, strings.Join(r.Communities, " ")})
			}
			renderBoxTable(w, []string{"PREFIX", "NEXT HOP", "FROM", "BEST", "COMMUNITIES"}, rows)
		}
	}
	fmt.Fprintln(w)
}

// sinceCell is BIRD's time format: HH:MM:SS within 20 hours, else the date.
func sinceCell(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.In(now.Location())
	if now.Sub(t) < 20*time.Hour {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02")
}

// renderBoxTable draws go-pretty's default box style, as upstream prints
// it: left-aligned cells, headers as given.
func renderBoxTable(w io.Writer, header []string, rows [][]string) {
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = len(h)
	}
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	var sep strings.Builder
	sep.WriteString("+")
	for _, n := range width {
		sep.WriteString(strings.Repeat("-", n+2) + "+")
	}
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range cells {
			b.WriteString(" " + c + strings.Repeat(" ", width[i]-len(c)) + " |")
		}
		fmt.Fprintln(w, b.String())
	}
	fmt.Fprintln(w, sep.String())
	line(header)
	fmt.Fprintln(w, sep.String())
	for _, r := range rows {
		line(r)
	}
	fmt.Fprintln(w, sep.String())
}

// runPolicy prints the policy rules' counters: the chain (policy or
// profile and direction), packets, bytes and the rule's comment.
func (o *NodeStatusOptions) runPolicy(ctx context.Context) error {
	cs, err := o.Counters(ctx)
	if err != nil {
		return err
	}
	out := o.f.Streams.Out
	if o.Output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if cs == nil {
			cs = []policy.RuleCounter{}
		}
		return enc.Encode(cs)
	}
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "CHAIN\tPACKETS\tBYTES\tRULE")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", c.Chain, c.Packets, c.Bytes, c.Comment)
	}
	return tw.Flush()
}
