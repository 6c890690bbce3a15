package kubestore_test

import (
	"os"
	"testing"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/kubestore"
	"github.com/opencalico/calicoctl/internal/ipam/storetest"
	"github.com/opencalico/calicoctl/internal/kubetest"
	"github.com/opencalico/calicoctl/internal/kubetest/kubecrd"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// server is the shared API server with the Calico CRDs served.
func server(t testing.TB) *rest.Config {
	t.Helper()
	srv := kubetest.Shared(t)
	kubecrd.Install(t, srv)
	return srv.RESTConfig()
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
func wipe(t testing.TB) {
	t.Helper()
	kubetest.Shared(t).DeleteAll(t, kubestore.Resources()...)
}

func TestConformance(t *testing.T) {
	rc := server(t)
	storetest.RunStoreConformance(t, func(t testing.TB) ipam.Store {
		wipe(t)
		// A page size of 2 makes every list span several pages.
		s, err := kubestore.New(rc, kubestore.WithPageSize(2))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestWatchConformance(t *testing.T) {
	rc := server(t)
	storetest.RunWatchConformance(t, func(t testing.TB) ipam.Store {
		wipe(t)
		s, err := kubestore.New(rc, kubestore.WithPageSize(2))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, nil)
}
