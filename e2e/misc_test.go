package e2e

import (
	"regexp"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/e2e/clitest"
)

// versionLine matches one `calicoctl version` line: labels padded so that
// every value starts at column 20.
var versionLine = regexp.MustCompile(`^(Client Version|Git commit|Cluster Version|Cluster Type): +(\S.*)$`)

func parseVersion(t *testing.T, out string) (labels []string, values map[string]string) {
	t.Helper()
	values = map[string]string{}
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		m := versionLine.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("unexpected version line %q", l)
			continue
		}
		if strings.Index(l, m[2]) != 19 {
			t.Errorf("value of %q starts at column %d, want 20", l, strings.Index(l, m[2])+1)
		}
		labels = append(labels, m[1])
		values[m[1]] = m[2]
	}
	return labels, values
}

func TestVersion(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	out := c.mustRun(t, "", "version")
	labels, v := parseVersion(t, out)
	if strings.Join(labels, ",") != "Client Version,Git commit,Cluster Version,Cluster Type" {
		t.Errorf("version lines: %v", labels)
	}
	if !strings.HasPrefix(v["Client Version"], "v3.") {
		t.Errorf("Client Version %q: want a v3.x version", v["Client Version"])
	}
	// `datastore serve` initializes the cluster with its own version.
	if v["Cluster Version"] != v["Client Version"] || v["Cluster Type"] != "etcd" {
		t.Errorf("cluster: version %q type %q; want %q and etcd", v["Cluster Version"], v["Cluster Type"], v["Client Version"])
	}

	out = c.mustRun(t, "", "version", "--client")
	labels, _ = parseVersion(t, out)
	if strings.Join(labels, ",") != "Client Version,Git commit" {
		t.Errorf("version --client lines: %v", labels)
	}

	res := clitest.Exec(t, binPath, t.TempDir(), env{"DATASTORE_TYPE": "etcdv3", "ETCD_ENDPOINTS": "http://127.0.0.1:1"}, "", "version")
	clitest.WantContains(t, "unreachable", res.Stdout, "Client Version:", "Unable to detect installed Calico version")
}

func TestVersionMismatch(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	_, v := parseVersion(t, c.mustRun(t, "", "version", "--client"))
	client := v["Client Version"]
	c.mustRun(t, "", "create", "-f", testdata(t, "kinds/ippool.yaml"))

	out := c.mustRun(t, "", "patch", "clusterinformation", "default", "-p", `{"spec":{"calicoVersion":"v3.20.0"}}`)
	clitest.WantExact(t, "patch", out, "Successfully patched 1 'ClusterInformation' resource\n")

	mismatch := "version mismatch.\nClient Version:   " + client + "\nCluster Version:  3.20.0\nUse --allow-version-mismatch to override\n"
	for _, args := range [][]string{
		{"get", "ippool"},
		{"apply", "-f", testdata(t, "kinds/ippool.yaml")},
		{"delete", "ippool", "pool-blue"},
		{"label", "ippool", "pool-blue", "a=b"},
		{"patch", "ippool", "pool-blue", "-p", `{"spec":{"disabled":true}}`},
	} {
		res := c.runEnv(t, nil, "", args...)
		clitest.WantExact(t, strings.Join(args, " ")+" stderr", res.Stderr, mismatch)
		if res.Code != 1 || res.Stdout != "" {
			t.Errorf("%v: exit %d stdout %q", args, res.Code, res.Stdout)
		}
	}
	// Nothing above was written.
	obj, _ := c.getYAML(t, "--allow-version-mismatch", "ippool", "pool-blue")
	clitest.WantFields(t, "untouched", obj, map[string]string{"spec.disabled": "<absent>", "metadata.labels": "<absent>"})

	want := "NAME        CIDR           SELECTOR   \npool-blue   10.96.0.0/20   all()      \n\n"
	out = c.mustRun(t, "", "--allow-version-mismatch", "get", "ippool")
	clitest.WantExact(t, "--allow-version-mismatch", out, want)
	for _, val := range []string{"true", "1"} {
		res := c.runEnv(t, env{"CALICO_ALLOW_VERSION_MISMATCH": val}, "", "get", "ippool")
		clitest.WantExact(t, "CALICO_ALLOW_VERSION_MISMATCH="+val, res.Stdout, want)
		if res.Code != 0 {
			t.Errorf("CALICO_ALLOW_VERSION_MISMATCH=%s: exit %d stderr %q", val, res.Code, res.Stderr)
		}
	}
	res := c.runEnv(t, env{"CALICO_ALLOW_VERSION_MISMATCH": "false"}, "", "get", "ippool")
	if res.Code != 1 {
		t.Errorf("CALICO_ALLOW_VERSION_MISMATCH=false: exit %d, want the check to run", res.Code)
	}
	// version itself is not checked: it reports the cluster's version.
	_, v = parseVersion(t, c.mustRun(t, "", "version"))
	if v["Cluster Version"] != "v3.20.0" {
		t.Errorf("Cluster Version %q, want v3.20.0", v["Cluster Version"])
	}
	// Back to the client's version: the check passes again.
	c.mustRun(t, "", "--allow-version-mismatch", "patch", "clusterinfo", "default", "-p", `{"spec":{"calicoVersion":"`+client+`"}}`)
	clitest.WantExact(t, "matching again", c.mustRun(t, "", "get", "ippool"), want)
}

func TestConfigView(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	res := clitest.Exec(t, binPath, home, env{
		"DATASTORE_TYPE": "etcdv3", "ETCD_ENDPOINTS": "http://10.0.0.1:2379",
		"ETCD_USERNAME": "calico", "ETCD_PASSWORD": "s3cr3t-pw",
	}, "", "config", "view")
	if res.Code != 0 {
		t.Fatalf("exit %d stderr %q", res.Code, res.Stderr)
	}
	rows := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		f := strings.Fields(l)
		if len(f) > 0 {
			rows[f[0]] = f[1:]
		}
	}
	for field, want := range map[string]string{
		"datastoreType": "etcdv3 env DATASTORE_TYPE",
		"etcdEndpoints": "http://10.0.0.1:2379 env ETCD_ENDPOINTS",
		"etcdUsername":  "calico env ETCD_USERNAME",
		"etcdPassword":  "******** env ETCD_PASSWORD",
		"etcdKeyFile":   "default",
	} {
		if got := strings.Join(rows[field], " "); got != want {
			t.Errorf("%s: %q, want %q", field, got, want)
		}
	}
	if strings.Contains(res.Stdout, "s3cr3t-pw") {
		t.Errorf("password leaked:\n%s", res.Stdout)
	}

	// CALICO_<NAME> wins over <NAME>.
	res = clitest.Exec(t, binPath, home, env{
		"CALICO_ETCD_ENDPOINTS": "http://10.0.0.2:2379", "ETCD_ENDPOINTS": "http://10.0.0.1:2379",
	}, "", "config", "view", "-o", "yaml")
	clitest.WantContains(t, "CALICO_ prefix", res.Stdout, "source: env CALICO_ETCD_ENDPOINTS\n  value: http://10.0.0.2:2379\n")
}

func TestCompletion(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	for _, shell := range []string{"bash", "zsh", "fish"} {
		res := clitest.Exec(t, binPath, home, nil, "", "completion", shell)
		if res.Code != 0 || len(res.Stdout) < 500 {
			t.Errorf("completion %s: exit %d, %d bytes", shell, res.Code, len(res.Stdout))
		}
	}
	res := clitest.Exec(t, binPath, home, nil, "", "completion", "bash")
	clitest.WantContains(t, "bash completion", res.Stdout, "# bash completion", "complete -o default -o nospace -F __start_calicoctl calicoctl")
	// Dynamic completion of kinds (what the script calls).
	res = clitest.Exec(t, binPath, home, nil, "", "__complete", "get", "")
	clitest.WantContains(t, "kind completion", res.Stdout, "ippools\n", "globalnetworkpolicies\n", "workloadendpoints\n")
}

func TestKubectlPlugin(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.mustRun(t, "", "apply", "-f", testdata(t, "seed/default-ipv4-ippool.yaml"))
	for _, args := range [][]string{
		{"get", "ippool", "-o", "wide"},
		{"get", "ippool", "default-ipv4-ippool", "-o", "yaml"},
		{"version", "--client"},
	} {
		direct := c.runEnv(t, nil, "", args...)
		plugin := clitest.Exec(t, pluginPath, c.home, c.env(), "", args...)
		if direct.Code != 0 || plugin != direct {
			t.Errorf("%v: calicoctl and kubectl-calico differ:\ncalicoctl: %+v\nkubectl-calico: %+v", args, direct, plugin)
		}
	}
	out := clitest.Exec(t, pluginPath, c.home, c.env(), "", "apply", "-f", testdata(t, "kinds/bgppeer.yaml"))
	clitest.WantExact(t, "plugin apply", out.Stdout, "Successfully applied 1 'BGPPeer' resource(s)\n")
}

func TestKubectlPluginHelp(t *testing.T) {
	t.Parallel()
	res := clitest.Exec(t, binPath, t.TempDir(), nil, "", "--help")
	clitest.WantContains(t, "calicoctl help", res.Stdout, "\n  calicoctl [command]\n")
	res = clitest.Exec(t, pluginPath, t.TempDir(), nil, "", "--help")
	clitest.WantContains(t, "kubectl-calico help", res.Stdout, "\n  kubectl calico [command]\n", "kubectl calico [command] --help")
}
