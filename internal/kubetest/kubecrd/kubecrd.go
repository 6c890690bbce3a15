// Package kubecrd installs the Calico CRDs into a test API server
// (kept out of kubetest so internal/crds's own tests can use kubetest).
package kubecrd

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"github.com/opencalico/calicoctl/internal/crds"
	"github.com/opencalico/calicoctl/internal/kubetest"
)

// InstallTimeout bounds Install: applying every Calico CRD and
// waiting until discovery serves them.
const InstallTimeout = 90 * time.Second

// crdInstalls remembers, per API server, the outcome of Install.
var crdInstalls struct {
	mu   sync.Mutex
	done map[*kubetest.APIServer]*crdInstall
}

type crdInstall struct {
	once sync.Once
	err  error
}

// Install installs every Calico CRD into the server and waits until
// discovery serves all of them. It does the work once per server; later
// calls (from any test) return at once, or fail the same way the first did.
func Install(t testing.TB, s *kubetest.APIServer) {
	t.Helper()
	crdInstalls.mu.Lock()
	if crdInstalls.done == nil {
		crdInstalls.done = map[*kubetest.APIServer]*crdInstall{}
	}
	in := crdInstalls.done[s]
	if in == nil {
		in = &crdInstall{}
		crdInstalls.done[s] = in
	}
	crdInstalls.mu.Unlock()
	in.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), InstallTimeout)
		defer cancel()
		in.err = InstallList(ctx, s, nil)
	})
	if in.err != nil {
		t.Fatalf("install CRDs: %v", in.err)
	}
}

// InstallList applies the given CRDs (nil: every Calico CRD) and waits until
// discovery serves them. It skips crds.Install's own wait for the
// Established condition, which a fresh CRD may not report yet.
func InstallList(ctx context.Context, s *kubetest.APIServer, list []*crds.CustomResourceDefinition) error {
	if list == nil {
		var err error
		if list, err = crds.All(); err != nil {
			return fmt.Errorf("load CRDs: %w", err)
		}
	}
	rc := s.RESTConfig()
	if _, err := crds.Install(ctx, rc, crds.InstallOptions{CRDs: list, EstablishTimeout: -1}); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	return WaitServed(ctx, rc, list)
}

// WaitServed polls discovery every 100ms until every CRD in list is
// served in the Calico API group, or ctx ends.
func WaitServed(ctx context.Context, rc *rest.Config, list []*crds.CustomResourceDefinition) error {
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return fmt.Errorf("discovery client: %w", err)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		served := map[string]bool{}
		if res, err := dc.ServerResourcesForGroupVersion(crds.Group + "/" + crds.Version); err == nil {
			for _, r := range res.APIResources {
				served[r.Name] = true
			}
		}
		missing := ""
		for _, c := range list {
			if plural, _, _ := strings.Cut(c.Name, "."); !served[plural] {
				missing = c.Name
				break
			}
		}
		if missing == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRD %s not served: %w", missing, ctx.Err())
		case <-tick.C:
		}
	}
}
