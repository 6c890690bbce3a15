package ipam_test

import (
	"net/netip"
	"testing"

	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/kubestore"
	"github.com/opencalico/calicoctl/internal/kubetest"
	"github.com/opencalico/calicoctl/internal/kubetest/kubecrd"
)

// kubeServer returns the binary's shared kube-apiserver, with the Calico
// CRDs served.
func kubeServer(t testing.TB) *kubetest.APIServer {
	t.Helper()
	srv := kubetest.Shared(t)
	kubecrd.Install(t, srv)
	return srv
}

// kubeStores uses the shared API server; each store it hands out starts
// with no IPAM objects (scenarios using it run one at a time).
func kubeStores(t testing.TB) func(t testing.TB) ipam.Store {
	srv := kubeServer(t)
	return func(t testing.TB) ipam.Store {
		t.Helper()
		srv.DeleteAll(t, kubestore.Resources()...)
		s, err := kubestore.New(srv.RESTConfig())
		if err != nil {
			t.Fatalf("kubestore: %v", err)
		}
		return s
	}
}

// TestConcurrentAllocatorsKube is the race test on the Kubernetes store,
// smaller than the etcd one (every write is an API server round trip): 8
// allocators on 4 nodes, each node with its own client, assign 500
// addresses from a pool small enough that nodes borrow; no address may be
// handed out twice or lost, and the handle records must match the blocks.
// Then everything is released concurrently and nothing may be left.
func TestConcurrentAllocatorsKube(t *testing.T) {
	if testing.Short() {
		t.Skip("needs kube-apiserver")
	}
	const nodes = 4
	newStore := kubeStores(t)
	stores := make([]ipam.Store, nodes)
	stores[0] = newStore(t) // wipes
	for i := 1; i < nodes; i++ {
		s, err := kubestore.New(kubeServer(t).RESTConfig())
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	// One /23 pool of /26 blocks: 8 blocks for 4 nodes, 512 addresses less
	// 8 reserved, so the pool ends up nearly full and nodes that fill their
	// own blocks first must borrow from the others' while those are in use.
	pools := &staticPools{pools: []ipam.Pool{pool("only", "10.0.0.0/23", 26)}}
	pools.res = []netip.Prefix{netip.MustParsePrefix("10.0.1.0/29")}
	runAllocatorRace(t, stores, pools, 8, 500)
}
