// Package checksystem is `calicoctl node checksystem`: it checks that this
// host offers the kernel features, sysctls and tools the node agent needs,
// and gives a verdict. Probes that create devices or nftables tables do so
// in throwaway network namespaces, never in the host's.
package checksystem

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Status is the outcome of one check.
type Status string

// Statuses. Fail on a required feature makes the verdict negative.
const (
	OK   Status = "OK"
	Warn Status = "WARNING"
	Fail Status = "FAIL"
)

// Result is one row of the report.
type Result struct {
	Feature string
	Status  Status
	Detail  string
}

// Verdict messages (the success line is upstream's).
const (
	VerdictOK   = "System meets minimum system requirements to run Calico!"
	VerdictFail = "System doesn't meet minimum system requirements to run Calico!"
)

// MinKernel is the oldest kernel upstream accepts.
var MinKernel = [3]int{2, 6, 24}

// Kernel runs the probes that need the kernel's help. Implementations must
// not change the host's network namespace.
type Kernel interface {
	// Release is the kernel release (uname -r).
	Release() (string, error)
	// CanCreateLink creates and deletes a link of the given kind ("veth",
	// "vxlan", "bridge") in a scratch network namespace.
	CanCreateLink(kind string) error
	// IPIP reports whether the ipip device type exists, and why not.
	IPIP() (bool, string)
	// NFTables creates our kind of table (NAT chain, masquerade and conntrack
	// rules) in a scratch network namespace and deletes it. ErrNoNFT means
	// the nft binary is missing.
	NFTables(ctx context.Context) error
}

// ErrNoNFT is returned by Kernel.NFTables when the nft CLI is not installed.
var ErrNoNFT = errors.New("the nft command is not installed (Debian package nftables)")

// Config is what Check looks at.
type Config struct {
	// Geteuid reports the effective user id (os.Geteuid).
	Geteuid func() int
	// ProcSys is the sysctl tree (default /proc/sys).
	ProcSys string
	Kernel  Kernel
	// IPIPPools lists the enabled pools that use IPIP. nil, or an error,
	// means the datastore could not be asked.
	IPIPPools func(ctx context.Context) ([]string, error)
}

// Check runs every check in a fixed order.
func Check(ctx context.Context, cfg Config) []Result {
	if cfg.ProcSys == "" {
		cfg.ProcSys = "/proc/sys"
	}
	if cfg.Geteuid == nil {
		cfg.Geteuid = os.Geteuid
	}
	var out []Result
	add := func(feature string, st Status, format string, args ...any) {
		out = append(out, Result{Feature: feature, Status: st, Detail: fmt.Sprintf(format, args...)})
	}

	if uid := cfg.Geteuid(); uid == 0 {
		add("root", OK, "running as root")
	} else {
		add("root", Fail, "running as uid %d; the node agent needs root (CAP_NET_ADMIN)", uid)
	}
	out = append(out, kernelVersion(cfg.Kernel))
	out = append(out, ipForward(cfg.ProcSys))
	for _, kind := range []string{"veth", "vxlan", "bridge"} {
		if err := cfg.Kernel.CanCreateLink(kind); err != nil {
			add(kind, Fail, "cannot create a %s device: %v", kind, err)
		} else {
			add(kind, OK, "%s device created and deleted in a scratch namespace", kind)
		}
	}
	out = append(out, ipip(ctx, cfg))
	switch err := cfg.Kernel.NFTables(ctx); {
	case err == nil:
		add("nftables", OK, "nft present; NAT table with masquerade and conntrack rules created in a scratch namespace")
	case errors.Is(err, ErrNoNFT):
		add("nftables", Fail, "%v; natOutgoing and floating IPs need it", err)
	default:
		add("nftables", Fail, "%v", err)
	}
	if exists(filepath.Join(cfg.ProcSys, "net/netfilter/nf_conntrack_max")) {
		add("conntrack", OK, "nf_conntrack present (%s)", filepath.Join(cfg.ProcSys, "net/netfilter"))
	} else {
		add("conntrack", Fail, "nf_conntrack not loaded: %s missing", filepath.Join(cfg.ProcSys, "net/netfilter/nf_conntrack_max"))
	}
	if exists(filepath.Join(cfg.ProcSys, "net/ipv6")) {
		add("ipv6", OK, "IPv6 enabled")
	} else {
		add("ipv6", Warn, "IPv6 disabled in the kernel; IPv6 pools cannot be used")
	}
	return out
}

// Verdict says whether the results allow running the agent.
func Verdict(rs []Result) (bool, string) {
	var missing []string
	for _, r := range rs {
		if r.Status == Fail {
			missing = append(missing, r.Feature)
		}
	}
	if len(missing) == 0 {
		return true, VerdictOK
	}
	return false, fmt.Sprintf("%s Missing: %s.", VerdictFail, strings.Join(missing, ", "))
}

// Rows is the report as a table (FEATURE | STATUS | DETAIL).
func Rows(rs []Result) (header []string, rows [][]string) {
	for _, r := range rs {
		rows = append(rows, []string{r.Feature, string(r.Status), r.Detail})
	}
	return []string{"FEATURE", "STATUS", "DETAIL"}, rows
}

// short keeps an error's text to one readable line.
func short(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	if len(s) > 100 {
		s = s[:97] + "..."
	}
	return s
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func kernelVersion(k Kernel) Result {
	rel, err := k.Release()
	if err != nil {
		return Result{"kernel", Warn, fmt.Sprintf("cannot read the kernel version: %v", err)}
	}
	v, ok := ParseRelease(rel)
	if !ok {
		return Result{"kernel", Warn, fmt.Sprintf("unrecognised kernel release %q", rel)}
	}
	min := fmt.Sprintf("%d.%d.%d", MinKernel[0], MinKernel[1], MinKernel[2])
	for i := range v {
		if v[i] != MinKernel[i] {
			if v[i] < MinKernel[i] {
				return Result{"kernel", Fail, fmt.Sprintf("kernel %s is older than %s", rel, min)}
			}
			break
		}
	}
	return Result{"kernel", OK, fmt.Sprintf("%s (>= %s)", rel, min)}
}

// ParseRelease reads the leading x.y[.z] of a kernel release.
func ParseRelease(rel string) ([3]int, bool) {
	var v [3]int
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return v, false
	}
	for i, p := range parts {
		end := 0
		for end < len(p) && p[end] >= '0' && p[end] <= '9' {
			end++
		}
		if end == 0 {
			if i < 2 {
				return v, false
			}
			break
		}
		n, err := strconv.Atoi(p[:end])
		if err != nil {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

func ipForward(procSys string) Result {
	p := filepath.Join(procSys, "net/ipv4/ip_forward")
	cur, err := os.ReadFile(p)
	if err != nil {
		return Result{"ip_forward", Fail, fmt.Sprintf("cannot read %s: %v", p, err)}
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return Result{"ip_forward", Fail, fmt.Sprintf("%s is not writable (the agent sets it to 1): %v", p, err)}
	}
	_ = f.Close()
	return Result{"ip_forward", OK, fmt.Sprintf("%s writable (now %s)", p, strings.TrimSpace(string(cur)))}
}

func ipip(ctx context.Context, cfg Config) Result {
	ok, reason := cfg.Kernel.IPIP()
	if ok {
		return Result{"ipip", OK, reason}
	}
	if cfg.IPIPPools == nil {
		return Result{"ipip", Warn, "not available: " + reason + "; only needed by IPIP pools"}
	}
	pools, err := cfg.IPIPPools(ctx)
	switch {
	case err != nil:
		return Result{"ipip", Warn, fmt.Sprintf("not available: %s; could not check the datastore for IPIP pools: %s", reason, short(err))}
	case len(pools) > 0:
		return Result{"ipip", Fail, fmt.Sprintf("not available but IP pools use IPIP (%s): %s", strings.Join(pools, ", "), reason)}
	default:
		return Result{"ipip", Warn, "not available: " + reason + "; no IP pool uses IPIP"}
	}
}
