package startup

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
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

func newAllocClient(t *testing.T) (*client.Client, *ipam.Allocator) {
	t.Helper()
	srv := etcdserver.StartForTest(t)
	ds, err := etcd.New(context.Background(), etcd.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	return client.New(ds), ipam.New(etcdstore.New(ds.Client()), ipam.PoolsFromDatastore(ds))
}

func TestTunnelAddresses(t *testing.T) {
	c, alloc := newAllocClient(t)
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := Run(ctx, c, opts(t, "n1", oneIface("10.0.0.5/24"), "CALICO_IPV4POOL_CIDR=10.244.0.0/16", "CALICO_IPV4POOL_VXLAN=Always")); err != nil {
		t.Fatal(err)
	}
	tun, err := EnsureTunnelAddresses(ctx, c, alloc, "n1", quiet)
	if err != nil {
		t.Fatal(err)
	}
	if !netip.MustParsePrefix("10.244.0.0/16").Contains(tun.VXLAN) || tun.IPIP.IsValid() {
		t.Fatalf("tunnels = %+v", tun)
	}
	if mac, err := net.ParseMAC(tun.VXLANMAC); err != nil || mac[0]&0x02 == 0 || mac[0]&0x01 != 0 {
		t.Errorf("VXLAN MAC %q is not a locally administered unicast MAC", tun.VXLANMAC)
	}
	n := get[*resources.Node](t, c, "Node", "n1")
	if n.Spec.IPv4VXLANTunnelAddr != tun.VXLAN.String() || n.Spec.VXLANTunnelMACAddr != tun.VXLANMAC {
		t.Errorf("node spec = %+v", n.Spec)
	}
	attrs, handle, err := alloc.GetAssignmentAttributes(ctx, tun.VXLAN)
	if err != nil || handle == nil || *handle != "vxlan-tunnel-addr-n1" || attrs["type"] != "vxlanTunnelAddress" || attrs["node"] != "n1" {
		t.Fatalf("allocation = %v %v %v", attrs, handle, err)
	}

	// Idempotent: same address, no Node write.
	again, err := EnsureTunnelAddresses(ctx, c, alloc, "n1", quiet)
	if err != nil || again != tun {
		t.Fatalf("second run = %+v, %v", again, err)
	}
	if n2 := get[*resources.Node](t, c, "Node", "n1"); n2.ResourceVersion != n.ResourceVersion {
		t.Errorf("idempotent run rewrote the Node")
	}

	// The seed's switch: the pool goes from VXLAN to IPIP.
	p := get[*resources.IPPool](t, c, "IPPool", "default-ipv4-ippool")
	p.Spec.VXLANMode, p.Spec.IPIPMode = "Never", "Always"
	if _, err := c.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	sw, err := EnsureTunnelAddresses(ctx, c, alloc, "n1", quiet)
	if err != nil {
		t.Fatal(err)
	}
	if sw.VXLAN.IsValid() || sw.VXLANMAC != "" || !sw.IPIP.IsValid() {
		t.Fatalf("after switch = %+v", sw)
	}
	if _, h, err := alloc.GetAssignmentAttributes(ctx, tun.VXLAN); err == nil && h != nil && *h == "vxlan-tunnel-addr-n1" {
		t.Errorf("old VXLAN address %s still held by its handle", tun.VXLAN)
	}
	if ips, err := alloc.IPsByHandle(ctx, "vxlan-tunnel-addr-n1"); err != nil && !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("IPsByHandle: %v", err)
	} else if len(ips) > 0 {
		t.Errorf("vxlan handle still owns %v", ips)
	}
	n = get[*resources.Node](t, c, "Node", "n1")
	if n.Spec.IPv4VXLANTunnelAddr != "" || n.Spec.BGP == nil || n.Spec.BGP.IPv4IPIPTunnelAddr != sw.IPIP.String() {
		t.Errorf("node after switch = %+v bgp %+v", n.Spec, n.Spec.BGP)
	}

	// A pool that does not select the node gives it nothing.
	p = get[*resources.IPPool](t, c, "IPPool", "default-ipv4-ippool")
	p.Spec.NodeSelector = "zone == 'elsewhere'"
	if _, err := c.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	none, err := EnsureTunnelAddresses(ctx, c, alloc, "n1", quiet)
	if err != nil || none.IPIP.IsValid() || none.VXLAN.IsValid() {
		t.Fatalf("unselected pool = %+v, %v", none, err)
	}
}
