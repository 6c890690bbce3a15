package ipam_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/opencalico/calicoctl/internal/etcdserver"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/etcdstore"
	"github.com/opencalico/calicoctl/internal/ipam/memstore"
)

// staticPools is a fixed PoolSource.
type staticPools struct {
	pools []ipam.Pool
	res   []netip.Prefix
}

func (s *staticPools) Pools(context.Context) ([]ipam.Pool, error) {
	return slices.Clone(s.pools), nil
}

func (s *staticPools) Reservations(context.Context) ([]netip.Prefix, error) {
	return slices.Clone(s.res), nil
}

// scenario is one behaviour checked against a fresh store.
type scenario struct {
	name string
	run  func(t *testing.T, s ipam.Store)
}

// storeKind names a Store implementation the scenarios run against. setup
// runs once per test and returns a constructor of empty stores.
type storeKind struct {
	name  string
	setup func(t testing.TB) func(t testing.TB) ipam.Store
}

// storeKinds lists every implementation: the in-memory one always, the etcd
// one (on an embedded server) and the Kubernetes one (on the shared
// kube-apiserver, see kube_test.go) unless -short.
func storeKinds(t testing.TB) []storeKind {
	kinds := []storeKind{{"mem", func(testing.TB) func(testing.TB) ipam.Store {
		return func(testing.TB) ipam.Store { return memstore.New() }
	}}}
	if !testing.Short() {
		kinds = append(kinds, storeKind{"etcd", etcdStores}, storeKind{"kube", kubeStores})
	}
	return kinds
}

// etcdStores starts one embedded etcd; each store it hands out starts from
// an empty keyspace (scenarios using it run one at a time).
func etcdStores(t testing.TB) func(t testing.TB) ipam.Store {
	cli := etcdClient(t)
	return func(t testing.TB) ipam.Store {
		t.Helper()
		if _, err := cli.Delete(context.Background(), "/", clientv3.WithPrefix()); err != nil {
			t.Fatalf("wipe etcd: %v", err)
		}
		return etcdstore.New(cli)
	}
}

// etcdClient starts an embedded etcd for the test and returns a client.
func etcdClient(t testing.TB) *clientv3.Client {
	t.Helper()
	return newClient(t, etcdserver.StartForTest(t).Endpoints())
}

// newClient connects to etcd at endpoints until the test ends.
func newClient(t testing.TB, endpoints []string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// env is one scenario's world.
type env struct {
	t      *testing.T
	ctx    context.Context
	store  ipam.Store
	pools  *staticPools
	labels map[string]map[string]string
	alloc  *ipam.Allocator
}

func newEnv(t *testing.T, store ipam.Store, pools ...ipam.Pool) *env {
	e := &env{t: t, ctx: context.Background(), store: store, pools: &staticPools{pools: pools}, labels: map[string]map[string]string{}}
	e.alloc = ipam.New(store, e.pools, ipam.WithNodeLabels(func(_ context.Context, node string) (map[string]string, error) {
		return e.labels[node], nil
	}))
	return e
}

func pool(name, cidr string, blockSize int) ipam.Pool {
	return ipam.Pool{Name: name, CIDR: netip.MustParsePrefix(cidr), BlockSize: blockSize, NodeSelector: "all()"}
}

func (e *env) setConfig(mut func(*ipam.Config)) {
	e.t.Helper()
	c, err := e.store.GetConfig(e.ctx)
	if err != nil {
		e.t.Fatalf("get config: %v", err)
	}
	mut(c)
	if _, err := e.store.SetConfig(e.ctx, c); err != nil {
		e.t.Fatalf("set config: %v", err)
	}
}

func (e *env) assign(host, handle string, n4, n6 int) (*ipam.AssignResult, error) {
	return e.alloc.AutoAssign(e.ctx, ipam.AutoAssignArgs{
		Num4: n4, Num6: n6, HandleID: handle, Hostname: host,
		Attrs: map[string]string{ipam.AttrNode: host, ipam.AttrPod: handle},
	})
}

func (e *env) mustAssign(host, handle string, n4, n6 int) *ipam.AssignResult {
	e.t.Helper()
	r, err := e.assign(host, handle, n4, n6)
	if err != nil {
		e.t.Fatalf("AutoAssign(%s, %s, %d, %d): %v", host, handle, n4, n6, err)
	}
	if len(r.IPv4) != n4 || len(r.IPv6) != n6 {
		e.t.Fatalf("AutoAssign gave %d+%d addresses, want %d+%d", len(r.IPv4), len(r.IPv6), n4, n6)
	}
	return r
}

func (e *env) block(cidr string) *ipam.Block {
	e.t.Helper()
	b, err := e.store.GetBlock(e.ctx, netip.MustParsePrefix(cidr))
	if err != nil {
		e.t.Fatalf("get block %s: %v", cidr, err)
	}
	return b
}

func (e *env) hasBlock(cidr string) bool {
	_, err := e.store.GetBlock(e.ctx, netip.MustParsePrefix(cidr))
	return err == nil
}

// check verifies the store's invariants: each block's allocations and free
// list partition its ordinals, every allocation's attribute exists, and the
// handle records match the per-block counts found in blocks.
func (e *env) check() {
	e.t.Helper()
	blocks, err := e.store.ListBlocks(e.ctx)
	if err != nil {
		e.t.Fatalf("list blocks: %v", err)
	}
	want := map[string]map[string]int{}
	for _, b := range blocks {
		n := ipam.BlockCapacity(b.CIDR)
		seen := make([]bool, n)
		for _, o := range b.Unallocated {
			if o < 0 || o >= n || seen[o] || b.Allocations[o] != nil {
				e.t.Fatalf("block %s: bad free ordinal %d", b.CIDR, o)
			}
			seen[o] = true
		}
		for o, p := range b.Allocations {
			if p == nil {
				if !seen[o] {
					e.t.Fatalf("block %s: ordinal %d neither free nor allocated", b.CIDR, o)
				}
				continue
			}
			if *p < 0 || *p >= len(b.Attributes) {
				e.t.Fatalf("block %s: ordinal %d points at attribute %d of %d", b.CIDR, o, *p, len(b.Attributes))
			}
			if h := b.Attributes[*p].HandleID; h != nil {
				if want[*h] == nil {
					want[*h] = map[string]int{}
				}
				want[*h][b.CIDR.String()]++
			}
		}
	}
	handles, err := e.store.ListHandles(e.ctx)
	if err != nil {
		e.t.Fatalf("list handles: %v", err)
	}
	got := map[string]map[string]int{}
	for _, h := range handles {
		got[h.ID] = h.Block
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		e.t.Fatalf("handle records %v, blocks say %v", got, want)
	}
}

func addrs(ps []netip.Prefix) []netip.Addr {
	out := make([]netip.Addr, len(ps))
	for i, p := range ps {
		out[i] = p.Addr()
	}
	return out
}

func wantErr[T error](t *testing.T, err error) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("error %v, want %T", err, target)
	}
	return target
}

func TestAllocator(t *testing.T) {
	for _, sk := range storeKinds(t) {
		t.Run(sk.name, func(t *testing.T) {
			newStore := sk.setup(t)
			for _, sc := range slices.Concat(assignScenarios, releaseScenarios, affinityScenarios, reportScenarios) {
				t.Run(sc.name, func(t *testing.T) {
					sc.run(t, newStore(t))
				})
			}
		})
	}
}
