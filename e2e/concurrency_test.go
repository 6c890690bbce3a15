package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/opencalico/calicoctl/e2e/clitest"
)

// TestConcurrentReplace: two replaces race from the same YAML (same
// resourceVersion). Exactly one wins; the other is told its version is out of
// date; the stored object is the winner's. The outcome does not depend on
// timing: whichever write lands second sees a newer revision.
func TestConcurrentReplace(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.mustRun(t, pool("contended", "  cidr: 10.50.0.0/16\n"), "create", "-f", "-")

	for round := range 3 {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) {
			base, _ := c.getYAML(t, "ippool", "contended")
			rv, _ := clitest.MustString(base, "metadata.resourceVersion")
			writers := []string{"a", "b"}
			docs := make([]string, len(writers))
			for i, w := range writers {
				o := clitest.ParseObject(t, base.YAML(t))
				o.Set(t, "metadata.labels", map[string]any{"writer": w})
				o.Set(t, "spec.nodeSelector", "writer == '"+w+"'")
				docs[i] = o.YAML(t)
			}
			results := make([]result, len(writers))
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range writers {
				wg.Go(func() {
					<-start
					results[i] = c.runEnv(t, nil, docs[i], "replace", "-f", "-")
				})
			}
			close(start)
			wg.Wait()

			winner := -1
			for i, r := range results {
				if r.Code == 0 {
					if winner >= 0 {
						t.Fatalf("both replaces succeeded: %+v", results)
					}
					winner = i
					clitest.WantExact(t, "winner stdout", r.Stdout, "Successfully replaced 1 'IPPool' resource(s)\n")
				}
			}
			if winner < 0 {
				t.Fatalf("no replace succeeded: %+v", results)
			}
			loser := results[1-winner]
			if loser.Code != 1 {
				t.Errorf("loser exit %d, want 1", loser.Code)
			}
			after, _ := c.getYAML(t, "ippool", "contended")
			latest, _ := clitest.MustString(after, "metadata.resourceVersion")
			clitest.WantContains(t, "loser stderr", loser.Stderr,
				fmt.Sprintf("resource version '%s' is out of date (latest: %s). Update the resource YAML/JSON in order to make changes", rv, latest))
			if strings.Contains(loser.Stdout, "Successfully") {
				t.Errorf("loser claims success: %q", loser.Stdout)
			}
			w := writers[winner]
			clitest.WantFields(t, "stored", after, map[string]string{
				"metadata.labels":   `{"writer":"` + w + `"}`,
				"spec.nodeSelector": `"writer == '` + w + `'"`,
			})
		})
	}
}

// TestConcurrentPatchesAllLand: patches re-read and retry on conflict, so
// concurrent patches of different fields are all kept.
func TestConcurrentPatchesAllLand(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.mustRun(t, "", "create", "-f", testdata(t, "kinds/globalnetworkset.yaml"))
	keys := []string{"k0", "k1", "k2", "k3"}
	results := make([]result, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Go(func() {
			results[i] = c.runEnv(t, nil, "", "patch", "gnetset", "blocked-ranges", "-p", `{"metadata":{"labels":{"`+k+`":"set"}}}`)
		})
	}
	wg.Wait()
	for i, r := range results {
		if r.Code != 0 || r.Stdout != "Successfully patched 1 'GlobalNetworkSet' resource\n" {
			t.Errorf("patch %s: exit %d stdout %q stderr %q", keys[i], r.Code, r.Stdout, r.Stderr)
		}
	}
	after, _ := c.getYAML(t, "gnetset", "blocked-ranges")
	clitest.WantFields(t, "labels", after, map[string]string{
		"metadata.labels": `{"k0":"set","k1":"set","k2":"set","k3":"set","role":"blocked"}`,
	})
}

// TestConcurrentLabelAndPatch: many concurrent `label` and `patch` processes
// on one object all succeed (each re-reads and retries on a conflict) and
// every label they set is there at the end.
func TestConcurrentLabelAndPatch(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.mustRun(t, "", "create", "-f", testdata(t, "kinds/globalnetworkset.yaml"))
	const n = 12
	results := make([]result, 2*n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			results[i] = c.runEnv(t, nil, "", "label", "gnetset", "blocked-ranges", fmt.Sprintf("l%d=set", i))
		})
		wg.Go(func() {
			<-start
			results[n+i] = c.runEnv(t, nil, "", "patch", "gnetset", "blocked-ranges", "-p", fmt.Sprintf(`{"metadata":{"labels":{"p%d":"set"}}}`, i))
		})
	}
	close(start)
	wg.Wait()
	want := map[string]any{"role": "blocked"}
	for i := range n {
		want[fmt.Sprintf("l%d", i)] = "set"
		want[fmt.Sprintf("p%d", i)] = "set"
		if r := results[i]; r.Code != 0 || r.Stdout != fmt.Sprintf("Successfully set label l%d on gnetset blocked-ranges\n", i) {
			t.Errorf("label l%d: exit %d stdout %q stderr %q", i, r.Code, r.Stdout, r.Stderr)
		}
		if r := results[n+i]; r.Code != 0 || r.Stdout != "Successfully patched 1 'GlobalNetworkSet' resource\n" {
			t.Errorf("patch p%d: exit %d stdout %q stderr %q", i, r.Code, r.Stdout, r.Stderr)
		}
	}
	after, _ := c.getYAML(t, "gnetset", "blocked-ranges")
	got, _ := after.Lookup("metadata.labels")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("labels after the race:\n got %v\nwant %v", got, want)
	}
}
