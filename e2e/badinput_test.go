package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/e2e/clitest"
)

// pool renders an IPPool manifest with extra spec lines.
func pool(name, specLines string) string {
	return "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: " + name + "\nspec:\n" + specLines
}

// TestBadInput: every bad input is one line on stderr, exit 1, nothing on
// stdout and nothing written (the helper also rejects any Go crash output).
func TestBadInput(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	tests := []struct {
		name  string
		stdin string
		args  []string
		env   env
		// want are substrings of the single stderr line.
		want []string
		// absent is a `get` that must report "resource does not exist"
		// afterwards (nothing was written).
		absent []string
	}{
		{
			name:   "malformed YAML names the line",
			stdin:  pool("bad-yaml", "  cidr: 10.0.0.0/8\n  nodeSelector: [unclosed\n"),
			args:   []string{"create", "-f", "-"},
			want:   []string{"failed to execute command", "line 7"},
			absent: []string{"ippool", "bad-yaml"},
		},
		{
			name:   "malformed JSON",
			stdin:  `{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"bad-json"},"spec":{"cidr":"10.0.0.0/8"}`,
			args:   []string{"apply", "-f", "-"},
			want:   []string{"failed to execute command", "JSON"},
			absent: []string{"ippool", "bad-json"},
		},
		{
			name: "unknown kind on the command line",
			args: []string{"get", "foo"},
			want: []string{"resource type 'foo' is not supported"},
		},
		{
			name:  "unknown kind in a document",
			stdin: "apiVersion: projectcalico.org/v3\nkind: Foo\nmetadata:\n  name: x\n",
			args:  []string{"create", "-f", "-"},
			want:  []string{"resource type 'Foo' is not supported"},
		},
		{
			name:   "unknown field",
			stdin:  pool("unknown-field", "  cidr: 10.0.0.0/8\n  foo: bar\n"),
			args:   []string{"create", "-f", "-"},
			want:   []string{"field in document is not recognized or is in the wrong location: foo"},
			absent: []string{"ippool", "unknown-field"},
		},
		{
			name:   "invalid CIDR",
			stdin:  pool("bad-cidr", "  cidr: 10.0.0.300/8\n"),
			args:   []string{"create", "-f", "-"},
			want:   []string{"failed to create 'IPPool' resource", "IPPool(bad-cidr)", "error with field spec.cidr = '10.0.0.300/8'"},
			absent: []string{"ippool", "bad-cidr"},
		},
		{
			name:   "invalid port in a BGP peer address",
			stdin:  "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: bad-port\nspec:\n  peerIP: 10.0.0.1:99999\n  asNumber: 64512\n",
			args:   []string{"apply", "-f", "-"},
			want:   []string{"BGPPeer(bad-port)", "spec.peerIP", "10.0.0.1:99999"},
			absent: []string{"bgppeer", "bad-port"},
		},
		{
			name:   "invalid port in a rule",
			stdin:  "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: bad-rule-port\nspec:\n  ingress:\n  - action: Allow\n    protocol: TCP\n    destination:\n      ports: [70000]\n",
			args:   []string{"create", "-f", "-"},
			want:   []string{"70000"},
			absent: []string{"gnp", "bad-rule-port"},
		},
		{
			name:   "invalid port range",
			stdin:  "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: bad-range\nspec:\n  ingress:\n  - action: Allow\n    protocol: TCP\n    destination:\n      ports: [\"90:80\"]\n",
			args:   []string{"create", "-f", "-"},
			want:   []string{"90", "80"},
			absent: []string{"gnp", "bad-range"},
		},
		{
			name:   "invalid selector names the position",
			stdin:  "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: bad-selector\nspec:\n  selector: role == \n",
			args:   []string{"create", "-f", "-"},
			want:   []string{"GlobalNetworkPolicy(bad-selector)", "spec.selector", "position 7"},
			absent: []string{"gnp", "bad-selector"},
		},
		{
			name:   "invalid name",
			stdin:  pool("Bad_Name", "  cidr: 10.0.0.0/8\n"),
			args:   []string{"create", "-f", "-"},
			want:   []string{"error with field metadata.name = 'Bad_Name'"},
			absent: []string{"ippool", "Bad_Name"},
		},
		{
			name:  "missing name",
			stdin: "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {}\nspec:\n  cidr: 10.0.0.0/8\n",
			args:  []string{"create", "-f", "-"},
			want:  []string{"resource name may not be empty"},
		},
		{
			name: "empty name on the command line",
			args: []string{"get", "ippool", ""},
			want: []string{"resource name may not be empty"},
		},
		{
			name:   "namespace on a cluster-scoped kind",
			stdin:  "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: ns-pool\n  namespace: prod\nspec:\n  cidr: 10.0.0.0/8\n",
			args:   []string{"create", "-f", "-"},
			want:   []string{"namespace should not be specified for a non-namespaced resource. IPPool is not a namespaced resource"},
			absent: []string{"ippool", "ns-pool"},
		},
		{
			name: "-n on a cluster-scoped kind",
			args: []string{"get", "ippool", "-n", "prod"},
			want: []string{"IPPool is not namespaced"},
		},
		{
			name:   "namespace differs from -n",
			stdin:  "apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata:\n  name: ns-mismatch\n  namespace: a\nspec: {}\n",
			args:   []string{"create", "-n", "b", "-f", "-"},
			want:   []string{"resource namespace does not match client namespace. a != b"},
			absent: []string{"netset", "ns-mismatch", "-n", "a"},
		},
		{
			name:  "apply of ClusterInformation",
			stdin: "apiVersion: projectcalico.org/v3\nkind: ClusterInformation\nmetadata:\n  name: default\nspec:\n  datastoreReady: false\n",
			args:  []string{"apply", "-f", "-"},
			want:  []string{"operation apply is not supported on ClusterInformation(default): resource is readonly"},
		},
		{
			name:   "create of a Kubernetes network policy",
			stdin:  "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: knp.default.allow-dns\nspec:\n  selector: all()\n",
			args:   []string{"create", "-f", "-"},
			want:   []string{"operation create is not supported on NetworkPolicy(default/knp.default.allow-dns): kubernetes network policies must be managed through the kubernetes API"},
			absent: []string{"np", "knp.default.allow-dns"},
		},
		{
			name:   "apply of a Kubernetes network policy",
			stdin:  "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: knp.default.allow-dns\n  namespace: kube-system\nspec:\n  selector: all()\n",
			args:   []string{"apply", "-f", "-"},
			want:   []string{"operation apply is not supported on NetworkPolicy(kube-system/knp.default.allow-dns)", "kubernetes network policies must be managed through the kubernetes API"},
			absent: []string{"np", "knp.default.allow-dns", "-n", "kube-system"},
		},
		{
			name: "delete of a Kubernetes network policy",
			args: []string{"delete", "np", "knp.default.allow-dns"},
			want: []string{"Failed to delete 'NetworkPolicy' resource: operation delete is not supported on NetworkPolicy(default/knp.default.allow-dns)"},
		},
		{
			name: "patch that is not JSON",
			args: []string{"patch", "clusterinformation", "default", "-p", "not json"},
			want: []string{"invalid patch"},
		},
		{
			name: "patch of a missing object",
			args: []string{"patch", "ippool", "nope", "-p", `{"spec":{"disabled":true}}`},
			want: []string{"resource does not exist: IPPool(nope) with error: <nil>"},
		},
		{
			name:   "patch that renames",
			args:   []string{"patch", "clusterinformation", "default", "-p", `{"metadata":{"name":"other"}}`},
			want:   []string{"ClusterInformation(default): patch may not change metadata.name (from \"default\" to \"other\")"},
			absent: []string{"clusterinformation", "other"},
		},
		{
			name: "patch that changes the kind",
			args: []string{"patch", "gnp", "any", "-p", `{"kind":"NetworkPolicy","spec":{"order":1}}`},
			want: []string{"GlobalNetworkPolicy(any): patch may not change kind (from \"GlobalNetworkPolicy\" to \"NetworkPolicy\")"},
		},
		{
			name: "patch that changes the apiVersion",
			args: []string{"patch", "ippool", "any", "-p", `{"apiVersion":"crd.projectcalico.org/v1"}`},
			want: []string{"IPPool(any): patch may not change apiVersion"},
		},
		{
			name: "patch that moves to another namespace",
			args: []string{"patch", "netset", "any", "-n", "a", "-p", `{"metadata":{"namespace":"b"}}`},
			want: []string{"NetworkSet(a/any): patch may not change metadata.namespace (from \"a\" to \"b\")"},
		},
		{
			name:   "duplicate key in a YAML document",
			stdin:  "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: dup-p1\n  name: dup-p2\nspec:\n  cidr: 10.0.0.0/8\n",
			args:   []string{"apply", "-f", "-"},
			want:   []string{"failed to execute command", "stdin, document 1", `line 5: key "name" already set in map`},
			absent: []string{"ippool", "dup-p2"},
		},
		{
			name:   "duplicate key in a JSON document",
			stdin:  "{\"apiVersion\": \"projectcalico.org/v3\", \"kind\": \"IPPool\",\n \"metadata\": {\"name\": \"dup-j1\", \"name\": \"dup-j2\"},\n \"spec\": {\"cidr\": \"10.0.0.0/8\"}}\n",
			args:   []string{"apply", "-f", "-"},
			want:   []string{"failed to execute command", "stdin, document 1", `line 2: key "name" already set in object`},
			absent: []string{"ippool", "dup-j2"},
		},
		{
			name: "duplicate key in a patch",
			args: []string{"patch", "clusterinformation", "default", "-p", "spec: {datastoreReady: true, datastoreReady: false}"},
			want: []string{"invalid patch", `key "datastoreReady" already set in map`},
		},
		{
			name:   "selector over 1024 bytes",
			stdin:  "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: long-selector\nspec:\n  selector: a == '" + strings.Repeat("x", 1100) + "'\n",
			args:   []string{"create", "-f", "-"},
			want:   []string{"GlobalNetworkPolicy(long-selector)", "spec.selector", "selector is 1107 bytes long, the limit is 1024"},
			absent: []string{"gnp", "long-selector"},
		},
		{
			name:   "more than 1024 rules",
			stdin:  "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: many-rules\nspec:\n  egress:\n" + strings.Repeat("  - action: Allow\n", 1025),
			args:   []string{"apply", "-f", "-"},
			want:   []string{"GlobalNetworkPolicy(many-rules)", "error with field spec.egress = '1025' (1025 rules, the limit is 1024)"},
			absent: []string{"gnp", "many-rules"},
		},
		{
			name: "label without a value",
			args: []string{"label", "clusterinformation", "default", "team"},
			want: []string{"invalid label team"},
		},
		{
			name: "config file that does not exist",
			args: []string{"-c", "/nonexistent/calicoctl.cfg", "get", "ippool"},
			want: []string{"Error reading config file: /nonexistent/calicoctl.cfg"},
		},
		{
			name: "no kind given to get",
			args: []string{"get"},
			want: []string{"you must specify the type of resource to get"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := c.runEnv(t, tt.env, tt.stdin, tt.args...)
			if res.Code != 1 {
				t.Errorf("exit %d, want 1", res.Code)
			}
			if res.Stdout != "" {
				t.Errorf("stdout should be empty, got:\n%s", res.Stdout)
			}
			if strings.Count(res.Stderr, "\n") != 1 || !strings.HasSuffix(res.Stderr, "\n") {
				t.Errorf("want exactly one stderr line, got:\n%s", res.Stderr)
			}
			clitest.WantContains(t, "stderr", res.Stderr, tt.want...)
			if tt.absent != nil {
				r := c.runEnv(t, nil, "", append([]string{"get"}, tt.absent...)...)
				if r.Code != 1 || !strings.Contains(r.Stderr, "resource does not exist") {
					t.Errorf("get %v after the failure: exit %d stderr %q; want it not to exist", tt.absent, r.Code, r.Stderr)
				}
			}
		})
	}
}

// TestStaleResourceVersion: replacing from YAML whose resourceVersion is no
// longer current is refused with both revisions named.
func TestStaleResourceVersion(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.mustRun(t, pool("stale", "  cidr: 10.40.0.0/16\n"), "create", "-f", "-")
	obj, _ := c.getYAML(t, "ippool", "stale")
	old, _ := clitest.MustString(obj, "metadata.resourceVersion")
	c.mustRun(t, "", "patch", "ippool", "stale", "-p", `{"spec":{"natOutgoing":true}}`)
	cur, _ := c.getYAML(t, "ippool", "stale")
	latest, _ := clitest.MustString(cur, "metadata.resourceVersion")

	obj.Set(t, "spec.disabled", true)
	res := c.runEnv(t, nil, obj.YAML(t), "replace", "-f", "-")
	if res.Code != 1 {
		t.Errorf("exit %d, want 1", res.Code)
	}
	clitest.WantContains(t, "stderr", res.Stderr, fmt.Sprintf(
		"resource version '%s' is out of date (latest: %s). Update the resource YAML/JSON in order to make changes", old, latest))
	after, _ := c.getYAML(t, "ippool", "stale")
	clitest.WantFields(t, "after refused replace", after, map[string]string{
		"metadata.resourceVersion": `"` + latest + `"`, "spec.disabled": "<absent>", "spec.natOutgoing": "true",
	})
}

// TestUnreachableDatastore: a dead endpoint fails fast and names it.
func TestUnreachableDatastore(t *testing.T) {
	t.Parallel()
	dead := env{"DATASTORE_TYPE": "etcdv3", "ETCD_ENDPOINTS": "http://127.0.0.1:1"}
	for _, args := range [][]string{
		{"get", "ippool"},
		{"create", "-f", testdata(t, "seed/default-ipv4-ippool.yaml")},
		{"delete", "ippool", "x"},
	} {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			res := clitest.Exec(t, binPath, t.TempDir(), dead, "", args...)
			elapsed := time.Since(start)
			// A generous bound that still catches a missing dial timeout
			// (gRPC would otherwise retry for much longer).
			if elapsed > 25*time.Second {
				t.Errorf("took %s; want a fast failure", elapsed)
			}
			if res.Code != 1 || res.Stdout != "" {
				t.Errorf("exit %d stdout %q", res.Code, res.Stdout)
			}
			clitest.WantContains(t, "stderr", res.Stderr, "Failed to create Calico API client", "http://127.0.0.1:1")
			if strings.Count(res.Stderr, "\n") != 1 {
				t.Errorf("want one stderr line, got:\n%s", res.Stderr)
			}
		})
	}
}

// endlessReader yields "y\n" forever, like `yes`.
type endlessReader struct{}

func (endlessReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = "y\n"[i%2]
	}
	return len(p) &^ 1, nil
}

// TestEndlessInput: `apply -f /dev/zero` and `yes | calicoctl apply -f -`
// are refused once one document passes the limit, with one line naming the
// input and the limit, instead of growing until the kernel kills the process.
func TestEndlessInput(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	t.Run("/dev/zero", func(t *testing.T) {
		res := c.runEnv(t, nil, "", "apply", "-f", "/dev/zero")
		if res.Code != 1 || res.Stdout != "" {
			t.Errorf("exit %d stdout %q", res.Code, res.Stdout)
		}
		clitest.WantOneLine(t, "stderr", res.Stderr)
		clitest.WantContains(t, "stderr", res.Stderr, "/dev/zero: the document starting at line 1 is larger than 16 MiB, the limit for one document")
	})
	t.Run("yes on stdin", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), clitest.CommandTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, binPath, "apply", "-f", "-")
		cmd.Env = clitest.BaseEnv(c.home, c.env())
		cmd.Stdin = endlessReader{}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if ctx.Err() != nil {
			t.Fatal("apply of endless stdin did not end")
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || stdout.Len() != 0 {
			t.Errorf("err %v stdout %q", err, stdout.String())
		}
		clitest.WantOneLine(t, "stderr", stderr.String())
		clitest.WantContains(t, "stderr", stderr.String(), "stdin: the document starting at line 1 is larger than 16 MiB, the limit for one document")
	})
}

// TestUpstreamLenientInput: inputs upstream's decoder and validator accept
// are accepted: a trailing comma in JSON, numeric label keys (quoted, or
// unquoted in YAML), and a CIDR mask with leading zeros (stored canonical).
func TestUpstreamLenientInput(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	out := c.mustRun(t, `{"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkSet", "metadata": {"name": "trailing-comma", "labels": {"123": "x",},}, "spec": {"nets": ["10.1.0.0/16"],},}`, "apply", "-f", "-")
	clitest.WantExact(t, "trailing comma", out, "Successfully applied 1 'GlobalNetworkSet' resource(s)\n")
	out = c.mustRun(t, "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  name: numeric-keys\n  labels: {1: a, \"123\": x}\nspec: {}\n", "apply", "-f", "-")
	clitest.WantExact(t, "numeric keys", out, "Successfully applied 1 'GlobalNetworkSet' resource(s)\n")
	c.mustRun(t, "", "label", "gnetset", "numeric-keys", "456=y")
	out = c.mustRun(t, pool("leading-zeros", "  cidr: 10.77.0.0/016\n"), "apply", "-f", "-")
	clitest.WantExact(t, "leading zeros", out, "Successfully applied 1 'IPPool' resource(s)\n")

	got := c.mustRun(t, "", "get", "gnetset", "-o", "go-template={{range .Items}}{{.Name}}={{.Labels}} {{end}}")
	clitest.WantExact(t, "labels", got, "numeric-keys=map[1:a 123:x 456:y] trailing-comma=map[123:x] ")
	clitest.WantExact(t, "canonical CIDR", c.mustRun(t, "", "get", "ippool", "leading-zeros", "-o", "go-template={{.Spec.CIDR}}"), "10.77.0.0/16")
}
