package datastore_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

// downAfter is a datastore whose writes succeed until `ok` calls have been
// made, then fail as unavailable. It counts the calls that reached it.
type downAfter struct {
	datastore.Interface
	ok, calls int
}

func (d *downAfter) Create(_ context.Context, r resources.Resource) (resources.Resource, error) {
	d.calls++
	if d.calls > d.ok {
		return nil, &datastore.KeyError{Err: datastore.ErrUnavailable, Key: resources.KeyOf(r), Cause: errors.New("etcd create at http://x:2379: no answer within 5s")}
	}
	return r, nil
}

func pool(name string) resources.Resource {
	return &resources.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func TestFailFast(t *testing.T) {
	inner := &downAfter{ok: 2}
	ff := datastore.FailFast(inner)
	var rs []resources.Resource
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		rs = append(rs, pool(n))
	}
	_, errs := ff.CreateMany(context.Background(), rs)
	for i, err := range errs[:2] {
		if err != nil {
			t.Errorf("item %d: %v", i, err)
		}
	}
	for i, err := range errs[2:] {
		if !errors.Is(err, datastore.ErrUnavailable) {
			t.Errorf("item %d: %v, want ErrUnavailable", i+2, err)
		}
	}
	// Only the first failing call reached the datastore; the rest failed at once.
	if inner.calls != 3 {
		t.Errorf("%d calls reached the datastore, want 3", inner.calls)
	}
	if msg := errs[4].Error(); !strings.Contains(msg, "not written") || !strings.Contains(msg, "http://x:2379") {
		t.Errorf("skipped item's error %q does not say why nor name the endpoint", msg)
	}
	if _, err := ff.Get(context.Background(), resources.Key{Kind: "IPPool", Name: "a"}); !errors.Is(err, datastore.ErrUnavailable) {
		t.Errorf("Get after the trip: %v, want ErrUnavailable", err)
	}
}
