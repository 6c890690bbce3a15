package chart

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/opencalico/calicoctl/internal/crds"
)

const chartDir = "../../charts/calico"

// docs splits a rendered manifest into its objects.
func docs(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, d := range strings.Split(string(b), "\n---\n") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(d), &m); err != nil {
			t.Fatalf("invalid YAML: %v\n%s", err, d)
		}
		if m != nil {
			out = append(out, m)
		}
	}
	return out
}

func daemonSet(t *testing.T, b []byte) *appsv1.DaemonSet {
	t.Helper()
	for _, d := range strings.Split(string(b), "\n---\n") {
		if strings.Contains(d, "kind: DaemonSet") {
			ds := &appsv1.DaemonSet{}
			if err := yaml.UnmarshalStrict([]byte(d), ds); err != nil {
				t.Fatalf("DaemonSet: %v", err)
			}
			return ds
		}
	}
	t.Fatal("no DaemonSet rendered")
	return nil
}

func envOf(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

// The committed manifest is the chart rendered with its defaults.
func TestManifestIsTheRenderedChart(t *testing.T) {
	got, err := Render(os.DirFS(chartDir), nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../manifests/calico-node.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(want, got) {
		t.Fatal("manifests/calico-node.yaml is stale: run `make manifests`")
	}
	crds, _ := os.ReadFile("../../manifests/crds.yaml")
	chartCRDs, _ := os.ReadFile(chartDir + "/crds/crds.yaml")
	if len(crds) == 0 || !bytes.Equal(crds, chartCRDs) {
		t.Fatal("charts/calico/crds/crds.yaml differs from manifests/crds.yaml: run `make manifests`")
	}
	kinds := map[string]int{}
	for _, d := range docs(t, got) {
		kinds[d["kind"].(string)]++
	}
	for kind, n := range map[string]int{"ServiceAccount": 2, "ClusterRole": 2, "ClusterRoleBinding": 2, "Role": 1, "RoleBinding": 1, "DaemonSet": 1} {
		if kinds[kind] != n {
			t.Errorf("%d %s, want %d (all: %v)", kinds[kind], kind, n, kinds)
		}
	}
	ds := daemonSet(t, got)
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork || spec.ServiceAccountName != "calico-node" || len(spec.InitContainers) != 1 {
		t.Fatalf("pod spec: %+v", spec)
	}
	node := spec.Containers[0]
	env := envOf(node)
	for k, v := range map[string]string{"DATASTORE_TYPE": "kubernetes", "CALICO_NETWORKING_BACKEND": "vxlan",
		"CALICO_IPV4POOL_VXLAN": "Always", "CALICO_IPV4POOL_IPIP": "Never", "CALICO_IPV4POOL_CIDR": "192.168.0.0/16",
		"FELIX_HEALTHPORT": "9099"} {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if node.LivenessProbe.HTTPGet.Path != "/liveness" || node.ReadinessProbe.HTTPGet.Path != "/readiness" ||
		node.ReadinessProbe.HTTPGet.Port.IntValue() != 9099 {
		t.Errorf("probes: %+v %+v", node.LivenessProbe, node.ReadinessProbe)
	}
	if got := strings.Join(spec.InitContainers[0].Command, " "); got != "/calicoctl node install-cni" {
		t.Errorf("init container runs %q", got)
	}
}

func TestValuesChangeTheDaemonSet(t *testing.T) {
	for _, tc := range []struct {
		enc                  string
		backend, ipip, vxlan string
	}{
		{"None", "bird", "Never", "Never"},
		{"IPIP", "bird", "Always", "Never"},
		{"IPIPCrossSubnet", "bird", "CrossSubnet", "Never"},
		{"VXLANCrossSubnet", "vxlan", "Never", "CrossSubnet"},
	} {
		out, err := Render(os.DirFS(chartDir), Values{
			"image":           "docker.io/opencalico/calicoctl:e2e",
			"ipPool":          map[string]any{"encapsulation": tc.enc, "cidr": "10.244.0.0/16"},
			"nodeSelector":    map[string]any{"calico": "yes"},
			"cni":             map[string]any{"netDir": "/etc/kubernetes/cni"},
			"imagePullPolicy": "Never",
		})
		if err != nil {
			t.Fatal(err)
		}
		spec := daemonSet(t, out).Spec.Template.Spec
		env := envOf(spec.Containers[0])
		if env["CALICO_NETWORKING_BACKEND"] != tc.backend || env["CALICO_IPV4POOL_IPIP"] != tc.ipip ||
			env["CALICO_IPV4POOL_VXLAN"] != tc.vxlan || env["CALICO_IPV4POOL_CIDR"] != "10.244.0.0/16" ||
			env["CALICO_IPV4POOL_BLOCK_SIZE"] != "26" {
			t.Errorf("%s: env %v", tc.enc, env)
		}
		if spec.NodeSelector["calico"] != "yes" || spec.Containers[0].Image != "docker.io/opencalico/calicoctl:e2e" ||
			spec.Containers[0].ImagePullPolicy != corev1.PullNever {
			t.Errorf("%s: selector %v image %s", tc.enc, spec.NodeSelector, spec.Containers[0].Image)
		}
		if m := spec.InitContainers[0].VolumeMounts[1]; m.MountPath != "/host/etc/kubernetes/cni" {
			t.Errorf("net dir mount %s", m.MountPath)
		}
	}
}

func TestMergeIsDeep(t *testing.T) {
	got := Merge(Values{"a": map[string]any{"x": 1, "y": 2}, "b": 1}, Values{"a": map[string]any{"y": 3}})
	a := got["a"].(map[string]any)
	if a["x"] != 1 || a["y"] != 3 || got["b"] != 1 {
		t.Errorf("merge = %v", got)
	}
}

// objectsByName keys a rendered manifest's objects by kind/namespace/name.
func objectsByName(t *testing.T, b []byte) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, d := range docs(t, b) {
		md, _ := d["metadata"].(map[string]any)
		key := fmt.Sprintf("%v/%v/%v", d["kind"], md["namespace"], md["name"])
		if _, dup := out[key]; dup {
			t.Fatalf("%s rendered twice", key)
		}
		out[key] = d
	}
	return out
}

// With a Helm binary (HELM_BIN, or helm built by `e2e/kubeapiserver/build.sh
// helm`), `helm template` renders the same objects as Render, with the
// defaults and with values set. Skipped without one.
func TestHelmTemplateAgrees(t *testing.T) {
	helm := os.Getenv("HELM_BIN")
	if helm == "" {
		out, err := exec.Command("bash", "../../e2e/kubeapiserver/build.sh", "--cached", "helm").Output()
		if err != nil {
			t.Skip("no helm: set HELM_BIN or run `e2e/kubeapiserver/build.sh helm` (about 2.5 min)")
		}
		helm = strings.TrimSpace(string(out))
	}
	for _, set := range [][]string{nil, {"ipPool.encapsulation=IPIPCrossSubnet", "ipPool.cidr=10.244.0.0/16", "namespace=calico-system", "cni.mtu=1400"}} {
		args := []string{"template", "calico", chartDir}
		values := Values{}
		for _, kv := range set {
			args = append(args, "--set", kv)
			k, v, _ := strings.Cut(kv, "=")
			m := values
			parts := strings.Split(k, ".")
			for _, p := range parts[:len(parts)-1] {
				if _, ok := m[p]; !ok {
					m[p] = map[string]any{}
				}
				m = m[p].(map[string]any)
			}
			var typed any = v
			if err := yaml.Unmarshal([]byte(v), &typed); err != nil {
				typed = v
			}
			m[parts[len(parts)-1]] = typed
		}
		want, err := exec.Command(helm, args...).Output()
		if err != nil {
			t.Fatalf("helm %v: %v", args, err)
		}
		got, err := Render(os.DirFS(chartDir), values)
		if err != nil {
			t.Fatal(err)
		}
		g, w := objectsByName(t, got), objectsByName(t, want)
		if len(g) != len(w) {
			t.Errorf("--set %v: %d objects, helm renders %d", set, len(g), len(w))
		}
		for k, obj := range w {
			if !reflect.DeepEqual(g[k], obj) {
				a, _ := yaml.Marshal(g[k])
				b, _ := yaml.Marshal(obj)
				t.Errorf("--set %v: %s differs:\nours:\n%s\nhelm:\n%s", set, k, a, b)
			}
		}
	}
}

// calico-node's ClusterRole names every Calico CRD (the agent reads them
// all), no role uses a wildcard, and the CNI plugin's role touches only
// what wiring a pod needs.
func TestRBACCoversTheCRDs(t *testing.T) {
	out, err := Render(os.DirFS(chartDir), nil)
	if err != nil {
		t.Fatal(err)
	}
	var plurals []string
	for _, d := range crds.Defs() {
		plurals = append(plurals, d.Plural)
	}
	roles := map[string][]rbacv1.PolicyRule{}
	for _, d := range strings.Split(string(out), "\n---\n") {
		if !strings.Contains("\n"+d+"\n", "\nkind: ClusterRole\n") {
			continue
		}
		var r rbacv1.ClusterRole
		if err := yaml.UnmarshalStrict([]byte(d), &r); err != nil {
			t.Fatal(err)
		}
		roles[r.Name] = r.Rules
		for _, rule := range r.Rules {
			if slices.Contains(rule.Verbs, "*") || slices.Contains(rule.Resources, "*") || slices.Contains(rule.APIGroups, "*") {
				t.Errorf("ClusterRole %s: wildcard in %+v", r.Name, rule)
			}
		}
	}
	calicoResources := func(role string) []string {
		var res []string
		for _, rule := range roles[role] {
			if slices.Equal(rule.APIGroups, []string{crds.Group}) {
				res = append(res, rule.Resources...)
			}
		}
		slices.Sort(res)
		return slices.Compact(res)
	}
	if got := calicoResources("calico-node"); !slices.Equal(got, plurals) {
		t.Errorf("calico-node's Calico resources = %v\nwant every CRD %v", got, plurals)
	}
	allowed := []string{"blockaffinities", "clusterinformations", "ipamblocks", "ipamconfigs", "ipamhandles", "ippools", "ipreservations"}
	for _, r := range calicoResources("calico-cni") {
		if !slices.Contains(allowed, r) {
			t.Errorf("calico-cni may touch %s, which wiring a pod does not need", r)
		}
	}
}
