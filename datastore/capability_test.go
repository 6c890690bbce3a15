package datastore

import "testing"

// fakeBackend stands for a concrete backend with one extra capability.
type fakeBackend struct{ Interface }

func (fakeBackend) Endpoint() string { return "etcd://x" }

type endpointer interface{ Endpoint() string }

func TestAs(t *testing.T) {
	b := fakeBackend{}
	for _, tc := range []struct {
		name string
		ds   Interface
		want bool
	}{
		{"the backend itself", b, true},
		{"through one wrapper", FailFast(b), true},
		{"through two wrappers", FailFast(FailFast(b)), true},
		{"a backend without it", FailFast(struct{ Interface }{}), false},
		{"nil", nil, false},
	} {
		got, ok := As[endpointer](tc.ds)
		if ok != tc.want || (ok && got.Endpoint() != "etcd://x") {
			t.Errorf("%s: As = %v, %v; want found=%v", tc.name, got, ok, tc.want)
		}
	}
	// A wrapper's own capabilities are found first.
	if _, ok := As[BatchCreator](FailFast(b)); !ok {
		t.Errorf("the fail-fast wrapper's CreateMany is a capability too")
	}
}
