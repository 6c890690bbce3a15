package etcd_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/opencalico/calicoctl/datastore/etcd"
	"github.com/opencalico/calicoctl/internal/etcdserver"
	"github.com/opencalico/calicoctl/resources"
)

// BenchmarkCreateMany10k measures the bulk path behind `calicoctl apply -f`
// of 10,000 small objects against an embedded server that fsyncs, as a real
// one does. Run: go test -run '^$' -bench CreateMany ./datastore/etcd/
func BenchmarkCreateMany10k(b *testing.B) {
	srv, err := etcdserver.Start(context.Background(), etcdserver.Config{
		DataDir: filepath.Join(b.TempDir(), "etcd"), ListenClient: "127.0.0.1:0", Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	be, err := etcd.New(context.Background(), etcd.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	ctx := context.Background()
	const n = 10000
	iter := 0
	for b.Loop() {
		b.StopTimer()
		objs := make([]resources.Resource, n)
		for i := range objs {
			r := newResource(b, "ippool", "", fmt.Sprintf("bench-%d-%05d", iter, i))
			r.SetLabels(map[string]string{"bench": "yes", "i": fmt.Sprint(i)})
			objs[i] = r
		}
		iter++
		b.StartTimer()
		_, errs := be.CreateMany(ctx, objs)
		for i, err := range errs {
			if err != nil {
				b.Fatalf("item %d: %v", i, err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/10k")
}
