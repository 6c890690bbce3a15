package e2e

import (
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/e2e/clitest"
)

var batchPools = []string{"batch-a", "batch-b", "batch-c", "batch-d", "batch-e", "batch-f"}

// TestBatchFile: YAML documents, a JSON array document and an IPPoolList in
// one file all count; create, --skip-exists, delete -f and
// --skip-not-exists behave per object.
func TestBatchFile(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	file := testdata(t, "batch/pools-multidoc.yaml")

	out := c.mustRun(t, "", "apply", "-f", file)
	clitest.WantExact(t, "apply", out, "Successfully applied 6 'IPPool' resource(s)\n")
	names := c.mustRun(t, "", "get", "ippool", "-o", "go-template={{range .Items}}{{.Name}}:{{.Spec.BlockSize}}:{{.Spec.IPIPMode}}:{{.Spec.VXLANMode}}:{{.Spec.Disabled}} {{end}}")
	clitest.WantExact(t, "stored pools", names,
		"batch-a:26:Never:Never:false batch-b:26:Never:Always:false batch-c:26:Never:Never:false "+
			"batch-d:26:CrossSubnet:Never:false batch-e:26:Never:Never:true batch-f:122:Never:Never:false ")

	// create again: every object exists, each reported on its own line.
	res := c.runEnv(t, nil, "", "create", "-f", file)
	if res.Code != 1 || res.Stdout != "" {
		t.Errorf("create existing: exit %d stdout %q", res.Code, res.Stdout)
	}
	clitest.WantContains(t, "create existing", res.Stderr, "failed to create any 'IPPool' resources")
	for _, n := range batchPools {
		clitest.WantContains(t, "create existing", res.Stderr, "resource already exists: IPPool("+n+") with error: <nil>")
	}
	if got := strings.Count(res.Stderr, "\n"); got != 7 {
		t.Errorf("create existing: %d stderr lines, want a header and one per object:\n%s", got, res.Stderr)
	}

	out = c.mustRun(t, "", "create", "--skip-exists", "-f", file)
	clitest.WantExact(t, "create --skip-exists", out, "Successfully created 6 'IPPool' resource(s)\n")

	out = c.mustRun(t, "", "delete", "-f", file)
	clitest.WantExact(t, "delete -f", out, "Successfully deleted 6 'IPPool' resource(s)\n")
	clitest.WantExact(t, "after delete", c.mustRun(t, "", "get", "ippool", "-o", "go-template={{len .Items}}"), "0")

	res = c.runEnv(t, nil, "", "delete", "-f", file)
	if res.Code != 1 || res.Stdout != "" {
		t.Errorf("delete missing: exit %d stdout %q", res.Code, res.Stdout)
	}
	for _, n := range batchPools {
		clitest.WantContains(t, "delete missing", res.Stderr, "Failed to delete 'IPPool' resource: resource does not exist: IPPool("+n+") with error: <nil>\n")
	}
	if got := strings.Count(res.Stderr, "\n"); got != len(batchPools) {
		t.Errorf("delete missing: %d stderr lines, want %d:\n%s", got, len(batchPools), res.Stderr)
	}
	out = c.mustRun(t, "", "delete", "--skip-not-exists", "-f", file)
	clitest.WantExact(t, "delete --skip-not-exists", out, "Successfully deleted 6 'IPPool' resource(s)\n")

	// delete by name, one of them missing
	c.mustRun(t, "", "create", "-f", file)
	res = c.runEnv(t, nil, "", "delete", "ippool", "batch-a", "nope", "batch-b")
	clitest.WantExact(t, "delete names stdout", res.Stdout, "Successfully deleted 2 'IPPool' resource(s)\n")
	clitest.WantExact(t, "delete names stderr", res.Stderr, "Failed to delete 'IPPool' resource: resource does not exist: IPPool(nope) with error: <nil>\n")
	if res.Code != 1 {
		t.Errorf("delete names: exit %d, want 1", res.Code)
	}
	out = c.mustRun(t, "", "delete", "-s", "pools", "batch-c", "nope")
	clitest.WantExact(t, "delete -s", out, "Successfully deleted 2 'IPPool' resource(s)\n")
	clitest.WantExact(t, "left", c.mustRun(t, "", "get", "ippool", "-o", "go-template={{range .Items}}{{.Name}} {{end}}"), "batch-d batch-e batch-f ")
}

// TestBatchPartialFailure: two of five objects are invalid; the three valid
// ones are written and each failure is reported on its own line naming the
// object and the field.
func TestBatchPartialFailure(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	for _, verb := range []string{"create", "apply"} {
		t.Run(verb, func(t *testing.T) {
			res := c.runEnv(t, nil, "", verb, "-f", testdata(t, "batch/pools-two-invalid.yaml"))
			past := map[string]string{"create": "created", "apply": "applied"}[verb]
			clitest.WantExact(t, "stdout", res.Stdout, "Partial success: "+past+" 3 out of 5 'IPPool' resources:\n")
			if res.Code != 1 {
				t.Errorf("exit %d, want 1", res.Code)
			}
			var failures []string
			for _, l := range strings.Split(strings.TrimSpace(res.Stderr), "\n") {
				if strings.Contains(l, "IPPool(") {
					failures = append(failures, l)
				}
			}
			if len(failures) != 2 {
				t.Fatalf("want 2 failure lines, got:\n%s", res.Stderr)
			}
			clitest.WantContains(t, "first failure", failures[0], "IPPool(mixed-2)", "spec.cidr", "10.21.0.0/33")
			clitest.WantContains(t, "second failure", failures[1], "IPPool(mixed-4)", "spec.ipipMode", "Sometimes")
			got := c.mustRun(t, "", "get", "ippool", "-o", "go-template={{range .Items}}{{.Name}} {{end}}")
			clitest.WantExact(t, "stored", got, "mixed-1 mixed-3 mixed-5 ")
			c.mustRun(t, "", "delete", "ippool", "mixed-1", "mixed-3", "mixed-5")
		})
	}
}

func TestBatchMixedKindsAndEmptyInput(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	out := c.mustRun(t, "", "apply", "-f", testdata(t, "batch/mixed-kinds.yaml"))
	clitest.WantExact(t, "mixed kinds", out, "Successfully applied 2 resource(s)\n")
	out = c.mustRun(t, "", "replace", "-f", testdata(t, "batch/mixed-kinds.yaml"))
	clitest.WantExact(t, "replace mixed kinds", out, "Successfully replaced 2 resource(s)\n")
	out = c.mustRun(t, "", "delete", "-f", testdata(t, "batch/mixed-kinds.yaml"))
	clitest.WantExact(t, "delete mixed kinds", out, "Successfully deleted 2 resource(s)\n")

	empty := testdata(t, "batch/empty.yaml")
	res := c.runEnv(t, nil, "", "create", "-f", empty)
	clitest.WantExact(t, "empty file", res.Stderr, "failed to execute command: no resources specified in file "+empty+"\n")
	if res.Code != 1 || res.Stdout != "" {
		t.Errorf("empty file: exit %d stdout %q", res.Code, res.Stdout)
	}
	out = c.mustRun(t, "", "create", "--skip-empty", "-f", empty)
	clitest.WantExact(t, "--skip-empty", out, "No resources specified\n")

	// A directory: -f reads every manifest in it (not recursing without -R).
	out = c.mustRun(t, "", "apply", "-f", testdata(t, "seed"))
	clitest.WantExact(t, "directory", out, "Successfully applied 1 'IPPool' resource(s)\n")
}
