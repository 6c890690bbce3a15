package etcd_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/datastore/datastoretest"
	"github.com/opencalico/calicoctl/datastore/etcd"
	"github.com/opencalico/calicoctl/internal/etcdserver"
	"github.com/opencalico/calicoctl/resources"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newBackend(t *testing.T, cfg etcd.Config) *etcd.Backend {
	t.Helper()
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	b, err := etcd.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("etcd.New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	datastoretest.RunConformance(t, func(t *testing.T) datastore.Interface {
		srv := etcdserver.StartForTest(t)
		// A small page size makes internal paging run in every list.
		return newBackend(t, etcd.Config{Endpoints: srv.Endpoints(), PageSize: 3})
	})
}

func rawClient(t *testing.T, endpoints []string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("raw client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newResource(t testing.TB, kind, namespace, name string) resources.Resource {
	t.Helper()
	k, err := resources.Lookup(kind)
	if err != nil {
		t.Fatal(err)
	}
	r := k.New()
	r.SetName(name)
	r.SetNamespace(namespace)
	return r
}

// TestUpstreamLayoutWrite checks the raw key and JSON value we write.
func TestUpstreamLayoutWrite(t *testing.T) {
	t.Parallel()
	srv := etcdserver.StartForTest(t)
	b := newBackend(t, etcd.Config{Endpoints: srv.Endpoints()})
	raw := rawClient(t, srv.Endpoints())
	ctx := context.Background()

	tests := []struct {
		name      string
		obj       resources.Resource
		key       string
		wantMeta  map[string]any
		wantKind  string
		namespace string
	}{
		{
			name:     "ippool",
			obj:      newResource(t, "ippool", "ignored-for-cluster-scope", "pool-a"),
			key:      "/calico/resources/v3/projectcalico.org/ippools/pool-a",
			wantKind: "IPPool",
			wantMeta: map[string]any{"name": "pool-a", "labels": map[string]any{"team": "a"}},
		},
		{
			name:     "networkpolicy",
			obj:      newResource(t, "networkpolicy", "prod", "allow-dns"),
			key:      "/calico/resources/v3/projectcalico.org/networkpolicies/prod/allow-dns",
			wantKind: "NetworkPolicy",
			wantMeta: map[string]any{"name": "allow-dns", "namespace": "prod", "labels": map[string]any{"team": "a"},
				"annotations": map[string]any{"projectcalico.org/metadata": `{"name":"allow-dns"}`}},
			namespace: "prod",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.obj.SetLabels(map[string]string{"team": "a"})
			tc.obj.SetResourceVersion("") // Create ignores it anyway
			created, err := b.Create(ctx, tc.obj)
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			if created.GetNamespace() != tc.namespace {
				t.Fatalf("created namespace %q, want %q", created.GetNamespace(), tc.namespace)
			}
			resp, err := raw.Get(ctx, tc.key)
			if err != nil || len(resp.Kvs) != 1 {
				t.Fatalf("raw get %s: %v (%d keys)", tc.key, err, len(resp.Kvs))
			}
			kv := resp.Kvs[0]
			if got := strconv.FormatInt(kv.ModRevision, 10); got != created.GetResourceVersion() {
				t.Fatalf("resourceVersion %s, mod revision %s", created.GetResourceVersion(), got)
			}
			var doc map[string]any
			if err := json.Unmarshal(kv.Value, &doc); err != nil {
				t.Fatalf("stored value is not JSON: %v\n%s", err, kv.Value)
			}
			if doc["apiVersion"] != "projectcalico.org/v3" || doc["kind"] != tc.wantKind {
				t.Fatalf("apiVersion/kind = %v/%v", doc["apiVersion"], doc["kind"])
			}
			meta, _ := doc["metadata"].(map[string]any)
			delete(meta, "creationTimestamp") // null: the client layer fills it
			if !reflect.DeepEqual(meta, tc.wantMeta) {
				t.Fatalf("stored metadata = %v\nwant %v", meta, tc.wantMeta)
			}
			got, err := b.Get(ctx, resources.KeyOf(created))
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			if len(got.GetAnnotations()) != 0 {
				t.Fatalf("read back annotations %v, want none", got.GetAnnotations())
			}
		})
	}
}

// TestUpstreamLayoutRead reads values written raw in upstream's form.
func TestUpstreamLayoutRead(t *testing.T) {
	t.Parallel()
	srv := etcdserver.StartForTest(t)
	b := newBackend(t, etcd.Config{Endpoints: srv.Endpoints()})
	raw := rawClient(t, srv.Endpoints())
	ctx := context.Background()
	const p = "/calico/resources/v3/projectcalico.org/"
	tests := []struct {
		name      string
		etcdKey   string
		value     string
		key       resources.Key // what List reports
		wantAnnot map[string]string
		wantLabel map[string]string
	}{
		{
			name:    "ippool with fields this build may not know",
			etcdKey: p + "ippools/pool-a",
			value: `{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"pool-a","uid":"6c1c0000-0000-4000-8000-000000000000",` +
				`"creationTimestamp":"2024-05-01T10:00:00Z","labels":{"x":"y"}},"spec":{"cidr":"10.10.0.0/16","vxlanMode":"Never",` +
				`"ipipMode":"Always","natOutgoing":true,"blockSize":26,"nodeSelector":"all()","futureField":{"a":1}}}`,
			key:       resources.Key{Kind: "IPPool", Name: "pool-a"},
			wantLabel: map[string]string{"x": "y"},
		},
		{
			name:    "policy name from metadata annotation",
			etcdKey: p + "networkpolicies/prod/allow-dns",
			value: `{"kind":"NetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{"name":"default.allow-dns","namespace":"prod",` +
				`"annotations":{"projectcalico.org/metadata":"{\"name\":\"allow-dns\"}","owner":"ops"}},"spec":{"tier":"default","order":100,"selector":"all()"}}`,
			key:       resources.Key{Kind: "NetworkPolicy", Namespace: "prod", Name: "allow-dns"},
			wantAnnot: map[string]string{"owner": "ops"},
		},
		{
			name:    "legacy default-tier name",
			etcdKey: p + "networkpolicies/prod/default.legacy",
			value:   `{"kind":"NetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{"name":"default.legacy","namespace":"prod"},"spec":{"tier":"default"}}`,
			key:     resources.Key{Kind: "NetworkPolicy", Namespace: "prod", Name: "legacy"},
		},
		{
			name:    "legacy name without tier",
			etcdKey: p + "globalnetworkpolicies/default.deny",
			value:   `{"kind":"GlobalNetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{"name":"default.deny"},"spec":{}}`,
			key:     resources.Key{Kind: "GlobalNetworkPolicy", Name: "deny"},
		},
		{
			name:    "other tier keeps its prefix",
			etcdKey: p + "globalnetworkpolicies/security.block",
			value:   `{"kind":"GlobalNetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{"name":"security.block"},"spec":{"tier":"security"}}`,
			key:     resources.Key{Kind: "GlobalNetworkPolicy", Name: "security.block"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			put, err := raw.Put(ctx, tc.etcdKey, tc.value)
			if err != nil {
				t.Fatalf("raw put: %v", err)
			}
			res, err := b.List(ctx, datastore.ListOptions{Kind: tc.key.Kind, Namespace: tc.key.Namespace})
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			var got resources.Resource
			for _, r := range res.Items {
				if resources.KeyOf(r) == tc.key {
					got = r
				}
			}
			if got == nil {
				t.Fatalf("list has no %s", tc.key)
			}
			if rv := strconv.FormatInt(put.Header.Revision, 10); got.GetResourceVersion() != rv {
				t.Fatalf("resourceVersion %s, want %s", got.GetResourceVersion(), rv)
			}
			if !maps.Equal(got.GetAnnotations(), tc.wantAnnot) || !maps.Equal(got.GetLabels(), tc.wantLabel) {
				t.Fatalf("annotations %v labels %v, want %v %v", got.GetAnnotations(), got.GetLabels(), tc.wantAnnot, tc.wantLabel)
			}
			if kind := got.GetObjectKind().GroupVersionKind().Kind; kind != tc.key.Kind {
				t.Fatalf("kind %q", kind)
			}
		})
	}
	// Get finds the current-format policy by its v3 name.
	if _, err := b.Get(ctx, resources.Key{Kind: "NetworkPolicy", Namespace: "prod", Name: "allow-dns"}); err != nil {
		t.Fatalf("get by v3 name: %v", err)
	}
}

func TestUnreachableEndpointFailsFast(t *testing.T) {
	t.Parallel()
	const timeout = 500 * time.Millisecond
	start := time.Now()
	_, err := etcd.New(context.Background(), etcd.Config{Endpoints: []string{"http://127.0.0.1:1"}, DialTimeout: timeout})
	elapsed := time.Since(start)
	if !errors.Is(err, datastore.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	const want = "cannot reach etcd at http://127.0.0.1:1: context deadline exceeded (dial tcp 127.0.0.1:1: connect: connection refused)"
	if err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}
	// A generous bound: the point is that New does not hang.
	if elapsed > timeout+5*time.Second {
		t.Fatalf("New took %s with a %s dial timeout", elapsed, timeout)
	}
}

func TestOperationsAfterServerStopsAreUnavailable(t *testing.T) {
	t.Parallel()
	srv, err := etcdserver.Start(context.Background(), etcdserver.Config{
		DataDir: filepath.Join(t.TempDir(), "etcd"), ListenClient: "127.0.0.1:0", Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, etcd.Config{Endpoints: srv.Endpoints()})
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	key := resources.Key{Kind: "IPPool", Name: "p"}
	_, err = b.Get(ctx, key)
	if !errors.Is(err, datastore.ErrUnavailable) || !strings.Contains(err.Error(), srv.Endpoints()[0]) {
		t.Fatalf("get on stopped server: %v, want ErrUnavailable naming the endpoint", err)
	}
}

func TestListContinueAndRevisionErrors(t *testing.T) {
	t.Parallel()
	srv := etcdserver.StartForTest(t)
	b := newBackend(t, etcd.Config{Endpoints: srv.Endpoints()})
	ctx := context.Background()
	for _, name := range []string{"a", "b", "c"} {
		if _, err := b.Create(ctx, newResource(t, "ippool", "", name)); err != nil {
			t.Fatal(err)
		}
	}
	page, err := b.List(ctx, datastore.ListOptions{Kind: "IPPool", Limit: 1})
	if err != nil || page.Continue == "" {
		t.Fatalf("first page: %v, continue %q", err, page.Continue)
	}
	tests := []struct {
		name string
		opts datastore.ListOptions
		want string
	}{
		{"garbage token", datastore.ListOptions{Kind: "IPPool", Continue: "!!"}, "invalid continue token"},
		{"token of another kind", datastore.ListOptions{Kind: "NetworkPolicy", Continue: page.Continue}, "invalid continue token"},
		{"bad revision", datastore.ListOptions{Kind: "IPPool", Revision: "x"}, "invalid list revision"},
		{"unknown kind", datastore.ListOptions{Kind: "Nope"}, "unknown kind"},
	}
	for _, tc := range tests {
		if _, err := b.List(ctx, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	// A list at an older revision does not see later objects.
	if _, err := b.Create(ctx, newResource(t, "ippool", "", "d")); err != nil {
		t.Fatal(err)
	}
	old, err := b.List(ctx, datastore.ListOptions{Kind: "IPPool", Revision: page.Revision})
	if err != nil || len(old.Items) != 3 || old.Revision != page.Revision {
		t.Fatalf("list at revision %s: %d items, revision %s, %v", page.Revision, len(old.Items), old.Revision, err)
	}
}

func TestWatchReportsCompaction(t *testing.T) {
	t.Parallel()
	srv := etcdserver.StartForTest(t)
	b := newBackend(t, etcd.Config{Endpoints: srv.Endpoints()})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first, err := b.Create(ctx, newResource(t, "ippool", "", "a"))
	if err != nil {
		t.Fatal(err)
	}
	var last resources.Resource
	for _, name := range []string{"b", "c"} {
		if last, err = b.Create(ctx, newResource(t, "ippool", "", name)); err != nil {
			t.Fatal(err)
		}
	}
	rev, _ := strconv.ParseInt(last.GetResourceVersion(), 10, 64)
	if _, err := b.Client().Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact: %v", err)
	}
	ch, err := b.Watch(ctx, datastore.WatchOptions{Kind: "IPPool", Revision: first.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	ev, ok := <-ch
	if !ok || ev.Type != datastore.Error || !errors.Is(ev.Err, rpctypes.ErrCompacted) {
		t.Fatalf("event %+v (open %v), want an Error event for compaction", ev, ok)
	}
	if _, ok := <-ch; ok {
		t.Fatalf("channel still open after the Error event")
	}
}
