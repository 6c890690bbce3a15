package kdd

import (
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/e2e/clitest"
	"github.com/opencalico/calicoctl/internal/kubetest"
	"github.com/opencalico/calicoctl/internal/kubetest/kubecrd"
)

// The IPAM commands on the Kubernetes datastore (IPAMBlock, BlockAffinity,
// IPAMHandle and IPAMConfig CRs): the seed-000 scenario on a dedicated API
// server, so no other test's pools get in the way.
func TestIPAMOnKubernetes(t *testing.T) {
	t.Parallel()
	clitest.TrackSources(t)
	srv := kubetest.Start(t)
	kubecrd.Install(t, srv)
	for _, n := range []string{"n1", "n2", "n3"} {
		srv.CreateNode(t, n, nil)
	}
	u := admin(t, srv)
	u.mustRun(t, "create", "-f", clitest.WriteFile(t, "pool.yaml", ippoolYAML("default-ipv4-ippool", "10.244.0.0/16")))

	clitest.WantExact(t, "assign --ip", u.mustRun(t, "ipam", "assign", "--node=n1", "--handle=h-n1a", "--ip=10.244.1.0"),
		"Successfully assigned IP address 10.244.1.0 to handle h-n1a on node n1\n")
	if out := u.mustRun(t, "ipam", "assign", "--node=n1", "--handle=h-n1b", "--num=6"); strings.Count(out, "10.244.1.") != 6 {
		t.Fatalf("assign --num=6 did not stay in n1's block:\n%s", out)
	}
	u.mustRun(t, "ipam", "assign", "--node=n2", "--handle=h-n2a", "--ip=10.244.2.0")
	u.mustRun(t, "ipam", "assign", "--node=n3", "--handle=h-n3", "--ip=10.244.1.10")

	clitest.WantExact(t, "show --show-blocks", u.mustRun(t, "ipam", "show", "--show-blocks"), `+----------+---------------+-----------+------------+--------------+--------------+
| GROUPING |     CIDR      | IPS TOTAL | IPS IN USE | IPS RESERVED |   IPS FREE   |
+----------+---------------+-----------+------------+--------------+--------------+
| IP Pool  | 10.244.0.0/16 |     65536 | 9 (0%)     | 0 (0%)       | 65527 (100%) |
| Block    | 10.244.1.0/26 |        64 | 8 (12%)    | 0 (0%)       | 56 (88%)     |
| Block    | 10.244.2.0/26 |        64 | 1 (2%)     | 0 (0%)       | 63 (98%)     |
+----------+---------------+-----------+------------+--------------+--------------+
IP Pool default-ipv4-ippool (10.244.0.0/16): room for 1022 more /26 blocks (one per new node), 2 in use.
`)
	clitest.WantExact(t, "show --ip", u.mustRun(t, "ipam", "show", "--ip=10.244.1.10"),
		"IP 10.244.1.10 is in use\nHandle ID: h-n3\nActive Owner Attributes:\n  node: n3\n  owner: calicoctl ipam assign\n")
	clitest.WantContains(t, "show --show-borrowed", u.mustRun(t, "ipam", "show", "--show-borrowed"),
		"| 10.244.1.10 | n3             | 10.244.1.0/26 | n1          |")

	// The objects are upstream's CRs.
	for _, kind := range []string{"ipamblocks", "blockaffinities", "ipamhandles"} {
		if n := countCRs(t, srv, kind); n == 0 {
			t.Errorf("no %s.crd.projectcalico.org objects after assigning", kind)
		}
	}

	// No workloads use these addresses, but `ipam assign` gave them out on
	// purpose: none is a leak.
	clitest.WantContains(t, "check", u.mustRun(t, "ipam", "check"), "Found 2 IPAM blocks.",
		"Found 0 IPs that are allocated in IPAM but not actually in use.", "Found 9 IPs assigned on purpose", "Check complete; found 0 problems.")

	// Strict affinity: n3 may no longer borrow.
	clitest.WantContains(t, "configure", u.mustRun(t, "ipam", "configure", "--strictaffinity=true"), "Successfully set StrictAffinity to: true")
	clitest.WantContains(t, "show configuration", u.mustRun(t, "ipam", "show", "--show-configuration"), "| StrictAffinity               | true      |")
	r := u.run(t, "", "ipam", "assign", "--node=n3", "--handle=h-n3b", "--ip=10.244.2.7")
	if r.Code == 0 {
		t.Errorf("strict affinity let n3 take an address in n2's block: %s", r.Stdout)
	} else {
		clitest.WantOneLine(t, "strict affinity refusal", r.Stderr)
	}

	// Release by address and by handle.
	clitest.WantExact(t, "release --ip", u.mustRun(t, "ipam", "release", "--ip=10.244.1.10"), "Successfully released IP address 10.244.1.10\n")
	clitest.WantExact(t, "release --handle", u.mustRun(t, "ipam", "release", "--handle=h-n1b"), "Successfully released 6 IP address(es) of handle h-n1b\n")
	clitest.WantContains(t, "show after release", u.mustRun(t, "ipam", "show", "--show-blocks"),
		"| Block    | 10.244.1.0/26 |        64 | 1 (2%)     | 0 (0%)       | 63 (98%)     |")

	// Split needs the lock, then makes two pools.
	r = u.run(t, "", "ipam", "split", "2", "--cidr=10.244.0.0/16")
	if r.Code != 1 || !strings.Contains(r.Stderr, "calicoctl datastore migrate lock") {
		t.Errorf("split while unlocked: exit %d, stderr %q", r.Code, r.Stderr)
	}
	u.mustRun(t, "datastore", "migrate", "lock")
	clitest.WantContains(t, "split", u.mustRun(t, "ipam", "split", "2", "--cidr=10.244.0.0/16"),
		"IP Pool default-ipv4-ippool was successfully split into 2 smaller pools.",
		"Created split-default-ipv4-ippool-0 with CIDR 10.244.0.0/17.", "Created split-default-ipv4-ippool-1 with CIDR 10.244.128.0/17.")
	u.mustRun(t, "datastore", "migrate", "unlock")
	clitest.WantContains(t, "pools after split", u.mustRun(t, "get", "ippool"), "split-default-ipv4-ippool-0", "split-default-ipv4-ippool-1")
}

// countCRs counts cluster-scoped Calico custom resources of one plural.
func countCRs(t *testing.T, srv *kubetest.APIServer, plural string) int {
	t.Helper()
	cs := srv.Clientset(t)
	raw, err := cs.Discovery().RESTClient().Get().AbsPath("/apis/crd.projectcalico.org/v1/" + plural).DoRaw(t.Context())
	if err != nil {
		t.Fatalf("listing %s: %v", plural, err)
	}
	return strings.Count(string(raw), `"kind":"`+kindOf(plural)+`"`)
}

func kindOf(plural string) string {
	switch plural {
	case "ipamblocks":
		return "IPAMBlock"
	case "blockaffinities":
		return "BlockAffinity"
	default:
		return "IPAMHandle"
	}
}
