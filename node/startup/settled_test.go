package startup

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/datastore/etcd"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/internal/etcdserver"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/etcdstore"
	"github.com/opencalico/calicoctl/resources"
)

// settled reads the node, the pools and the blocks and asks TunnelsSettled.
func settled(t *testing.T, c *client.Client, store ipam.Store, node string) bool {
	t.Helper()
	ctx := context.Background()
	var n *resources.Node
	if r, err := c.Get(ctx, nodeKey(node)); err == nil {
		n = r.(*resources.Node)
	}
	pl, err := c.List(ctx, datastore.ListOptions{Kind: "IPPool"})
	if err != nil {
		t.Fatal(err)
	}
	var pools []*resources.IPPool
	for _, r := range pl.Items {
		pools = append(pools, r.(*resources.IPPool))
	}
	blocks, err := store.ListBlocks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return TunnelsSettled(n, pools, func(a netip.Addr) string { return handleIn(blocks, a) })
}

// handleIn is the handle of the allocation of a in blocks ("" for none).
func handleIn(blocks []*ipam.Block, a netip.Addr) string {
	for _, b := range blocks {
		if !b.CIDR.Contains(a) {
			continue
		}
		ord, ok := ipam.OrdinalOf(b, a)
		if !ok || ord >= len(b.Allocations) || b.Allocations[ord] == nil {
			return ""
		}
		i := *b.Allocations[ord]
		if i < 0 || i >= len(b.Attributes) || b.Attributes[i].HandleID == nil {
			return ""
		}
		return *b.Attributes[i].HandleID
	}
	return ""
}

// TestTunnelHandlesAreTunnelHandles: the agent's model keeps only the
// allocations whose handle ipam.IsTunnelHandle accepts; the handles
// TunnelsSettled looks for must be among them.
func TestTunnelHandlesAreTunnelHandles(t *testing.T) {
	for _, typ := range []string{TypeIPIP, TypeVXLAN} {
		if h := TunnelHandle(typ, "n1"); !ipam.IsTunnelHandle(h) {
			t.Errorf("TunnelHandle(%s) = %q: not a tunnel handle for ipam.IsTunnelHandle", typ, h)
		}
	}
}

// TestTunnelsSettled agrees with EnsureTunnelAddresses: false exactly when
// it has work to do.
func TestTunnelsSettled(t *testing.T) {
	srv := etcdserver.StartForTest(t)
	ds, err := etcd.New(context.Background(), etcd.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	c, store := client.New(ds), etcdstore.New(ds.Client())
	alloc := ipam.New(store, ipam.PoolsFromDatastore(ds))
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	if settled(t, c, store, "n1") {
		t.Fatal("settled for a node that does not exist")
	}
	if _, err := Run(ctx, c, opts(t, "n1", oneIface("10.0.0.5/24"), "CALICO_IPV4POOL_CIDR=10.244.0.0/16", "CALICO_IPV4POOL_VXLAN=Always")); err != nil {
		t.Fatal(err)
	}
	if settled(t, c, store, "n1") {
		t.Fatal("settled before the VXLAN pool's tunnel address was allocated")
	}
	tun, err := EnsureTunnelAddresses(ctx, c, alloc, "n1", quiet)
	if err != nil {
		t.Fatal(err)
	}
	if !settled(t, c, store, "n1") {
		t.Fatal("not settled right after EnsureTunnelAddresses")
	}

	// The address released behind the node's back.
	if err := alloc.ReleaseByHandle(ctx, TunnelHandle(TypeVXLAN, "n1")); err != nil {
		t.Fatal(err)
	}
	if settled(t, c, store, "n1") {
		t.Fatalf("settled although %s is no longer allocated to the node", tun.VXLAN)
	}
	if _, err := EnsureTunnelAddresses(ctx, c, alloc, "n1", quiet); err != nil {
		t.Fatal(err)
	}
	if !settled(t, c, store, "n1") {
		t.Fatal("not settled after reallocation")
	}

	// The pool switches to IPIP: the VXLAN address and MAC must go.
	p := get[*resources.IPPool](t, c, "IPPool", "default-ipv4-ippool")
	p.Spec.VXLANMode, p.Spec.IPIPMode = "Never", "Always"
	if _, err := c.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	if settled(t, c, store, "n1") {
		t.Fatal("settled after the pool moved from VXLAN to IPIP")
	}
	if _, err := EnsureTunnelAddresses(ctx, c, alloc, "n1", quiet); err != nil {
		t.Fatal(err)
	}
	if !settled(t, c, store, "n1") {
		t.Fatal("not settled after the switch")
	}
}
