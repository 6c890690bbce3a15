package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/e2e/clitest"
)

// TestSeedDefaultPool is the first thing the kubeadm walkthrough (seed 000)
// does: apply the default pool and look at it with `get ippool -o wide`.
func TestSeedDefaultPool(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	out := c.mustRun(t, "", "apply", "-f", testdata(t, "seed/default-ipv4-ippool.yaml"))
	clitest.WantExact(t, "apply", out, "Successfully applied 1 'IPPool' resource(s)\n")

	// tabwriter: 3-space gutters, every cell tab-terminated (trailing spaces),
	// then an empty line after the table.
	wantWide := "" +
		"NAME                  CIDR            NAT    IPIPMODE   VXLANMODE   DISABLED   DISABLEBGPEXPORT   SELECTOR   ASSIGNMENTMODE   \n" +
		"default-ipv4-ippool   10.244.0.0/16   true   Always     Never       false      false              all()      Automatic        \n" +
		"\n"
	wantPS := "" +
		"NAME                  CIDR            SELECTOR   \n" +
		"default-ipv4-ippool   10.244.0.0/16   all()      \n" +
		"\n"
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"get", "ippool", "-o", "wide"}, wantWide},
		{[]string{"get", "ippools"}, wantPS},
		{[]string{"get", "pool", "default-ipv4-ippool", "-o", "ps"}, wantPS},
		{[]string{"get", "IPPool", "-o", "wide"}, wantWide},
	}
	for _, tt := range tests {
		out, errOut, code := c.run(t, "", tt.args...)
		clitest.WantExact(t, strings.Join(tt.args, " "), out, tt.want)
		if code != 0 || errOut != "" {
			t.Errorf("%v: exit %d, stderr %q", tt.args, code, errOut)
		}
	}

	// Applying the same file again updates in place.
	out = c.mustRun(t, "", "apply", "-f", testdata(t, "seed/default-ipv4-ippool.yaml"))
	clitest.WantExact(t, "second apply", out, "Successfully applied 1 'IPPool' resource(s)\n")
	clitest.WantExact(t, "wide after second apply", c.mustRun(t, "", "get", "ippool", "-o", "wide"), wantWide)
}

func TestOutputFormats(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	out := c.mustRun(t, "", "create", "-f", testdata(t, "batch/formats.yaml"))
	clitest.WantExact(t, "create", out, "Successfully created 3 resource(s)\n")

	t.Run("json list", func(t *testing.T) {
		out := c.mustRun(t, "", "get", "ippool", "-o", "json")
		if strings.HasSuffix(out, "\n") || !strings.HasSuffix(out, "}") {
			t.Errorf("JSON should end with '}' and no newline: %q", out[max(0, len(out)-10):])
		}
		if !strings.HasPrefix(out, "{\n  \"kind\": \"IPPoolList\",\n  \"apiVersion\": \"projectcalico.org/v3\",\n") {
			t.Errorf("want 2-space indented IPPoolList first, got:\n%s", out)
		}
		var list struct {
			Kind     string `json:"kind"`
			Metadata struct {
				ResourceVersion string `json:"resourceVersion"`
			} `json:"metadata"`
			Items []map[string]any `json:"items"`
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatal(err)
		}
		if list.Kind != "IPPoolList" || list.Metadata.ResourceVersion == "" || len(list.Items) != 2 {
			t.Errorf("list: kind %q rv %q items %d", list.Kind, list.Metadata.ResourceVersion, len(list.Items))
		}
		if len(list.Items) == 2 && (object(list.Items[0]).Str("metadata.name") != `"pool-a"` || object(list.Items[1]).Str("metadata.name") != `"pool-b"`) {
			t.Errorf("items not sorted by name: %s, %s", object(list.Items[0]).Str("metadata.name"), object(list.Items[1]).Str("metadata.name"))
		}
	})

	t.Run("json one named object alone", func(t *testing.T) {
		out := c.mustRun(t, "", "get", "ippool", "pool-b", "-o", "json")
		o := clitest.ParseObject(t, out)
		clitest.WantFields(t, "pool-b", o, map[string]string{
			"kind": `"IPPool"`, "metadata.name": `"pool-b"`, "spec.nodeSelector": `"zone == 'b'"`, "spec.natOutgoing": `true`,
		})
		if !strings.HasPrefix(out, "{\n  \"kind\": \"IPPool\",\n") || strings.HasSuffix(out, "\n") {
			t.Errorf("want a lone 2-space indented object without trailing newline, got:\n%s", out)
		}
	})

	t.Run("json several names is an array", func(t *testing.T) {
		out := c.mustRun(t, "", "get", "ippool", "pool-b", "pool-a", "-o", "json")
		var arr []map[string]any
		if err := json.Unmarshal([]byte(out), &arr); err != nil {
			t.Fatalf("want a JSON array: %v\n%s", err, out)
		}
		if len(arr) != 2 || object(arr[0]).Str("metadata.name") != `"pool-b"` || object(arr[1]).Str("metadata.name") != `"pool-a"` {
			t.Errorf("array: %s", out)
		}
		if !strings.HasPrefix(out, "[\n  {\n    \"kind\": \"IPPool\"") {
			t.Errorf("want 2-space indentation inside the array:\n%s", out)
		}
	})

	t.Run("yaml", func(t *testing.T) {
		list := clitest.ParseObject(t, c.mustRun(t, "", "get", "ippools", "-o", "yaml"))
		clitest.WantFields(t, "yaml list", list, map[string]string{
			"kind": `"IPPoolList"`, "apiVersion": `"projectcalico.org/v3"`,
			"items.0.metadata.name": `"pool-a"`, "items.1.metadata.name": `"pool-b"`, "items.2": "<absent>",
			"items.0.spec.vxlanMode": `"Always"`, "items.0.spec.ipipMode": `"Never"`,
		})
		if list.Str("metadata.resourceVersion") == "<absent>" {
			t.Error("yaml list has no metadata.resourceVersion")
		}
		one := c.mustRun(t, "", "get", "ippool", "pool-a", "-o", "yml")
		if !strings.HasPrefix(one, "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n") {
			t.Errorf("single yaml object, keys sorted:\n%s", one)
		}
		several := c.mustRun(t, "", "get", "ippool", "pool-a", "pool-b", "-o", "yaml")
		if !strings.HasPrefix(several, "- apiVersion: projectcalico.org/v3\n  kind: IPPool\n") || strings.Count(several, "\n- apiVersion:") != 1 {
			t.Errorf("several names: want a YAML sequence of two objects:\n%s", several)
		}
	})

	t.Run("go-template", func(t *testing.T) {
		out := c.mustRun(t, "", "get", "ippool", "-o", `go-template={{range .Items}}{{.Name}}={{.Spec.CIDR}};{{end}}`)
		clitest.WantExact(t, "list template", out, "pool-a=10.1.0.0/16;pool-b=10.2.0.0/16;")
		out = c.mustRun(t, "", "get", "ippool", "pool-b", "pool-a", "-o", `go-template={{.Name}} `)
		clitest.WantExact(t, "per-object template", out, "pool-b pool-a ")
		out = c.mustRun(t, "", "get", "ippool", "-o", "go-template-file="+testdata(t, "batch/template.tmpl"))
		clitest.WantExact(t, "template file", out, "pool-a 10.1.0.0/16\npool-b 10.2.0.0/16\n\n")
		res := c.runEnv(t, nil, "", "get", "ippool", "-o", "go-template={{.Nope")
		if res.Code != 1 || res.Stdout != "" || res.Stderr == "" {
			t.Errorf("bad template: %+v", res)
		}
	})

	t.Run("custom-columns", func(t *testing.T) {
		out := c.mustRun(t, "", "get", "ippool", "-o", "custom-columns=NAME,NAT,VXLANMODE")
		clitest.WantExact(t, "custom columns", out, ""+
			"NAME     NAT     VXLANMODE   \n"+
			"pool-a   false   Always      \n"+
			"pool-b   true    Never       \n"+
			"\n")
		res := c.runEnv(t, nil, "", "get", "ippool", "-o", "custom-columns=NAME,BOGUS")
		clitest.WantExact(t, "unknown heading", res.Stderr, "unknown heading BOGUS, valid values are: ASSIGNMENTMODE, CIDR, DISABLEBGPEXPORT, DISABLED, IPIPMODE, NAME, NAT, SELECTOR, VXLANMODE\n")
		if res.Code != 1 || res.Stdout != "" {
			t.Errorf("unknown heading: exit %d stdout %q", res.Code, res.Stdout)
		}
	})

	t.Run("unknown format", func(t *testing.T) {
		res := c.runEnv(t, nil, "", "get", "ippool", "-o", "xml")
		clitest.WantExact(t, "stderr", res.Stderr, "unrecognized output format 'xml'\n")
		if res.Code != 1 || res.Stdout != "" {
			t.Errorf("exit %d stdout %q", res.Code, res.Stdout)
		}
	})

	t.Run("some names missing", func(t *testing.T) {
		res := c.runEnv(t, nil, "", "get", "ippool", "pool-a", "nope", "pool-b", "gone")
		clitest.WantExact(t, "stdout", res.Stdout, ""+
			"NAME     CIDR          SELECTOR   \n"+
			"pool-a   10.1.0.0/16   all()      \n"+
			"\n"+
			"NAME     CIDR          SELECTOR      \n"+
			"pool-b   10.2.0.0/16   zone == 'b'   \n"+
			"\n")
		clitest.WantExact(t, "stderr", res.Stderr, ""+
			"resource does not exist: IPPool(nope) with error: <nil>\n"+
			"resource does not exist: IPPool(gone) with error: <nil>\n")
		if res.Code != 1 {
			t.Errorf("exit %d, want 1", res.Code)
		}
		res = c.runEnv(t, nil, "", "get", "ippool", "nope", "pool-a", "-o", "json")
		clitest.WantFields(t, "json with a missing name", clitest.ParseObject(t, res.Stdout), map[string]string{"metadata.name": `"pool-a"`})
		if res.Code != 1 || res.Stderr != "resource does not exist: IPPool(nope) with error: <nil>\n" {
			t.Errorf("json with a missing name: exit %d stderr %q", res.Code, res.Stderr)
		}
	})

	t.Run("several kinds", func(t *testing.T) {
		out := c.mustRun(t, "", "get", "ippool,bgppeer")
		// A peerSelector peer has no asNumber: the ASN column shows 0, as upstream's template does.
		clitest.WantExact(t, "ippool,bgppeer", out, ""+
			"NAME     CIDR          SELECTOR      \n"+
			"pool-a   10.1.0.0/16   all()         \n"+
			"pool-b   10.2.0.0/16   zone == 'b'   \n"+
			"\n"+
			"NAME          PEERIP   NODE                           ASN   \n"+
			"peer-to-rrs            !has(i-am-a-route-reflector)   0     \n"+
			"\n")
		list := c.mustRun(t, "", "get", "bgppeers,ippools", "-o", "yaml")
		if i, j := strings.Index(list, "kind: BGPPeerList"), strings.Index(list, "kind: IPPoolList"); i < 0 || j < 0 || i > j {
			t.Errorf("want a BGPPeerList then an IPPoolList:\n%s", list)
		}
	})

	t.Run("empty list", func(t *testing.T) {
		clitest.WantExact(t, "no tables rows", c.mustRun(t, "", "get", "hostendpoints"), "NAME   NODE   \n\n")
		l := clitest.ParseObject(t, c.mustRun(t, "", "get", "hep", "-o", "json"))
		clitest.WantFields(t, "empty list", l, map[string]string{"kind": `"HostEndpointList"`, "items": `[]`})
	})

	t.Run("namespaced kinds", func(t *testing.T) {
		np := "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: deny-all\nspec:\n  order: 5\n  selector: all()\n"
		c.mustRun(t, np, "create", "-f", "-", "-n", "team-a")
		c.mustRun(t, np, "create", "-f", "-")
		clitest.WantExact(t, "default ns", c.mustRun(t, "", "get", "np"), "NAME       TIER      \ndeny-all   default   \n\n")
		clitest.WantExact(t, "-n", c.mustRun(t, "", "get", "np", "-n", "team-a", "-o", "wide"),
			"NAMESPACE   NAME       TIER      ORDER   SELECTOR   \nteam-a      deny-all   default   5       all()      \n\n")
		clitest.WantExact(t, "-A", c.mustRun(t, "", "get", "np", "-A"),
			"NAMESPACE   NAME       TIER      \ndefault     deny-all   default   \nteam-a      deny-all   default   \n\n")
		res := c.runEnv(t, nil, "", "get", "np", "deny-all", "-A")
		clitest.WantExact(t, "-A with a name", res.Stderr, "cannot use --all-namespace flag for getting a single resource\n")
		res = c.runEnv(t, nil, "", "get", "ippool", "-A")
		clitest.WantExact(t, "-A on a cluster-scoped kind", res.Stderr, "IPPool is not namespaced\n")
		if res.Code != 1 || res.Stdout != "" {
			t.Errorf("-A on a cluster-scoped kind: exit %d stdout %q", res.Code, res.Stdout)
		}
	})
}
