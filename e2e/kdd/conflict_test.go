package kdd

import (
	"fmt"
	"sync"
	"testing"

	"github.com/opencalico/calicoctl/e2e/clitest"
)

// TestConcurrentLabelAndPatch: concurrent `label` and `patch` processes on
// one object all succeed against the API server (a 409 is re-read and
// retried) and all their labels are kept.
func TestConcurrentLabelAndPatch(t *testing.T) {
	t.Parallel()
	u := admin(t, server(t))
	u.mustRun(t, "create", "-f", clitest.WriteFile(t, "gns.yaml",
		"apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  name: contended-labels\nspec:\n  nets: [10.9.0.0/16]\n"))
	const n = 6
	results := make([]result, 2*n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			results[i] = u.run(t, "", "label", "gnetset", "contended-labels", fmt.Sprintf("l%d=set", i))
		})
		wg.Go(func() {
			<-start
			results[n+i] = u.run(t, "", "patch", "gnetset", "contended-labels", "-p", fmt.Sprintf(`{"metadata":{"labels":{"p%d":"set"}}}`, i))
		})
	}
	close(start)
	wg.Wait()
	var want string
	for i, r := range results {
		if r.Code != 0 {
			t.Errorf("command %d: exit %d stdout %q stderr %q", i, r.Code, r.Stdout, r.Stderr)
		}
	}
	for i := range n {
		want += fmt.Sprintf(`"l%d":"set",`, i)
	}
	for i := range n {
		want += fmt.Sprintf(`"p%d":"set",`, i)
	}
	out := u.mustRun(t, "get", "gnetset", "contended-labels", "-o", "yaml")
	clitest.WantFields(t, "labels", clitest.ParseObject(t, out), map[string]string{
		"metadata.labels": "{" + want[:len(want)-1] + "}",
	})
	u.mustRun(t, "delete", "gnetset", "contended-labels")
}
