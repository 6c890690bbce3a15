package kubetest

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// DeleteAll deletes every object of the given cluster-scoped resources (as
// the admin), failing the test on any error: tests sharing the server use
// it to start from nothing.
func (s *APIServer) DeleteAll(t testing.TB, resources ...schema.GroupVersionResource) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(s.RESTConfig())
	if err != nil {
		t.Fatalf("kubetest: dynamic client: %v", err)
	}
	for _, gvr := range resources {
		if err := dyn.Resource(gvr).DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			t.Fatalf("wipe %s: %v", gvr.Resource, err)
		}
	}
}
