package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/e2e/clitest"
)

// ipamSeed is the seed-000 scenario: a /16 pool and nodes; addresses are then
// assigned with `ipam assign` so blocks land at known places.
const ipamSeed = `apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: default-ipv4-ippool}
spec: {cidr: 10.244.0.0/16}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: n1}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: n2}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: n3}
---
apiVersion: projectcalico.org/v3
kind: IPReservation
metadata: {name: keep-out}
spec: {reservedCIDRs: [10.244.2.32/30]}
`

// seedIPAM assigns 10.244.1.0-6 to n1 (its block 10.244.1.0/26),
// 10.244.2.0-2 to n2 (block 10.244.2.0/26) and 10.244.1.10 to n3, borrowed
// from n1's block.
func seedIPAM(t *testing.T, c *cluster) {
	t.Helper()
	c.mustRun(t, ipamSeed, "create", "-f", "-")
	out := c.mustRun(t, "", "ipam", "assign", "--node=n1", "--handle=h-n1a", "--ip=10.244.1.0")
	clitest.WantExact(t, "assign --ip", out, "Successfully assigned IP address 10.244.1.0 to handle h-n1a on node n1\n")
	out = c.mustRun(t, "", "ipam", "assign", "--node=n1", "--handle=h-n1b", "--num=6")
	if n := strings.Count(out, "Successfully assigned IP address 10.244.1."); n != 6 {
		t.Fatalf("assign --num=6 gave %d addresses in 10.244.1.0/26:\n%s", n, out)
	}
	c.mustRun(t, "", "ipam", "assign", "--node=n2", "--handle=h-n2a", "--ip=10.244.2.0")
	out = c.mustRun(t, "", "ipam", "assign", "--node=n2", "--handle=h-n2b", "--num=2")
	clitest.WantContains(t, "assign n2", out, "10.244.2.1 to handle h-n2b", "10.244.2.2 to handle h-n2b")
	c.mustRun(t, "", "ipam", "assign", "--node=n3", "--handle=h-n3", "--ip=10.244.1.10")
}

const showPools = `+----------+---------------+-----------+------------+--------------+--------------+
| GROUPING |     CIDR      | IPS TOTAL | IPS IN USE | IPS RESERVED |   IPS FREE   |
+----------+---------------+-----------+------------+--------------+--------------+
| IP Pool  | 10.244.0.0/16 |     65536 | 11 (0%)    | 4 (0%)       | 65521 (100%) |
+----------+---------------+-----------+------------+--------------+--------------+
IP Pool default-ipv4-ippool (10.244.0.0/16): room for 1022 more /26 blocks (one per new node), 2 in use.
`

const showBlocks = `+----------+---------------+-----------+------------+--------------+--------------+
| GROUPING |     CIDR      | IPS TOTAL | IPS IN USE | IPS RESERVED |   IPS FREE   |
+----------+---------------+-----------+------------+--------------+--------------+
| IP Pool  | 10.244.0.0/16 |     65536 | 11 (0%)    | 4 (0%)       | 65521 (100%) |
| Block    | 10.244.1.0/26 |        64 | 8 (12%)    | 0 (0%)       | 56 (88%)     |
| Block    | 10.244.2.0/26 |        64 | 3 (5%)     | 4 (6%)       | 57 (89%)     |
+----------+---------------+-----------+------------+--------------+--------------+
IP Pool default-ipv4-ippool (10.244.0.0/16): room for 1022 more /26 blocks (one per new node), 2 in use.
`

const showBorrowed = `+-------------+----------------+---------------+-------------+------+--------------+
|     IP      | BORROWING-NODE |     BLOCK     | BLOCK OWNER | TYPE | ALLOCATED-TO |
+-------------+----------------+---------------+-------------+------+--------------+
| 10.244.1.10 | n3             | 10.244.1.0/26 | n1          |      |              |
+-------------+----------------+---------------+-------------+------+--------------+
`

const showConfig = `+------------------------------+-----------+
|           PROPERTY           |   VALUE   |
+------------------------------+-----------+
| StrictAffinity               | false     |
| AutoAllocateBlocks           | true      |
| MaxBlocksPerHost             |         0 |
| KubeVirtVMAddressPersistence | "Enabled" |
| IPCooldownSeconds            |         0 |
+------------------------------+-----------+
`

func TestIPAMShow(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	seedIPAM(t, c)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"pools", []string{"ipam", "show"}, showPools},
		{"blocks", []string{"ipam", "show", "--show-blocks"}, showBlocks},
		{"borrowed", []string{"ipam", "show", "--show-borrowed"}, showBorrowed},
		{"configuration", []string{"ipam", "show", "--show-configuration"}, showConfig},
		{"ip in use", []string{"ipam", "show", "--ip=10.244.1.10"},
			"IP 10.244.1.10 is in use\nHandle ID: h-n3\nActive Owner Attributes:\n  node: n3\n  owner: calicoctl ipam assign\n"},
		{"ip free", []string{"ipam", "show", "--ip=10.244.1.40"}, "10.244.1.40 is not assigned\n"},
		{"ip outside pools", []string{"ipam", "show", "--ip=192.168.1.1"}, "192.168.1.1 is not assigned\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clitest.WantExact(t, strings.Join(tt.args, " "), c.mustRun(t, "", tt.args...), tt.want)
		})
	}
	out := c.mustRun(t, "", "ipam", "show", "--node=n2")
	clitest.WantContains(t, "show --node=n2", out, "Blocks affine to node n2:", "| Block    | 10.244.2.0/26 |",
		"Addresses assigned to node n2:", "| 10.244.2.2 | 10.244.2.0/26 | n2          | h-n2b  |")
	if strings.Contains(out, "10.244.1.") {
		t.Errorf("show --node=n2 lists n1's addresses:\n%s", out)
	}
	out = c.mustRun(t, "", "ipam", "show", "--node=n3")
	clitest.WantContains(t, "show --node=n3", out, "No blocks are affine to node n3.", "| 10.244.1.10 | 10.244.1.0/26 | n1 ")
}

// wepYAML is a workload endpoint on node using ips.
func wepYAML(node, pod string, ips ...string) string {
	var b strings.Builder
	b.WriteString("apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata:\n  name: " + node + "-k8s-" + pod + "-eth0\n  namespace: default\n")
	b.WriteString("spec:\n  orchestrator: k8s\n  node: " + node + "\n  pod: " + pod + "\n  endpoint: eth0\n  interfaceName: cali" + pod + "\n  ipNetworks:\n")
	for _, ip := range ips {
		b.WriteString("    - " + ip + "/32\n")
	}
	return b.String()
}

func TestIPAMCheckAndRelease(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	seedIPAM(t, c)
	// A pod on n2 whose workload endpoint never appeared: its address
	// (10.244.2.3, next in n2's block) is leaked. Every other address is
	// used by a workload.
	if ip := cniAssign(t, c, "n2", "d", strings.Repeat("d", 64)); ip != "10.244.2.3" {
		t.Fatalf("the pod got %s, want 10.244.2.3", ip)
	}
	weps := wepYAML("n1", "a", "10.244.1.0", "10.244.1.1", "10.244.1.2", "10.244.1.3", "10.244.1.4", "10.244.1.5", "10.244.1.6") +
		"---\n" + wepYAML("n2", "b", "10.244.2.0", "10.244.2.1", "10.244.2.2") + "---\n" + wepYAML("n3", "c", "10.244.1.10")
	c.mustRun(t, weps, "create", "-f", "-")

	out := c.mustRun(t, "", "ipam", "check", "--show-problem-ips")
	clitest.WantContains(t, "check", out, "Found 2 IPAM blocks.", "Found 1 active IP pools.", "Found 11 workload IPs.",
		"10.244.2.3 leaked: no workload endpoint uses it (pod default/d", "Found 1 IPs that are allocated in IPAM but not actually in use.",
		"Check complete; found 1 problems.\n")

	dir := t.TempDir()
	r0 := filepath.Join(dir, "r0.json")
	c.mustRun(t, "", "ipam", "check", "-o", r0)
	var rep map[string]any
	data, err := os.ReadFile(r0)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("report is not JSON: %v", err)
	}
	for _, k := range []string{"version", "clusterGUID", "datastoreLocked", "clusterInformationRevision", "clusterType", "allocations", "leakedHandles"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("report lacks %q", k)
		}
	}
	if a, _ := rep["allocations"].(map[string]any); len(a) != 12 {
		t.Errorf("report has %d allocations, want 12", len(a))
	}

	// Unlocked: refused. Locked after the report: the report is stale.
	_, errOut, code := c.run(t, "", "ipam", "release", "--from-report", r0)
	if code != 1 || !strings.Contains(errOut, "datastore is not locked") {
		t.Errorf("release from report while unlocked: exit %d, stderr %q", code, errOut)
	}
	clitest.WantExact(t, "lock", c.mustRun(t, "", "datastore", "migrate", "lock"), "Datastore locked.\n")
	_, errOut, code = c.run(t, "", "ipam", "release", "--from-report", r0)
	if code != 1 || !strings.Contains(errOut, "stale") {
		t.Errorf("release from a stale report: exit %d, stderr %q", code, errOut)
	}
	r1 := filepath.Join(dir, "r1.json")
	c.mustRun(t, "", "ipam", "check", "-o", r1)
	out = c.mustRun(t, "", "ipam", "release", "--from-report", r1)
	clitest.WantExact(t, "release --from-report", out, "Releasing 1 old IPs...\n.\nReleased 1 IPs successfully\nYou may now unlock the data store.\n")
	clitest.WantExact(t, "unlock", c.mustRun(t, "", "datastore", "migrate", "unlock"), "Datastore unlocked.\n")
	out = c.mustRun(t, "", "ipam", "check")
	clitest.WantContains(t, "check after release", out, "Check complete; found 0 problems.\n")
	clitest.WantExact(t, "show --ip", c.mustRun(t, "", "ipam", "show", "--ip=10.244.2.3"), "10.244.2.3 is not assigned\n")

	// Release by address and by handle.
	clitest.WantExact(t, "release --ip", c.mustRun(t, "", "ipam", "release", "--ip=10.244.1.10"), "Successfully released IP address 10.244.1.10\n")
	_, errOut, code = c.run(t, "", "ipam", "release", "--ip=10.244.1.10")
	if code != 1 || errOut != "IP address 10.244.1.10 is not assigned\n" {
		t.Errorf("second release: exit %d, stderr %q", code, errOut)
	}
	clitest.WantExact(t, "release --handle", c.mustRun(t, "", "ipam", "release", "--handle=h-n1b"), "Successfully released 6 IP address(es) of handle h-n1b\n")
	out = c.mustRun(t, "", "ipam", "show", "--show-blocks")
	clitest.WantContains(t, "show after releases", out, "| Block    | 10.244.2.0/26 |        64 | 3 (5%)     | 4 (6%)       | 57 (89%)     |", "| Block    | 10.244.1.0/26 |        64 | 1 (2%)     | 0 (0%)       | 63 (98%)     |")
	// Now the workloads use addresses IPAM no longer records.
	out = c.mustRun(t, "", "ipam", "check")
	clitest.WantContains(t, "check after releases", out, "Found 7 in-use IPs that are in active IP pools but have no corresponding IPAM allocation.",
		"Check complete; found 7 problems.")
}

func TestIPAMSplitAndConfigure(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.mustRun(t, "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/24, natOutgoing: true}\n", "create", "-f", "-")
	_, errOut, code := c.run(t, "", "ipam", "split", "2", "--name=p")
	if code != 1 || !strings.Contains(errOut, "calicoctl datastore migrate lock") {
		t.Errorf("split while unlocked: exit %d, stderr %q", code, errOut)
	}
	c.mustRun(t, "", "datastore", "migrate", "lock")
	out := c.mustRun(t, "", "ipam", "split", "2", "--cidr=10.0.0.0/24")
	clitest.WantExact(t, "split", out, "IP Pool p was successfully split into 2 smaller pools.\n"+
		"Created split-p-0 with CIDR 10.0.0.0/25.\nCreated split-p-1 with CIDR 10.0.0.128/25.\n")
	out = c.mustRun(t, "", "get", "ippool", "-o", "yaml")
	clitest.WantContains(t, "pools after split", out, "name: split-p-0", "cidr: 10.0.0.128/25", "natOutgoing: true")
	if strings.Contains(out, "name: p\n") {
		t.Errorf("the old pool survived the split:\n%s", out)
	}
	c.mustRun(t, "", "datastore", "migrate", "unlock")

	tests := []struct {
		args    []string
		stdout  string
		errPart string
	}{
		{[]string{"--strictaffinity=true"}, "Successfully set StrictAffinity to: true\n", ""},
		{[]string{"--max-blocks-per-host=4"}, "Successfully set MaxBlocksPerHost to: 4\n", ""},
		{[]string{"--strictaffinity=false"}, "", "requires strict affinity"},
		{[]string{"--strictaffinity=maybe"}, "", "--strictaffinity"},
		{nil, "", "at least one of"},
	}
	for _, tt := range tests {
		r := c.runEnv(t, nil, "", append([]string{"ipam", "configure"}, tt.args...)...)
		if tt.errPart == "" {
			if r.Code != 0 || r.Stdout != tt.stdout {
				t.Errorf("configure %v: exit %d stdout %q stderr %q", tt.args, r.Code, r.Stdout, r.Stderr)
			}
		} else if r.Code != 1 || !strings.Contains(r.Stderr, tt.errPart) {
			t.Errorf("configure %v: exit %d stderr %q, want %q", tt.args, r.Code, r.Stderr, tt.errPart)
		}
	}
	out = c.mustRun(t, "", "ipam", "show", "--show-configuration")
	clitest.WantContains(t, "configuration", out, "| StrictAffinity               | true      |", "| MaxBlocksPerHost             |         4 |")
}

func TestIPAMBadInput(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.mustRun(t, "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: small}\nspec: {cidr: 10.1.0.0/30, blockSize: 30}\n---\n"+
		"apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: n1}\n", "create", "-f", "-")
	c.mustRun(t, "", "datastore", "migrate", "lock")
	tests := []struct {
		args    []string
		errPart string
	}{
		{[]string{"ipam", "show", "--ip=10.0.0.300"}, `invalid IP address "10.0.0.300" given to --ip`},
		{[]string{"ipam", "release"}, "exactly one of --ip, --handle and --from-report"},
		{[]string{"ipam", "release", "--ip=nope"}, "--ip"},
		{[]string{"ipam", "release", "--handle=missing"}, `handle "missing" does not exist`},
		{[]string{"ipam", "release", "--from-report=/nonexistent.json"}, "reading report"},
		{[]string{"ipam", "assign", "--node=n1", "--handle=h", "--ip=192.168.0.1"}, "192.168.0.1 is outside every IP pool"},
		{[]string{"ipam", "assign", "--node=n1", "--handle=h"}, "exactly one of --ip and --num"},
		{[]string{"ipam", "assign", "--handle=h", "--num=1"}, "--node is required"},
		{[]string{"ipam", "assign", "--node=n1", "--handle=h", "--num=5"}, "only 4 free"},
		{[]string{"ipam", "split", "3", "--name=small"}, "power of two"},
		{[]string{"ipam", "split", "2", "--name=small"}, "too small"},
		{[]string{"ipam", "split", "2", "--cidr=10.9.0.0/16"}, "no IP pool has CIDR 10.9.0.0/16"},
		{[]string{"ipam", "split", "2"}, "exactly one of --cidr and --name"},
	}
	for _, tt := range tests {
		r := c.runEnv(t, nil, "", tt.args...)
		if r.Code != 1 || !strings.Contains(r.Stderr, tt.errPart) || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want one line containing %q", tt.args, r.Code, r.Stderr, tt.errPart)
		}
	}
}
