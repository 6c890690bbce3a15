// Package datastoretest holds the conformance suite every datastore backend
// must pass, so the etcd and Kubernetes backends behave the same to callers.
package datastoretest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

// safetyTimeout only stops a broken backend from hanging the test run; no
// assertion depends on timing.
const safetyTimeout = 60 * time.Second

// RunConformance runs the suite. newBackend must return a backend over an
// empty store that no other test uses, and close it via t.Cleanup. Subtests
// run in parallel, each with its own backend.
//
// The suite uses only object metadata (names, namespaces, labels,
// annotations) of IPPool (cluster-scoped) and NetworkPolicy (namespaced).
func RunConformance(t *testing.T, newBackend func(t *testing.T) datastore.Interface) {
	tests := []struct {
		name string
		fn   func(t *testing.T, ds datastore.Interface)
	}{
		{"RoundTrip", testRoundTrip},
		{"CreateTwice", testCreateTwice},
		{"Missing", testMissing},
		{"StaleUpdate", testStaleUpdate},
		{"StaleDelete", testStaleDelete},
		{"List", testList},
		{"Paging", testPaging},
		{"Watch", testWatch},
		{"WatchNamespace", testWatchNamespace},
		{"ConcurrentReadModifyWrite", testConcurrentRMW},
		{"CreateMany", testCreateMany},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newBackend(t))
		})
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), safetyTimeout)
	t.Cleanup(cancel)
	return ctx
}

// newObject makes an empty object of a registered kind with metadata only.
func newObject(t *testing.T, kind, namespace, name string, labels map[string]string) resources.Resource {
	t.Helper()
	k, err := resources.Lookup(kind)
	if err != nil {
		t.Fatalf("lookup %s: %v", kind, err)
	}
	r := k.New()
	r.SetName(name)
	r.SetNamespace(namespace)
	r.SetLabels(labels)
	return r
}

func pool(t *testing.T, name string, labels map[string]string) resources.Resource {
	return newObject(t, "ippool", "", name, labels)
}

func policy(t *testing.T, namespace, name string, labels map[string]string) resources.Resource {
	return newObject(t, "networkpolicy", namespace, name, labels)
}

func poolKey(name string) resources.Key { return resources.Key{Kind: "IPPool", Name: name} }

func mustCreate(t *testing.T, ctx context.Context, ds datastore.Interface, r resources.Resource) resources.Resource {
	t.Helper()
	out, err := ds.Create(ctx, r)
	if err != nil {
		t.Fatalf("create %s: %v", resources.KeyOf(r), err)
	}
	if out.GetResourceVersion() == "" {
		t.Fatalf("create %s returned no resourceVersion", resources.KeyOf(r))
	}
	return out
}

func expectErr(t *testing.T, what string, err, want error, msgPrefix string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
	if !strings.HasPrefix(err.Error(), msgPrefix) {
		t.Fatalf("%s: message %q, want prefix %q", what, err.Error(), msgPrefix)
	}
}

// checkMeta compares the metadata the suite sets. Nil and empty maps are equal.
func checkMeta(t *testing.T, what string, got resources.Resource, ns, name string, labels, annotations map[string]string) {
	t.Helper()
	if got.GetName() != name || got.GetNamespace() != ns {
		t.Fatalf("%s: got %s/%s, want %s/%s", what, got.GetNamespace(), got.GetName(), ns, name)
	}
	if !maps.Equal(got.GetLabels(), labels) {
		t.Fatalf("%s: labels %v, want %v", what, got.GetLabels(), labels)
	}
	if !maps.Equal(got.GetAnnotations(), annotations) {
		t.Fatalf("%s: annotations %v, want %v", what, got.GetAnnotations(), annotations)
	}
}

func testRoundTrip(t *testing.T, ds datastore.Interface) {
	ctx := testContext(t)
	tests := []struct {
		name string
		obj  resources.Resource
	}{
		{"cluster-scoped", pool(t, "pool-1", map[string]string{"a": "1"})},
		{"namespaced", policy(t, "ns1", "allow-dns", map[string]string{"a": "1"})},
	}
	for _, tc := range tests {
		key := resources.KeyOf(tc.obj)
		ns := key.Namespace
		ann := map[string]string{"note": "x"}
		tc.obj.SetAnnotations(ann)

		created := mustCreate(t, ctx, ds, tc.obj)
		checkMeta(t, tc.name+" create", created, ns, key.Name, map[string]string{"a": "1"}, ann)
		if kind := created.GetObjectKind().GroupVersionKind().Kind; kind != key.Kind {
			t.Fatalf("%s: created kind %q, want %q", tc.name, kind, key.Kind)
		}

		got, err := ds.Get(ctx, key)
		if err != nil {
			t.Fatalf("%s get: %v", tc.name, err)
		}
		checkMeta(t, tc.name+" get", got, ns, key.Name, map[string]string{"a": "1"}, ann)
		if got.GetResourceVersion() != created.GetResourceVersion() {
			t.Fatalf("%s: get rv %s, create rv %s", tc.name, got.GetResourceVersion(), created.GetResourceVersion())
		}

		got.SetLabels(map[string]string{"a": "2"})
		updated, err := ds.Update(ctx, got)
		if err != nil {
			t.Fatalf("%s update: %v", tc.name, err)
		}
		if updated.GetResourceVersion() == created.GetResourceVersion() {
			t.Fatalf("%s: update kept resourceVersion %s", tc.name, created.GetResourceVersion())
		}
		again, err := ds.Get(ctx, key)
		if err != nil {
			t.Fatalf("%s get after update: %v", tc.name, err)
		}
		checkMeta(t, tc.name+" get after update", again, ns, key.Name, map[string]string{"a": "2"}, ann)
		if again.GetResourceVersion() != updated.GetResourceVersion() {
			t.Fatalf("%s: rv after update %s, update returned %s", tc.name, again.GetResourceVersion(), updated.GetResourceVersion())
		}

		deleted, err := ds.Delete(ctx, key, updated.GetResourceVersion())
		if err != nil {
			t.Fatalf("%s delete: %v", tc.name, err)
		}
		checkMeta(t, tc.name+" delete", deleted, ns, key.Name, map[string]string{"a": "2"}, ann)
		if _, err := ds.Get(ctx, key); !errors.Is(err, datastore.ErrNotFound) {
			t.Fatalf("%s get after delete: err = %v, want ErrNotFound", tc.name, err)
		}
	}
}

func testCreateTwice(t *testing.T, ds datastore.Interface) {
	ctx := testContext(t)
	first := mustCreate(t, ctx, ds, pool(t, "dup", map[string]string{"v": "first"}))
	_, err := ds.Create(ctx, pool(t, "dup", map[string]string{"v": "second"}))
	expectErr(t, "second create", err, datastore.ErrExists, "resource already exists: IPPool(dup)")
	got, err := ds.Get(ctx, poolKey("dup"))
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.GetLabels()["v"] != "first" || got.GetResourceVersion() != first.GetResourceVersion() {
		t.Fatalf("failed create changed the object: %v rv %s", got.GetLabels(), got.GetResourceVersion())
	}
}

func testMissing(t *testing.T, ds datastore.Interface) {
	ctx := testContext(t)
	// A real object, so "missing" is not just "empty store".
	other := mustCreate(t, ctx, ds, pool(t, "present", nil))
	missingPolicy := resources.Key{Kind: "NetworkPolicy", Namespace: "ns1", Name: "nope"}
	stale := pool(t, "missing", nil)
	stale.SetResourceVersion(other.GetResourceVersion())
	tests := []struct {
		name string
		do   func() error
		want string
	}{
		{"get", func() error { _, err := ds.Get(ctx, poolKey("missing")); return err },
			"resource does not exist: IPPool(missing) with error: <nil>"},
		{"get namespaced", func() error { _, err := ds.Get(ctx, missingPolicy); return err },
			"resource does not exist: NetworkPolicy(ns1/nope)"},
		{"update", func() error { _, err := ds.Update(ctx, stale); return err },
			"resource does not exist: IPPool(missing)"},
		{"delete", func() error { _, err := ds.Delete(ctx, poolKey("missing"), ""); return err },
			"resource does not exist: IPPool(missing)"},
		{"delete with revision", func() error {
			_, err := ds.Delete(ctx, poolKey("missing"), other.GetResourceVersion())
			return err
		}, "resource does not exist: IPPool(missing)"},
	}
	for _, tc := range tests {
		expectErr(t, tc.name, tc.do(), datastore.ErrNotFound, tc.want)
	}
}

func testStaleUpdate(t *testing.T, ds datastore.Interface) {
	ctx := testContext(t)
	v1 := mustCreate(t, ctx, ds, pool(t, "p", map[string]string{"v": "1"}))
	v1copy := resources.DeepCopy(v1)
	v1.SetLabels(map[string]string{"v": "2"})
	v2, err := ds.Update(ctx, v1)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	v1copy.SetLabels(map[string]string{"v": "stale"})
	_, err = ds.Update(ctx, v1copy)
	expectErr(t, "stale update", err, datastore.ErrConflict, "update conflict: IPPool(p)")
	got, err := ds.Get(ctx, poolKey("p"))
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.GetLabels()["v"] != "2" || got.GetResourceVersion() != v2.GetResourceVersion() {
		t.Fatalf("stale update changed the object: labels %v rv %s", got.GetLabels(), got.GetResourceVersion())
	}
}

func testStaleDelete(t *testing.T, ds datastore.Interface) {
	ctx := testContext(t)
	v1 := mustCreate(t, ctx, ds, policy(t, "ns1", "p", map[string]string{"v": "1"}))
	staleRV := v1.GetResourceVersion()
	v1.SetLabels(map[string]string{"v": "2"})
	v2, err := ds.Update(ctx, v1)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	key := resources.KeyOf(v2)
	_, err = ds.Delete(ctx, key, staleRV)
	expectErr(t, "stale delete", err, datastore.ErrConflict, "update conflict: NetworkPolicy(ns1/p)")
	if got, err := ds.Get(ctx, key); err != nil || got.GetLabels()["v"] != "2" {
		t.Fatalf("after stale delete: %v, %v", got, err)
	}
}

// ids renders list items as "ns/name" (or "name"), sorted.
func ids(items []resources.Resource) []string {
	out := make([]string, 0, len(items))
	for _, r := range items {
		if r.GetNamespace() != "" {
			out = append(out, r.GetNamespace()+"/"+r.GetName())
		} else {
			out = append(out, r.GetName())
		}
	}
	slices.Sort(out)
	return out
}

func testList(t *testing.T, ds datastore.Interface) {
	ctx := testContext(t)
	for _, r := range []resources.Resource{
		pool(t, "a-1", nil), pool(t, "a-2", nil), pool(t, "b-1", nil),
		policy(t, "ns1", "x-1", nil), policy(t, "ns1", "y-1", nil),
		policy(t, "ns2", "x-2", nil), policy(t, "ns2", "z-1", nil),
		policy(t, "ns10", "x-3", nil),
	} {
		mustCreate(t, ctx, ds, r)
	}
	tests := []struct {
		name string
		opts datastore.ListOptions
		want []string
	}{
		{"all pools", datastore.ListOptions{Kind: "IPPool"}, []string{"a-1", "a-2", "b-1"}},
		{"pool prefix", datastore.ListOptions{Kind: "IPPool", NamePrefix: "a-"}, []string{"a-1", "a-2"}},
		{"pool prefix no match", datastore.ListOptions{Kind: "IPPool", NamePrefix: "c"}, []string{}},
		{"all namespaces", datastore.ListOptions{Kind: "NetworkPolicy"},
			[]string{"ns1/x-1", "ns1/y-1", "ns10/x-3", "ns2/x-2", "ns2/z-1"}},
		{"one namespace", datastore.ListOptions{Kind: "NetworkPolicy", Namespace: "ns1"}, []string{"ns1/x-1", "ns1/y-1"}},
		{"namespace is not a prefix", datastore.ListOptions{Kind: "NetworkPolicy", Namespace: "ns"}, []string{}},
		{"prefix in namespace", datastore.ListOptions{Kind: "NetworkPolicy", Namespace: "ns2", NamePrefix: "z"}, []string{"ns2/z-1"}},
		{"prefix across namespaces", datastore.ListOptions{Kind: "NetworkPolicy", NamePrefix: "x-"},
			[]string{"ns1/x-1", "ns10/x-3", "ns2/x-2"}},
		{"empty kind", datastore.ListOptions{Kind: "GlobalNetworkSet"}, []string{}},
	}
	for _, tc := range tests {
		res, err := ds.List(ctx, tc.opts)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := ids(res.Items); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
		if res.Revision == "" || res.Continue != "" {
			t.Errorf("%s: revision %q continue %q", tc.name, res.Revision, res.Continue)
		}
		for _, r := range res.Items {
			if r.GetResourceVersion() == "" {
				t.Errorf("%s: item %s has no resourceVersion", tc.name, r.GetName())
			}
		}
	}
}

func testPaging(t *testing.T, ds datastore.Interface) {
	ctx := testContext(t)
	const n = 25
	var want []string
	for i := range n {
		name := fmt.Sprintf("pool-%02d", i)
		want = append(want, name)
		mustCreate(t, ctx, ds, pool(t, name, nil))
	}
	seen := map[string]int{}
	var all []resources.Resource
	opts := datastore.ListOptions{Kind: "IPPool", Limit: 10}
	pages := 0
	for {
		res, err := ds.List(ctx, opts)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		pages++
		if int64(len(res.Items)) > opts.Limit {
			t.Fatalf("page %d has %d items, limit %d", pages, len(res.Items), opts.Limit)
		}
		for _, r := range res.Items {
			seen[r.GetName()]++
		}
		all = append(all, res.Items...)
		if pages == 1 {
			// Written after the first page: a consistent list must not show it.
			mustCreate(t, ctx, ds, pool(t, "pool-late", nil))
		}
		if res.Continue == "" {
			break
		}
		if pages > n {
			t.Fatalf("paging does not end")
		}
		opts.Continue = res.Continue
	}
	if pages < 2 {
		t.Fatalf("%d items in %d page(s) with limit 10; want several pages", n, pages)
	}
	if got := ids(all); !slices.Equal(got, want) {
		t.Fatalf("paged list = %v, want %v", got, want)
	}
	for name, c := range seen {
		if c != 1 {
			t.Fatalf("%s seen %d times", name, c)
		}
	}
	full, err := ds.List(ctx, datastore.ListOptions{Kind: "IPPool"})
	if err != nil || len(full.Items) != n+1 {
		t.Fatalf("unlimited list after paging: %d items, %v; want %d", len(full.Items), err, n+1)
	}
}

type seenEvent struct {
	Type datastore.EventType
	Name string
}

func nextEvent(t *testing.T, ctx context.Context, ch <-chan datastore.Event) datastore.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("watch channel closed early")
		}
		if ev.Type == datastore.Error {
			t.Fatalf("watch error: %v", ev.Err)
		}
		return ev
	case <-ctx.Done():
		t.Fatalf("no watch event before the safety timeout")
	}
	return datastore.Event{}
}

// collect reads events up to and including the one for sentinel, which the
// caller wrote last, and returns them with the last event's revision.
func collect(t *testing.T, ctx context.Context, ch <-chan datastore.Event, sentinel string) ([]seenEvent, string) {
	t.Helper()
	var got []seenEvent
	lastRev := ""
	for {
		ev := nextEvent(t, ctx, ch)
		if ev.Object == nil || ev.Revision == "" {
			t.Fatalf("event %v without object or revision", ev.Type)
		}
		lastRev = ev.Revision
		got = append(got, seenEvent{ev.Type, ev.Object.GetName()})
		if ev.Object.GetName() == sentinel {
			return got, lastRev
		}
	}
}

func testWatch(t *testing.T, ds datastore.Interface) {
	ctx := testContext(t)
	before := mustCreate(t, ctx, ds, pool(t, "before", nil))

	w1 := mustCreate(t, ctx, ds, pool(t, "w1", map[string]string{"v": "1"}))
	w1.SetLabels(map[string]string{"v": "2"})
	if _, err := ds.Update(ctx, w1); err != nil {
		t.Fatalf("update: %v", err)
	}
	mustCreate(t, ctx, ds, policy(t, "ns1", "other-kind", nil))
	deleted, err := ds.Delete(ctx, poolKey("w1"), "")
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	mustCreate(t, ctx, ds, pool(t, "sentinel-1", nil))

	wctx, cancel := context.WithCancel(ctx)
	ch, err := ds.Watch(wctx, datastore.WatchOptions{Kind: "IPPool", Revision: before.GetResourceVersion()})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	got, last := collect(t, ctx, ch, "sentinel-1")
	want := []seenEvent{
		{datastore.Added, "w1"}, {datastore.Modified, "w1"}, {datastore.Deleted, "w1"}, {datastore.Added, "sentinel-1"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	if deleted.GetLabels()["v"] != "2" {
		t.Fatalf("delete returned labels %v, want the last state", deleted.GetLabels())
	}

	// Disconnect, change things, then resume from the last revision seen.
	cancel()
	for range ch { // drain until the backend closes the channel
	}
	mustCreate(t, ctx, ds, pool(t, "w2", nil))
	if _, err := ds.Delete(ctx, poolKey("before"), ""); err != nil {
		t.Fatalf("delete: %v", err)
	}
	mustCreate(t, ctx, ds, pool(t, "sentinel-2", nil))
	ch2, err := ds.Watch(ctx, datastore.WatchOptions{Kind: "IPPool", Revision: last})
	if err != nil {
		t.Fatalf("resume watch: %v", err)
	}
	got, _ = collect(t, ctx, ch2, "sentinel-2")
	want = []seenEvent{{datastore.Added, "w2"}, {datastore.Deleted, "before"}, {datastore.Added, "sentinel-2"}}
	if !slices.Equal(got, want) {
		t.Fatalf("resumed events = %v, want %v", got, want)
	}
}

func testWatchNamespace(t *testing.T, ds datastore.Interface) {
	ctx := testContext(t)
	start := mustCreate(t, ctx, ds, pool(t, "start", nil))
	mustCreate(t, ctx, ds, policy(t, "ns2", "elsewhere", nil))
	mustCreate(t, ctx, ds, policy(t, "ns10", "prefix-namespace", nil))
	mustCreate(t, ctx, ds, policy(t, "ns1", "here", map[string]string{"k": "v"}))
	mustCreate(t, ctx, ds, policy(t, "ns1", "sentinel", nil))
	ch, err := ds.Watch(ctx, datastore.WatchOptions{Kind: "NetworkPolicy", Namespace: "ns1", Revision: start.GetResourceVersion()})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	ev := nextEvent(t, ctx, ch)
	if ev.Type != datastore.Added || ev.Object.GetNamespace() != "ns1" || ev.Object.GetName() != "here" {
		t.Fatalf("first event %s %s/%s, want ADDED ns1/here", ev.Type, ev.Object.GetNamespace(), ev.Object.GetName())
	}
	checkMeta(t, "watched object", ev.Object, "ns1", "here", map[string]string{"k": "v"}, nil)
	if ev := nextEvent(t, ctx, ch); ev.Object.GetName() != "sentinel" {
		t.Fatalf("second event for %s, want sentinel", ev.Object.GetName())
	}
}

func testConcurrentRMW(t *testing.T, ds datastore.Interface) {
	ctx := testContext(t)
	const workers, increments = 16, 5
	mustCreate(t, ctx, ds, pool(t, "counter", map[string]string{"count": "0"}))
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range increments {
				if err := increment(ctx, ds); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := ds.Get(ctx, poolKey("counter"))
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if want := strconv.Itoa(workers * increments); got.GetLabels()["count"] != want {
		t.Fatalf("count = %s, want %s (lost writes)", got.GetLabels()["count"], want)
	}
}

func increment(ctx context.Context, ds datastore.Interface) error {
	for {
		r, err := ds.Get(ctx, poolKey("counter"))
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(r.GetLabels()["count"])
		if err != nil {
			return err
		}
		r.SetLabels(map[string]string{"count": strconv.Itoa(n + 1)})
		_, err = ds.Update(ctx, r)
		if errors.Is(err, datastore.ErrConflict) {
			continue
		}
		return err
	}
}

func testCreateMany(t *testing.T, ds datastore.Interface) {
	bc, ok := ds.(datastore.BatchCreator)
	if !ok {
		t.Skip("backend has no CreateMany")
	}
	ctx := testContext(t)
	mustCreate(t, ctx, ds, pool(t, "taken", map[string]string{"v": "old"}))
	var in []resources.Resource
	wantErr := map[int]error{}
	for i := range 250 {
		in = append(in, pool(t, fmt.Sprintf("bulk-%03d", i), map[string]string{"i": strconv.Itoa(i)}))
		switch i {
		case 7:
			in = append(in, pool(t, "taken", map[string]string{"v": "new"}))
			wantErr[len(in)-1] = datastore.ErrExists
		case 130:
			in = append(in, pool(t, "bulk-000", map[string]string{"i": "again"}))
			wantErr[len(in)-1] = datastore.ErrExists
		}
	}
	in = append(in, policy(t, "ns1", "bulk-policy", nil))
	out, errs := bc.CreateMany(ctx, in)
	if len(out) != len(in) || len(errs) != len(in) {
		t.Fatalf("CreateMany returned %d results, %d errors for %d items", len(out), len(errs), len(in))
	}
	for i := range in {
		if want := wantErr[i]; want != nil {
			if !errors.Is(errs[i], want) {
				t.Fatalf("item %d (%s): err = %v, want %v", i, in[i].GetName(), errs[i], want)
			}
			continue
		}
		if errs[i] != nil {
			t.Fatalf("item %d (%s): %v", i, in[i].GetName(), errs[i])
		}
		if out[i].GetName() != in[i].GetName() || out[i].GetResourceVersion() == "" {
			t.Fatalf("item %d: result %s rv %q", i, out[i].GetName(), out[i].GetResourceVersion())
		}
	}
	res, err := ds.List(ctx, datastore.ListOptions{Kind: "IPPool"})
	if err != nil || len(res.Items) != 251 {
		t.Fatalf("list after CreateMany: %d items, %v; want 251", len(res.Items), err)
	}
	for _, r := range res.Items {
		switch r.GetName() {
		case "taken":
			if r.GetLabels()["v"] != "old" {
				t.Fatalf("existing object overwritten: %v", r.GetLabels())
			}
		case "bulk-000":
			if r.GetLabels()["i"] != "0" {
				t.Fatalf("first occurrence of a repeated name lost: %v", r.GetLabels())
			}
		}
		if r.GetName() != "taken" && r.GetLabels()["i"] == "" {
			t.Fatalf("%s stored without its labels", r.GetName())
		}
	}
}
