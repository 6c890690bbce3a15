package agent

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/opencalico/calicoctl/node/nat"
	"github.com/opencalico/calicoctl/node/plan"
	"github.com/opencalico/calicoctl/node/routes"
)

// fakeWriter records what it is given and returns scripted results; while
// gate is set it blocks until the gate is closed.
type fakeWriter[T any] struct {
	got chan T

	mu      sync.Mutex
	results []error
	gate    chan struct{}
}

func newFakeWriter[T any]() *fakeWriter[T] { return &fakeWriter[T]{got: make(chan T, 100)} }

func (f *fakeWriter[T]) write(ctx context.Context, want T, _ bool) error {
	f.mu.Lock()
	gate := f.gate
	var err error
	if len(f.results) > 0 {
		err, f.results = f.results[0], f.results[1:]
	}
	f.mu.Unlock()
	f.got <- want
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

func (f *fakeWriter[T]) block() chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate = make(chan struct{})
	return f.gate
}

type fakeProbe struct{}

func (fakeProbe) HostMTU(netip.Addr) (int, error) { return 1500, nil }
func (fakeProbe) IPIPSupported() (bool, string)   { return true, "" }

type fakeWriters struct {
	routes  *fakeWriter[routeInput]
	vxlan   *fakeWriter[plan.VXLANSet]
	tunnels *fakeWriter[plan.TunnelSet]
	nat     *fakeWriter[nat.Desired]
}

func startFakeDataplane(t *testing.T) (*KernelDataplane, fakeWriters) {
	t.Helper()
	fw := fakeWriters{newFakeWriter[routeInput](), newFakeWriter[plan.VXLANSet](), newFakeWriter[plan.TunnelSet](), newFakeWriter[nat.Desired]()}
	d := startDataplane(KernelOptions{Debounce: -1, Resync: -1, MTUFile: "-"}, nil, fakeProbe{},
		writeFuncs{routes: fw.routes.write, vxlan: fw.vxlan.write, tunnels: fw.tunnels.write, nat: fw.nat.write})
	t.Cleanup(func() { _ = d.Close() })
	return d, fw
}

// snapshotWith is node a with a pool and the given affine blocks.
func snapshotWith(blocks ...string) *Snapshot {
	s := &Snapshot{Routes: routes.State{LocalNode: "a",
		Nodes: map[string]routes.NodeInfo{"a": {Name: "a", IPv4: pfx("10.0.0.1/24")}},
		Pools: []routes.PoolInfo{{CIDR: pfx("192.168.0.0/16")}}}}
	for _, b := range blocks {
		s.Routes.Blocks = append(s.Routes.Blocks, routes.BlockInfo{CIDR: pfx(b), Node: "a"})
	}
	s.NAT.AllPools = []netip.Prefix{pfx("192.168.0.0/16")}
	return s
}

func dsts(in routeInput) []string {
	var out []string
	for _, r := range routes.Merge(in.sources) {
		out = append(out, r.Dst.String())
	}
	return out
}

// awaitRoutes reads the route writer's inputs until one routes exactly dst.
func awaitRoutes(t *testing.T, w *fakeWriter[routeInput], dst ...string) routeInput {
	t.Helper()
	for in := range w.got {
		if slices.Equal(dsts(in), dst) {
			return in
		}
	}
	panic("unreachable")
}

func TestDataplaneFirstApplyWaitsForEveryWriter(t *testing.T) {
	d, fw := startFakeDataplane(t)
	boom := errors.New("nftables down")
	fw.nat.results = []error{boom}

	if err := d.Apply(context.Background(), snapshotWith("192.168.1.0/26")); !errors.Is(err, boom) {
		t.Fatalf("first Apply with a failing NAT writer = %v, want its error", err)
	}
	// The agent retries; the NAT writer has recovered.
	if err := d.Apply(context.Background(), snapshotWith("192.168.1.0/26")); err != nil {
		t.Fatalf("second Apply = %v", err)
	}
	in := awaitRoutes(t, fw.routes, "192.168.1.0/26")
	if !slices.Equal(in.owned, []netip.Prefix{pfx("192.168.0.0/16")}) {
		t.Errorf("owned CIDRs %v", in.owned)
	}
	if st := d.natR.Status(); !st.InSync() {
		t.Errorf("nat writer %+v, want in sync", st)
	}
}

func TestDataplaneBlockedWriterDoesNotDelayOthers(t *testing.T) {
	d, fw := startFakeDataplane(t)
	if err := d.Apply(context.Background(), snapshotWith("192.168.1.0/26")); err != nil {
		t.Fatal(err)
	}
	release := fw.nat.block()
	defer close(release)
	// Apply returns at once and the route writer gets each new plan while
	// the NAT writer is stuck in its write.
	if err := d.Apply(context.Background(), snapshotWith("192.168.1.0/26", "192.168.1.64/26")); err != nil {
		t.Fatal(err)
	}
	<-fw.nat.got // the first plan
	<-fw.nat.got // the second: the NAT writer is now inside its blocked write
	awaitRoutes(t, fw.routes, "192.168.1.0/26", "192.168.1.64/26")
	if err := d.Apply(context.Background(), snapshotWith("192.168.1.64/26")); err != nil {
		t.Fatal(err)
	}
	awaitRoutes(t, fw.routes, "192.168.1.64/26")
	if st := d.natR.Status(); st.InSync() {
		t.Errorf("blocked nat writer reports in sync: %+v", st)
	}
}

func TestDataplaneMergesRouteSources(t *testing.T) {
	d, fw := startFakeDataplane(t)
	if err := d.Apply(context.Background(), snapshotWith("192.168.1.0/26")); err != nil {
		t.Fatal(err)
	}
	bgp := routes.Route{Dst: pfx("10.99.0.0/16"), Gw: addr("10.0.0.9"), Protocol: 186}
	clash := routes.Route{Dst: pfx("192.168.1.0/26"), Gw: addr("10.0.0.9"), Protocol: 186}
	d.SetRoutes("bgp", []routes.Route{bgp, clash})
	in := awaitRoutes(t, fw.routes, "10.99.0.0/16", "192.168.1.0/26")
	for _, r := range routes.Merge(in.sources) {
		if r.Dst == clash.Dst && r.Type != routes.Blackhole {
			t.Errorf("BGP route %v displaced the plan's blackhole", r)
		}
	}
	// A new plan keeps the other source's routes.
	if err := d.Apply(context.Background(), snapshotWith("192.168.1.0/26", "192.168.1.64/26")); err != nil {
		t.Fatal(err)
	}
	awaitRoutes(t, fw.routes, "10.99.0.0/16", "192.168.1.0/26", "192.168.1.64/26")
	d.SetRoutes("bgp", nil)
	awaitRoutes(t, fw.routes, "192.168.1.0/26", "192.168.1.64/26")
}
