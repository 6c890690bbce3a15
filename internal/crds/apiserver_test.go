package crds

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/opencalico/calicoctl/internal/kubetest"
	"github.com/opencalico/calicoctl/resources"
)

// upstreamObjects are crd.projectcalico.org/v1 objects as upstream's
// components write them, including newer fields (BGPFilter operations) and
// fields our Go types do not know (a future FelixConfiguration field), which
// must be kept rather than pruned or rejected.
const upstreamObjects = `
apiVersion: crd.projectcalico.org/v1
kind: IPPool
metadata: {name: default-ipv4-ippool}
spec:
  cidr: 192.168.0.0/16
  blockSize: 26
  ipipMode: Always
  vxlanMode: Never
  natOutgoing: true
  nodeSelector: all()
  allowedUses: [Workload, Tunnel]
  assignmentMode: Automatic
---
apiVersion: crd.projectcalico.org/v1
kind: GlobalNetworkPolicy
metadata:
  name: default.allow-dns
  annotations: {projectcalico.org/metadata: '{"creationTimestamp":null}'}
spec:
  tier: default
  order: 100.5
  selector: all()
  types: [Ingress, Egress]
  ingress:
  - action: Allow
    protocol: TCP
    source: {nets: [10.0.0.0/8], selector: "role == 'frontend'"}
    destination: {ports: [80, "8080:8090", http]}
  - action: Allow
    protocol: 1
    icmp: {type: 8, code: 0}
  egress:
  - action: Allow
    protocol: UDP
    destination:
      namespaceSelector: projectcalico.org/name == 'kube-system'
      ports: [53]
  - action: Deny
    notProtocol: sctp
    destination: {notPorts: [22]}
---
apiVersion: crd.projectcalico.org/v1
kind: BGPPeer
metadata: {name: rack1-tor}
spec:
  peerIP: 192.0.2.1
  asNumber: 64512
  nodeSelector: rack == 'rack1'
  keepOriginalNextHop: true
  maxRestartTime: 2m0s
---
apiVersion: crd.projectcalico.org/v1
kind: BGPFilter
metadata: {name: export-communities}
spec:
  exportV4:
  - action: Accept
    cidr: 10.0.0.0/8
    matchOperator: In
    operations:
    - addCommunity: {value: "65000:100"}
---
apiVersion: crd.projectcalico.org/v1
kind: FelixConfiguration
metadata: {name: default}
spec:
  logSeverityScreen: Info
  reportingInterval: 0s
  bpfLogLevel: ""
  ipipEnabled: true
  routeRefreshInterval: 1m30s
  failsafeInboundHostPorts:
  - {protocol: tcp, port: 22}
  - {protocol: udp, port: 68, net: 0.0.0.0/0}
  routeTableRange: {min: 1, max: 250}
  healthTimeoutOverrides:
  - {name: InternalDataplaneMainLoop, timeout: 90s}
  iptablesMarkMask: 4294901760
  someFutureFelixSetting: 42
---
apiVersion: crd.projectcalico.org/v1
kind: NetworkPolicy
metadata: {name: default.web, namespace: default}
spec:
  selector: app == 'web'
  ingress:
  - action: Allow
    protocol: TCP
    destination: {ports: [443]}
---
apiVersion: crd.projectcalico.org/v1
kind: IPAMBlock
metadata: {name: 10-10-3-0-30}
spec:
  cidr: 10.10.3.0/30
  affinity: host:node-1
  allocations: [0, null, null, null]
  unallocated: [1, 2, 3]
  attributes:
  - handle_id: k8s-pod-network.abc
    secondary: {node: node-1, namespace: default, pod: web-0}
  sequenceNumber: 1700000000000000000
  sequenceNumberForAllocation: {"0": 1700000000000000000}
  strictAffinity: false
---
apiVersion: crd.projectcalico.org/v1
kind: BlockAffinity
metadata: {name: node-1-10-10-3-0-30}
spec: {state: confirmed, node: node-1, type: host, cidr: 10.10.3.0/30, deleted: "false"}
`

func TestAPIServerInstallAndAccept(t *testing.T) {
	s := kubetest.Start(t)
	ctx := context.Background()
	cfg := s.RESTConfig()

	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}

	// The in-cluster setup is accepted, and its service account may install
	// the CRDs (first install: the apply creates them) but not more.
	applyManifest(t, dc, "../../manifests/calicoctl.yaml")
	saCfg := s.RESTConfigFor("system:serviceaccount:kube-system:calicoctl", "system:serviceaccounts", "system:serviceaccounts:kube-system")
	// The authorizer learns of the new binding asynchronously: retry while
	// the answer is Forbidden.
	var n int
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		n, err = Install(ctx, saCfg, InstallOptions{})
		if apierrors.IsForbidden(err) {
			return false, nil
		}
		return true, err
	})
	if err != nil || n != len(all) {
		t.Fatalf("Install as the calicoctl service account: applied %d, err %v", n, err)
	}
	saDC, err := dynamic.NewForConfig(saCfg)
	if err != nil {
		t.Fatal(err)
	}
	err = saDC.Resource(crdResource).Delete(ctx, all[0].Name, metav1.DeleteOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("calicoctl service account deleting a CRD: err = %v, want Forbidden", err)
	}
	_, err = saDC.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).Namespace("kube-system").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("calicoctl service account listing secrets: err = %v, want Forbidden", err)
	}
	_, err = saDC.Resource(schema.GroupVersionResource{Group: Group, Version: Version, Resource: "ippools"}).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Errorf("calicoctl service account listing IP pools: %v", err)
	}

	for round := 1; round <= 2; round++ { // applying again must be a no-op
		n, err := Install(ctx, cfg, InstallOptions{})
		if err != nil {
			t.Fatalf("Install (round %d): %v", round, err)
		}
		if n != len(all) {
			t.Fatalf("Install (round %d) applied %d CRDs, want %d", round, n, len(all))
		}
	}

	t.Run("openapi v3 shows the schema", func(t *testing.T) {
		doc := openAPIV3(t, cfg)
		ippool := findSchema(t, doc, "IPPool")
		spec := dig(t, ippool, "properties", "spec", "properties")
		if got := dig(t, spec, "cidr", "type"); got != "string" {
			t.Errorf("IPPool spec.cidr type = %v, want string", got)
		}
		if got := dig(t, spec, "blockSize", "type"); got != "integer" {
			t.Errorf("IPPool spec.blockSize type = %v, want integer", got)
		}
		if got, _ := dig(t, spec, "cidr", "description").(string); got == "" {
			t.Errorf("IPPool spec.cidr has no description")
		}
		gnp := findSchema(t, doc, "GlobalNetworkPolicy")
		port := dig(t, gnp, "properties", "spec", "properties", "ingress", "items", "properties",
			"destination", "properties", "ports", "items")
		if got := dig(t, port, "x-kubernetes-int-or-string"); got != true {
			t.Errorf("GNP rule destination port is not int-or-string: %v", port)
		}
	})

	for _, obj := range decodeObjects(t, upstreamObjects) {
		t.Run("accepts "+obj.GetKind()+"/"+obj.GetName(), func(t *testing.T) {
			res := resourceFor(obj)
			var ri dynamic.ResourceInterface = dc.Resource(res)
			if ns := obj.GetNamespace(); ns != "" {
				ri = dc.Resource(res).Namespace(ns)
			}
			// Strict field validation: an unknown field would be an error.
			created, err := ri.Create(ctx, obj, metav1.CreateOptions{FieldValidation: "Strict"})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			// Nothing the client sent may be pruned.
			want, got := obj.Object["spec"], created.Object["spec"]
			if !jsonEqual(t, want, got) {
				t.Errorf("spec changed on the way in:\n sent %s\n  got %s", mustJSON(t, want), mustJSON(t, got))
			}
		})
	}

	// What calicoctl itself writes: the v3 examples, defaulted, stored as v1.
	files, err := filepath.Glob("../../e2e/testdata/kinds/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := resources.Decode(data, file)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, d := range docs {
			r := d.Resource
			if notCRD[resources.KindOf(r).Kind] {
				continue
			}
			r.Default()
			t.Run("accepts defaulted "+filepath.Base(file), func(t *testing.T) {
				obj := &unstructured.Unstructured{}
				if err := json.Unmarshal([]byte(mustJSON(t, r)), &obj.Object); err != nil {
					t.Fatal(err)
				}
				obj.SetAPIVersion(Group + "/" + Version)
				meta := map[string]any{"name": "v3-" + r.GetName()}
				if resources.KindOf(r).Namespaced {
					meta["namespace"] = "default" // the only namespace the test server has
				}
				obj.Object["metadata"] = meta
				res := dc.Resource(resourceFor(obj))
				var ri dynamic.ResourceInterface = res
				if ns := obj.GetNamespace(); ns != "" {
					ri = res.Namespace(ns)
				}
				created, err := ri.Create(ctx, obj, metav1.CreateOptions{FieldValidation: "Strict"})
				if err != nil {
					t.Fatalf("create %s: %v", mustJSON(t, obj.Object), err)
				}
				for _, part := range []string{"spec", "status"} {
					if !jsonEqual(t, obj.Object[part], created.Object[part]) {
						t.Errorf("%s changed on the way in:\n sent %s\n  got %s", part, mustJSON(t, obj.Object[part]), mustJSON(t, created.Object[part]))
					}
				}
			})
		}
	}

	t.Run("rejects wrong types", func(t *testing.T) {
		bad := decodeObjects(t, "apiVersion: crd.projectcalico.org/v1\nkind: IPPool\nmetadata: {name: bad}\nspec: {cidr: 10.1.0.0/16, blockSize: big}\n")[0]
		_, err := dc.Resource(resourceFor(bad)).Create(ctx, bad, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.blockSize") {
			t.Fatalf("create IPPool with blockSize: big: err = %v, want Invalid on spec.blockSize", err)
		}
	})
}

// applyManifest creates every object of a manifest file as the admin.
func applyManifest(t *testing.T, dc dynamic.Interface, file string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	resourceOf := map[string]string{
		"ServiceAccount": "serviceaccounts", "Pod": "pods",
		"ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings",
	}
	for _, obj := range decodeObjects(t, string(data)) {
		gv, err := schema.ParseGroupVersion(obj.GetAPIVersion())
		if err != nil {
			t.Fatal(err)
		}
		res := dc.Resource(gv.WithResource(resourceOf[obj.GetKind()]))
		var ri dynamic.ResourceInterface = res
		if ns := obj.GetNamespace(); ns != "" {
			ri = res.Namespace(ns)
		}
		if _, err := ri.Create(context.Background(), obj, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
			t.Fatalf("%s: create %s %s: %v", file, obj.GetKind(), obj.GetName(), err)
		}
	}
}

func decodeObjects(t *testing.T, stream string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, doc := range splitDocs([]byte(stream)) {
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("test manifest: %v", err)
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out
}

func resourceFor(obj *unstructured.Unstructured) schema.GroupVersionResource {
	for _, d := range Defs() {
		if d.Kind == obj.GetKind() {
			return schema.GroupVersionResource{Group: Group, Version: Version, Resource: d.Plural}
		}
	}
	panic("no CRD for kind " + obj.GetKind())
}

// openAPIV3 fetches the group's OpenAPI v3 document. The API server publishes
// CRD schemas there asynchronously after they are established, so it polls
// until every kind we installed is present.
func openAPIV3(t *testing.T, cfg *rest.Config) map[string]any {
	t.Helper()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	url := cfg.Host + "/openapi/v3/apis/" + Group + "/" + Version
	var doc map[string]any
	var last string
	err = wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			last = fmt.Sprintf("status %d, err %v", resp.StatusCode, err)
			return false, nil
		}
		doc = nil
		if err := json.Unmarshal(body, &doc); err != nil {
			return false, err
		}
		components, _ := doc["components"].(map[string]any)
		schemas, _ := components["schemas"].(map[string]any)
		for _, d := range Defs() {
			if !hasSuffixKey(schemas, "."+d.Kind) {
				last = "no schema for " + d.Kind + " yet"
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("GET %s: %v (last: %s)", url, err, last)
	}
	return doc
}

func hasSuffixKey(m map[string]any, suffix string) bool {
	for k := range m {
		if strings.HasSuffix(k, suffix) {
			return true
		}
	}
	return false
}

// findSchema finds the component schema of kind (its key ends in ".<kind>").
func findSchema(t *testing.T, doc map[string]any, kind string) map[string]any {
	t.Helper()
	schemas, _ := dig(t, doc, "components", "schemas").(map[string]any)
	for k, v := range schemas {
		if strings.HasSuffix(k, "."+kind) {
			return v.(map[string]any)
		}
	}
	t.Fatalf("no OpenAPI schema for %s", kind)
	return nil
}

func dig(t *testing.T, v any, path ...string) any {
	t.Helper()
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("no %q in %.200v", p, v)
		}
		v = m[p]
	}
	return v
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func jsonEqual(t *testing.T, a, b any) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(mustJSON(t, a)), &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(mustJSON(t, b)), &y); err != nil {
		t.Fatal(err)
	}
	return mustJSON(t, x) == mustJSON(t, y)
}
