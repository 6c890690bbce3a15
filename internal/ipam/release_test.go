package ipam_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/ipam"
)

var releaseScenarios = []scenario{
	{"release without the handle object", func(t *testing.T, s ipam.Store) {
		// What an assignment interrupted by a datastore failure used to
		// leave: allocations whose handle object is missing.
		e := newEnv(t, s, pool("p4", "10.0.0.0/24", 26))
		r := e.mustAssign("n1", "h1", 3, 0)
		h, err := s.GetHandle(e.ctx, "h1")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteHandle(e.ctx, h); err != nil {
			t.Fatal(err)
		}
		if err := e.alloc.ReleaseIP(e.ctx, r.IPv4[0].Addr()); err != nil {
			t.Fatalf("release by address without a handle object: %v", err)
		}
		if err := e.alloc.ReleaseByHandle(e.ctx, "h1"); !errors.Is(err, datastore.ErrNotFound) {
			t.Fatalf("ReleaseByHandle (trusts the handle object): %v", err)
		}
		got, err := e.alloc.ReleaseHandleEverywhere(e.ctx, "h1")
		if err != nil || len(got) != 2 || got[0] != r.IPv4[1].Addr() || got[1] != r.IPv4[2].Addr() {
			t.Fatalf("ReleaseHandleEverywhere = %v, %v; want %v", got, err, addrs(r.IPv4[1:]))
		}
		if _, err := e.alloc.ReleaseHandleEverywhere(e.ctx, "h1"); !errors.Is(err, datastore.ErrNotFound) {
			t.Fatalf("second ReleaseHandleEverywhere: %v", err)
		}
		e.check()
	}},
	{"release by handle drops an over-counted handle", func(t *testing.T, s ipam.Store) {
		// An assignment interrupted after the handle write but before the
		// block write leaves the handle counting more than the blocks hold.
		e := newEnv(t, s, pool("p4", "10.0.0.0/24", 26))
		r := e.mustAssign("n1", "h1", 2, 0)
		h, err := s.GetHandle(e.ctx, "h1")
		if err != nil {
			t.Fatal(err)
		}
		h.Block[ipam.BlockFor(r.IPv4[0].Addr(), 26).String()] += 5
		h.Block["10.0.0.192/26"] = 3
		if _, err := s.UpdateHandle(e.ctx, h); err != nil {
			t.Fatal(err)
		}
		if err := e.alloc.ReleaseByHandle(e.ctx, "h1"); err != nil {
			t.Fatalf("ReleaseByHandle: %v", err)
		}
		if _, err := s.GetHandle(e.ctx, "h1"); !errors.Is(err, datastore.ErrNotFound) {
			t.Fatalf("the over-counted handle survived its release: %v", err)
		}
		e.check()
	}},
	{"release by address", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("p4", "10.0.0.0/24", 26))
		r := e.mustAssign("n1", "h1", 2, 0)
		stray := ipam.BlockFor(r.IPv4[0].Addr(), 26).Addr().Next().Next().Next()
		outside := netip.MustParseAddr("192.168.1.1")
		un, err := e.alloc.ReleaseIPs(e.ctx,
			ipam.ReleaseOptions{Address: r.IPv4[0].Addr()},
			ipam.ReleaseOptions{Address: stray},
			ipam.ReleaseOptions{Address: outside})
		if err != nil {
			t.Fatalf("ReleaseIPs: %v", err)
		}
		if len(un) != 2 || un[0] != outside || un[1] != stray {
			t.Fatalf("unallocated %v, want [%s %s]", un, outside, stray)
		}
		blk := ipam.BlockFor(r.IPv4[0].Addr(), 26)
		h, err := s.GetHandle(e.ctx, "h1")
		if err != nil || h.Block[blk.String()] != 1 || len(h.Block) != 1 {
			t.Fatalf("handle after release: %+v, %v", h, err)
		}
		b := e.block(blk.String())
		if o, _ := ipam.OrdinalOf(b, r.IPv4[0].Addr()); o != 0 {
			t.Fatalf("first address has ordinal %d", o)
		}
		if b.Unallocated[len(b.Unallocated)-1] != 0 {
			t.Fatalf("released ordinal 0 not at the back of the free list: %v", b.Unallocated[len(b.Unallocated)-3:])
		}
		if _, _, err := e.alloc.GetAssignmentAttributes(e.ctx, r.IPv4[0].Addr()); !errors.As(err, new(*ipam.NotAssignedError)) {
			t.Fatalf("released address still has attributes: %v", err)
		}
		e.check()
	}},
	{"release by handle", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("p4", "10.0.0.0/24", 26), pool("p6", "fd00::/120", 122))
		e.mustAssign("n1", "h1", 2, 1)
		keep := e.mustAssign("n1", "h2", 1, 0)
		if err := e.alloc.ReleaseByHandle(e.ctx, "h1"); err != nil {
			t.Fatalf("ReleaseByHandle: %v", err)
		}
		if _, err := s.GetHandle(e.ctx, "h1"); !errors.Is(err, datastore.ErrNotFound) {
			t.Fatalf("handle h1 still exists: %v", err)
		}
		got, err := e.alloc.IPsByHandle(e.ctx, "h2")
		if err != nil || len(got) != 1 || got[0] != keep.IPv4[0].Addr() {
			t.Fatalf("h2 lost its address: %v, %v", got, err)
		}
		// Affine blocks stay even when empty.
		blocks, _ := s.ListBlocks(e.ctx)
		if len(blocks) != 2 {
			t.Fatalf("%d blocks, want the 2 affine ones", len(blocks))
		}
		if err := e.alloc.ReleaseByHandle(e.ctx, "nope"); !errors.Is(err, datastore.ErrNotFound) {
			t.Fatalf("unknown handle: %v", err)
		}
		e.check()
	}},
	{"stale sequence number never frees a reused address", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("p4", "10.0.0.0/24", 26))
		r := e.mustAssign("n1", "h1", 1, 0)
		ip := r.IPv4[0].Addr()
		b := e.block(ipam.BlockFor(ip, 26).String())
		o, _ := ipam.OrdinalOf(b, ip)
		oldSeq := b.SequenceNumberForAllocation[ipam.OrdinalKey(o)]
		if _, err := e.alloc.ReleaseIPs(e.ctx, ipam.ReleaseOptions{Address: ip, Handle: "h1", SequenceNumber: &oldSeq}); err != nil {
			t.Fatalf("release with the right sequence number: %v", err)
		}
		if err := e.alloc.AssignIP(e.ctx, ipam.AssignIPArgs{IP: ip, HandleID: "h2", Hostname: "n1"}); err != nil {
			t.Fatalf("reassign: %v", err)
		}
		_, err := e.alloc.ReleaseIPs(e.ctx, ipam.ReleaseOptions{Address: ip, SequenceNumber: &oldSeq})
		sr := wantErr[*ipam.StaleReleaseError](t, err)
		if sr.Requested != oldSeq || sr.Current == oldSeq || !errors.Is(err, datastore.ErrConflict) {
			t.Fatalf("StaleReleaseError %+v", sr)
		}
		_, err = e.alloc.ReleaseIPs(e.ctx, ipam.ReleaseOptions{Address: ip, Handle: "h1"})
		hm := wantErr[*ipam.HandleMismatchError](t, err)
		if hm.Current != "h2" {
			t.Fatalf("HandleMismatchError %+v", hm)
		}
		_, h, err := e.alloc.GetAssignmentAttributes(e.ctx, ip)
		if err != nil || h == nil || *h != "h2" {
			t.Fatalf("address lost by a stale release: %v, %v", h, err)
		}
		e.check()
	}},
	{"empty block without affinity is deleted", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("p4", "10.0.0.0/26", 26))
		e.mustAssign("n1", "h1", 1, 0)
		e.mustAssign("n2", "h2", 1, 0) // borrowed from n1's block
		if err := e.alloc.ReleaseByHandle(e.ctx, "h1"); err != nil {
			t.Fatal(err)
		}
		if err := e.alloc.ReleaseHostAffinities(e.ctx, "n1"); err != nil {
			t.Fatalf("ReleaseHostAffinities: %v", err)
		}
		b := e.block("10.0.0.0/26")
		if b.Affinity != "" || ipam.UsedCount(b) != 1 {
			t.Fatalf("block after affinity release: affinity %q used %d", b.Affinity, ipam.UsedCount(b))
		}
		if err := e.alloc.ReleaseByHandle(e.ctx, "h2"); err != nil {
			t.Fatal(err)
		}
		if e.hasBlock("10.0.0.0/26") {
			t.Fatal("empty block without affinity was kept")
		}
		e.check()
	}},
	{"attributes are compacted", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("p4", "10.0.0.0/24", 26))
		e.mustAssign("n1", "h1", 1, 0)
		e.mustAssign("n1", "h2", 1, 0)
		r3 := e.mustAssign("n1", "h3", 1, 0)
		blk := ipam.BlockFor(r3.IPv4[0].Addr(), 26)
		if err := e.alloc.ReleaseByHandle(e.ctx, "h1"); err != nil {
			t.Fatal(err)
		}
		if err := e.alloc.ReleaseByHandle(e.ctx, "h2"); err != nil {
			t.Fatal(err)
		}
		b := e.block(blk.String())
		if len(b.Attributes) != 1 {
			t.Fatalf("%d attribute entries left, want 1", len(b.Attributes))
		}
		attrs, h, err := e.alloc.GetAssignmentAttributes(e.ctx, r3.IPv4[0].Addr())
		if err != nil || *h != "h3" || attrs[ipam.AttrPod] != "h3" {
			t.Fatalf("attributes of h3: %v %v %v", attrs, h, err)
		}
		e.check()
	}},
}

var affinityScenarios = []scenario{
	{"claim and release affinity", func(t *testing.T, s ipam.Store) {
		e := newEnv(t, s, pool("p4", "10.0.0.0/24", 26))
		if err := e.alloc.ClaimAffinity(e.ctx, netip.MustParsePrefix("10.0.0.0/25"), "n1"); err != nil {
			t.Fatalf("ClaimAffinity: %v", err)
		}
		affs, _ := s.ListAffinities(e.ctx, "n1")
		if len(affs) != 2 {
			t.Fatalf("%d affinities, want 2", len(affs))
		}
		err := e.alloc.ClaimAffinity(e.ctx, netip.MustParsePrefix("10.0.0.64/26"), "n2")
		if !errors.Is(err, datastore.ErrConflict) {
			t.Fatalf("claiming n1's block for n2: %v", err)
		}
		if affs, _ := s.ListAffinities(e.ctx, "n2"); len(affs) != 0 {
			t.Fatalf("losing claim left affinities %v", affs)
		}
		// Claimed blocks are used first.
		r := e.mustAssign("n1", "h1", 1, 0)
		if !netip.MustParsePrefix("10.0.0.0/25").Contains(r.IPv4[0].Addr()) {
			t.Fatalf("allocated %s outside the claimed blocks", r.IPv4[0])
		}
		blk := ipam.BlockFor(r.IPv4[0].Addr(), 26)
		other := netip.MustParsePrefix("10.0.0.0/26")
		if other == blk {
			other = netip.MustParsePrefix("10.0.0.64/26")
		}
		if err := e.alloc.ReleaseAffinity(e.ctx, other, "n1"); err != nil {
			t.Fatalf("ReleaseAffinity: %v", err)
		}
		if e.hasBlock(other.String()) {
			t.Fatal("empty block kept after its affinity was released")
		}
		if err := e.alloc.ReleaseAffinity(e.ctx, other, "n1"); !errors.Is(err, datastore.ErrNotFound) {
			t.Fatalf("releasing twice: %v", err)
		}
		if err := e.alloc.ReleaseHostAffinities(e.ctx, "n1"); err != nil {
			t.Fatal(err)
		}
		if b := e.block(blk.String()); b.Affinity != "" {
			t.Fatalf("non-empty block kept affinity %q", b.Affinity)
		}
		if affs, _ := s.ListAffinities(e.ctx, ""); len(affs) != 0 {
			t.Fatalf("affinities left: %v", affs)
		}
		e.check()
	}},
}
