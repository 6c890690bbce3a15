package ipam_test

import (
	"context"
	"fmt"
	"net/netip"
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
)

// kubeCRDs installs the Calico CRDs into the shared API server once.
var kubeCRDs struct {
	sync.Once
	err error
}

// kubeServer returns an admin configuration for the binary's shared
// kube-apiserver, with the IPAM CRDs served.
func kubeServer(t testing.TB) *rest.Config {
	t.Helper()
	rc := kubetest.Shared(t).RESTConfig()
	kubeCRDs.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		kubeCRDs.err = installIPAMCRDs(ctx, rc)
	})
	if kubeCRDs.err != nil {
		t.Fatalf("install CRDs: %v", kubeCRDs.err)
	}
	return rc
}

// installIPAMCRDs installs every Calico CRD and waits until the four IPAM
// resources are in discovery.
func installIPAMCRDs(ctx context.Context, rc *rest.Config) error {
	list, err := crds.All()
	if err != nil {
		return fmt.Errorf("load CRDs: %w", err)
	}
	if _, err := crds.Install(ctx, rc, crds.InstallOptions{CRDs: list, EstablishTimeout: -1}); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return fmt.Errorf("discovery client: %w", err)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		served := map[string]bool{}
		if res, err := dc.ServerResourcesForGroupVersion(kubestore.APIVersion); err == nil {
			for _, r := range res.APIResources {
				served[r.Name] = true
			}
		}
		missing := ""
		for _, gvr := range kubestore.Resources() {
			if !served[gvr.Resource] {
				missing = gvr.Resource
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

// wipeKube deletes every object of the four IPAM kinds.
func wipeKube(t testing.TB, dyn dynamic.Interface) {
	t.Helper()
	for _, gvr := range kubestore.Resources() {
		if err := dyn.Resource(gvr).DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			t.Fatalf("wipe %s: %v", gvr.Resource, err)
		}
	}
}

// kubeStores uses the shared API server; each store it hands out starts
// with no IPAM objects (scenarios using it run one at a time).
func kubeStores(t testing.TB) func(t testing.TB) ipam.Store {
	rc := kubeServer(t)
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		t.Fatalf("dynamic client: %v", err)
	}
	return func(t testing.TB) ipam.Store {
		t.Helper()
		wipeKube(t, dyn)
		s, err := kubestore.New(rc)
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
	const (
		workers = 8
		nodes   = 4
		total   = 500
	)
	ctx := context.Background()
	newStore := kubeStores(t)
	stores := make([]ipam.Store, nodes)
	stores[0] = newStore(t) // wipes
	for i := 1; i < nodes; i++ {
		s, err := kubestore.New(kubeServer(t))
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
	e := newEnv(t, stores[0], pools.pools...)
	e.pools = pools

	type grant struct {
		ip     netip.Addr
		handle string
	}
	results := make([][]grant, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		node := w % nodes
		alloc := ipam.New(stores[node], pools)
		n := total / workers
		if w < total%workers {
			n++
		}
		wg.Go(func() {
			host := fmt.Sprintf("node-%d", node)
			for i := range n {
				handle := fmt.Sprintf("w%d-%d", w, i)
				r, err := alloc.AutoAssign(ctx, ipam.AutoAssignArgs{
					Num4: 1, HandleID: handle, Hostname: host,
					Attrs: map[string]string{ipam.AttrNode: host, ipam.AttrPod: handle},
				})
				if err != nil {
					errs[w] = fmt.Errorf("worker %d request %d: %w", w, i, err)
					return
				}
				results[w] = append(results[w], grant{r.IPv4[0].Addr(), handle})
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	owner := map[netip.Addr]string{}
	for _, rs := range results {
		for _, g := range rs {
			if prev, dup := owner[g.ip]; dup {
				t.Fatalf("address %s handed out to %s and %s", g.ip, prev, g.handle)
			}
			if pools.res[0].Contains(g.ip) {
				t.Fatalf("reserved address %s handed out", g.ip)
			}
			owner[g.ip] = g.handle
		}
	}
	if len(owner) != total {
		t.Fatalf("%d addresses handed out, want %d", len(owner), total)
	}
	blocks, err := stores[0].ListBlocks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inBlocks, borrowed := 0, 0
	for _, b := range blocks {
		for o, p := range b.Allocations {
			if p == nil {
				continue
			}
			inBlocks++
			ip, _ := ipam.IPAt(b, o)
			h := b.Attributes[*p].HandleID
			if h == nil || owner[ip] != *h {
				t.Fatalf("block %s holds %s for %v; it was handed to %q", b.CIDR, ip, h, owner[ip])
			}
			if "host:"+b.Attributes[*p].ActiveOwnerAttrs[ipam.AttrNode] != b.Affinity {
				borrowed++
			}
		}
	}
	if inBlocks != total {
		t.Fatalf("blocks hold %d allocations, want %d", inBlocks, total)
	}
	e.check()
	t.Logf("%d blocks, %d borrowed addresses", len(blocks), borrowed)

	for w := range workers {
		alloc := ipam.New(stores[w%nodes], pools)
		wg.Go(func() {
			for i, g := range results[w] {
				var err error
				if i%2 == 0 {
					var un []netip.Addr
					un, err = alloc.ReleaseIPs(ctx, ipam.ReleaseOptions{Address: g.ip, Handle: g.handle})
					if err == nil && len(un) > 0 {
						err = fmt.Errorf("%s reported unallocated", g.ip)
					}
				} else {
					err = alloc.ReleaseByHandle(ctx, g.handle)
				}
				if err != nil {
					errs[w] = fmt.Errorf("worker %d release %s: %w", w, g.ip, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	blocks, err = stores[0].ListBlocks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		if n := ipam.UsedCount(b); n != 0 {
			t.Fatalf("block %s: %d addresses still allocated", b.CIDR, n)
		}
	}
	e.check()
	if hs, err := stores[0].ListHandles(ctx); err != nil || len(hs) != 0 {
		t.Fatalf("%d handles left (err %v)", len(hs), err)
	}
}
