package kubecrd

import (
	"context"
	"os"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/opencalico/calicoctl/internal/crds"
	"github.com/opencalico/calicoctl/internal/kubetest"
)

// TestInstallAndDeleteAll: after Install (twice: the
// second call is a no-op) discovery serves every Calico CRD at once, and
// DeleteAll empties a cluster-scoped custom resource.
func TestInstallAndDeleteAll(t *testing.T) {
	s := kubetest.Shared(t)
	Install(t, s)
	Install(t, s)
	list, err := crds.All()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // served already: no polling allowed
	if err := WaitServed(ctx, s.RESTConfig(), list); err != nil {
		t.Fatalf("CRDs not served after Install: %v", err)
	}

	gvr := schema.GroupVersionResource{Group: crds.Group, Version: crds.Version, Resource: "ipamhandles"}
	dyn, err := dynamic.NewForConfig(s.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kubetest-h1", "kubetest-h2"} {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": crds.Group + "/" + crds.Version, "kind": "IPAMHandle",
			"metadata": map[string]any{"name": name},
			"spec":     map[string]any{"handleID": name, "block": map[string]any{"10.0.0.0/26": int64(1)}},
		}}
		if _, err := dyn.Resource(gvr).Create(t.Context(), u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	s.DeleteAll(t, gvr)
	got, err := dyn.Resource(gvr).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.Items); n != 0 {
		t.Errorf("%d IPAMHandles left after DeleteAll", n)
	}
}

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }
