package kubestore_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/opencalico/calicoctl/e2e/kubetest"
	"github.com/opencalico/calicoctl/internal/crds"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/kubestore"
	"github.com/opencalico/calicoctl/internal/ipam/storetest"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

var crdOnce struct {
	sync.Once
	err error
}

// server is the shared API server with the Calico CRDs served.
func server(t testing.TB) *rest.Config {
	t.Helper()
	rc := kubetest.Shared(t).RESTConfig()
	crdOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		crdOnce.err = installCRDs(ctx, rc)
	})
	if crdOnce.err != nil {
		t.Fatalf("install CRDs: %v", crdOnce.err)
	}
	return rc
}

func installCRDs(ctx context.Context, rc *rest.Config) error {
	list, err := crds.All()
	if err != nil {
		return err
	}
	if _, err := crds.Install(ctx, rc, crds.InstallOptions{CRDs: list, EstablishTimeout: -1}); err != nil {
		return err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return err
	}
	want := []string{"ipamblocks", "blockaffinities", "ipamhandles", "ipamconfigs"}
	for {
		res, err := dc.ServerResourcesForGroupVersion(kubestore.APIVersion)
		served := map[string]bool{}
		if err == nil {
			for _, r := range res.APIResources {
				served[r.Name] = true
			}
		}
		missing := ""
		for _, w := range want {
			if !served[w] {
				missing = w
			}
		}
		if missing == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRD %s not served: %w", missing, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func dynClient(t testing.TB, rc *rest.Config) dynamic.Interface {
	t.Helper()
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return dyn
}

// wipe deletes every IPAM object.
func wipe(t testing.TB, dyn dynamic.Interface) {
	t.Helper()
	for _, gvr := range kubestore.Resources() {
		if err := dyn.Resource(gvr).DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			t.Fatalf("wipe %s: %v", gvr.Resource, err)
		}
	}
}

func TestConformance(t *testing.T) {
	rc := server(t)
	dyn := dynClient(t, rc)
	storetest.RunStoreConformance(t, func(t testing.TB) ipam.Store {
		wipe(t, dyn)
		// A page size of 2 makes every list span several pages.
		s, err := kubestore.New(rc, kubestore.WithPageSize(2))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
