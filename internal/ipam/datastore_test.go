package ipam_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/datastore/etcd"
	"github.com/opencalico/calicoctl/internal/etcdserver"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/etcdstore"
	"github.com/opencalico/calicoctl/resources"
)

// TestPoolsFromDatastore runs the allocator with pools, reservations and
// node labels read from real resources in etcd, next to the IPAM keys.
func TestPoolsFromDatastore(t *testing.T) {
	if testing.Short() {
		t.Skip("needs embedded etcd")
	}
	ctx := context.Background()
	srv := etcdserver.StartForTest(t)
	ds, err := etcd.New(ctx, etcd.Config{Endpoints: srv.Endpoints(), DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("etcd backend: %v", err)
	}
	t.Cleanup(func() { _ = ds.Close() })

	create := func(kind, name string, fill func(resources.Resource)) {
		t.Helper()
		k, err := resources.Lookup(kind)
		if err != nil {
			t.Fatal(err)
		}
		r := k.New()
		r.SetName(name)
		fill(r)
		r.Default()
		if _, err := ds.Create(ctx, r); err != nil {
			t.Fatalf("create %s %s: %v", kind, name, err)
		}
	}
	ippool := func(name, cidr string, mut func(*resources.IPPoolSpec)) {
		create("IPPool", name, func(r resources.Resource) {
			p := r.(*resources.IPPool)
			p.Spec.CIDR = cidr
			if mut != nil {
				mut(&p.Spec)
			}
		})
	}
	ippool("zone-a", "10.1.0.0/24", func(s *resources.IPPoolSpec) { s.NodeSelector = `zone == "a"` })
	ippool("zone-b", "10.2.0.0/24", func(s *resources.IPPoolSpec) { s.NodeSelector = `zone == "b"`; s.BlockSize = 28 })
	ippool("off", "10.3.0.0/24", func(s *resources.IPPoolSpec) { s.Disabled = true })
	ippool("tunnels", "10.4.0.0/24", func(s *resources.IPPoolSpec) {
		s.AllowedUses = []resources.IPPoolAllowedUse{resources.AllowedUseTunnel}
	})
	ippool("v6", "fd00:1::/120", nil)
	create("IPReservation", "res", func(r resources.Resource) {
		r.(*resources.IPReservation).Spec.ReservedCIDRs = []string{"10.1.0.0/25", "10.2.0.0/029", "fd00:1::1"}
	})
	create("Node", "na", func(r resources.Resource) { r.SetLabels(map[string]string{"zone": "a"}) })
	create("Node", "nb", func(r resources.Resource) { r.SetLabels(map[string]string{"zone": "b"}) })

	src := ipam.PoolsFromDatastore(ds)
	alloc := ipam.New(etcdstore.New(ds.Client()), src)

	pools, err := src.Pools(ctx)
	if err != nil || len(pools) != 5 {
		t.Fatalf("Pools: %v, %v", pools, err)
	}
	for _, p := range pools {
		if p.Name == "v6" && (p.BlockSize != 122 || p.NodeSelector != "all()") {
			t.Fatalf("defaults not applied: %+v", p)
		}
	}
	// Read as the validator reads them: a bare address is a host prefix, a
	// prefix length may have leading zeros.
	if res, err := src.Reservations(ctx); err != nil || fmt.Sprint(res) != "[10.1.0.0/25 10.2.0.0/29 fd00:1::1/128]" {
		t.Fatalf("Reservations: %v, %v", res, err)
	}

	for _, c := range []struct {
		name   string
		host   string
		use    string
		n4, n6 int
		within []string // each v4 address lies in the first, v6 in the second
		errHas string
	}{
		{name: "node in zone a", host: "na", n4: 3, within: []string{"10.1.0.128/25"}},
		{name: "node in zone b skips reserved", host: "nb", n4: 248, within: []string{"10.2.0.0/24"}},
		{name: "unknown node matches no selector", host: "nx", n4: 1, errHas: `no IPv4 pool is usable by node "nx"`},
		{name: "tunnel", host: "nx", use: ipam.UseTunnel, n4: 1, within: []string{"10.4.0.0/24"}},
		{name: "v6 skips reserved", host: "nx", n6: 2, within: []string{"", "fd00:1::/120"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := alloc.AutoAssign(ctx, ipam.AutoAssignArgs{
				Num4: c.n4, Num6: c.n6, Hostname: c.host, IntendedUse: c.use, HandleID: "h-" + c.host + c.use,
			})
			if c.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), c.errHas) {
					t.Fatalf("error %v, want %q", err, c.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("AutoAssign: %v", err)
			}
			in := func(a netip.Addr, spec string) bool {
				for _, f := range strings.Fields(spec) {
					if netip.MustParsePrefix(f).Contains(a) {
						return true
					}
				}
				return false
			}
			reserved := "10.1.0.0/25 10.2.0.0/29 fd00:1::1/128"
			for _, p := range r.IPv4 {
				if !in(p.Addr(), c.within[0]) || in(p.Addr(), reserved) {
					t.Errorf("IPv4 %s outside %s or reserved", p, c.within[0])
				}
			}
			for _, p := range r.IPv6 {
				if !in(p.Addr(), c.within[1]) || in(p.Addr(), reserved) {
					t.Errorf("IPv6 %s outside %s or reserved", p, c.within[1])
				}
			}
			if len(r.IPv4) != c.n4 || len(r.IPv6) != c.n6 {
				t.Fatalf("got %d+%d addresses", len(r.IPv4), len(r.IPv6))
			}
		})
	}
	// An explicit disabled pool is refused by name.
	_, err = alloc.AutoAssign(ctx, ipam.AutoAssignArgs{Num4: 1, Hostname: "na", IPv4Pools: []netip.Prefix{netip.MustParsePrefix("10.3.0.0/24")}})
	if d := wantErr[*ipam.PoolDisabledError](t, err); d.Pool != "off" {
		t.Fatalf("disabled pool %q", d.Pool)
	}
}
