package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/ipam"
)

// Expire makes every revision the store has handed out so far unusable
// for a watch (etcd: compact at the current revision), so that a watch
// resuming from one fails with ipam.ErrWatchExpired.
type Expire func(t testing.TB, s ipam.Store)

// RunWatchConformance runs the BlockWatcher suite on the stores newStore
// returns (which must implement ipam.BlockWatcher). expire may be nil for
// a store whose history the test cannot compact (the Kubernetes API).
func RunWatchConformance(t *testing.T, newStore NewStore, expire Expire) {
	tests := []struct {
		name string
		run  func(t *testing.T, s ipam.Store)
	}{
		{"ListBlocksRevision", testListBlocksRevision},
		{"WatchBlocks", testWatchBlocks},
		{"WatchAffinities", testWatchAffinities},
		{"WatchEndsWithContext", testWatchEndsWithContext},
		{"WatchExpired", func(t *testing.T, s ipam.Store) {
			if expire == nil {
				t.Skip("this store's history cannot be compacted from a test")
			}
			testWatchExpired(t, s, expire)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			if _, ok := s.(ipam.BlockWatcher); !ok {
				t.Fatalf("%T does not implement ipam.BlockWatcher", s)
			}
			tc.run(t, s)
		})
	}
}

func watcher(s ipam.Store) ipam.BlockWatcher { return s.(ipam.BlockWatcher) }

// next returns the next event; the guard only stops a hung test.
func next[T any](t *testing.T, ch <-chan ipam.WatchEvent[T], what string) ipam.WatchEvent[T] {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("%s: watch closed", what)
		}
		return ev
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no event", what)
	}
	panic("unreachable")
}

func testListBlocksRevision(t *testing.T, s ipam.Store) {
	c := ctx(t)
	w := watcher(s)
	blocks, rev := ok2(w.ListBlocksRevision(c))(t, "list empty")
	if len(blocks) != 0 || rev == "" {
		t.Fatalf("empty store: %d blocks at revision %q", len(blocks), rev)
	}
	want := []string{"10.96.20.0/26", "10.96.21.0/26", "fd00:96:20::/122"}
	for _, cidr := range want {
		ok(s.CreateBlock(c, fullBlock(t, cidr, "n1")))(t, "create")
	}
	// Handles and affinities live elsewhere: they are not blocks.
	ok(s.CreateHandle(c, &ipam.Handle{ID: "h1", Block: map[string]int{"10.96.20.0/26": 1}}))(t, "create handle")
	ok(s.CreateAffinity(c, &ipam.Affinity{Host: "n1", Type: ipam.AffinityTypeHost, CIDR: prefix(t, "10.96.20.0/26"), State: ipam.StateConfirmed}))(t, "create affinity")
	blocks, rev2 := ok2(w.ListBlocksRevision(c))(t, "list")
	var got []string
	for _, b := range blocks {
		got = append(got, b.CIDR.String())
		if b.Revision == "" {
			t.Errorf("listed block %s has no revision", b.CIDR)
		}
	}
	slices.Sort(got)
	same(t, "listed blocks", got, want)
	if rev2 == rev {
		t.Errorf("list revision did not move after writes (%q)", rev)
	}
	affs, arev := ok2(w.ListAffinitiesRevision(c))(t, "list affinities")
	if len(affs) != 1 || affs[0].Host != "n1" || arev == "" {
		t.Errorf("affinities %+v at %q, want n1's", affs, arev)
	}
}

func testWatchBlocks(t *testing.T, s ipam.Store) {
	c := ctx(t)
	w := watcher(s)
	before := ok(s.CreateBlock(c, fullBlock(t, "10.96.30.0/26", "n1")))(t, "create before")
	_, rev := ok2(w.ListBlocksRevision(c))(t, "list")
	ch := ok(w.WatchBlocks(c, rev))(t, "watch")

	// A handle write is not a block event; the block created next is the
	// first event (nothing before the list revision is replayed).
	ok(s.CreateHandle(c, &ipam.Handle{ID: "h2", Block: map[string]int{"10.96.31.0/26": 1}}))(t, "create handle")
	created := ok(s.CreateBlock(c, fullBlock(t, "10.96.31.0/26", "n2")))(t, "create")
	ev := next(t, ch, "create")
	if ev.Type != datastore.Added || ev.Object.CIDR != created.CIDR || ev.Object.Affinity != "host:n2" || ev.Object.Revision != created.Revision {
		t.Fatalf("after create: %s %v (%q) rev %q, want ADDED 10.96.31.0/26 host:n2 at %q", ev.Type, ev.Object.CIDR, ev.Object.Affinity, ev.Object.Revision, created.Revision)
	}
	same(t, "added block", ev.Object, created)

	upd := *before
	upd.Affinity = "host:n3"
	updated := ok(s.UpdateBlock(c, &upd))(t, "update")
	ev = next(t, ch, "update")
	if ev.Type != datastore.Modified || ev.Object.CIDR != before.CIDR || ev.Object.Affinity != "host:n3" || ev.Revision != updated.Revision {
		t.Fatalf("after update: %s %v (%q) rev %q, want MODIFIED 10.96.30.0/26 host:n3 at %q", ev.Type, ev.Object.CIDR, ev.Object.Affinity, ev.Revision, updated.Revision)
	}

	noErr(t, "delete", s.DeleteBlock(c, updated))
	ev = next(t, ch, "delete")
	if ev.Type != datastore.Deleted || ev.Object.CIDR != before.CIDR {
		t.Fatalf("after delete: %s %v, want DELETED 10.96.30.0/26", ev.Type, ev.Object.CIDR)
	}
	// The Kubernetes store deletes in two steps: both read as deleted.
	for {
		select {
		case ev := <-ch:
			if ev.Type != datastore.Deleted || ev.Object.CIDR != before.CIDR {
				t.Fatalf("extra event after delete: %s %v", ev.Type, ev.Object.CIDR)
			}
			continue
		default:
		}
		break
	}
}

func testWatchAffinities(t *testing.T, s ipam.Store) {
	c := ctx(t)
	w := watcher(s)
	_, rev := ok2(w.ListAffinitiesRevision(c))(t, "list")
	ch := ok(w.WatchAffinities(c, rev))(t, "watch")
	ok(s.CreateBlock(c, fullBlock(t, "10.96.40.0/26", "n1")))(t, "a block is not an affinity")

	host := ok(s.CreateAffinity(c, &ipam.Affinity{Host: "n1", Type: ipam.AffinityTypeHost, CIDR: prefix(t, "10.96.40.0/26"), State: ipam.StatePending}))(t, "create")
	ev := next(t, ch, "create")
	if ev.Type != datastore.Added || ev.Object.Host != "n1" || ev.Object.CIDR != host.CIDR || ev.Object.State != ipam.StatePending {
		t.Fatalf("after create: %s %+v", ev.Type, ev.Object)
	}
	virt := ok(s.CreateAffinity(c, &ipam.Affinity{Host: "lb", Type: ipam.AffinityTypeVirtual, CIDR: prefix(t, "10.96.41.0/26"), State: ipam.StateConfirmed}))(t, "create virtual")
	ev = next(t, ch, "create virtual")
	if ev.Type != datastore.Added || ev.Object.Host != "lb" || ev.Object.Type != ipam.AffinityTypeVirtual {
		t.Fatalf("after creating a virtual affinity: %s %+v", ev.Type, ev.Object)
	}
	confirm := *host
	confirm.State = ipam.StateConfirmed
	confirmed := ok(s.UpdateAffinity(c, &confirm))(t, "confirm")
	ev = next(t, ch, "confirm")
	if ev.Type != datastore.Modified || ev.Object.State != ipam.StateConfirmed || ev.Revision != confirmed.Revision {
		t.Fatalf("after confirm: %s %+v rev %q, want MODIFIED confirmed at %q", ev.Type, ev.Object, ev.Revision, confirmed.Revision)
	}
	noErr(t, "delete", s.DeleteAffinity(c, virt))
	ev = next(t, ch, "delete")
	if ev.Type != datastore.Deleted || ev.Object.Host != "lb" || ev.Object.CIDR != virt.CIDR {
		t.Fatalf("after delete: %s %+v", ev.Type, ev.Object)
	}
}

func testWatchEndsWithContext(t *testing.T, s ipam.Store) {
	w := watcher(s)
	c, cancel := context.WithCancel(ctx(t))
	_, rev := ok2(w.ListBlocksRevision(c))(t, "list")
	ch := ok(w.WatchBlocks(c, rev))(t, "watch")
	cancel()
	for ev := range ch {
		if ev.Type == datastore.Error {
			t.Errorf("cancelled watch reported an error: %v", ev.Err)
		}
	}
}

func testWatchExpired(t *testing.T, s ipam.Store, expire Expire) {
	c := ctx(t)
	w := watcher(s)
	_, rev := ok2(w.ListBlocksRevision(c))(t, "list")
	for _, cidr := range []string{"10.96.50.0/26", "10.96.51.0/26", "10.96.52.0/26"} {
		ok(s.CreateBlock(c, fullBlock(t, cidr, "n1")))(t, "create")
	}
	expire(t, s)
	ch := ok(w.WatchBlocks(c, rev))(t, "watch from a compacted revision")
	for {
		ev := next(t, ch, "expired watch")
		if ev.Type != datastore.Error {
			continue // a store may deliver what it still has first
		}
		if !errors.Is(ev.Err, ipam.ErrWatchExpired) {
			t.Errorf("error %v does not wrap ipam.ErrWatchExpired", ev.Err)
		}
		break
	}
	// A new list gives a revision to resume from, and that watch works.
	blocks, rev2 := ok2(w.ListBlocksRevision(c))(t, "relist")
	if len(blocks) != 3 {
		t.Errorf("relist: %d blocks, want 3", len(blocks))
	}
	ch = ok(w.WatchBlocks(c, rev2))(t, "watch after relist")
	ok(s.CreateBlock(c, fullBlock(t, "10.96.53.0/26", "n1")))(t, "create")
	if ev := next(t, ch, "after relist"); ev.Type != datastore.Added || ev.Object.CIDR != prefix(t, "10.96.53.0/26") {
		t.Errorf("after relist: %s %v, want ADDED 10.96.53.0/26", ev.Type, ev.Object.CIDR)
	}
}

func ok2[T any](v T, rev string, err error) func(t testing.TB, what string) (T, string) {
	return func(t testing.TB, what string) (T, string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v, rev
	}
}
