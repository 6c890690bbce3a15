package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/e2e/clitest"
	"github.com/opencalico/calicoctl/resources"
)

// TestKindCasesCoverRegistry keeps the round trip honest: every registered
// kind has a case (ClusterInformation has its own test).
func TestKindCasesCoverRegistry(t *testing.T) {
	covered := map[string]bool{"ClusterInformation": true}
	for _, kc := range clitest.KindCases {
		covered[kc.Kind] = true
		if _, err := resources.Lookup(kc.Word); err != nil {
			t.Errorf("%s: CLI word %q is not registered: %v", kc.Kind, kc.Word, err)
		}
	}
	for _, k := range resources.Kinds() {
		if !covered[k.Kind] {
			t.Errorf("kind %s has no e2e round-trip case", k.Kind)
		}
	}
	if len(covered) != len(resources.Kinds()) {
		t.Errorf("cases cover %d kinds, registry has %d", len(covered), len(resources.Kinds()))
	}
}

func TestRoundTripEveryKind(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	for _, kc := range clitest.KindCases {
		t.Run(kc.Kind, func(t *testing.T) {
			t.Parallel()
			roundTrip(t, c, kc)
		})
	}
}

func roundTrip(t *testing.T, c *cluster, kc clitest.KindCase) {
	var nsArgs []string
	if kc.NSFlag {
		nsArgs = []string{"-n", kc.NS}
	}
	with := func(args ...string) []string { return append(args, nsArgs...) }
	key := kc.Kind + "(" + kc.Name + ")"
	if kc.NS != "" {
		key = kc.Kind + "(" + kc.NS + "/" + kc.Name + ")"
	}
	lower := strings.ToLower(kc.Kind)

	// create
	file := testdata(t, "kinds/"+lower+".yaml")
	out, errOut, code := c.run(t, "", with("create", "-f", file)...)
	clitest.WantExact(t, "create stdout", out, fmt.Sprintf("Successfully created 1 '%s' resource(s)\n", kc.Kind))
	clitest.WantExact(t, "create stderr", errOut, "")
	if code != 0 {
		t.Fatalf("create exit %d", code)
	}

	// get -o yaml
	obj, _ := c.getYAML(t, with(kc.Word, kc.Name)...)
	clitest.WantFields(t, "after create", obj, map[string]string{
		"apiVersion": `"projectcalico.org/v3"`, "kind": `"` + kc.Kind + `"`, "metadata.name": `"` + kc.Name + `"`,
	})
	if kc.NS == "" {
		clitest.WantFields(t, "after create", obj, map[string]string{"metadata.namespace": "<absent>"})
	}
	clitest.WantFields(t, "after create", obj, kc.Want)
	rv1, uid, created := clitest.WantServerMeta(t, "after create", obj)

	// replace an edited copy (resourceVersion kept: it is current)
	obj.Set(t, kc.EditPath, kc.EditValue)
	edited := clitest.WriteFile(t, lower+"-edited.yaml", obj.YAML(t))
	out, errOut, code = c.run(t, "", with("replace", "-f", edited)...)
	clitest.WantExact(t, "replace stdout", out, fmt.Sprintf("Successfully replaced 1 '%s' resource(s)\n", kc.Kind))
	clitest.WantExact(t, "replace stderr", errOut, "")
	if code != 0 {
		t.Fatalf("replace exit %d", code)
	}
	obj, _ = c.getYAML(t, with(kc.Word, kc.Name)...)
	clitest.WantFields(t, "after replace", obj, map[string]string{kc.EditPath: kc.EditWant})
	rv2, uid2, created2 := clitest.WantServerMeta(t, "after replace", obj)
	if rv2 == rv1 || uid2 != uid || created2 != created {
		t.Errorf("after replace: rv %s->%s uid %s->%s created %s->%s; want a new rv and the same uid/creationTimestamp",
			rv1, rv2, uid, uid2, created, created2)
	}

	// patch
	out, errOut, code = c.run(t, "", with("patch", kc.Word, kc.Name, "-p", kc.Patch)...)
	clitest.WantExact(t, "patch stdout", out, fmt.Sprintf("Successfully patched 1 '%s' resource\n", kc.Kind))
	clitest.WantExact(t, "patch stderr", errOut, "")
	if code != 0 {
		t.Fatalf("patch exit %d", code)
	}
	obj, _ = c.getYAML(t, with(kc.Word, kc.Name)...)
	clitest.WantFields(t, "after patch", obj, map[string]string{kc.PatchPath: kc.PatchWant})
	if kc.EditPath != kc.PatchPath {
		clitest.WantFields(t, "after patch", obj, map[string]string{kc.EditPath: kc.EditWant})
	}
	labelsBefore := obj.Str("metadata.labels")

	// label: set, refuse to overwrite silently, overwrite, remove
	labelSteps := []struct {
		args     []string
		stdout   string
		stderr   string
		code     int
		labelNow string // JSON of metadata.labels["e2e"] after the step
	}{
		{[]string{"e2e=one"}, fmt.Sprintf("Successfully set label e2e on %s %s\n", kc.Word, kc.Name), "", 0, `"one"`},
		{[]string{"e2e=two"}, "", fmt.Sprintf("failed to update label of %s %s, key e2e is already present. please use '--overwrite' to set a new value\n", kc.Word, kc.Name), 1, `"one"`},
		{[]string{"e2e=two", "--overwrite"}, fmt.Sprintf("Successfully updated label e2e on %s %s\n", kc.Word, kc.Name), "", 0, `"two"`},
		{[]string{"e2e", "--remove"}, fmt.Sprintf("Successfully removed label e2e from %s %s\n", kc.Word, kc.Name), "", 0, `<absent>`},
		{[]string{"e2e", "--remove"}, "", fmt.Sprintf("cannot remove label of %s %s, key e2e does not exist\n", kc.Word, kc.Name), 1, `<absent>`},
	}
	for _, st := range labelSteps {
		out, errOut, code = c.run(t, "", with(append([]string{"label", kc.Word, kc.Name}, st.args...)...)...)
		what := "label " + strings.Join(st.args, " ")
		clitest.WantExact(t, what+" stdout", out, st.stdout)
		clitest.WantExact(t, what+" stderr", errOut, st.stderr)
		if code != st.code {
			t.Errorf("%s: exit %d, want %d", what, code, st.code)
		}
		obj, _ = c.getYAML(t, with(kc.Word, kc.Name)...)
		labels, _ := obj.Lookup("metadata.labels")
		got := "<absent>"
		if m, ok := labels.(map[string]any); ok {
			got = object(m).Str("e2e")
		}
		if got != st.labelNow {
			t.Errorf("%s: label e2e = %s, want %s", what, got, st.labelNow)
		}
	}
	// The labels the manifest or the client set survive label edits.
	clitest.WantFields(t, "after label", obj, map[string]string{"metadata.labels": labelsBefore})

	// delete, then it is gone
	out, errOut, code = c.run(t, "", with("delete", kc.Word, kc.Name)...)
	clitest.WantExact(t, "delete stdout", out, fmt.Sprintf("Successfully deleted 1 '%s' resource(s)\n", kc.Kind))
	clitest.WantExact(t, "delete stderr", errOut, "")
	if code != 0 {
		t.Fatalf("delete exit %d", code)
	}
	out, errOut, code = c.run(t, "", with("get", kc.Word, kc.Name)...)
	clitest.WantExact(t, "get after delete stdout", out, "")
	clitest.WantExact(t, "get after delete stderr", errOut, "resource does not exist: "+key+" with error: <nil>\n")
	if code != 1 {
		t.Errorf("get after delete: exit %d, want 1", code)
	}
}

// TestClusterInformation: the datastore server creates it; create and apply
// are refused, replace/patch/label work.
func TestClusterInformation(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	obj, _ := c.getYAML(t, "clusterinformation", "default")
	ver := strings.TrimPrefix(strings.SplitN(c.mustRun(t, "", "version", "--client"), "\n", 2)[0], "Client Version:")
	clitest.WantFields(t, "initial", obj, map[string]string{
		"kind":                "\"ClusterInformation\"",
		"spec.calicoVersion":  `"` + strings.TrimSpace(ver) + `"`,
		"spec.clusterType":    `"etcd"`,
		"spec.datastoreReady": `true`,
	})
	if guid, _ := clitest.MustString(obj, "spec.clusterGUID"); len(guid) != 32 {
		t.Errorf("clusterGUID %q: want 32 hex digits", guid)
	}
	clitest.WantServerMeta(t, "initial", obj)

	file := testdata(t, "kinds/clusterinformation.yaml")
	out, errOut, code := c.run(t, "", "create", "-f", file)
	clitest.WantExact(t, "create stdout", out, "")
	clitest.WantContains(t, "create stderr", errOut, "failed to create 'ClusterInformation' resource: [resource already exists: ClusterInformation(default) with error: <nil>")
	if code != 1 {
		t.Errorf("create: exit %d, want 1", code)
	}
	out, errOut, code = c.run(t, "", "apply", "-f", file)
	clitest.WantExact(t, "apply stdout", out, "")
	clitest.WantContains(t, "apply stderr", errOut, "operation apply is not supported on ClusterInformation(default): resource is readonly")
	if code != 1 {
		t.Errorf("apply: exit %d, want 1", code)
	}

	obj.Set(t, "spec.datastoreReady", false)
	out, errOut, code = c.run(t, "", "replace", "-f", clitest.WriteFile(t, "ci.yaml", obj.YAML(t)))
	clitest.WantExact(t, "replace stdout", out, "Successfully replaced 1 'ClusterInformation' resource(s)\n")
	if code != 0 {
		t.Errorf("replace: exit %d, stderr %q", code, errOut)
	}
	out = c.mustRun(t, "", "patch", "clusterinfo", "default", "-p", `{"spec":{"clusterType":"etcd,bgp"}}`)
	clitest.WantExact(t, "patch stdout", out, "Successfully patched 1 'ClusterInformation' resource\n")
	out = c.mustRun(t, "", "label", "clusterinformations", "default", "owner=e2e")
	clitest.WantExact(t, "label stdout", out, "Successfully set label owner on clusterinformations default\n")
	after, _ := c.getYAML(t, "clusterinformation", "default")
	clitest.WantFields(t, "after edits", after, map[string]string{
		"spec.datastoreReady": `false`,
		"spec.clusterType":    `"etcd,bgp"`,
		"spec.clusterGUID":    obj.Str("spec.clusterGUID"),
		"metadata.labels":     `{"owner":"e2e"}`,
	})
}
