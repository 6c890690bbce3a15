package kdd

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opencalico/calicoctl/e2e/clitest"
	"github.com/opencalico/calicoctl/internal/crds"
	"github.com/opencalico/calicoctl/internal/kubetest"
	"github.com/opencalico/calicoctl/internal/kubetest/kubecrd"
)

// TestUnreachableAPIServer: a kubeconfig naming a closed port fails at
// once with one line that names the URL; nothing panics.
func TestUnreachableAPIServer(t *testing.T) {
	t.Parallel()
	srv := server(t)
	kc := clitest.WriteFile(t, "kubeconfig", strings.ReplaceAll(clitest.ReadFile(t, srv.Kubeconfig), srv.URL, "https://127.0.0.1:1"))
	u := &user{kubeconfig: kc, home: t.TempDir()}
	for _, args := range [][]string{
		{"get", "ippool"},
		{"create", "-f", clitest.WriteFile(t, "pool.yaml", ippoolYAML("unreachable-pool", "10.202.0.0/24"))},
		{"get", "wep", "-A"},
		{"datastore", "crds", "install"},
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			r := u.run(t, "", args...)
			if r.Code != 1 {
				t.Errorf("exit %d, want 1", r.Code)
			}
			clitest.WantExact(t, "stdout", r.Stdout, "")
			clitest.WantOneLine(t, "stderr", r.Stderr)
			clitest.WantContains(t, "stderr", r.Stderr, "https://127.0.0.1:1")
		})
	}
	if r := admin(t, srv).run(t, "", "get", "ippool", "unreachable-pool"); r.Code != 1 {
		t.Errorf("unreachable-pool exists on the real server: %+v", r)
	}
}

// TestCRDsMissing: on a cluster without the Calico CRDs every command says
// to run `calicoctl datastore crds install`; running it fixes the cluster.
func TestCRDsMissing(t *testing.T) {
	t.Parallel()
	clitest.TrackSources(t)
	srv := kubetest.Start(t)
	u := admin(t, srv)
	pool := clitest.WriteFile(t, "pool.yaml", ippoolYAML("fresh-pool", "10.203.0.0/24"))

	for _, args := range [][]string{{"get", "ippool"}, {"create", "-f", pool}} {
		r := u.run(t, "", args...)
		what := strings.Join(args[:2], " ") + " before install"
		if r.Code != 1 {
			t.Errorf("%s: exit %d, want 1", what, r.Code)
		}
		clitest.WantExact(t, what+" stdout", r.Stdout, "")
		clitest.WantOneLine(t, what+" stderr", r.Stderr)
		clitest.WantContains(t, what+" stderr", r.Stderr, "calicoctl datastore crds install")
	}
	// The failed create did not install anything by the back door.
	if n := servedCalicoCRDs(t, srv); n != 0 {
		t.Errorf("%d Calico CRDs served after failed commands, want 0", n)
	}

	list, err := crds.All()
	if err != nil {
		t.Fatal(err)
	}
	out := u.mustRun(t, "datastore", "crds", "install")
	clitest.WantExact(t, "crds install", out, fmt.Sprintf("Successfully applied %d CRD(s)\n", len(list)))
	// Install waits until established; discovery may lag a moment behind.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := kubecrd.WaitServed(ctx, srv.RESTConfig(), list); err != nil {
		t.Fatal(err)
	}
	clitest.WantExact(t, "get ippool after install", u.mustRun(t, "get", "ippool"), table([]string{"NAME", "CIDR", "SELECTOR"}))
	clitest.WantExact(t, "create after install", u.mustRun(t, "create", "-f", pool), "Successfully created 1 'IPPool' resource(s)\n")
	clitest.WantExact(t, "get ippool after create", u.mustRun(t, "get", "ippool"),
		table([]string{"NAME", "CIDR", "SELECTOR"}, []string{"fresh-pool", "10.203.0.0/24", "all()"}))
	// Installing again is an idempotent upgrade.
	clitest.WantExact(t, "crds install again", u.mustRun(t, "datastore", "crds", "install"), fmt.Sprintf("Successfully applied %d CRD(s)\n", len(list)))
	obj, _ := u.getYAML(t, "ippool", "fresh-pool")
	clitest.WantFields(t, "fresh-pool after reinstall", obj, map[string]string{"spec.cidr": `"10.203.0.0/24"`})
}

// servedCalicoCRDs counts the CustomResourceDefinitions in the Calico group.
func servedCalicoCRDs(t testing.TB, srv *kubetest.APIServer) int {
	t.Helper()
	res, err := srv.Clientset(t).Discovery().ServerResourcesForGroupVersion("crd.projectcalico.org/v1")
	if err != nil {
		return 0
	}
	return len(res.APIResources)
}

// TestNoRBACRights: a user without rights gets one line naming the verb and
// the resource; a read-only user cannot write and nothing is half-written.
func TestNoRBACRights(t *testing.T) {
	t.Parallel()
	srv := server(t)
	cs := srv.Clientset(t)
	pool := clitest.WriteFile(t, "pool.yaml", ippoolYAML("rbac-pool", "10.204.0.0/24"))

	// alice has no rights at all.
	alice := &user{kubeconfig: srv.KubeconfigFor(t, "alice"), home: t.TempDir()}
	r := alice.run(t, "", "get", "ippool", "--allow-version-mismatch")
	if r.Code != 1 {
		t.Errorf("alice get ippool: exit %d, want 1", r.Code)
	}
	clitest.WantOneLine(t, "alice get ippool stderr", r.Stderr)
	clitest.WantContains(t, "alice get ippool stderr", r.Stderr, "forbidden", "list", "ippools", `"alice"`)
	// Without --allow-version-mismatch the version check's read fails first:
	// upstream's message plus its hint line.
	r = alice.run(t, "", "get", "ippool")
	if r.Code != 1 {
		t.Errorf("alice get ippool (version check): exit %d, want 1", r.Code)
	}
	clitest.WantExact(t, "alice version-check stderr", r.Stderr,
		"unable to get Cluster Information to verify version mismatch: forbidden: cannot get clusterinformations.crd.projectcalico.org at the cluster scope (user \"alice\")\nUse --allow-version-mismatch to override\n")

	// bob may read every Calico CR and nothing else.
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "kdd-calico-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"crd.projectcalico.org"}, Resources: []string{"*"}, Verbs: []string{"get", "list", "watch"}}},
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(t.Context(), role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "kdd-calico-reader-bob"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "bob"}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(t.Context(), binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bob := &user{kubeconfig: srv.KubeconfigFor(t, "bob"), home: t.TempDir()}
	// RBAC caches converge quickly but not instantly: wait for bob's read.
	deadline := time.Now().Add(20 * time.Second)
	for {
		r = bob.run(t, "", "get", "ippool", "rbac-pool")
		if strings.Contains(r.Stderr, "resource does not exist") || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	clitest.WantExact(t, "bob get (missing pool) stderr", r.Stderr, "resource does not exist: IPPool(rbac-pool) with error: <nil>\n")

	r = bob.run(t, "", "create", "-f", pool)
	if r.Code != 1 {
		t.Errorf("bob create: exit %d, want 1", r.Code)
	}
	clitest.WantExact(t, "bob create stdout", r.Stdout, "")
	clitest.WantOneLine(t, "bob create stderr", r.Stderr)
	clitest.WantContains(t, "bob create stderr", r.Stderr, "failed to create 'IPPool' resource", "forbidden", "create", "ippools", `"bob"`)
	r = bob.run(t, "", "delete", "tier", "default")
	if r.Code != 1 {
		t.Errorf("bob delete tier: exit %d, want 1", r.Code)
	}
	clitest.WantOneLine(t, "bob delete stderr", r.Stderr)
	clitest.WantContains(t, "bob delete stderr", r.Stderr, "forbidden", "delete", "tiers")

	// Nothing half-written.
	u := admin(t, srv)
	r = u.run(t, "", "get", "ippool", "rbac-pool")
	clitest.WantExact(t, "admin get rbac-pool stderr", r.Stderr, "resource does not exist: IPPool(rbac-pool) with error: <nil>\n")
	clitest.WantContains(t, "tiers", u.mustRun(t, "get", "tier", "default"), "default")
}

// TestConfigViewKubeconfigSource: config view names where the kubeconfig
// came from.
func TestConfigViewKubeconfigSource(t *testing.T) {
	t.Parallel()
	srv := server(t)
	u := admin(t, srv)
	out := u.mustRun(t, "config", "view")
	rows := tableRows(out)
	if len(rows) == 0 || strings.Join(rows[0], " ") != "FIELD VALUE SOURCE" {
		t.Fatalf("config view header: %q", out)
	}
	for field, want := range map[string]string{
		"kubeconfig":    srv.Kubeconfig + " env KUBECONFIG",
		"datastoreType": "kubernetes env DATASTORE_TYPE",
	} {
		if got, ok := rowWith(rows, 0, field); !ok || strings.Join(got[1:], " ") != want {
			t.Errorf("config view %s: row %v, want %q", field, got, want)
		}
	}
}
