package ipam_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/opencalico/calicoctl/internal/etcdserver"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/etcdstore"
)

// TestConcurrentAllocators runs 32 allocators (4 per node, 8 nodes, each
// node with its own etcd client) against one embedded etcd until 10,000
// addresses are assigned, then checks that no address was handed out twice,
// none was lost, and handle counts match the blocks; then releases
// everything concurrently and checks that nothing is left.
func TestConcurrentAllocators(t *testing.T) {
	if testing.Short() {
		t.Skip("needs embedded etcd")
	}
	const nodes = 8
	ctx := context.Background()
	endpoints := etcdserver.StartForTest(t).Endpoints()
	stores := make([]ipam.Store, nodes)
	for i := range stores {
		stores[i] = etcdstore.New(newClient(t, endpoints)) // one client per node
	}
	// Two pools: a small one, so that nodes run out of it and borrow, and a
	// large one. Blocks of 64 make many blocks (and CAS conflicts).
	pools := &staticPools{pools: []ipam.Pool{pool("small", "10.0.0.0/22", 26), pool("big", "10.1.0.0/16", 26)}}
	pools.res = []netip.Prefix{netip.MustParsePrefix("10.1.0.0/28")}
	e := runAllocatorRace(t, stores, pools, 32, 10_000)

	// Released blocks keep their affinity until the hosts' affinities go.
	blocks, err := stores[0].ListBlocks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		if b.Affinity == "" {
			t.Fatalf("block %s: no affinity after release", b.CIDR)
		}
	}
	// With the hosts' affinities released, the empty blocks are deleted.
	for n := range nodes {
		if err := e.alloc.ReleaseHostAffinities(ctx, fmt.Sprintf("node-%d", n)); err != nil {
			t.Fatal(err)
		}
	}
	blocks, _ = stores[0].ListBlocks(ctx)
	affs, _ := stores[0].ListAffinities(ctx, "")
	if len(blocks) != 0 || len(affs) != 0 {
		t.Fatalf("%d blocks and %d affinities left", len(blocks), len(affs))
	}
}

// runAllocatorRace has workers allocators (spread over the nodes, one store
// per node; stores[0] is also the one checked) assign total addresses one
// at a time from pools, concurrently. It checks that no address was handed
// out twice or lost and that the handle records match the blocks; then it
// releases everything concurrently (half by address and handle, half by
// handle) and checks that no allocation or handle is left. It returns the
// env on stores[0], for further checks.
func runAllocatorRace(t *testing.T, stores []ipam.Store, pools *staticPools, workers, total int) *env {
	t.Helper()
	ctx := context.Background()
	nodes := len(stores)
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

	// Zero duplicates: every address was handed out once.
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
	// Zero lost: the blocks hold exactly those allocations, each under the
	// handle it was returned to.
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
	e.check() // handle records match the blocks
	t.Logf("%d blocks, %d borrowed addresses", len(blocks), borrowed)

	// Release everything concurrently: half by address (with handle), half by handle.
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
	e.check() // and no handle is left
	if hs, err := stores[0].ListHandles(ctx); err != nil || len(hs) != 0 {
		t.Fatalf("%d handles left (err %v)", len(hs), err)
	}
	return e
}
