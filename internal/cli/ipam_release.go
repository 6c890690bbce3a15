package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/version"
	"github.com/opencalico/calicoctl/resources"
)

// IPAMReleaseOptions drive `ipam release`.
type IPAMReleaseOptions struct {
	f       *Factory
	IP      string
	Handle  string
	Reports []string
	Force   bool

	ip netip.Addr
}

func newIPAMReleaseCommand(f *Factory) *cobra.Command {
	o := &IPAMReleaseOptions{f: f}
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Release addresses: one, a handle's, or the leaks an `ipam check` report found",
		Long: "Release one address (--ip), every address of a handle (--handle, an addition to upstream), or\n" +
			"the addresses an `ipam check -o <report>` run found leaked (--from-report). A report is used\n" +
			"only while the datastore is locked and unchanged since the check (same cluster, same\n" +
			"ClusterInformation revision); each address is checked again before it is freed (same handle,\n" +
			"sequence number and owner attributes, used by nothing, still leaked by the same rule), so an\n" +
			"address handed out again or put to use since is never freed.",
		Example: "  calicoctl ipam release --ip=10.244.1.7\n" +
			"  calicoctl datastore migrate lock && calicoctl ipam check -o report.json\n" +
			"  calicoctl ipam release --from-report=report.json && calicoctl datastore migrate unlock",
		Args: cobra.NoArgs,
		RunE: validateThenRun(o),
	}
	fl := cmd.Flags()
	fl.StringVar(&o.IP, "ip", "", "the address to release")
	fl.StringVar(&o.Handle, "handle", "", "release every address of this handle, then the handle (addition to upstream)")
	fl.StringArrayVar(&o.Reports, "from-report", nil, "release the leaked addresses listed in an `ipam check -o` report (repeatable)")
	fl.BoolVar(&o.Force, "force", false, "with --from-report: proceed despite a cluster, version or lock mismatch")
	return cmd
}

// Validate requires exactly one of --ip, --handle and --from-report.
func (o *IPAMReleaseOptions) Validate() error {
	if countSet(o.IP != "", o.Handle != "", len(o.Reports) > 0) != 1 {
		return errors.New("exactly one of --ip, --handle and --from-report is required")
	}
	if o.Force && len(o.Reports) == 0 {
		return errors.New("--force applies only to --from-report")
	}
	return parseIPFlag("ip", o.IP, &o.ip)
}

// Run releases what was asked.
func (o *IPAMReleaseOptions) Run(ctx context.Context) error {
	s, err := o.f.openIPAM(ctx, true)
	if err != nil {
		return err
	}
	defer s.Close()
	out := o.f.Streams.Out
	switch {
	case o.ip.IsValid():
		un, err := s.alloc.ReleaseIPs(ctx, ipam.ReleaseOptions{Address: o.ip})
		if err != nil {
			return err
		}
		if slices.Contains(un, o.ip) {
			return fmt.Errorf("IP address %s is not assigned", o.ip)
		}
		fmt.Fprintf(out, "Successfully released IP address %s\n", o.ip)
		return nil
	case o.Handle != "":
		// The blocks' records, not the handle object, say what the handle
		// holds: an assignment interrupted by a datastore failure may have
		// left addresses whose handle object is missing.
		ips, err := s.alloc.ReleaseHandleEverywhere(ctx, o.Handle)
		if errors.Is(err, datastore.ErrNotFound) {
			return fmt.Errorf("handle %q does not exist", o.Handle)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "Successfully released %d IP address(es) of handle %s\n", len(ips), o.Handle)
		return nil
	}
	return o.releaseFromReports(ctx, s, out)
}

func readReport(path string) (*ipamReport, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading report: %w", err)
	}
	var r ipamReport
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("report %s is not an `ipam check` report: %w", path, err)
	}
	return &r, nil
}

// refusal is one reason not to use a report; forceable ones are
// overridden by --force, the others (a stale report) skip it.
type refusal struct {
	msg       string
	forceable bool
}

// reportRefusals says why a report may not be used against the cluster
// state ci (none = it may).
func reportRefusals(r *ipamReport, ci *resources.ClusterInformation, locked bool, clientVersion string) []refusal {
	var out []refusal
	if r.ClusterGUID != ci.Spec.ClusterGUID {
		out = append(out, refusal{fmt.Sprintf("the report is of cluster %q, but this is cluster %q", r.ClusterGUID, ci.Spec.ClusterGUID), true})
	}
	if r.Version != clientVersion {
		out = append(out, refusal{fmt.Sprintf("the report was made by calicoctl %s, but this is %s", r.Version, clientVersion), true})
	}
	if !locked {
		out = append(out, refusal{"the datastore is not locked; run `calicoctl datastore migrate lock`, then `ipam check -o` again", true})
	}
	if r.ClusterInformationRevision != ci.ResourceVersion {
		out = append(out, refusal{fmt.Sprintf("the report is stale: ClusterInformation is at revision %s, the report was made at %s; run `ipam check -o` again",
			ci.ResourceVersion, r.ClusterInformationRevision), false})
	}
	return out
}

// leakCandidate is one address a report lists as leaked.
type leakCandidate struct {
	IP    netip.Addr
	Entry reportAllocation
	// Rule is the leak rule the report found the address breaking.
	Rule string
	// Skip, when set, says why the address is not released at all.
	Skip string
}

// reportAttrs are the owner attributes a report records for an entry: all
// of them in our reports, the ones upstream's fields carry otherwise.
func reportAttrs(e reportAllocation) map[string]string {
	if e.Attributes != nil {
		return e.Attributes
	}
	m := map[string]string{}
	for k, v := range map[string]string{ipam.AttrPod: e.Pod, ipam.AttrNamespace: e.Namespace, ipam.AttrNode: e.Node} {
		if v != "" {
			m[k] = v
		}
	}
	if e.Type != "" && e.Type != "pod" && e.Type != "vmi" {
		m[ipam.AttrType] = e.Type
	}
	return m
}

// leakedReleases lists the addresses a report found leaked, sorted. Our
// reports name the leak rule of each; for a report without reasons
// (upstream's, or an older calicoctl's) every address not in use and not
// cooling down is a candidate, and the rule is worked out from the
// recorded owner: one assigned on purpose is skipped.
func leakedReleases(r *ipamReport) ([]leakCandidate, error) {
	var out []leakCandidate
	for _, allocs := range r.Allocations {
		for _, a := range allocs {
			c := leakCandidate{Entry: a}
			switch {
			case a.Reason != "":
				if a.LeakRule == "" {
					continue
				}
				c.Rule = a.LeakRule
			case a.InUse || a.CoolingDown:
				continue
			default:
				var reason string
				if c.Rule, reason = ipam.UnusedVerdict(a.Handle, reportAttrs(a)); c.Rule == "" {
					c.Skip = reason
				}
			}
			ip, err := netip.ParseAddr(a.IP)
			if err != nil {
				return nil, fmt.Errorf("report lists a bad address %q", a.IP)
			}
			c.IP = ip.Unmap()
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(x, y leakCandidate) int { return x.IP.Compare(y.IP) })
	return out, nil
}

// stillLeaked is the release guard of a candidate: the allocation the block
// holds now must be the one the report saw (same handle, sequence number
// and owner attributes), unused, and leaked by the same rule.
func stillLeaked(c leakCandidate, use map[netip.Addr][]ipOwner) func(ipam.Allocation) error {
	return func(al ipam.Allocation) error {
		cur := ""
		if al.Handle != nil {
			cur = *al.Handle
		}
		attrs := al.Attrs.ActiveOwnerAttrs
		want := reportAttrs(c.Entry)
		if c.Entry.Attributes == nil {
			// Compare only what upstream's fields carry.
			attrs = reportAttrs(reportAllocation{Pod: attrs[ipam.AttrPod], Namespace: attrs[ipam.AttrNamespace],
				Node: attrs[ipam.AttrNode], Type: attrs[ipam.AttrType]})
		}
		switch {
		case cur != c.Entry.Handle:
			return fmt.Errorf("it now belongs to handle %q, not %q as in the report", cur, c.Entry.Handle)
		case c.Entry.SequenceNumber != nil && al.SequenceNumber != *c.Entry.SequenceNumber:
			return fmt.Errorf("it was released and assigned again since the report (sequence number %d, the report has %d)",
				al.SequenceNumber, *c.Entry.SequenceNumber)
		case !maps.Equal(attrs, want):
			return errors.New("its owner attributes changed since the report")
		case al.Attrs.ReleasedAt != nil:
			return errors.New("it is cooling down after a release")
		}
		if owners := use[c.IP]; len(owners) > 0 {
			return fmt.Errorf("it is now in use by %s", owners[0])
		}
		rule, reason := ipam.UnusedVerdict(cur, al.Attrs.ActiveOwnerAttrs)
		switch {
		case rule == "":
			return fmt.Errorf("it is not a leak: %s", reason)
		case rule != c.Rule:
			return fmt.Errorf("it is now leaked by rule %s, not %s as in the report", rule, c.Rule)
		}
		return nil
	}
}

// currentUsers reads who uses each address now: workload endpoints and
// node tunnel addresses.
func currentUsers(ctx context.Context, ds datastore.Interface) (map[netip.Addr][]ipOwner, error) {
	var in checkInput
	nodes, err := ds.List(ctx, datastore.ListOptions{Kind: "Node"})
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	for _, r := range nodes.Items {
		if n, ok := r.(*resources.Node); ok {
			in.Nodes = append(in.Nodes, n)
		}
	}
	weps, err := ds.List(ctx, datastore.ListOptions{Kind: "WorkloadEndpoint"})
	if err != nil {
		return nil, fmt.Errorf("listing workload endpoints: %w", err)
	}
	for _, r := range weps.Items {
		if w, ok := r.(*resources.WorkloadEndpoint); ok {
			in.WEPs = append(in.WEPs, w)
		}
	}
	return usersOf(in), nil
}

func (o *IPAMReleaseOptions) releaseFromReports(ctx context.Context, s *ipamSession, out io.Writer) error {
	ci, err := clusterInformation(ctx, s.ds)
	if err != nil {
		return fmt.Errorf("reading ClusterInformation: %w", err)
	}
	locked := ci.Spec.DatastoreReady != nil && !*ci.Spec.DatastoreReady
	var releases []leakCandidate
	var handles []reportHandle
	usable := 0
	for _, path := range o.Reports {
		r, err := readReport(path)
		if err != nil {
			return err
		}
		stale := false
		for _, rf := range reportRefusals(r, ci, locked, version.Version) {
			switch {
			case !rf.forceable:
				fmt.Fprintf(o.f.Streams.ErrOut, "Skipping report %s: %s\n", path, rf.msg)
				stale = true
			case o.Force:
				fmt.Fprintf(o.f.Streams.ErrOut, "WARNING: %s (continuing because of --force)\n", rf.msg)
			default:
				return fmt.Errorf("refusing to release from report %s: %s (override with --force)", path, rf.msg)
			}
		}
		if stale {
			continue
		}
		usable++
		rs, err := leakedReleases(r)
		if err != nil {
			return fmt.Errorf("report %s: %w", path, err)
		}
		releases = append(releases, rs...)
		handles = append(handles, r.LeakedHandles...)
	}
	if usable == 0 {
		return errors.New("no usable report: every report is stale (the datastore changed since `ipam check -o`)")
	}
	// Each address is checked again against the current state before it
	// is freed: the report may be old, and only a leak may be released.
	use, err := currentUsers(ctx, s.ds)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Releasing %d old IPs...\n", len(releases))
	released := 0
	skip := func(ip netip.Addr, why string) {
		fmt.Fprint(out, "x")
		fmt.Fprintf(o.f.Streams.ErrOut, "\nnot releasing %s: %s\n", ip, why)
	}
	for _, c := range releases {
		if c.Skip != "" {
			skip(c.IP, c.Skip)
			continue
		}
		un, err := s.alloc.ReleaseIPs(ctx, ipam.ReleaseOptions{Address: c.IP, Guard: stillLeaked(c, use)})
		var refused *ipam.ReleaseRefusedError
		switch {
		case errors.As(err, &refused):
			skip(c.IP, refused.Err.Error())
			continue
		case err != nil:
			skip(c.IP, err.Error())
			continue
		case slices.Contains(un, c.IP):
			skip(c.IP, "it is no longer allocated")
			continue
		}
		fmt.Fprint(out, ".")
		released++
	}
	if len(releases) > 0 {
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "Released %d IPs successfully\n", released)
	if n := releaseLeakedHandles(ctx, s.store, handles, o.f.Streams.ErrOut); n > 0 {
		fmt.Fprintf(out, "Released %d leaked handles\n", n)
	}
	fmt.Fprintln(out, "You may now unlock the data store.")
	return nil
}

// releaseLeakedHandles deletes the reported empty handles that are still
// empty and unchanged (same revision).
func releaseLeakedHandles(ctx context.Context, st ipam.Store, hs []reportHandle, errOut io.Writer) int {
	n := 0
	for _, rh := range hs {
		h, err := st.GetHandle(ctx, rh.ID)
		if err != nil {
			continue
		}
		if h.Revision != rh.Revision {
			fmt.Fprintf(errOut, "not releasing handle %s: it changed since the report\n", rh.ID)
			continue
		}
		if err := st.DeleteHandle(ctx, h); err != nil {
			fmt.Fprintf(errOut, "not releasing handle %s: %v\n", rh.ID, err)
			continue
		}
		n++
	}
	return n
}
