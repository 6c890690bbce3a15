package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/spf13/cobra"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/version"
	"github.com/opencalico/calicoctl/resources"
)

// IPAMCheckOptions drive `ipam check`.
type IPAMCheckOptions struct {
	f              *Factory
	Output         string
	ShowAllIPs     bool
	ShowProblemIPs bool
}

func newIPAMCheckCommand(f *Factory) *cobra.Command {
	o := &IPAMCheckOptions{f: f}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check IPAM for leaked addresses and other inconsistencies",
		Long: "Compare IPAM's blocks and handles with the workload endpoints and node tunnel addresses that use\n" +
			"addresses. Reports leaked addresses (allocated, used by nothing), addresses in use but not\n" +
			"allocated, handles without addresses, addresses whose handle is missing, blocks affine to\n" +
			"nodes that do not exist, addresses used twice and malformed blocks. With -o, writes a report\n" +
			"that `ipam release --from-report` uses to free the leaked addresses (lock the datastore first).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Output, "output", "o", "", "write a JSON report of the allocations to this file")
	fl.BoolVar(&o.ShowAllIPs, "show-all-ips", false, "print every address with its status")
	fl.BoolVar(&o.ShowProblemIPs, "show-problem-ips", false, "print every address with a problem")
	return cmd
}

// ipamReport is the JSON report `ipam check -o` writes.
type ipamReport struct {
	Version                    string                        `json:"version"`
	ClusterGUID                string                        `json:"clusterGUID"`
	DatastoreLocked            bool                          `json:"datastoreLocked"`
	ClusterInformationRevision string                        `json:"clusterInformationRevision"`
	ClusterType                string                        `json:"clusterType"`
	Allocations                map[string][]reportAllocation `json:"allocations"`
	LeakedHandles              []reportHandle                `json:"leakedHandles"`
}

// reportAllocation is one allocation in the report.
type reportAllocation struct {
	IP                string    `json:"ip"`
	Handle            string    `json:"handle"`
	SequenceNumber    *uint64   `json:"sequenceNumber,omitempty"`
	Pod               string    `json:"pod,omitempty"`
	Namespace         string    `json:"namespace,omitempty"`
	Node              string    `json:"node,omitempty"`
	Type              string    `json:"type,omitempty"`
	CreationTimestamp string    `json:"creationTimestamp,omitempty"`
	InUse             bool      `json:"inUse"`
	Borrowed          bool      `json:"borrowed"`
	CoolingDown       bool      `json:"coolingDown"`
	Owners            []ipOwner `json:"owners"`
	// Additions to upstream's fields. Reason says why the address is listed
	// as it is; LeakRule is the rule it breaks when leaked (see
	// ipam.UnusedVerdict), which `release --from-report` checks again
	// before freeing it; Attributes are the allocation's active owner
	// attributes, which must still match. An address assigned on purpose
	// is reported inUse, so upstream's release leaves it alone too.
	Reason     string            `json:"reason,omitempty"`
	LeakRule   string            `json:"leakRule,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// reportHandle is a handle with no addresses.
type reportHandle struct {
	ID       string `json:"ID"`
	UID      string `json:"UID"`
	Revision string `json:"Revision"`
}

// Run gathers the state, prints the findings and writes the report.
func (o *IPAMCheckOptions) Run(ctx context.Context) error {
	if o.Output != "" {
		// Fail before a long scan, not after it.
		if st, err := os.Stat(filepath.Dir(o.Output)); err != nil || !st.IsDir() {
			return fmt.Errorf("cannot write the report to %s: directory %s does not exist", o.Output, filepath.Dir(o.Output))
		}
	}
	s, err := o.f.openIPAM(ctx, false)
	if err != nil {
		return err
	}
	defer s.Close()
	out := o.f.Streams.Out
	in, err := gatherCheckInput(ctx, s, out)
	if err != nil {
		return err
	}
	res := scanIPAM(in)
	printCheck(out, res, o.ShowAllIPs, o.ShowProblemIPs)
	if o.Output != "" {
		rep, err := buildReport(ctx, s.ds, in, res)
		if err != nil {
			return err
		}
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return fmt.Errorf("encoding the report: %w", err)
		}
		if err := os.WriteFile(o.Output, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("writing the report: %w", err)
		}
	}
	fmt.Fprintf(out, "Check complete; found %d problems.\n", res.Problems())
	return nil
}

func gatherCheckInput(ctx context.Context, s *ipamSession, out io.Writer) (checkInput, error) {
	var in checkInput
	var err error
	fmt.Fprintln(out, "Checking IPAM for inconsistencies...")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Loading all IPAM blocks...")
	if in.Blocks, err = s.store.ListBlocks(ctx); err != nil {
		return in, fmt.Errorf("listing IPAM blocks: %w", err)
	}
	fmt.Fprintf(out, "Found %d IPAM blocks.\n", len(in.Blocks))
	if in.Handles, err = s.store.ListHandles(ctx); err != nil {
		return in, fmt.Errorf("listing IPAM handles: %w", err)
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Loading all IPAM pools...")
	if in.Pools, err = listPools(ctx, s.pools); err != nil {
		return in, fmt.Errorf("listing IP pools: %w", err)
	}
	active := 0
	for _, p := range in.Pools {
		if !p.Disabled {
			fmt.Fprintf(out, "  %s\n", p.CIDR)
			active++
		}
	}
	fmt.Fprintf(out, "Found %d active IP pools.\n", active)
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Loading all nodes.")
	nodes, err := s.ds.List(ctx, datastore.ListOptions{Kind: "Node"})
	if err != nil {
		return in, fmt.Errorf("listing nodes: %w", err)
	}
	tunnels := 0
	for _, r := range nodes.Items {
		if n, ok := r.(*resources.Node); ok {
			in.Nodes = append(in.Nodes, n)
			tunnels += len(nodeTunnelOwners(n))
		}
	}
	fmt.Fprintf(out, "Found %d node tunnel IPs.\n", tunnels)
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Loading all workload endpoints.")
	weps, err := s.ds.List(ctx, datastore.ListOptions{Kind: "WorkloadEndpoint"})
	if err != nil {
		return in, fmt.Errorf("listing workload endpoints: %w", err)
	}
	wepIPs := 0
	for _, r := range weps.Items {
		if w, ok := r.(*resources.WorkloadEndpoint); ok {
			in.WEPs = append(in.WEPs, w)
			wepIPs += len(w.Spec.IPNetworks)
		}
	}
	fmt.Fprintf(out, "Found %d workload IPs.\n", wepIPs)
	return in, nil
}

func printCheck(out io.Writer, r *checkResult, all, problems bool) {
	fmt.Fprintf(out, "Workloads and nodes are using %d IPs.\n", len(r.InUse))
	fmt.Fprintf(out, "IPAM blocks record %d allocations.\n", len(r.Allocs))
	fmt.Fprintln(out)
	printTopNodes(out, r.NodeCounts)
	if all {
		fmt.Fprintln(out, "All allocated addresses:")
		for _, a := range r.Allocs {
			fmt.Fprintf(out, "  %s handle=%q node=%q %s\n", a.IP, a.Handle, a.Attrs[ipam.AttrNode], a.Verdict.Reason)
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintln(out, "Scanning for IPs that are allocated but not actually in use...")
	for _, a := range r.Leaked {
		if problems {
			fmt.Fprintf(out, "  %s %s; node %q\n", a.IP, a.Verdict.Reason, a.Attrs[ipam.AttrNode])
		}
	}
	fmt.Fprintf(out, "Found %d IPs that are allocated in IPAM but not actually in use.\n", len(r.Leaked))
	if r.OnPurpose > 0 {
		// Not upstream's: addresses assigned on purpose (ipam assign, or a
		// handle that is not a container's) are never leaks.
		fmt.Fprintf(out, "Found %d IPs assigned on purpose (by `ipam assign` or under a handle that is not a container's); they are not leaks.\n", r.OnPurpose)
	}
	fmt.Fprintln(out, "Scanning for IPs that are in use by a workload or node but not allocated in IPAM...")
	printAddrs(out, problems, r.NotInPool, r.InUse, "in use outside every active pool")
	fmt.Fprintf(out, "Found %d in-use IPs that are not in active IP pools.\n", len(r.NotInPool))
	printAddrs(out, problems, r.NoAlloc, r.InUse, "in use but not allocated")
	fmt.Fprintf(out, "Found %d in-use IPs that are in active IP pools but have no corresponding IPAM allocation.\n", len(r.NoAlloc))
	printAddrs(out, problems, r.Duplicates, r.InUse, "used or allocated more than once")
	fmt.Fprintf(out, "Found %d IPs that are used or allocated more than once.\n", len(r.Duplicates))
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Scanning for IPAM handles with no matching IPs...")
	for _, h := range r.HandlesNoIP {
		if problems {
			fmt.Fprintf(out, "  handle %q has no addresses\n", h)
		}
	}
	fmt.Fprintf(out, "Found %d handles with no matching IPs (and %d handles with matches).\n", len(r.HandlesNoIP), r.HandlesWith)
	fmt.Fprintln(out, "Scanning for IPs with missing handle...")
	for _, h := range r.Missing {
		if problems {
			fmt.Fprintf(out, "  handle %q is referenced by a block but does not exist\n", h)
		}
	}
	fmt.Fprintf(out, "Found %d handles mentioned in blocks with no matching handle resource.\n", len(r.Missing))
	fmt.Fprintln(out, "Scanning for blocks affine to nodes that do not exist...")
	for _, b := range r.OrphanBlock {
		if problems {
			fmt.Fprintf(out, "  block %s is affine to %s\n", b.CIDR, b.Affinity)
		}
	}
	fmt.Fprintf(out, "Found %d blocks affine to nodes that do not exist.\n", len(r.OrphanBlock))
	for _, m := range r.Malformed {
		fmt.Fprintf(out, "  malformed block %s\n", m)
	}
	fmt.Fprintf(out, "Found %d malformed blocks.\n", len(r.Malformed))
}

func printAddrs(out io.Writer, show bool, addrs []netip.Addr, use map[netip.Addr][]ipOwner, what string) {
	if !show {
		return
	}
	for _, a := range addrs {
		users := ""
		for i, o := range use[a] {
			if i > 0 {
				users += ", "
			}
			users += o.String()
		}
		fmt.Fprintf(out, "  %s %s (%s)\n", a, what, users)
	}
}

// printTopNodes lists up to 20 nodes with the most allocations.
func printTopNodes(out io.Writer, counts map[string]int) {
	if len(counts) == 0 {
		return
	}
	fmt.Fprintln(out, "Looking for top (up to 20) nodes by allocations...")
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if counts[names[i]] != counts[names[j]] {
			return counts[names[i]] > counts[names[j]]
		}
		return names[i] < names[j]
	})
	for i, n := range names {
		if i == 20 {
			break
		}
		fmt.Fprintf(out, "  %s has %d allocations\n", n, counts[n])
	}
	vals := make([]int, 0, len(counts))
	for _, c := range counts {
		vals = append(vals, c)
	}
	slices.Sort(vals)
	fmt.Fprintf(out, "Node with most allocations has %d; median is %d\n", vals[len(vals)-1], vals[len(vals)/2])
	fmt.Fprintln(out)
}

// buildReport is the -o report: every allocation with its status, and the
// handles without addresses.
func buildReport(ctx context.Context, ds datastore.Interface, in checkInput, r *checkResult) (*ipamReport, error) {
	rep := &ipamReport{Version: version.Version, Allocations: map[string][]reportAllocation{}, LeakedHandles: []reportHandle{}}
	ci, err := clusterInformation(ctx, ds)
	if err != nil {
		return nil, fmt.Errorf("reading ClusterInformation for the report: %w", err)
	}
	rep.ClusterGUID = ci.Spec.ClusterGUID
	rep.ClusterType = ci.Spec.ClusterType
	rep.ClusterInformationRevision = ci.ResourceVersion
	rep.DatastoreLocked = ci.Spec.DatastoreReady != nil && !*ci.Spec.DatastoreReady
	for _, a := range r.Allocs {
		ra := reportAllocation{
			IP: a.IP.String(), Handle: a.Handle, SequenceNumber: a.Seq,
			Pod: a.Attrs[ipam.AttrPod], Namespace: a.Attrs[ipam.AttrNamespace], Node: a.Attrs[ipam.AttrNode],
			Type: a.kind(), CreationTimestamp: a.Attrs[ipam.AttrTimestamp],
			InUse: len(r.InUse[a.IP]) > 0 || a.Verdict.OnPurpose, Borrowed: a.borrowed(), CoolingDown: a.CoolingDown,
			Owners: r.InUse[a.IP], Reason: a.Verdict.Reason, LeakRule: a.Verdict.Rule, Attributes: a.Attrs,
		}
		if ra.Owners == nil {
			ra.Owners = []ipOwner{}
		}
		rep.Allocations[ra.IP] = append(rep.Allocations[ra.IP], ra)
	}
	byID := map[string]*ipam.Handle{}
	for _, h := range in.Handles {
		byID[h.ID] = h
	}
	for _, id := range r.HandlesNoIP {
		rep.LeakedHandles = append(rep.LeakedHandles, reportHandle{ID: id, Revision: byID[id].Revision})
	}
	return rep, nil
}
