package cli

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/resources"
)

func TestCountCell(t *testing.T) {
	tests := []struct {
		n, total float64
		want     string
	}{
		{7, 65536, "7 (0%)"},
		{65529, 65536, "65529 (100%)"},
		{7, 64, "7 (11%)"},
		{57, 64, "57 (89%)"},
		{0, 0, "0 (0%)"},
		{1048576, 1048576, "1.0486e+06 (100%)"},
	}
	for _, tt := range tests {
		if got := countCell(tt.n, tt.total); got != tt.want {
			t.Errorf("countCell(%v, %v) = %q, want %q", tt.n, tt.total, got, tt.want)
		}
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// TestUtilizationTable pins the rendered layout to upstream's tablewriter
// v0.0.5 output (spec §4.7).
func TestUtilizationTable(t *testing.T) {
	rep := &ipam.UsageReport{Pools: []ipam.PoolUsage{{
		Pool:     ipam.Pool{Name: "default", CIDR: mustPrefix("10.244.0.0/16"), BlockSize: 26},
		Capacity: 65536, InUse: 7, Free: 65529,
		Blocks:      []ipam.BlockUsage{{CIDR: mustPrefix("10.244.1.0/26"), Capacity: 64, InUse: 7, Free: 57}},
		BlocksTotal: 1024, BlocksFree: 1023,
	}}}
	tests := []struct {
		name       string
		showBlocks bool
		want       string
	}{
		{"pools", false, `+----------+---------------+-----------+------------+--------------+--------------+
| GROUPING |     CIDR      | IPS TOTAL | IPS IN USE | IPS RESERVED |   IPS FREE   |
+----------+---------------+-----------+------------+--------------+--------------+
| IP Pool  | 10.244.0.0/16 |     65536 | 7 (0%)     | 0 (0%)       | 65529 (100%) |
+----------+---------------+-----------+------------+--------------+--------------+
`},
		{"blocks", true, `+----------+---------------+-----------+------------+--------------+--------------+
| GROUPING |     CIDR      | IPS TOTAL | IPS IN USE | IPS RESERVED |   IPS FREE   |
+----------+---------------+-----------+------------+--------------+--------------+
| IP Pool  | 10.244.0.0/16 |     65536 | 7 (0%)     | 0 (0%)       | 65529 (100%) |
| Block    | 10.244.1.0/26 |        64 | 7 (11%)    | 0 (0%)       | 57 (89%)     |
+----------+---------------+-----------+------------+--------------+--------------+
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			renderTable(&b, utilizationRows(rep, tt.showBlocks))
			if b.String() != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), tt.want)
			}
		})
	}
	lines := capacityLines(rep)
	if len(lines) != 1 || lines[0] != "IP Pool default (10.244.0.0/16): room for 1023 more /26 blocks (one per new node), 1 in use." {
		t.Errorf("capacity lines: %q", lines)
	}
}

func TestUtilizationRowsOutsideBlocks(t *testing.T) {
	rep := &ipam.UsageReport{Outside: []ipam.BlockUsage{{CIDR: mustPrefix("10.9.0.0/26"), Capacity: 64, InUse: 1}}}
	if got := utilizationRows(rep, false).Rows; len(got) != 0 {
		t.Errorf("without --show-blocks, outside blocks give no rows: %q", got)
	}
	got := utilizationRows(rep, true).Rows
	if len(got) != 1 || got[0][0] != "Block" || got[0][1] != "10.9.0.0/26" {
		t.Errorf("outside block rows: %q", got)
	}
}

func TestConfigTable(t *testing.T) {
	var b bytes.Buffer
	renderTable(&b, configRows(ipam.DefaultConfig()))
	want := `+------------------------------+-----------+
|           PROPERTY           |   VALUE   |
+------------------------------+-----------+
| StrictAffinity               | false     |
| AutoAllocateBlocks           | true      |
| MaxBlocksPerHost             |         0 |
| KubeVirtVMAddressPersistence | "Enabled" |
| IPCooldownSeconds            |         0 |
+------------------------------+-----------+
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestBorrowedRows(t *testing.T) {
	rep := &ipam.BorrowedReport{IPs: []ipam.BorrowedIP{
		{IP: netip.MustParseAddr("10.0.0.5"), BorrowingNode: "n2", Block: mustPrefix("10.0.0.0/26"), BlockOwner: "n1", BlockAffinity: "host:n1", Type: "pod", AllocatedTo: "ns/p"},
		{IP: netip.MustParseAddr("10.0.0.70"), BorrowingNode: "n2", Block: mustPrefix("10.0.0.64/26"), BlockAffinity: "virtual:lb", Type: "vxlanTunnelAddress"},
	}}
	got := borrowedRows(rep)
	want := [][]string{
		{"10.0.0.5", "n2", "10.0.0.0/26", "n1", "pod", "ns/p"},
		{"10.0.0.70", "n2", "10.0.0.64/26", "virtual:lb", "vxlanTunnelAddress", ""},
	}
	if strings.Join(got.Header, "|") != "IP|BORROWING-NODE|BLOCK|BLOCK OWNER|TYPE|ALLOCATED-TO" {
		t.Errorf("header %q", got.Header)
	}
	for i := range want {
		if strings.Join(got.Rows[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("row %d = %q, want %q", i, got.Rows[i], want[i])
		}
	}
}

func TestIPLines(t *testing.T) {
	h := "k8s-pod-network.abc"
	tests := []struct {
		name string
		info ipam.IPInfo
		want string
	}{
		{"free", ipam.IPInfo{IP: netip.MustParseAddr("10.0.0.9")}, "10.0.0.9 is not assigned"},
		{"no attrs", ipam.IPInfo{IP: netip.MustParseAddr("10.0.0.1"), Allocated: true},
			"IP 10.0.0.1 is in use\nHandle ID: <none>\nNo Active Owner attributes defined"},
		{"attrs", ipam.IPInfo{IP: netip.MustParseAddr("10.0.0.2"), Allocated: true, Handle: &h, Attrs: ipam.AllocationAttribute{
			ActiveOwnerAttrs:    map[string]string{"pod": "web", "namespace": "prod", "node": "n1"},
			AlternateOwnerAttrs: map[string]string{"pod": "old"},
		}}, "IP 10.0.0.2 is in use\nHandle ID: k8s-pod-network.abc\nActive Owner Attributes:\n  namespace: prod\n  node: n1\n  pod: web\nAlternate Owner Attributes:\n  pod: old"},
	}
	for _, tt := range tests {
		if got := strings.Join(ipLines(&tt.info), "\n"); got != tt.want {
			t.Errorf("%s: got\n%s\nwant\n%s", tt.name, got, tt.want)
		}
	}
}

func TestSplitCIDR(t *testing.T) {
	tests := []struct {
		cidr      string
		parts     int
		blockSize int
		want      string
		wantErr   bool
	}{
		{"10.244.0.0/16", 4, 26, "10.244.0.0/18 10.244.64.0/18 10.244.128.0/18 10.244.192.0/18", false},
		{"10.0.0.0/24", 2, 26, "10.0.0.0/25 10.0.0.128/25", false},
		{"10.0.0.0/24", 8, 26, "", true},
		{"fd00::/120", 2, 122, "fd00::/121 fd00::80/121", false},
		{"255.255.255.0/24", 4, 26, "255.255.255.0/26 255.255.255.64/26 255.255.255.128/26 255.255.255.192/26", false},
	}
	for _, tt := range tests {
		got, err := splitCIDR(mustPrefix(tt.cidr), tt.parts, tt.blockSize)
		if (err != nil) != tt.wantErr {
			t.Errorf("splitCIDR(%s, %d): err %v", tt.cidr, tt.parts, err)
			continue
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if strings.Join(s, " ") != tt.want {
			t.Errorf("splitCIDR(%s, %d) = %v, want %s", tt.cidr, tt.parts, s, tt.want)
		}
	}
	if n := splitPoolName(strings.Repeat("a", 300), 3); len(n) != len("split-")+245+2 {
		t.Errorf("long split name has length %d", len(n))
	}
}

var testTime = time.Unix(1700000000, 0)

func seq(n uint64) *uint64 { return &n }

func TestScanIPAM(t *testing.T) {
	mk := func(cidr, aff string, allocs map[int]string, nodes map[int]string) *ipam.Block {
		b := ipam.NewBlock(mustPrefix(cidr), aff, testTime)
		for ord, h := range allocs {
			h := h
			i := len(b.Attributes)
			b.Allocations[ord] = &i
			b.Attributes = append(b.Attributes, ipam.AllocationAttribute{HandleID: &h, ActiveOwnerAttrs: map[string]string{"node": nodes[ord]}})
			b.Unallocated = removeInt(b.Unallocated, ord)
		}
		return b
	}
	node := func(name, ipip string) *resources.Node {
		n := &resources.Node{}
		n.Name = name
		if ipip != "" {
			n.Spec.BGP = &resources.NodeBGPSpec{IPv4IPIPTunnelAddr: ipip}
		}
		return n
	}
	wep := func(name string, ips ...string) *resources.WorkloadEndpoint {
		w := &resources.WorkloadEndpoint{}
		w.Name, w.Namespace, w.Spec.IPNetworks = name, "ns", ips
		return w
	}
	pools := []ipam.Pool{{Name: "p", CIDR: mustPrefix("10.0.0.0/16"), BlockSize: 26}}
	tests := []struct {
		name  string
		in    checkInput
		check func(t *testing.T, r *checkResult)
	}{
		{"clean", checkInput{
			Blocks:  []*ipam.Block{mk("10.0.0.0/26", "host:n1", map[int]string{0: "tun", 1: "pod"}, map[int]string{0: "n1", 1: "n1"})},
			Handles: []*ipam.Handle{{ID: "tun"}, {ID: "pod"}},
			Pools:   pools, Nodes: []*resources.Node{node("n1", "10.0.0.0")},
			WEPs: []*resources.WorkloadEndpoint{wep("w", "10.0.0.1/32")},
		}, func(t *testing.T, r *checkResult) {
			if r.Problems() != 0 {
				t.Errorf("problems = %d, want 0: %+v", r.Problems(), r)
			}
		}},
		{"problems", checkInput{
			Blocks: []*ipam.Block{
				mk("10.0.0.0/26", "host:gone", map[int]string{0: "k8s-pod-network.leak", 1: "nohandle", 3: "manual"}, map[int]string{0: "n1", 1: "n1", 3: "n1"}),
			},
			Handles: []*ipam.Handle{{ID: "k8s-pod-network.leak"}, {ID: "empty"}, {ID: "manual"}},
			Pools:   pools, Nodes: []*resources.Node{node("n1", "")},
			WEPs: []*resources.WorkloadEndpoint{wep("a", "10.0.0.1/32"), wep("b", "10.0.0.1/32"), wep("c", "10.0.0.2/32"), wep("d", "192.168.9.9/32")},
		}, func(t *testing.T, r *checkResult) {
			if len(r.Leaked) != 1 || r.Leaked[0].IP.String() != "10.0.0.0" || r.Leaked[0].Verdict.Rule != ipam.LeakWorkloadGone {
				t.Errorf("leaked = %v", r.Leaked)
			}
			// 10.0.0.3, under a handle that is not a container's, was assigned on purpose.
			if r.OnPurpose != 1 {
				t.Errorf("on purpose = %d, want 1", r.OnPurpose)
			}
			if len(r.NoAlloc) != 1 || r.NoAlloc[0].String() != "10.0.0.2" {
				t.Errorf("no allocation = %v", r.NoAlloc)
			}
			if len(r.NotInPool) != 1 || r.NotInPool[0].String() != "192.168.9.9" {
				t.Errorf("not in pool = %v", r.NotInPool)
			}
			if len(r.Duplicates) != 1 || r.Duplicates[0].String() != "10.0.0.1" {
				t.Errorf("duplicates = %v", r.Duplicates)
			}
			if strings.Join(r.HandlesNoIP, ",") != "empty" || strings.Join(r.Missing, ",") != "nohandle" {
				t.Errorf("handles without IPs %v, missing handles %v", r.HandlesNoIP, r.Missing)
			}
			if len(r.OrphanBlock) != 1 {
				t.Errorf("orphan blocks = %d, want 1", len(r.OrphanBlock))
			}
			if r.Problems() != 7 {
				t.Errorf("problems = %d, want 7", r.Problems())
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, scanIPAM(tt.in)) })
	}
}

func removeInt(s []int, v int) []int {
	out := s[:0]
	for _, x := range s {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

func TestReportRefusals(t *testing.T) {
	ci := &resources.ClusterInformation{}
	ci.ResourceVersion = "7"
	ci.Spec.ClusterGUID = "g"
	good := ipamReport{ClusterGUID: "g", Version: "v1", ClusterInformationRevision: "7"}
	tests := []struct {
		name      string
		mod       func(r *ipamReport)
		locked    bool
		want      int
		forceable bool
	}{
		{"ok", func(*ipamReport) {}, true, 0, false},
		{"unlocked", func(*ipamReport) {}, false, 1, true},
		{"guid", func(r *ipamReport) { r.ClusterGUID = "x" }, true, 1, true},
		{"version", func(r *ipamReport) { r.Version = "v0" }, true, 1, true},
		{"stale", func(r *ipamReport) { r.ClusterInformationRevision = "5" }, true, 1, false},
	}
	for _, tt := range tests {
		r := good
		tt.mod(&r)
		got := reportRefusals(&r, ci, tt.locked, "v1")
		if len(got) != tt.want || (tt.want == 1 && got[0].forceable != tt.forceable) {
			t.Errorf("%s: refusals %+v", tt.name, got)
		}
	}
	rel, err := leakedReleases(&ipamReport{Allocations: map[string][]reportAllocation{
		"10.0.0.2": {{IP: "10.0.0.2", Handle: "h", SequenceNumber: seq(4)}},
		"10.0.0.1": {{IP: "10.0.0.1", Handle: "h", InUse: true}},
		"10.0.0.3": {{IP: "10.0.0.3", CoolingDown: true}},
	}})
	// A report without reasons: the rule comes from the owner; "h" is not a
	// container's handle, so 10.0.0.2 was assigned on purpose and is skipped.
	if err != nil || len(rel) != 1 || rel[0].IP.String() != "10.0.0.2" || *rel[0].Entry.SequenceNumber != 4 || rel[0].Entry.Handle != "h" ||
		rel[0].Rule != "" || !strings.Contains(rel[0].Skip, "assigned on purpose") {
		t.Errorf("leakedReleases = %+v, %v", rel, err)
	}
	rel, err = leakedReleases(&ipamReport{Allocations: map[string][]reportAllocation{
		"10.0.0.2": {{IP: "10.0.0.2", Handle: "k8s-pod-network.x", Pod: "p", Namespace: "ns"}},
		"10.0.0.4": {{IP: "10.0.0.4", Handle: "h", Reason: "assigned on purpose", InUse: true}},
		"10.0.0.5": {{IP: "10.0.0.5", Handle: "k8s-pod-network.y", Reason: "leaked", LeakRule: ipam.LeakWorkloadGone}},
	}})
	if err != nil || len(rel) != 2 || rel[0].Rule != ipam.LeakWorkloadGone || rel[0].Skip != "" || rel[1].IP.String() != "10.0.0.5" {
		t.Errorf("leakedReleases = %+v, %v", rel, err)
	}
}
