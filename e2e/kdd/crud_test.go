package kdd

import (
	"fmt"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/e2e/clitest"
	"github.com/opencalico/calicoctl/resources"
)

// nativeKinds are backed by Kubernetes objects (or written by the client)
// and have their own tests; every other kind is round-tripped from
// clitest.CRDKindCases.
var nativeKinds = map[string]string{
	"ClusterInformation": "TestClusterInformation",
	"Node":               "TestNodeFromKubernetesNode",
	"Profile":            "TestProfilesFromNamespacesAndServiceAccounts",
	"WorkloadEndpoint":   "TestWorkloadEndpointsFromPods",
}

// TestKindCasesCoverRegistry: every registered kind is either round-tripped
// here or covered by a test of its Kubernetes backing.
func TestKindCasesCoverRegistry(t *testing.T) {
	covered := map[string]bool{}
	for k := range nativeKinds {
		covered[k] = true
	}
	for _, kc := range clitest.CRDKindCases() {
		if covered[kc.Kind] {
			t.Errorf("kind %s listed twice", kc.Kind)
		}
		covered[kc.Kind] = true
		if _, err := resources.Lookup(kc.Word); err != nil {
			t.Errorf("%s: CLI word %q is not registered: %v", kc.Kind, kc.Word, err)
		}
	}
	// The shared table's Native marks must match the kinds tested here
	// through their Kubernetes backing.
	for _, kc := range clitest.KindCases {
		if _, native := nativeKinds[kc.Kind]; native != kc.Native {
			t.Errorf("kind %s: clitest.KindCases says Native=%t, nativeKinds says %t", kc.Kind, kc.Native, native)
		}
	}
	for _, k := range resources.Kinds() {
		if !covered[k.Kind] {
			t.Errorf("kind %s has no kdd e2e case", k.Kind)
		}
	}
	if len(covered) != len(resources.Kinds()) {
		t.Errorf("cases cover %d kinds, registry has %d", len(covered), len(resources.Kinds()))
	}
}

func TestRoundTripEveryKind(t *testing.T) {
	t.Parallel()
	srv := server(t)
	srv.CreateNamespace(t, "prod", nil)
	u := admin(t, srv)
	for _, kc := range clitest.CRDKindCases() {
		t.Run(kc.Kind, func(t *testing.T) {
			t.Parallel()
			roundTrip(t, u, kc)
		})
	}
}

// wantResult checks one invocation's stdout, stderr and exit code.
func wantResult(t testing.TB, what string, r result, stdout, stderr string, code int) {
	t.Helper()
	clitest.WantExact(t, what+" stdout", r.Stdout, stdout)
	clitest.WantExact(t, what+" stderr", r.Stderr, stderr)
	if r.Code != code {
		t.Errorf("%s: exit %d, want %d", what, r.Code, code)
	}
}

func roundTrip(t *testing.T, u *user, kc clitest.KindCase) {
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

	r := u.run(t, "", with("create", "-f", testdata(t, "kinds/"+lower+".yaml"))...)
	wantResult(t, "create", r, fmt.Sprintf("Successfully created 1 '%s' resource(s)\n", kc.Kind), "", 0)
	if r.Code != 0 {
		t.FailNow()
	}

	obj, _ := u.getYAML(t, with(kc.Word, kc.Name)...)
	clitest.WantFields(t, "after create", obj, map[string]string{
		"apiVersion": `"projectcalico.org/v3"`, "kind": `"` + kc.Kind + `"`, "metadata.name": `"` + kc.Name + `"`,
	})
	if kc.NS == "" {
		clitest.WantFields(t, "after create", obj, map[string]string{"metadata.namespace": "<absent>"})
	}
	clitest.WantFields(t, "after create", obj, kc.Want)
	// What the CR stores is an implementation detail and must not leak.
	if ann := obj.Str("metadata.annotations"); strings.Contains(ann, "projectcalico.org/metadata") {
		t.Errorf("after create: internal annotation shown: %s", ann)
	}
	rv1, uid, created := clitest.WantServerMeta(t, "after create", obj)

	obj.Set(t, kc.EditPath, kc.EditValue)
	r = u.run(t, "", with("replace", "-f", clitest.WriteFile(t, lower+"-edited.yaml", obj.YAML(t)))...)
	wantResult(t, "replace", r, fmt.Sprintf("Successfully replaced 1 '%s' resource(s)\n", kc.Kind), "", 0)
	obj, _ = u.getYAML(t, with(kc.Word, kc.Name)...)
	clitest.WantFields(t, "after replace", obj, map[string]string{kc.EditPath: kc.EditWant})
	rv2, uid2, created2 := clitest.WantServerMeta(t, "after replace", obj)
	if rv2 == rv1 || uid2 != uid || created2 != created {
		t.Errorf("after replace: rv %s->%s uid %s->%s created %s->%s; want a new rv and the same uid/creationTimestamp",
			rv1, rv2, uid, uid2, created, created2)
	}

	// A stale resourceVersion is refused with upstream's message.
	obj.Set(t, "metadata.resourceVersion", rv1)
	r = u.run(t, "", with("replace", "-f", clitest.WriteFile(t, lower+"-stale.yaml", obj.YAML(t)))...)
	clitest.WantContains(t, "stale replace stderr", r.Stderr, fmt.Sprintf("resource version '%s' is out of date (latest: %s)", rv1, rv2))
	if r.Code != 1 {
		t.Errorf("stale replace: exit %d, want 1", r.Code)
	}

	r = u.run(t, "", with("patch", kc.Word, kc.Name, "-p", kc.Patch)...)
	wantResult(t, "patch", r, fmt.Sprintf("Successfully patched 1 '%s' resource\n", kc.Kind), "", 0)
	obj, _ = u.getYAML(t, with(kc.Word, kc.Name)...)
	clitest.WantFields(t, "after patch", obj, map[string]string{kc.PatchPath: kc.PatchWant})
	if kc.EditPath != kc.PatchPath {
		clitest.WantFields(t, "after patch", obj, map[string]string{kc.EditPath: kc.EditWant})
	}
	labelsBefore := obj.Str("metadata.labels")

	labelSteps := []struct {
		args     []string
		stdout   string
		stderr   string
		code     int
		labelNow string
	}{
		{[]string{"e2e=one"}, fmt.Sprintf("Successfully set label e2e on %s %s\n", kc.Word, kc.Name), "", 0, `"one"`},
		{[]string{"e2e=two"}, "", fmt.Sprintf("failed to update label of %s %s, key e2e is already present. please use '--overwrite' to set a new value\n", kc.Word, kc.Name), 1, `"one"`},
		{[]string{"e2e=two", "--overwrite"}, fmt.Sprintf("Successfully updated label e2e on %s %s\n", kc.Word, kc.Name), "", 0, `"two"`},
		{[]string{"e2e", "--remove"}, fmt.Sprintf("Successfully removed label e2e from %s %s\n", kc.Word, kc.Name), "", 0, `<absent>`},
		{[]string{"e2e", "--remove"}, "", fmt.Sprintf("cannot remove label of %s %s, key e2e does not exist\n", kc.Word, kc.Name), 1, `<absent>`},
	}
	for _, st := range labelSteps {
		what := "label " + strings.Join(st.args, " ")
		r = u.run(t, "", with(append([]string{"label", kc.Word, kc.Name}, st.args...)...)...)
		wantResult(t, what, r, st.stdout, st.stderr, st.code)
		obj, _ = u.getYAML(t, with(kc.Word, kc.Name)...)
		got := "<absent>"
		if m, ok := obj["metadata"].(map[string]any)["labels"].(map[string]any); ok {
			got = object(m).Str("e2e")
		}
		if got != st.labelNow {
			t.Errorf("%s: label e2e = %s, want %s", what, got, st.labelNow)
		}
	}
	clitest.WantFields(t, "after label", obj, map[string]string{"metadata.labels": labelsBefore})

	r = u.run(t, "", with("delete", kc.Word, kc.Name)...)
	wantResult(t, "delete", r, fmt.Sprintf("Successfully deleted 1 '%s' resource(s)\n", kc.Kind), "", 0)
	r = u.run(t, "", with("get", kc.Word, kc.Name)...)
	wantResult(t, "get after delete", r, "", "resource does not exist: "+key+" with error: <nil>\n", 1)
	r = u.run(t, "", with("delete", kc.Word, kc.Name)...)
	wantResult(t, "delete again", r, "", "Failed to delete '"+kc.Kind+"' resource: resource does not exist: "+key+" with error: <nil>\n", 1)
}
