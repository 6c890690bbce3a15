package checksystem

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

type fakeKernel struct {
	release    string
	linkErr    map[string]error
	ipip       bool
	ipipReason string
	nftErr     error
}

func (k fakeKernel) Release() (string, error)        { return k.release, nil }
func (k fakeKernel) CanCreateLink(kind string) error { return k.linkErr[kind] }
func (k fakeKernel) IPIP() (bool, string)            { return k.ipip, k.ipipReason }
func (k fakeKernel) NFTables(context.Context) error  { return k.nftErr }

// procSys builds a fake /proc/sys with the given files.
func procSys(t *testing.T, files ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range files {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

var fullProc = []string{"net/ipv4/ip_forward", "net/netfilter/nf_conntrack_max", "net/ipv6/conf/all/forwarding"}

func statuses(rs []Result) map[string]Status {
	m := map[string]Status{}
	for _, r := range rs {
		m[r.Feature] = r.Status
	}
	return m
}

func TestCheck(t *testing.T) {
	noIPIP := fakeKernel{release: "6.18.44-fc", ipipReason: "kernel has no ipip device type"}
	tests := []struct {
		name     string
		uid      int
		kernel   fakeKernel
		proc     []string
		pools    func(context.Context) ([]string, error)
		want     map[string]Status
		wantOK   bool
		inDetail map[string]string
	}{
		{
			name: "all present", kernel: fakeKernel{release: "6.1.0-13-amd64", ipip: true, ipipReason: "ipip device type available"}, proc: fullProc,
			want:   map[string]Status{"root": OK, "kernel": OK, "ip_forward": OK, "veth": OK, "vxlan": OK, "bridge": OK, "ipip": OK, "nftables": OK, "conntrack": OK, "ipv6": OK},
			wantOK: true,
		},
		{
			name: "no ipip and datastore unreachable: a warning", kernel: noIPIP, proc: fullProc,
			pools:    func(context.Context) ([]string, error) { return nil, errors.New("connection refused") },
			want:     map[string]Status{"ipip": Warn},
			wantOK:   true,
			inDetail: map[string]string{"ipip": "could not check the datastore"},
		},
		{
			name: "no ipip and no datastore configured: a warning", kernel: noIPIP, proc: fullProc,
			want: map[string]Status{"ipip": Warn}, wantOK: true,
			inDetail: map[string]string{"ipip": "kernel has no ipip device type"},
		},
		{
			name: "no ipip, no IPIP pool: a warning", kernel: noIPIP, proc: fullProc,
			pools: func(context.Context) ([]string, error) { return nil, nil },
			want:  map[string]Status{"ipip": Warn}, wantOK: true,
			inDetail: map[string]string{"ipip": "no IP pool uses IPIP"},
		},
		{
			name: "no ipip but an IPIP pool: fatal", kernel: noIPIP, proc: fullProc,
			pools: func(context.Context) ([]string, error) { return []string{"default-ipv4-ippool"}, nil },
			want:  map[string]Status{"ipip": Fail}, wantOK: false,
			inDetail: map[string]string{"ipip": "default-ipv4-ippool"},
		},
		{
			name: "not root", uid: 1000, kernel: fakeKernel{release: "6.1.0", ipip: true}, proc: fullProc,
			want: map[string]Status{"root": Fail}, wantOK: false,
		},
		{
			name: "no vxlan, no nft", kernel: fakeKernel{release: "6.1.0", ipip: true, linkErr: map[string]error{"vxlan": errors.New("operation not supported")}, nftErr: ErrNoNFT},
			proc: fullProc, want: map[string]Status{"vxlan": Fail, "nftables": Fail, "veth": OK}, wantOK: false,
			inDetail: map[string]string{"nftables": "nftables", "vxlan": "operation not supported"},
		},
		{
			name: "no conntrack, no ipv6, no ip_forward", kernel: fakeKernel{release: "6.1.0", ipip: true}, proc: nil,
			want: map[string]Status{"conntrack": Fail, "ipv6": Warn, "ip_forward": Fail}, wantOK: false,
		},
		{
			name: "ancient kernel", kernel: fakeKernel{release: "2.6.18-old", ipip: true}, proc: fullProc,
			want: map[string]Status{"kernel": Fail}, wantOK: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := Check(context.Background(), Config{
				Geteuid: func() int { return tt.uid }, ProcSys: procSys(t, tt.proc...), Kernel: tt.kernel, IPIPPools: tt.pools,
			})
			got := statuses(rs)
			if len(rs) != 10 {
				t.Fatalf("got %d results, want 10: %+v", len(rs), rs)
			}
			for f, st := range tt.want {
				if got[f] != st {
					t.Errorf("%s = %s, want %s (results %+v)", f, got[f], st, rs)
				}
			}
			for f, sub := range tt.inDetail {
				i := slices.IndexFunc(rs, func(r Result) bool { return r.Feature == f })
				if !strings.Contains(rs[i].Detail, sub) {
					t.Errorf("%s detail %q does not contain %q", f, rs[i].Detail, sub)
				}
			}
			ok, msg := Verdict(rs)
			if ok != tt.wantOK {
				t.Errorf("verdict = %v %q, want %v", ok, msg, tt.wantOK)
			}
			if ok && msg != VerdictOK || !ok && !strings.HasPrefix(msg, VerdictFail) {
				t.Errorf("verdict message %q", msg)
			}
		})
	}
}

func TestVerdictNamesMissing(t *testing.T) {
	ok, msg := Verdict([]Result{{"veth", OK, ""}, {"vxlan", Fail, ""}, {"ipip", Warn, ""}, {"nftables", Fail, ""}})
	if ok || msg != VerdictFail+" Missing: vxlan, nftables." {
		t.Fatalf("Verdict = %v %q", ok, msg)
	}
}

func TestRows(t *testing.T) {
	h, rows := Rows([]Result{{"veth", OK, "fine"}, {"ipip", Warn, "not available"}})
	if !slices.Equal(h, []string{"FEATURE", "STATUS", "DETAIL"}) || len(rows) != 2 ||
		!slices.Equal(rows[1], []string{"ipip", "WARNING", "not available"}) {
		t.Fatalf("Rows = %v %v", h, rows)
	}
}

func TestParseRelease(t *testing.T) {
	tests := []struct {
		in   string
		want [3]int
		ok   bool
	}{
		{"6.18.44-fc-v669", [3]int{6, 18, 44}, true},
		{"6.1.0-13-amd64", [3]int{6, 1, 0}, true},
		{"2.6.24", [3]int{2, 6, 24}, true},
		{"5.15-rc1", [3]int{5, 15, 0}, true},
		{"6", [3]int{}, false},
		{"x.y", [3]int{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseRelease(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseRelease(%q) = %v %v, want %v %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func linkNames(t *testing.T) []string {
	t.Helper()
	ls, err := netlink.LinkList()
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		t.Fatal(err)
	}
	var names []string
	for _, l := range ls {
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	return names
}

// TestPrivilegedSystemProbes runs the real probes; they must work on this
// kernel and leave the host's namespace exactly as it was.
func TestPrivilegedSystemProbes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the probes create network namespaces")
	}
	before := linkNames(t)
	k := System{}
	for _, kind := range []string{"veth", "vxlan", "bridge"} {
		if err := k.CanCreateLink(kind); err != nil {
			t.Errorf("CanCreateLink(%s) = %v", kind, err)
		}
	}
	if err := k.CanCreateLink("nonsense"); err == nil {
		t.Errorf("CanCreateLink(nonsense) succeeded")
	}
	ok, reason := k.IPIP()
	if reason == "" {
		t.Errorf("IPIP() = %v with no reason", ok)
	}
	t.Logf("ipip: %v (%s)", ok, reason)
	err := k.NFTables(context.Background())
	if _, lookErr := exec.LookPath("nft"); lookErr != nil {
		if !errors.Is(err, ErrNoNFT) {
			t.Errorf("NFTables without nft = %v, want ErrNoNFT", err)
		}
	} else if err != nil {
		t.Errorf("NFTables = %v", err)
	}
	if after := linkNames(t); !slices.Equal(before, after) {
		t.Errorf("host links changed: %v -> %v", before, after)
	}
	rel, err := k.Release()
	if _, ok := ParseRelease(rel); err != nil || !ok {
		t.Errorf("Release = %q, %v", rel, err)
	}
}
