// Package storetest is the conformance suite every ipam.Store runs: the
// same test bodies against the in-memory store, etcd and the Kubernetes API,
// so the allocator can rely on one behaviour (revisions, compare-and-swap,
// the datastore's error sentinels) whatever stores its objects.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/ipam"
)

// NewStore returns an empty store for one subtest; it is called once per
// subtest and the subtests run one after another.
type NewStore func(t testing.TB) ipam.Store

// RunStoreConformance runs the suite on the stores newStore returns.
func RunStoreConformance(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, s ipam.Store)
	}{
		{"BlockCRUD", testBlockCRUD},
		{"BlockCAS", testBlockCAS},
		{"BlockNotFound", testBlockNotFound},
		{"ListBlocks", testListBlocks},
		{"AffinityCRUD", testAffinityCRUD},
		{"ListAffinities", testListAffinities},
		{"HandleCRUD", testHandleCRUD},
		{"ListHandles", testListHandles},
		{"Config", testConfig},
		{"InvalidArguments", testInvalidArguments},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// Fixtures.

var claimTime = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

func prefix(t testing.TB, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

// fullBlock is a block with every field set: two allocations sharing one
// attribute, a released one with alternate owner attributes.
func fullBlock(t testing.TB, cidr, host string) *ipam.Block {
	t.Helper()
	b := ipam.NewBlock(prefix(t, cidr), "host:"+host, claimTime)
	released := claimTime.Add(time.Minute)
	b.Allocations[0], b.Allocations[2], b.Allocations[3] = ptr(0), ptr(0), ptr(1)
	b.Unallocated = slices.DeleteFunc(b.Unallocated, func(o int) bool { return o == 0 || o == 2 || o == 3 })
	b.Attributes = []ipam.AllocationAttribute{
		{HandleID: ptr("k8s-pod-network.4d1e"), ActiveOwnerAttrs: map[string]string{
			ipam.AttrNamespace: "prod", ipam.AttrNode: host, ipam.AttrPod: "web-7f9c", ipam.AttrTimestamp: "2024-05-01 10:00:00"}},
		{HandleID: ptr("vxlan-tunnel-addr-" + host), ActiveOwnerAttrs: map[string]string{ipam.AttrNode: host, ipam.AttrType: ipam.TypeVXLANTunnel},
			AlternateOwnerAttrs: map[string]string{ipam.AttrPod: "old"}, ReleasedAt: &released},
	}
	b.SequenceNumberForAllocation = map[string]uint64{"0": b.SequenceNumber, "2": b.SequenceNumber + 1, "3": b.SequenceNumber + 1}
	b.SequenceNumber += 2
	return b
}

// canon renders a stored object without its revision, with nil and empty
// collections alike, for comparisons across stores.
func canon(t testing.TB, v any) string {
	t.Helper()
	var data []byte
	var err error
	switch o := v.(type) {
	case *ipam.Block:
		c := *o
		c.Revision = ""
		data, err = ipam.EncodeBlock(&c)
	case *ipam.Affinity:
		c := *o
		c.Revision = ""
		data, err = json.Marshal(c)
	case *ipam.Handle:
		c := *o
		c.Revision = ""
		if len(c.Block) == 0 {
			c.Block = nil
		}
		data, err = json.Marshal(c)
	case *ipam.Config:
		c := *o
		c.Revision = ""
		data, err = json.Marshal(c)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Stores may hand back an empty list or map as null.
	return strings.NewReplacer("null", "[]", "{}", "[]").Replace(string(data))
}

func same(t testing.TB, what string, got, want any) {
	t.Helper()
	if g, w := canon(t, got), canon(t, want); g != w {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func wantErr(t testing.TB, what string, err, sentinel error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Errorf("%s: error %v, want %v", what, err, sentinel)
	}
}

// ok fails the test on err, else returns v: ok(s.GetBlock(ctx, cidr))(t, "get").
func ok[T any](v T, err error) func(t testing.TB, what string) T {
	return func(t testing.TB, what string) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func noErr(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Blocks.

func testBlockCRUD(t *testing.T, s ipam.Store) {
	c := ctx(t)
	for _, cidr := range []string{"10.96.0.0/26", "fd00:96::/122"} {
		b := fullBlock(t, cidr, "n1")
		created := ok(s.CreateBlock(c, b))(t, "create")
		if created.Revision == "" {
			t.Errorf("%s: create returned no revision", cidr)
		}
		same(t, cidr+" created", created, b)
		got := ok(s.GetBlock(c, b.CIDR))(t, "get")
		same(t, cidr+" read", got, b)
		if got.Revision != created.Revision {
			t.Errorf("%s: read revision %q, create returned %q", cidr, got.Revision, created.Revision)
		}

		_, err := s.CreateBlock(c, b)
		wantErr(t, cidr+" second create", err, datastore.ErrExists)

		got.Allocations[1] = ptr(0)
		got.Unallocated = got.Unallocated[1:]
		got.SequenceNumber++
		updated := ok(s.UpdateBlock(c, got))(t, "update")
		if updated.Revision == "" || updated.Revision == got.Revision {
			t.Errorf("%s: update revision %q, was %q", cidr, updated.Revision, got.Revision)
		}
		same(t, cidr+" updated", ok(s.GetBlock(c, b.CIDR))(t, "get"), got)

		noErr(t, "delete", s.DeleteBlock(c, updated))
		_, err = s.GetBlock(c, b.CIDR)
		wantErr(t, cidr+" get after delete", err, datastore.ErrNotFound)
		// The name is free again.
		b.Revision = ""
		ok(s.CreateBlock(c, b))(t, "re-create")
	}
}

func testBlockCAS(t *testing.T, s ipam.Store) {
	c := ctx(t)
	b := ok(s.CreateBlock(c, ipam.NewBlock(prefix(t, "10.96.1.0/26"), "", claimTime)))(t, "create")
	first := *b
	first.Affinity = "host:a"
	won := ok(s.UpdateBlock(c, &first))(t, "first update")

	stale := *b
	stale.Affinity = "host:b"
	_, err := s.UpdateBlock(c, &stale)
	wantErr(t, "update at a stale revision", err, datastore.ErrConflict)
	err = s.DeleteBlock(c, &stale)
	wantErr(t, "delete at a stale revision", err, datastore.ErrConflict)

	got := ok(s.GetBlock(c, b.CIDR))(t, "get")
	if got.Affinity != "host:a" || got.Revision != won.Revision {
		t.Errorf("after lost races: affinity %q revision %q, want host:a %q", got.Affinity, got.Revision, won.Revision)
	}
	// An update without a revision needs the block to exist, and succeeds.
	noRev := *got
	noRev.Revision = ""
	noRev.Affinity = "host:c"
	ok(s.UpdateBlock(c, &noRev))(t, "update without revision")
	if got := ok(s.GetBlock(c, b.CIDR))(t, "get"); got.Affinity != "host:c" {
		t.Errorf("update without revision not applied: affinity %q", got.Affinity)
	}
}

func testBlockNotFound(t *testing.T, s ipam.Store) {
	c := ctx(t)
	missing := ipam.NewBlock(prefix(t, "10.96.2.0/26"), "", claimTime)
	_, err := s.GetBlock(c, missing.CIDR)
	wantErr(t, "get", err, datastore.ErrNotFound)
	_, err = s.UpdateBlock(c, missing)
	wantErr(t, "update without revision", err, datastore.ErrNotFound)
	err = s.DeleteBlock(c, missing)
	wantErr(t, "delete", err, datastore.ErrNotFound)

	// A revision read before a delete is not enough to resurrect the block.
	b := ok(s.CreateBlock(c, missing))(t, "create")
	noErr(t, "delete", s.DeleteBlock(c, b))
	_, err = s.UpdateBlock(c, b)
	if !errors.Is(err, datastore.ErrNotFound) && !errors.Is(err, datastore.ErrConflict) {
		t.Errorf("update of a deleted block: error %v, want not found or conflict", err)
	}
	if _, err := s.GetBlock(c, b.CIDR); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("deleted block came back: %v", err)
	}
}

func testListBlocks(t *testing.T, s ipam.Store) {
	c := ctx(t)
	if got := ok(s.ListBlocks(c))(t, "list empty"); len(got) != 0 {
		t.Fatalf("new store lists %d blocks", len(got))
	}
	want := map[string]*ipam.Block{}
	for _, cidr := range []string{"10.96.3.0/26", "10.96.3.64/26", "10.96.4.0/24", "fd00:96:1::/122"} {
		b := ok(s.CreateBlock(c, fullBlock(t, cidr, "n1")))(t, "create")
		want[b.CIDR.String()] = b
	}
	deleted := ok(s.CreateBlock(c, fullBlock(t, "10.96.5.0/26", "n2")))(t, "create")
	noErr(t, "delete", s.DeleteBlock(c, deleted))

	got := ok(s.ListBlocks(c))(t, "list")
	if len(got) != len(want) {
		t.Errorf("listed %d blocks, want %d", len(got), len(want))
	}
	for _, b := range got {
		w, ok := want[b.CIDR.String()]
		if !ok {
			t.Errorf("unexpected block %s", b.CIDR)
			continue
		}
		same(t, "listed "+b.CIDR.String(), b, w)
		if b.Revision != w.Revision {
			t.Errorf("listed %s at revision %q, created at %q", b.CIDR, b.Revision, w.Revision)
		}
	}
}

// Affinities.

func testAffinityCRUD(t *testing.T, s ipam.Store) {
	c := ctx(t)
	cidr := prefix(t, "10.96.6.0/26")
	a := &ipam.Affinity{Host: "node-a", Type: ipam.AffinityTypeHost, CIDR: cidr, State: ipam.StatePending}
	created := ok(s.CreateAffinity(c, a))(t, "create")
	same(t, "created", created, a)
	_, err := s.CreateAffinity(c, a)
	wantErr(t, "second create", err, datastore.ErrExists)

	got := ok(s.GetAffinity(c, "node-a", cidr))(t, "get")
	same(t, "read", got, a)
	if got.Revision != created.Revision {
		t.Errorf("read revision %q, created %q", got.Revision, created.Revision)
	}
	_, err = s.GetAffinity(c, "node-b", cidr)
	wantErr(t, "get another host's", err, datastore.ErrNotFound)

	confirm := *got
	confirm.State = ipam.StateConfirmed
	confirmed := ok(s.UpdateAffinity(c, &confirm))(t, "confirm")
	if confirmed.State != ipam.StateConfirmed || confirmed.Revision == got.Revision {
		t.Errorf("confirmed: state %q revision %q (was %q)", confirmed.State, confirmed.Revision, got.Revision)
	}
	stale := *got
	stale.State = ipam.StatePendingDeletion
	_, err = s.UpdateAffinity(c, &stale)
	wantErr(t, "update at a stale revision", err, datastore.ErrConflict)
	wantErr(t, "delete at a stale revision", s.DeleteAffinity(c, &stale), datastore.ErrConflict)

	noErr(t, "delete", s.DeleteAffinity(c, confirmed))
	_, err = s.GetAffinity(c, "node-a", cidr)
	wantErr(t, "get after delete", err, datastore.ErrNotFound)
	wantErr(t, "delete again", s.DeleteAffinity(c, confirmed), datastore.ErrNotFound)
	missing := &ipam.Affinity{Host: "node-a", CIDR: cidr, State: ipam.StateConfirmed}
	_, err = s.UpdateAffinity(c, missing)
	wantErr(t, "update missing", err, datastore.ErrNotFound)

	// A virtual owner is found by GetAffinity too; an empty state reads as confirmed.
	v := &ipam.Affinity{Host: "load-balancer", Type: ipam.AffinityTypeVirtual, CIDR: prefix(t, "fd00:96:6::/122")}
	ok(s.CreateAffinity(c, v))(t, "create virtual")
	gotV := ok(s.GetAffinity(c, "load-balancer", v.CIDR))(t, "get virtual")
	if gotV.Type != ipam.AffinityTypeVirtual || gotV.State != ipam.StateConfirmed {
		t.Errorf("virtual affinity read as type %q state %q", gotV.Type, gotV.State)
	}
}

func testListAffinities(t *testing.T, s ipam.Store) {
	c := ctx(t)
	if got := ok(s.ListAffinities(c, ""))(t, "list empty"); len(got) != 0 {
		t.Fatalf("new store lists %d affinities", len(got))
	}
	type owner struct{ host, typ string }
	data := []struct {
		owner
		cidr string
	}{
		{owner{"node-a", ipam.AffinityTypeHost}, "10.96.7.0/26"},
		{owner{"node-a", ipam.AffinityTypeHost}, "10.96.7.64/26"},
		{owner{"node-a", ipam.AffinityTypeHost}, "fd00:96:7::/122"},
		{owner{"node-ab", ipam.AffinityTypeHost}, "10.96.7.128/26"},
		{owner{"node", ipam.AffinityTypeHost}, "10.96.7.192/26"},
		{owner{"load-balancer", ipam.AffinityTypeVirtual}, "10.96.8.0/26"},
	}
	for _, d := range data {
		ok(s.CreateAffinity(c, &ipam.Affinity{Host: d.host, Type: d.typ, CIDR: prefix(t, d.cidr), State: ipam.StateConfirmed}))(t, "create")
	}
	gone := ok(s.CreateAffinity(c, &ipam.Affinity{Host: "node-a", CIDR: prefix(t, "10.96.9.0/26"), State: ipam.StateConfirmed}))(t, "create")
	noErr(t, "delete", s.DeleteAffinity(c, gone))

	tests := []struct {
		host string
		want []string
	}{
		{"node-a", []string{"10.96.7.0/26", "10.96.7.64/26", "fd00:96:7::/122"}},
		{"node", []string{"10.96.7.192/26"}},
		{"node-ab", []string{"10.96.7.128/26"}},
		{"load-balancer", []string{"10.96.8.0/26"}},
		{"absent", nil},
		{"", []string{"10.96.7.0/26", "10.96.7.64/26", "fd00:96:7::/122", "10.96.7.128/26", "10.96.7.192/26", "10.96.8.0/26"}},
	}
	for _, tc := range tests {
		got := ok(s.ListAffinities(c, tc.host))(t, "list "+tc.host)
		var cidrs []string
		for _, a := range got {
			if tc.host != "" && a.Host != tc.host {
				t.Errorf("list %q returned %s's affinity", tc.host, a.Host)
			}
			if a.Revision == "" {
				t.Errorf("list %q: %s has no revision", tc.host, a.CIDR)
			}
			cidrs = append(cidrs, a.CIDR.String())
		}
		slices.Sort(cidrs)
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if !slices.Equal(cidrs, want) {
			t.Errorf("list %q = %v, want %v", tc.host, cidrs, want)
		}
	}
}

// Handles.

func testHandleCRUD(t *testing.T, s ipam.Store) {
	c := ctx(t)
	h := &ipam.Handle{ID: "k8s-pod-network.4d1eAbC", Block: map[string]int{"10.96.10.0/26": 2}}
	created := ok(s.CreateHandle(c, h))(t, "create")
	same(t, "created", created, h)
	_, err := s.CreateHandle(c, h)
	wantErr(t, "second create", err, datastore.ErrExists)
	got := ok(s.GetHandle(c, h.ID))(t, "get")
	same(t, "read (ID keeps its case)", got, h)

	got.Block["fd00:96:10::/122"] = 1
	updated := ok(s.UpdateHandle(c, got))(t, "update")
	same(t, "updated", ok(s.GetHandle(c, h.ID))(t, "get"), got)
	_, err = s.UpdateHandle(c, created)
	wantErr(t, "update at a stale revision", err, datastore.ErrConflict)
	wantErr(t, "delete at a stale revision", s.DeleteHandle(c, created), datastore.ErrConflict)

	noErr(t, "delete", s.DeleteHandle(c, updated))
	_, err = s.GetHandle(c, h.ID)
	wantErr(t, "get after delete", err, datastore.ErrNotFound)
	wantErr(t, "delete again", s.DeleteHandle(c, updated), datastore.ErrNotFound)
	_, err = s.UpdateHandle(c, &ipam.Handle{ID: "absent", Block: map[string]int{"10.96.10.0/26": 1}})
	wantErr(t, "update missing", err, datastore.ErrNotFound)
}

func testListHandles(t *testing.T, s ipam.Store) {
	c := ctx(t)
	if got := ok(s.ListHandles(c))(t, "list empty"); len(got) != 0 {
		t.Fatalf("new store lists %d handles", len(got))
	}
	ids := []string{"ipip-tunnel-addr-n1", "k8s-pod-network.aa", "k8s-pod-network.bb", "prod.web-0"}
	for i, id := range ids {
		ok(s.CreateHandle(c, &ipam.Handle{ID: id, Block: map[string]int{"10.96.11.0/26": i + 1}}))(t, "create")
	}
	gone := ok(s.CreateHandle(c, &ipam.Handle{ID: "gone", Block: map[string]int{"10.96.11.0/26": 1}}))(t, "create")
	noErr(t, "delete", s.DeleteHandle(c, gone))
	got := ok(s.ListHandles(c))(t, "list")
	var gotIDs []string
	for _, h := range got {
		gotIDs = append(gotIDs, h.ID)
		if i := slices.Index(ids, h.ID); i >= 0 && h.Block["10.96.11.0/26"] != i+1 {
			t.Errorf("handle %s lists %v", h.ID, h.Block)
		}
	}
	slices.Sort(gotIDs)
	if !slices.Equal(gotIDs, ids) {
		t.Errorf("listed %v, want %v", gotIDs, ids)
	}
}

// Configuration.

func testConfig(t *testing.T, s ipam.Store) {
	c := ctx(t)
	def := ok(s.GetConfig(c))(t, "get default")
	if def.Revision != "" || !reflect.DeepEqual(def, ipam.DefaultConfig()) {
		t.Errorf("missing config reads as %+v, want %+v", def, ipam.DefaultConfig())
	}
	want := &ipam.Config{StrictAffinity: true, AutoAllocateBlocks: true, MaxBlocksPerHost: 4,
		KubeVirtVMAddressPersistence: "Disabled", IPCooldownSeconds: 30}
	created := ok(s.SetConfig(c, want))(t, "create")
	if created.Revision == "" {
		t.Error("create returned no revision")
	}
	same(t, "created", created, want)
	got := ok(s.GetConfig(c))(t, "get")
	same(t, "read", got, want)
	_, err := s.SetConfig(c, want)
	wantErr(t, "second create", err, datastore.ErrExists)

	next := *got
	next.StrictAffinity, next.MaxBlocksPerHost, next.IPCooldownSeconds = false, 0, 0
	updated := ok(s.SetConfig(c, &next))(t, "update")
	same(t, "updated", ok(s.GetConfig(c))(t, "get"), &next)
	_, err = s.SetConfig(c, got)
	wantErr(t, "update at a stale revision", err, datastore.ErrConflict)
	if cur := ok(s.GetConfig(c))(t, "get"); cur.Revision != updated.Revision {
		t.Errorf("revision after a lost race %q, want %q", cur.Revision, updated.Revision)
	}
}

func testInvalidArguments(t *testing.T, s ipam.Store) {
	c := ctx(t)
	checks := []struct {
		name string
		err  error
	}{
		{"get zero CIDR", second(s.GetBlock(c, netip.Prefix{}))},
		{"get affinity of no host", second(s.GetAffinity(c, "", prefix(t, "10.96.12.0/26")))},
		{"get affinity of a host with a slash", second(s.GetAffinity(c, "a/b", prefix(t, "10.96.12.0/26")))},
		{"create affinity of unknown type", second(s.CreateAffinity(c, &ipam.Affinity{Host: "n", Type: "other", CIDR: prefix(t, "10.96.12.0/26")}))},
		{"get empty handle", second(s.GetHandle(c, ""))},
	}
	for _, ch := range checks {
		if !errors.Is(ch.err, ipam.ErrInvalidValue) {
			t.Errorf("%s: error %v, want ErrInvalidValue", ch.name, ch.err)
		}
	}
}

func second[T any](_ T, err error) error { return err }
