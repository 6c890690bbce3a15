package e2e

import (
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/e2e/clitest"
)

// `ipam assign` refuses bad node names, nodes that do not exist and requests
// the pools cannot satisfy, at once and without writing anything: no block,
// no affinity, no handle.
func TestIPAMAssignRefusesWithoutWriting(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.mustRun(t, "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.244.0.0/16}\n---\n"+
		"apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: n1}\n", "create", "-f", "-")
	long := strings.Repeat("a", 300)
	tests := []struct {
		name    string
		args    []string
		errPart string
	}{
		{"bad characters", []string{"--node=Bad Node!", "--num=5"}, `invalid node name "Bad Node!" given to --node`},
		{"too long", []string{"--node=" + long, "--num=1"}, "(300 characters) given to --node"},
		{"not a node", []string{"--node=ghost", "--num=5"}, `node "ghost" does not exist`},
		{"not a node, one address", []string{"--node=ghost", "--ip=10.244.3.4"}, `node "ghost" does not exist`},
		{"more than the node may hold", []string{"--node=n1", "--num=100000000"},
			"requested 100000000 address(es), only 1280 available"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.runEnv(t, nil, "", append([]string{"ipam", "assign", "--handle=h"}, tt.args...)...)
			if r.Code != 1 || !strings.Contains(r.Stderr, tt.errPart) {
				t.Errorf("exit %d, stderr %q; want exit 1 and %q", r.Code, r.Stderr, tt.errPart)
			}
			clitest.WantOneLine(t, "error", r.Stderr)
			if r.Stdout != "" {
				t.Errorf("stdout %q, want none", r.Stdout)
			}
		})
	}
	// Nothing was written.
	clitest.WantContains(t, "check", c.mustRun(t, "", "ipam", "check"), "Found 0 IPAM blocks.",
		"Found 0 handles with no matching IPs (and 0 handles with matches).", "Check complete; found 0 problems.")
	clitest.WantContains(t, "show --node", c.mustRun(t, "", "ipam", "show", "--node=n1"), "No blocks are affine to node n1.")
	// A request the node can satisfy still works, up to exactly what is available.
	out := c.mustRun(t, "", "ipam", "assign", "--node=n1", "--handle=h", "--num=1280")
	if n := strings.Count(out, "Successfully assigned IP address "); n != 1280 {
		t.Fatalf("assigned %d addresses, want 1280", n)
	}
	r := c.runEnv(t, nil, "", "ipam", "assign", "--node=n1", "--handle=h2", "--num=2")
	if r.Code != 1 || !strings.Contains(r.Stderr, "requested 2 address(es), only 0 available") {
		t.Errorf("assign past the cap: exit %d, stderr %q", r.Code, r.Stderr)
	}
}
