package e2e

import (
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/e2e/clitest"
)

// TestTiersAndUnsetCells: tiers are listed by order (unset last, ties by
// name) in tables, YAML and JSON; float orders print as upstream's Go %v
// (1e+06), an unset policy order as <nil>, and a node-specific
// BGPConfiguration's unset mesh and AS number as "-".
func TestTiersAndUnsetCells(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.mustRun(t, "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: security\nspec:\n  order: 100\n---\n"+
		"apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: platform\nspec:\n  order: 200\n---\n"+
		"apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: a-half\nspec:\n  order: 0.5\n", "apply", "-f", "-")

	clitest.WantExact(t, "get tier", c.mustRun(t, "", "get", "tier"), ""+
		"NAME            ORDER   \n"+
		"a-half          0.5     \n"+
		"security        100     \n"+
		"platform        200     \n"+
		"kube-admin      1000    \n"+
		"default         1e+06   \n"+
		"kube-baseline   1e+07   \n"+
		"\n")
	wantOrder := []string{"a-half", "security", "platform", "kube-admin", "default", "kube-baseline"}
	for _, format := range []string{"yaml", "json"} {
		l := clitest.ParseObject(t, c.mustRun(t, "", "get", "tier", "-o", format))
		items, _ := l["items"].([]any)
		var names []string
		for _, it := range items {
			names = append(names, clitest.Object(it.(map[string]any)).Str("metadata.name"))
		}
		if got, want := strings.Join(names, ","), `"`+strings.Join(wantOrder, `","`)+`"`; got != want {
			t.Errorf("get tier -o %s: items %s, want %s", format, got, want)
		}
	}

	c.mustRun(t, "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: no-order\nspec:\n  selector: all()\n---\n"+
		"apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: big-order\nspec:\n  order: 2000000\n  selector: all()\n---\n"+
		"apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: np-no-order\n  namespace: default\nspec:\n  selector: all()\n",
		"apply", "-f", "-")
	clitest.WantExact(t, "get gnp -o wide", c.mustRun(t, "", "get", "gnp", "-o", "wide"), ""+
		"NAME        TIER      ORDER   SELECTOR   \n"+
		"big-order   default   2e+06   all()      \n"+
		"no-order    default   <nil>   all()      \n"+
		"\n")
	clitest.WantExact(t, "get np -o wide", c.mustRun(t, "", "get", "np", "-o", "wide"), ""+
		"NAME          TIER      ORDER   SELECTOR   \n"+
		"np-no-order   default   <nil>   all()      \n"+
		"\n")

	c.mustRun(t, "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: node.rr1\nspec:\n  logSeverityScreen: Info\n---\n"+
		"apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  nodeToNodeMeshEnabled: false\n  asNumber: 64513\n",
		"apply", "-f", "-")
	clitest.WantExact(t, "get bgpconfig", c.mustRun(t, "", "get", "bgpconfig"), ""+
		"NAME       LOGSEVERITY   MESHENABLED   ASNUMBER   \n"+
		"default                  false         64513      \n"+
		"node.rr1   Info          -             -          \n"+
		"\n")
}

// TestDefaultAllowProfile: the built-in projectcalico-default-allow profile
// is served on etcd without being stored, and writes to it are refused
// naming it.
func TestDefaultAllowProfile(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	clitest.WantExact(t, "get profile", c.mustRun(t, "", "get", "profile"), ""+
		"NAME                          \n"+
		"projectcalico-default-allow   \n"+
		"\n")
	clitest.WantExact(t, "get profile -o yaml", c.mustRun(t, "", "get", "profile", "projectcalico-default-allow", "-o", "yaml"), ""+
		"apiVersion: projectcalico.org/v3\n"+
		"kind: Profile\n"+
		"metadata:\n"+
		"  name: projectcalico-default-allow\n"+
		"  resourceVersion: \"1\"\n"+
		"spec:\n"+
		"  egress:\n"+
		"  - action: Allow\n"+
		"  ingress:\n"+
		"  - action: Allow\n")
	c.mustRun(t, "", "create", "-f", testdata(t, "kinds/profile.yaml"))
	rows := c.mustRun(t, "", "get", "profile", "-o", "wide")
	if !strings.Contains(rows, "projectcalico-default-allow") || !strings.Contains(rows, "\nedge ") {
		t.Errorf("get profile -o wide after create:\n%s", rows)
	}

	file := clitest.WriteFile(t, "da.yaml", c.mustRun(t, "", "get", "profile", "projectcalico-default-allow", "--export", "-o", "yaml"))
	for _, args := range [][]string{
		{"apply", "-f", file}, {"create", "-f", file}, {"replace", "-f", file},
		{"delete", "profile", "projectcalico-default-allow"},
		{"label", "profile", "projectcalico-default-allow", "a=b"},
	} {
		res := c.runEnv(t, nil, "", args...)
		clitest.WantOneLine(t, args[0]+" stderr", res.Stderr)
		if args[0] == "label" {
			clitest.WantContains(t, "label stderr", res.Stderr, "failed to update profile projectcalico-default-allow, label not changed")
		} else {
			clitest.WantContains(t, args[0]+" stderr", res.Stderr, "Profile(projectcalico-default-allow): the built-in profile is read-only")
		}
		if res.Code != 1 || res.Stdout != "" {
			t.Errorf("%v: exit %d stdout %q, want 1 and nothing", args, res.Code, res.Stdout)
		}
	}
}

// TestApplyExportedNode: on etcd too, `get node --export | apply` and
// `replace` of the export update the node.
func TestApplyExportedNode(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.mustRun(t, "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: master\nspec:\n  bgp:\n    ipv4Address: 10.0.0.1/24\n", "create", "-f", "-")
	obj := clitest.ParseObject(t, c.mustRun(t, "", "get", "node", "master", "--export", "-o", "yaml"))
	obj.Set(t, "metadata.labels", map[string]any{"i-am-a-route-reflector": "true"})
	obj.Set(t, "spec.bgp.routeReflectorClusterID", "224.0.0.1")
	file := clitest.WriteFile(t, "m1.yml", obj.YAML(t))
	clitest.WantExact(t, "apply", c.mustRun(t, "", "apply", "-f", file), "Successfully applied 1 'Node' resource(s)\n")
	obj.Set(t, "spec.bgp.routeReflectorClusterID", "224.0.0.2")
	file = clitest.WriteFile(t, "m2.yml", obj.YAML(t))
	clitest.WantExact(t, "replace", c.mustRun(t, "", "replace", "-f", file), "Successfully replaced 1 'Node' resource(s)\n")
	got, _ := c.getYAML(t, "node", "master")
	clitest.WantFields(t, "node", got, map[string]string{
		"metadata.labels": `{"i-am-a-route-reflector":"true"}`,
		"spec.bgp":        `{"ipv4Address":"10.0.0.1/24","routeReflectorClusterID":"224.0.0.2"}`,
	})
}
