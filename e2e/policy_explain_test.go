package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// seedFile is one of the policy evaluator's seed 001 fixtures.
func seedFile(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "node", "policy", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPolicyExplainSeed001 applies seed 001's tenant with the real binary
// and asks `policy explain` about it: the frontends reach the database on
// 3306 through its profile, nothing else does; then the seed's deny-first
// policy denies, and the trace names it.
func TestPolicyExplainSeed001(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.mustRun(t, "", "apply", "-f", seedFile(t, "seed001.yaml"))

	verdict := func(args ...string) map[string]any {
		t.Helper()
		out := c.mustRun(t, "", append([]string{"policy", "explain", "-o", "json"}, args...)...)
		var v map[string]any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return v
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"frontend1", []string{"-n", "tenant", "--from", "frontend1", "--to", "database", "--port", "3306"}, "Allow"},
		{"frontend2 by address", []string{"--from", "172.16.1.2", "--to", "172.16.1.3", "--port", "3306"}, "Allow"},
		{"batch", []string{"--from", "tenant/batch", "--to", "tenant/database", "--port", "3306"}, "Deny"},
		{"outside", []string{"--from", "10.9.9.9", "--to", "tenant/database", "--port", "3306"}, "Deny"},
		{"another port", []string{"-n", "tenant", "--from", "frontend1", "--to", "database", "--port", "3307"}, "Deny"},
		{"udp", []string{"-n", "tenant", "--from", "frontend1", "--to", "database", "--protocol", "udp", "--port", "3306"}, "Deny"},
	} {
		if got := verdict(tc.args...)["action"]; got != tc.want {
			t.Errorf("%s: action %v, want %s", tc.name, got, tc.want)
		}
	}

	// The text trace of the allowed case names the profile rule.
	out := c.mustRun(t, "", "policy", "explain", "-n", "tenant", "--from", "frontend1", "--to", "database", "--port", "3306")
	for _, want := range []string{"=> Allow: profile profile-database rule 0", "Verdict: Allow"} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q:\n%s", want, out)
		}
	}

	// The seed's pitfall: a deny-everything rule placed first.
	c.mustRun(t, "", "apply", "-f", seedFile(t, "seed001-deny-first.yaml"))
	if got := verdict("-n", "tenant", "--from", "frontend1", "--to", "database", "--port", "3306")["action"]; got != "Deny" {
		t.Errorf("after deny-first: action %v, want Deny", got)
	}
	out = c.mustRun(t, "", "policy", "explain", "-n", "tenant", "--from", "frontend1", "--to", "database", "--port", "3306")
	for _, want := range []string{
		"NetworkPolicy tenant/namespace-default (order none): Deny (rule 0)",
		"=> Deny: tier default: NetworkPolicy tenant/namespace-default rule 0",
		"Verdict: Deny",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q:\n%s", want, out)
		}
	}

	// Bad input: a non-zero exit and an error naming the object.
	stdout, stderr, code := c.run(t, "", "policy", "explain", "-n", "tenant", "--from", "frontend", "--to", "database", "--port", "3306")
	if code == 0 || stdout != "" || !strings.Contains(stderr, `WorkloadEndpoint "frontend" not found in namespace "tenant"`) {
		t.Errorf("unknown endpoint: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, stderr, code := c.run(t, "", "policy", "explain", "--from", "a", "--to", "b", "--protocol", "bogus"); code == 0 || !strings.Contains(stderr, `unknown protocol "bogus"`) {
		t.Errorf("bad protocol: exit %d, stderr %q", code, stderr)
	}
}
