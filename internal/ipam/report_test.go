package ipam_test

import (
	"errors"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/ipam"
)

func mustAssignIP(e *env, ip, handle, host string, attrs map[string]string) {
	e.t.Helper()
	err := e.alloc.AssignIP(e.ctx, ipam.AssignIPArgs{IP: netip.MustParseAddr(ip), HandleID: handle, Hostname: host, Attrs: attrs})
	if err != nil {
		e.t.Fatalf("AssignIP(%s): %v", ip, err)
	}
}

var reportScenarios = []scenario{
	{"usage per pool and block", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("p4", "10.0.0.0/24", 26), pool("p6", "fd00::/64", 122))
		e.pools.res = []netip.Prefix{
			netip.MustParsePrefix("10.0.0.0/26"),
			netip.MustParsePrefix("10.0.0.130/32"),
			netip.MustParsePrefix("10.0.0.131/32"),
			netip.MustParsePrefix("10.0.0.0/27"), // nested in the first: counted once
		}
		mustAssignIP(e, "10.0.0.65", "h1", "n1", nil)
		mustAssignIP(e, "10.0.0.130", "h2", "n2", nil) // a reserved address, assigned explicitly
		if _, err := s.CreateBlock(e.ctx, ipam.NewBlock(netip.MustParsePrefix("10.9.0.0/26"), "host:n3", time.Now())); err != nil {
			t.Fatal(err)
		}
		rep, err := ipam.Usage(e.ctx, s, e.pools)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Pools) != 2 {
			t.Fatalf("%d pools", len(rep.Pools))
		}
		p4, p6 := rep.Pools[0], rep.Pools[1]
		for _, c := range []struct {
			name      string
			got, want float64
		}{
			{"p4 capacity", p4.Capacity, 256},
			{"p4 in use", p4.InUse, 2},
			{"p4 reserved", p4.Reserved, 65},
			{"p4 free", p4.Free, 189},
			{"p4 blocks total", p4.BlocksTotal, 4},
			{"p4 blocks free", p4.BlocksFree, 1},
			{"p6 capacity", p6.Capacity, math.Exp2(64)},
			{"p6 blocks free", p6.BlocksFree, math.Exp2(58)},
			{"p6 in use", p6.InUse, 0},
		} {
			if c.got != c.want {
				t.Errorf("%s = %g, want %g", c.name, c.got, c.want)
			}
		}
		want := []ipam.BlockUsage{
			{CIDR: netip.MustParsePrefix("10.0.0.64/26"), Affinity: "host:n1", Host: "n1", Capacity: 64, InUse: 1, Free: 63},
			{CIDR: netip.MustParsePrefix("10.0.0.128/26"), Affinity: "host:n2", Host: "n2", Capacity: 64, InUse: 1, Reserved: 1, Free: 62},
		}
		if len(p4.Blocks) != len(want) {
			t.Fatalf("p4 blocks %+v", p4.Blocks)
		}
		for i := range want {
			if p4.Blocks[i] != want[i] {
				t.Errorf("block %d = %+v, want %+v", i, p4.Blocks[i], want[i])
			}
		}
		if len(rep.Outside) != 1 || rep.Outside[0].CIDR.String() != "10.9.0.0/26" || rep.Outside[0].Free != 64 {
			t.Fatalf("outside blocks %+v", rep.Outside)
		}
	}},
	{"lookup an address", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("p4", "10.0.0.0/24", 26))
		e.pools.res = []netip.Prefix{netip.MustParsePrefix("10.0.0.66/32")}
		mustAssignIP(e, "10.0.0.65", "h1", "n1", map[string]string{ipam.AttrNode: "n1", ipam.AttrPod: "web"})
		// Give the allocation an alternate owner, as a KubeVirt migration does.
		b := e.block("10.0.0.64/26")
		b.Attributes[0].AlternateOwnerAttrs = map[string]string{"vmi-name": "vm1"}
		if _, err := s.UpdateBlock(e.ctx, b); err != nil {
			t.Fatal(err)
		}
		b = e.block("10.0.0.64/26")
		for _, c := range []struct {
			ip                  string
			allocated, reserved bool
			block, pool         string
		}{
			{"10.0.0.65", true, false, "10.0.0.64/26", "p4"},
			{"10.0.0.66", false, true, "10.0.0.64/26", "p4"},
			{"10.0.0.1", false, false, "", "p4"},
			{"192.168.1.1", false, false, "", ""},
		} {
			info, err := e.alloc.Lookup(e.ctx, netip.MustParseAddr(c.ip))
			if err != nil {
				t.Fatalf("Lookup(%s): %v", c.ip, err)
			}
			gotBlock, gotPool := "", ""
			if info.Block.IsValid() {
				gotBlock = info.Block.String()
			}
			if info.Pool != nil {
				gotPool = info.Pool.Name
			}
			if info.Allocated != c.allocated || info.Reserved != c.reserved || gotBlock != c.block || gotPool != c.pool {
				t.Errorf("Lookup(%s) = %+v", c.ip, info)
			}
			if !c.allocated {
				continue
			}
			if info.Handle == nil || *info.Handle != "h1" || info.BlockAffinity != "host:n1" ||
				info.Attrs.ActiveOwnerAttrs[ipam.AttrPod] != "web" || info.Attrs.AlternateOwnerAttrs["vmi-name"] != "vm1" {
				t.Errorf("Lookup(%s) = %+v, attrs %+v", c.ip, info, info.Attrs)
			}
			if info.SequenceNumber != b.SequenceNumberForAllocation["1"] {
				t.Errorf("sequence number %d, block says %d", info.SequenceNumber, b.SequenceNumberForAllocation["1"])
			}
		}
	}},
	{"release by sequence number from a lookup", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("p4", "10.0.0.0/24", 26))
		ip := netip.MustParseAddr("10.0.0.65")
		mustAssignIP(e, ip.String(), "h1", "n1", nil)
		old, err := e.alloc.Lookup(e.ctx, ip)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.alloc.ReleaseIP(e.ctx, ip); err != nil {
			t.Fatalf("ReleaseIP: %v", err)
		}
		err = e.alloc.ReleaseIP(e.ctx, ip)
		if nae := wantErr[*ipam.NotAssignedError](t, err); nae.IP != ip || !errors.Is(err, datastore.ErrNotFound) {
			t.Fatalf("second release: %v", err)
		}
		mustAssignIP(e, ip.String(), "h1", "n1", nil) // same handle, new allocation
		_, err = e.alloc.ReleaseIPs(e.ctx, ipam.ReleaseOptions{Address: ip, Handle: *old.Handle, SequenceNumber: &old.SequenceNumber})
		wantErr[*ipam.StaleReleaseError](t, err)
		if info, _ := e.alloc.Lookup(e.ctx, ip); !info.Allocated {
			t.Fatal("stale release freed the new allocation")
		}
		e.check()
	}},
	{"borrowed addresses", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("p4", "10.0.0.0/26", 26))
		mustAssignIP(e, "10.0.0.1", "h1", "n1", map[string]string{ipam.AttrNode: "n1", ipam.AttrNamespace: "ns", ipam.AttrPod: "own"})
		mustAssignIP(e, "10.0.0.2", "h2", "n2", map[string]string{ipam.AttrNode: "n2", ipam.AttrNamespace: "ns", ipam.AttrPod: "web"})
		mustAssignIP(e, "10.0.0.3", "t3", "n3", map[string]string{ipam.AttrNode: "n3", ipam.AttrType: ipam.TypeVXLANTunnel})
		mustAssignIP(e, "10.0.0.4", "h4", "n4", nil)
		rep, err := e.alloc.Borrowed(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []ipam.BorrowedIP{
			{IP: netip.MustParseAddr("10.0.0.2"), BorrowingNode: "n2", Type: "pod", AllocatedTo: "ns/web"},
			{IP: netip.MustParseAddr("10.0.0.3"), BorrowingNode: "n3", Type: ipam.TypeVXLANTunnel},
		}
		if rep.Unknown != 1 || len(rep.IPs) != len(want) {
			t.Fatalf("borrowed %+v", rep)
		}
		for i, w := range want {
			g := rep.IPs[i]
			if g.IP != w.IP || g.BorrowingNode != w.BorrowingNode || g.Type != w.Type || g.AllocatedTo != w.AllocatedTo ||
				g.BlockOwner != "n1" || g.Block.String() != "10.0.0.0/26" || g.Handle == nil {
				t.Errorf("entry %d = %+v, want %+v", i, g, w)
			}
		}
	}},
}
