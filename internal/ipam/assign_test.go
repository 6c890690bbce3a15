package ipam_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/ipam"
)

var assignScenarios = []scenario{
	{"allocate from a new affine block", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("p4", "10.0.0.0/24", 26))
		r := e.mustAssign("n1", "h1", 3, 0)
		blk := ipam.BlockFor(r.IPv4[0].Addr(), 26)
		for _, p := range r.IPv4 {
			if p.Bits() != 26 || !blk.Contains(p.Addr()) {
				t.Fatalf("address %s not in block %s with the block's length", p, blk)
			}
		}
		b := e.block(blk.String())
		if b.Affinity != "host:n1" {
			t.Fatalf("block affinity %q, want host:n1", b.Affinity)
		}
		aff, err := s.GetAffinity(e.ctx, "n1", blk)
		if err != nil || aff.State != ipam.StateConfirmed {
			t.Fatalf("affinity %+v, %v; want confirmed", aff, err)
		}
		// Ordinals are handed out from the front of the free list.
		for i, p := range r.IPv4 {
			if o, _ := ipam.OrdinalOf(b, p.Addr()); o != i {
				t.Fatalf("address %d has ordinal %d", i, o)
			}
		}
		if len(b.Attributes) != 1 || b.Attributes[0].ActiveOwnerAttrs[ipam.AttrNode] != "n1" {
			t.Fatalf("attributes %+v", b.Attributes)
		}
		// A second request reuses the affine block.
		r2 := e.mustAssign("n1", "h2", 2, 0)
		if !blk.Contains(r2.IPv4[0].Addr()) {
			t.Fatalf("second request used %s, not the affine block %s", r2.IPv4[0], blk)
		}
		e.check()
	}},
	{"dual stack", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("p4", "10.0.0.0/24", 26), pool("p6", "fd00::/120", 122))
		r := e.mustAssign("n1", "h1", 1, 2)
		if !r.IPv4[0].Addr().Is4() || !r.IPv6[0].Addr().Is6() || r.IPv6[0].Bits() != 122 {
			t.Fatalf("result %+v", r)
		}
		e.check()
	}},
	{"dual stack half failure is rolled back", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("p4", "10.0.0.0/24", 26), pool("p6", "fd00::/122", 122))
		_, err := e.assign("n1", "h1", 1, 65)
		pf := wantErr[*ipam.PoolFullError](t, err)
		if pf.Family != 6 || pf.Requested != 65 || pf.Free != 64 {
			t.Fatalf("PoolFullError %+v", pf)
		}
		if _, err := s.GetHandle(e.ctx, "h1"); !errors.Is(err, datastore.ErrNotFound) {
			t.Fatalf("handle h1 survived the rollback: %v", err)
		}
		blocks, _ := s.ListBlocks(e.ctx)
		for _, b := range blocks {
			if ipam.UsedCount(b) != 0 {
				t.Fatalf("block %s still holds %d addresses after rollback", b.CIDR, ipam.UsedCount(b))
			}
		}
		e.check()
	}},
	{"borrow from another host's block", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("p4", "10.0.0.0/26", 26))
		e.mustAssign("n1", "h1", 1, 0)
		r := e.mustAssign("n2", "h2", 1, 0)
		b := e.block("10.0.0.0/26")
		if b.Affinity != "host:n1" || ipam.UsedCount(b) != 2 {
			t.Fatalf("block affinity %q used %d; want n1's block holding both", b.Affinity, ipam.UsedCount(b))
		}
		if affs, _ := s.ListAffinities(e.ctx, "n2"); len(affs) != 0 {
			t.Fatalf("n2 got affinities %v by borrowing", affs)
		}
		_, h, err := e.alloc.GetAssignmentAttributes(e.ctx, r.IPv4[0].Addr())
		if err != nil || h == nil || *h != "h2" {
			t.Fatalf("borrowed address handle %v, %v", h, err)
		}
		e.check()
	}},
	{"reserved addresses are never handed out", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("p4", "10.0.0.0/28", 28))
		e.pools.res = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/29"), netip.MustParsePrefix("10.0.0.9/32")}
		r := e.mustAssign("n1", "h1", 7, 0)
		for _, a := range addrs(r.IPv4) {
			for _, res := range e.pools.res {
				if res.Contains(a) {
					t.Fatalf("reserved address %s handed out", a)
				}
			}
		}
		_, err := e.assign("n1", "h2", 1, 0)
		wantErr[*ipam.PoolFullError](t, err)
		e.check()
	}},
	{"fully reserved blocks are never claimed", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("p4", "10.0.0.0/25", 26))
		e.pools.res = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/26")}
		for i := range 3 {
			r := e.mustAssign("n"+string(rune('a'+i)), "h", 1, 0)
			if r.IPv4[0].Addr().Compare(netip.MustParseAddr("10.0.0.64")) < 0 {
				t.Fatalf("allocated %s from the fully reserved block", r.IPv4[0])
			}
		}
		if e.hasBlock("10.0.0.0/26") {
			t.Fatal("fully reserved block was created")
		}
	}},
	{"strict affinity forbids borrowing", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("p4", "10.0.0.0/26", 26))
		e.setConfig(func(c *ipam.Config) { c.StrictAffinity = true })
		e.mustAssign("n1", "h1", 1, 0)
		_, err := e.assign("n2", "h2", 1, 0)
		sa := wantErr[*ipam.StrictAffinityError](t, err)
		if sa.Host != "n2" || sa.Free != 63 {
			t.Fatalf("StrictAffinityError %+v", sa)
		}
		e.check()
	}},
	{"max blocks per host", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("p4", "10.0.0.0/24", 30))
		_, err := e.alloc.AutoAssign(e.ctx, ipam.AutoAssignArgs{Num4: 9, HandleID: "h", Hostname: "n1", MaxBlocksPerHost: 2})
		mb := wantErr[*ipam.MaxBlocksError](t, err)
		if mb.Blocks != 0 || mb.Max != 2 || mb.Requested != 9 || mb.Available != 8 ||
			!strings.Contains(err.Error(), "requested 9 address(es), only 8 available") {
			t.Fatalf("MaxBlocksError %+v: %v", mb, err)
		}
		// Refused before anything was claimed.
		if blocks, _ := s.ListBlocks(e.ctx); len(blocks) != 0 {
			t.Fatalf("an impossible request claimed %d blocks", len(blocks))
		}
		// Once the host holds blocks, the cap counts them.
		e.mustAssign("n1", "h", 5, 0)
		_, err = e.alloc.AutoAssign(e.ctx, ipam.AutoAssignArgs{Num4: 4, HandleID: "h2", Hostname: "n1", MaxBlocksPerHost: 2})
		mb = wantErr[*ipam.MaxBlocksError](t, err)
		if mb.Blocks != 2 || mb.Available != 3 {
			t.Fatalf("MaxBlocksError %+v: %v", mb, err)
		}
		// The global cap applies too, and the smaller one wins.
		e.setConfig(func(c *ipam.Config) { c.MaxBlocksPerHost = 1; c.StrictAffinity = true })
		_, err = e.alloc.AutoAssign(e.ctx, ipam.AutoAssignArgs{Num4: 9, HandleID: "h3", Hostname: "n2", MaxBlocksPerHost: 3})
		mb = wantErr[*ipam.MaxBlocksError](t, err)
		if mb.Max != 1 || mb.Blocks != 0 || mb.Available != 4 {
			t.Fatalf("MaxBlocksError %+v, want 0 blocks of max 1, 4 available", mb)
		}
		e.mustAssign("n2", "h3", 4, 0)
		e.check()
	}},
	{"an impossible request fails at once and writes nothing", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("p4", "10.0.0.0/16", 26))
		e.mustAssign("n2", "other", 1, 0)
		before, _ := s.ListBlocks(e.ctx)
		_, err := e.assign("n1", "h1", 100000000, 0)
		mb := wantErr[*ipam.MaxBlocksError](t, err)
		// 20 new blocks of 64, plus the 63 free addresses of n2's block.
		if mb.Requested != 100000000 || mb.Available != 20*64+63 || mb.Max != ipam.DefaultMaxBlocksPerHost {
			t.Fatalf("MaxBlocksError %+v: %v", mb, err)
		}
		after, _ := s.ListBlocks(e.ctx)
		if len(after) != len(before) {
			t.Fatalf("blocks %d before, %d after the refused request", len(before), len(after))
		}
		if affs, _ := s.ListAffinities(e.ctx, "n1"); len(affs) != 0 {
			t.Fatalf("the refused request left %d affinities", len(affs))
		}
		if _, err := s.GetHandle(e.ctx, "h1"); !errors.Is(err, datastore.ErrNotFound) {
			t.Fatalf("the refused request wrote handle h1: %v", err)
		}
		// Exactly what is available can be had.
		r := e.mustAssign("n1", "h1", 20*64+63, 0)
		if len(r.IPv4) != 20*64+63 {
			t.Fatalf("got %d addresses", len(r.IPv4))
		}
		e.check()
	}},
	{"no new blocks without autoAllocateBlocks", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("p4", "10.0.0.0/24", 26))
		e.setConfig(func(c *ipam.Config) { c.AutoAllocateBlocks = false })
		_, err := e.assign("n1", "h1", 1, 0)
		wantErr[*ipam.PoolFullError](t, err)
		if blocks, _ := s.ListBlocks(e.ctx); len(blocks) != 0 {
			t.Fatalf("blocks created: %d", len(blocks))
		}
	}},
	{"explicit pools", func(t *testing.T, s ipam.Store) {
		off := pool("off", "10.2.0.0/24", 26)
		off.Disabled = true
		manual := pool("manual", "10.3.0.0/24", 26)
		manual.AssignmentMode = ipam.ModeManual
		e := newEnv(t, s, pool("a", "10.0.0.0/24", 26), pool("b", "10.1.0.0/24", 26), off, manual)
		for _, tc := range []struct {
			pool    string
			wantErr any
		}{
			{"10.1.0.0/24", nil},
			{"10.3.0.0/24", nil}, // manual pools are used when asked for
			{"10.9.0.0/24", &ipam.PoolNotFoundError{}},
			{"10.2.0.0/24", &ipam.PoolDisabledError{}},
		} {
			p := netip.MustParsePrefix(tc.pool)
			r, err := e.alloc.AutoAssign(e.ctx, ipam.AutoAssignArgs{Num4: 1, Hostname: "n1", IPv4Pools: []netip.Prefix{p}})
			switch want := tc.wantErr.(type) {
			case nil:
				if err != nil || !p.Contains(r.IPv4[0].Addr()) {
					t.Fatalf("pool %s: %v, %v", p, r, err)
				}
			case *ipam.PoolNotFoundError:
				wantErr[*ipam.PoolNotFoundError](t, err)
			case *ipam.PoolDisabledError:
				if d := wantErr[*ipam.PoolDisabledError](t, err); d.Pool != "off" {
					t.Fatalf("disabled pool named %q", d.Pool)
				}
			default:
				t.Fatalf("bad case %T", want)
			}
		}
	}},
	{"disabled and manual pools are skipped", func(t *testing.T, s ipam.Store) {
		off := pool("off", "10.0.0.0/24", 26)
		off.Disabled = true
		manual := pool("manual", "10.3.0.0/24", 26)
		manual.AssignmentMode = ipam.ModeManual
		e := newEnv(t, s, off, manual)
		_, err := e.assign("n1", "h1", 1, 0)
		nm := wantErr[*ipam.NoMatchingPoolError](t, err)
		if len(nm.Pools) != 2 || !strings.Contains(err.Error(), "disabled") || !strings.Contains(err.Error(), "manual") {
			t.Fatalf("NoMatchingPoolError %+v: %v", nm, err)
		}
		e.pools.pools = append(e.pools.pools, pool("on", "10.1.0.0/24", 26))
		r := e.mustAssign("n1", "h1", 1, 0)
		if !netip.MustParsePrefix("10.1.0.0/24").Contains(r.IPv4[0].Addr()) {
			t.Fatalf("allocated %s outside the enabled pool", r.IPv4[0])
		}
	}},
	{"node selector", func(t *testing.T, s ipam.Store) {
		p := pool("zone-a", "10.0.0.0/24", 26)
		p.NodeSelector = `zone == "a"`
		e := newEnv(t, s, p)
		e.labels["n1"] = map[string]string{"zone": "b"}
		_, err := e.assign("n1", "h1", 1, 0)
		nm := wantErr[*ipam.NoMatchingPoolError](t, err)
		if nm.Node != "n1" || !strings.Contains(err.Error(), "zone-a") {
			t.Fatalf("NoMatchingPoolError %+v: %v", nm, err)
		}
		e.labels["n1"] = map[string]string{"zone": "a"}
		e.mustAssign("n1", "h1", 1, 0)
	}},
	{"allowed uses", func(t *testing.T, s ipam.Store) {
		p := pool("tunnels", "10.0.0.0/24", 26)
		p.AllowedUses = []string{ipam.UseTunnel}
		e := newEnv(t, s, p)
		_, err := e.assign("n1", "h1", 1, 0)
		wantErr[*ipam.NoMatchingPoolError](t, err)
		_, err = e.alloc.AutoAssign(e.ctx, ipam.AutoAssignArgs{Num4: 1, Hostname: "n1", IntendedUse: ipam.UseTunnel, HandleID: "ipip-tunnel-addr-n1"})
		if err != nil {
			t.Fatalf("tunnel request: %v", err)
		}
		err = e.alloc.AssignIP(e.ctx, ipam.AssignIPArgs{IP: netip.MustParseAddr("10.0.0.200"), Hostname: "n1"})
		wantErr[*ipam.PoolUseError](t, err)
	}},
	{"assign a specific address", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("p4", "10.0.0.0/24", 26))
		ip := netip.MustParseAddr("10.0.0.77")
		if err := e.alloc.AssignIP(e.ctx, ipam.AssignIPArgs{IP: ip, HandleID: "h1", Hostname: "n1"}); err != nil {
			t.Fatalf("AssignIP: %v", err)
		}
		if b := e.block("10.0.0.64/26"); b.Affinity != "host:n1" {
			t.Fatalf("block not claimed for n1: %q", b.Affinity)
		}
		err := e.alloc.AssignIP(e.ctx, ipam.AssignIPArgs{IP: ip, HandleID: "h2", Hostname: "n2"})
		aa := wantErr[*ipam.AlreadyAssignedError](t, err)
		if aa.Handle != "h1" || !errors.Is(err, datastore.ErrExists) {
			t.Fatalf("AlreadyAssignedError %+v", aa)
		}
		err = e.alloc.AssignIP(e.ctx, ipam.AssignIPArgs{IP: netip.MustParseAddr("192.168.0.1"), Hostname: "n1"})
		wantErr[*ipam.NotInPoolError](t, err)
		got, err := e.alloc.IPsByHandle(e.ctx, "h1")
		if err != nil || len(got) != 1 || got[0] != ip {
			t.Fatalf("IPsByHandle: %v, %v", got, err)
		}
		e.check()
	}},
	{"pool exhaustion names the free count", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("small", "10.0.0.0/30", 30))
		_, err := e.assign("n1", "h1", 5, 0)
		pf := wantErr[*ipam.PoolFullError](t, err)
		if pf.Free != 4 || !strings.Contains(err.Error(), "only 4 free") || !strings.Contains(err.Error(), "small (10.0.0.0/30)") {
			t.Fatalf("PoolFullError %+v: %v", pf, err)
		}
		e.mustAssign("n1", "h1", 4, 0)
		e.check()
	}},
	{"bad arguments", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("p4", "10.0.0.0/24", 26))
		_, err := e.alloc.AutoAssign(e.ctx, ipam.AutoAssignArgs{Num4: 1})
		if !errors.Is(err, ipam.ErrInvalidArgument) {
			t.Fatalf("missing hostname: %v", err)
		}
		_, err = e.assign("n1", "h", -1, 0)
		if !errors.Is(err, ipam.ErrInvalidArgument) {
			t.Fatalf("negative count: %v", err)
		}
	}},
}
