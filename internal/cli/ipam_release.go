package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
			"ClusterInformation revision); each address is released only if its handle and sequence\n" +
			"number still match, so an address handed out again since is never freed.",
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
		ips, err := s.alloc.IPsByHandle(ctx, o.Handle)
		if errors.Is(err, datastore.ErrNotFound) {
			return fmt.Errorf("handle %q does not exist", o.Handle)
		}
		if err != nil {
			return err
		}
		if err := s.alloc.ReleaseByHandle(ctx, o.Handle); err != nil {
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

// leakedReleases lists the release requests for a report's leaked
// addresses (not in use, not cooling down), each guarded by its handle and
// sequence number.
func leakedReleases(r *ipamReport) ([]ipam.ReleaseOptions, error) {
	var out []ipam.ReleaseOptions
	for _, allocs := range r.Allocations {
		for _, a := range allocs {
			if a.InUse || a.CoolingDown {
				continue
			}
			ip, err := netip.ParseAddr(a.IP)
			if err != nil {
				return nil, fmt.Errorf("report lists a bad address %q", a.IP)
			}
			out = append(out, ipam.ReleaseOptions{Address: ip.Unmap(), Handle: a.Handle, SequenceNumber: a.SequenceNumber})
		}
	}
	slices.SortFunc(out, func(x, y ipam.ReleaseOptions) int { return x.Address.Compare(y.Address) })
	return out, nil
}

func (o *IPAMReleaseOptions) releaseFromReports(ctx context.Context, s *ipamSession, out io.Writer) error {
	ci, err := clusterInformation(ctx, s.ds)
	if err != nil {
		return fmt.Errorf("reading ClusterInformation: %w", err)
	}
	locked := ci.Spec.DatastoreReady != nil && !*ci.Spec.DatastoreReady
	var releases []ipam.ReleaseOptions
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
	fmt.Fprintf(out, "Releasing %d old IPs...\n", len(releases))
	released := 0
	for _, r := range releases {
		un, err := s.alloc.ReleaseIPs(ctx, r)
		if err != nil || slices.Contains(un, r.Address) {
			fmt.Fprint(out, "x")
			if err != nil {
				fmt.Fprintf(o.f.Streams.ErrOut, "\nnot releasing %s: %v\n", r.Address, err)
			}
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
