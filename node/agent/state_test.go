package agent

import (
	"cmp"
	"context"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/datastore/etcd"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/internal/etcdserver"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/etcdstore"
	"github.com/opencalico/calicoctl/node/nat"
	"github.com/opencalico/calicoctl/node/routes"
	"github.com/opencalico/calicoctl/resources"
)

// env is an embedded etcd with the resource client and the IPAM store on it.
type env struct {
	srv   *etcdserver.Server
	ds    *etcd.Backend
	c     *client.Client
	store ipam.Store
}

func newEnv(t testing.TB) *env {
	t.Helper()
	srv := etcdserver.StartForTest(t)
	ds, err := etcd.New(context.Background(), etcd.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	return &env{srv: srv, ds: ds, c: client.New(ds), store: etcdstore.New(ds.Client())}
}

func (e *env) create(t testing.TB, r resources.Resource) {
	t.Helper()
	resources.SetTypeMeta(r)
	if _, err := e.c.Create(context.Background(), r); err != nil {
		t.Fatalf("create %s: %v", resources.KeyOf(r), err)
	}
}

type nodeSpec struct {
	name, v4, v6, ipip, vxlan, mac string
	// addrOnly records v4 only in spec.addresses (a node without BGP data).
	addrOnly bool
}

func (e *env) node(t testing.TB, s nodeSpec) {
	t.Helper()
	n := &resources.Node{}
	n.Name = s.name
	if s.addrOnly {
		n.Spec.Addresses = []resources.NodeAddress{{Address: s.v4, Type: resources.NodeAddressCalicoNodeIP}}
	} else {
		n.Spec.BGP = &resources.NodeBGPSpec{IPv4Address: s.v4, IPv6Address: s.v6, IPv4IPIPTunnelAddr: s.ipip}
	}
	n.Spec.IPv4VXLANTunnelAddr, n.Spec.VXLANTunnelMACAddr = s.vxlan, s.mac
	e.create(t, n)
}

func (e *env) pool(t testing.TB, name, cidr string, ipip, vxlan resources.EncapMode, natOut, disabled bool) {
	t.Helper()
	p := &resources.IPPool{}
	p.Name = name
	p.Spec = resources.IPPoolSpec{CIDR: cidr, IPIPMode: ipip, VXLANMode: vxlan, NATOutgoing: natOut, Disabled: disabled}
	e.create(t, p)
}

func (e *env) block(t testing.TB, cidr, host string) {
	t.Helper()
	p := netip.MustParsePrefix(cidr)
	size := 1 << (p.Addr().BitLen() - p.Bits())
	b := &ipam.Block{CIDR: p, Allocations: make([]*int, size), Unallocated: make([]int, size)}
	for i := range b.Unallocated {
		b.Unallocated[i] = i
	}
	if host != "" {
		b.Affinity = "host:" + host
		if _, err := e.store.CreateAffinity(context.Background(), &ipam.Affinity{Host: host, Type: "host", CIDR: p, State: ipam.StateConfirmed}); err != nil {
			t.Fatalf("create affinity %s %s: %v", host, cidr, err)
		}
	}
	if _, err := e.store.CreateBlock(context.Background(), b); err != nil {
		t.Fatalf("create block %s: %v", cidr, err)
	}
}

func (e *env) wep(t testing.TB, node, pod, iface string, ips []string, nats ...resources.IPNAT) {
	t.Helper()
	w := &resources.WorkloadEndpoint{}
	w.Namespace = "default"
	w.Spec = resources.WorkloadEndpointSpec{Orchestrator: "k8s", Node: node, Pod: pod, Endpoint: "eth0",
		InterfaceName: iface, IPNetworks: ips, IPNATs: nats}
	name, err := resources.WEPIdentifiersOf(&w.Spec).Name()
	if err != nil {
		t.Fatal(err)
	}
	w.Name = name
	e.create(t, w)
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

// normalize sorts the order-free slices of a snapshot so it compares exactly.
func normalize(s *Snapshot) {
	byPrefix := func(a, b netip.Prefix) int { return cmp.Compare(a.String(), b.String()) }
	slices.SortFunc(s.Routes.Pools, func(a, b routes.PoolInfo) int { return byPrefix(a.CIDR, b.CIDR) })
	blocks := func(a, b routes.BlockInfo) int { return byPrefix(a.CIDR, b.CIDR) }
	slices.SortFunc(s.Routes.Blocks, blocks)
	slices.SortFunc(s.Routes.Borrowed, blocks)
	slices.SortFunc(s.Routes.Workloads, func(a, b routes.WorkloadRoute) int { return byPrefix(a.Addr, b.Addr) })
	slices.SortFunc(s.NAT.MasqPools, byPrefix)
	slices.SortFunc(s.NAT.AllPools, byPrefix)
	slices.SortFunc(s.NAT.FloatingIPs, func(a, b nat.FloatingNAT) int { return cmp.Compare(a.Ext.String(), b.Ext.String()) })
}

func TestReadSnapshot(t *testing.T) {
	e := newEnv(t)
	e.node(t, nodeSpec{name: "node-a", v4: "10.0.0.5/24", vxlan: "10.244.0.1", mac: "66:00:00:00:00:0a"})
	e.node(t, nodeSpec{name: "node-b", v4: "10.0.0.6/24", v6: "fd00::6/64", ipip: "10.245.0.1", vxlan: "10.244.0.65", mac: "66:00:00:00:00:0b"})
	e.node(t, nodeSpec{name: "node-c", v4: "10.1.0.7/24", addrOnly: true})

	e.pool(t, "nat-vxlan", "10.244.0.0/16", "", resources.EncapAlways, true, false)
	e.pool(t, "ipip-cross", "10.245.0.0/16", resources.EncapCrossSubnet, "", false, false)
	// Disabled: still a pool for routes and the NAT exclusions, never
	// masqueraded (TestReadSnapshotEncapFlags: its encapsulation is ignored).
	e.pool(t, "old", "10.246.0.0/16", resources.EncapAlways, "", true, true)
	e.pool(t, "v6", "fd00:10::/48", "", resources.EncapAlways, false, false)

	e.block(t, "10.244.0.0/26", "node-a")
	e.block(t, "10.244.0.64/26", "node-b")
	e.block(t, "10.245.0.0/26", "node-b")
	e.block(t, "10.244.1.0/26", "")
	e.block(t, "fd00:10::/122", "node-a")

	// Local, with a floating IP and dual stack.
	e.wep(t, "node-a", "web", "cali1111", []string{"10.244.0.2/32", "fd00:10::2/128"},
		resources.IPNAT{InternalIP: "10.244.0.2", ExternalIP: "172.16.0.10"})
	// Local, borrowed from node-b's block: a local route, not "borrowed".
	e.wep(t, "node-a", "borrower", "cali2222", []string{"10.244.0.70/32"})
	// Remote in its own node's block: covered by the block route.
	e.wep(t, "node-b", "db", "cali3333", []string{"10.244.0.66/32"},
		resources.IPNAT{InternalIP: "10.244.0.66", ExternalIP: "172.16.0.11"})
	// Remote, borrowed from node-a's block and from an unaffine block.
	e.wep(t, "node-c", "cache", "cali4444", []string{"10.244.0.5/32"})
	e.wep(t, "node-b", "queue", "cali5555", []string{"10.244.1.5/32"})

	got, err := ReadSnapshot(context.Background(), e.ds, e.store, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	normalize(got)
	nodeA := routes.NodeInfo{Name: "node-a", IPv4: pfx("10.0.0.5/24"), IPv4VXLANTunnelAddr: addr("10.244.0.1"), VXLANTunnelMACAddr: "66:00:00:00:00:0a"}
	want := &Snapshot{
		Routes: routes.State{
			LocalNode: "node-a",
			Nodes: map[string]routes.NodeInfo{
				"node-a": nodeA,
				"node-b": {Name: "node-b", IPv4: pfx("10.0.0.6/24"), IPv6: pfx("fd00::6/64"), IPv4IPIPTunnelAddr: addr("10.245.0.1"),
					IPv4VXLANTunnelAddr: addr("10.244.0.65"), VXLANTunnelMACAddr: "66:00:00:00:00:0b"},
				"node-c": {Name: "node-c", IPv4: pfx("10.1.0.7/24")},
			},
			Pools: []routes.PoolInfo{
				{CIDR: pfx("10.244.0.0/16"), IPIPMode: "Never", VXLANMode: "Always"},
				{CIDR: pfx("10.245.0.0/16"), IPIPMode: "CrossSubnet", VXLANMode: "Never"},
				{CIDR: pfx("10.246.0.0/16"), IPIPMode: "Always", VXLANMode: "Never", Disabled: true},
				{CIDR: pfx("fd00:10::/48"), IPIPMode: "Never", VXLANMode: "Always"},
			},
			Blocks: []routes.BlockInfo{
				{CIDR: pfx("10.244.0.0/26"), Node: "node-a"},
				{CIDR: pfx("10.244.0.64/26"), Node: "node-b"},
				{CIDR: pfx("10.244.1.0/26")},
				{CIDR: pfx("10.245.0.0/26"), Node: "node-b"},
				{CIDR: pfx("fd00:10::/122"), Node: "node-a"},
			},
			Workloads: []routes.WorkloadRoute{
				{Addr: pfx("10.244.0.2/32"), Iface: "cali1111"},
				{Addr: pfx("10.244.0.70/32"), Iface: "cali2222"},
				{Addr: pfx("fd00:10::2/128"), Iface: "cali1111"},
			},
			Borrowed: []routes.BlockInfo{
				{CIDR: pfx("10.244.0.5/32"), Node: "node-c"},
				{CIDR: pfx("10.244.1.5/32"), Node: "node-b"},
			},
		},
		NAT: nat.Desired{
			MasqPools:   []netip.Prefix{pfx("10.244.0.0/16")},
			AllPools:    []netip.Prefix{pfx("10.244.0.0/16"), pfx("10.245.0.0/16"), pfx("10.246.0.0/16"), pfx("fd00:10::/48")},
			FloatingIPs: []nat.FloatingNAT{{Ext: addr("172.16.0.10"), Int: addr("10.244.0.2")}},
		},
		Local: nodeA,
		IPIP:  true, VXLAN: true, VXLANv6: true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("snapshot mismatch\n got: %+v\nwant: %+v", *got, *want)
	}
}

func TestReadSnapshotEncapFlags(t *testing.T) {
	tests := []struct {
		name                string
		ipip, vxlan         resources.EncapMode
		disabled            bool
		wantIPIP, wantVXLAN bool
	}{
		{name: "no encap", ipip: resources.EncapNever, vxlan: resources.EncapNever},
		{name: "ipip always", ipip: resources.EncapAlways, wantIPIP: true},
		{name: "ipip cross-subnet", ipip: resources.EncapCrossSubnet, wantIPIP: true},
		{name: "vxlan cross-subnet", vxlan: resources.EncapCrossSubnet, wantVXLAN: true},
		{name: "disabled vxlan pool", vxlan: resources.EncapAlways, disabled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.pool(t, "p", "10.244.0.0/16", tt.ipip, tt.vxlan, false, tt.disabled)
			got, err := ReadSnapshot(context.Background(), e.ds, e.store, "missing-node")
			if err != nil {
				t.Fatal(err)
			}
			if got.IPIP != tt.wantIPIP || got.VXLAN != tt.wantVXLAN || got.VXLANv6 {
				t.Errorf("encaps = ipip %v vxlan %v vxlanv6 %v, want %v %v false", got.IPIP, got.VXLAN, got.VXLANv6, tt.wantIPIP, tt.wantVXLAN)
			}
			if got.Local != (routes.NodeInfo{}) || len(got.NAT.MasqPools) != 0 {
				t.Errorf("local = %+v, masq = %v; want zero and none", got.Local, got.NAT.MasqPools)
			}
		})
	}
}

func TestReadSnapshotFailsWhenDatastoreDown(t *testing.T) {
	e := newEnv(t)
	e.pool(t, "p", "10.244.0.0/16", "", resources.EncapAlways, true, false)
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s, err := ReadSnapshot(ctx, e.ds, e.store, "node-a")
	if err == nil || s != nil {
		t.Fatalf("ReadSnapshot with etcd stopped = %+v, %v; want nil and an error", s, err)
	}
}
