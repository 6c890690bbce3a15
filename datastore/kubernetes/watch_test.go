package kubernetes

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/opencalico/calicoctl/datastore"
)

// scriptedWatches hands out fake watchers in order and records the
// resourceVersion each watch was opened from.
type scriptedWatches struct {
	mu       sync.Mutex
	watchers []*watch.FakeWatcher
	opened   chan string
}

func (s *scriptedWatches) react(action k8stesting.Action) (bool, watch.Interface, error) {
	rv := action.(k8stesting.WatchActionImpl).WatchRestrictions.ResourceVersion
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.watchers) == 0 {
		return true, nil, errors.New("no more scripted watches")
	}
	w := s.watchers[0]
	s.watchers = s.watchers[1:]
	s.opened <- rv
	return true, w, nil
}

func node(name, rv string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv}}
}

func recv(t *testing.T, ctx context.Context, ch <-chan datastore.Event) datastore.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return ev
	case <-ctx.Done():
		t.Fatal("no event before the safety timeout")
	}
	return datastore.Event{}
}

func recvRV(t *testing.T, ctx context.Context, ch <-chan string) string {
	t.Helper()
	select {
	case rv := <-ch:
		return rv
	case <-ctx.Done():
		t.Fatal("watch not opened before the safety timeout")
	}
	return ""
}

func TestWatchResumesAndReportsGone(t *testing.T) {
	// The safety timeout only stops a hung test; nothing depends on timing.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, second := watch.NewFake(), watch.NewFake()
	script := &scriptedWatches{watchers: []*watch.FakeWatcher{first, second}, opened: make(chan string, 2)}
	cs := fake.NewClientset()
	cs.PrependWatchReactor("nodes", script.react)
	b := newBackend(cs, nil, cs.Discovery(), Config{})

	ch, err := b.Watch(ctx, datastore.WatchOptions{Kind: "Node", Revision: "10"})
	if err != nil {
		t.Fatal(err)
	}
	if rv := recvRV(t, ctx, script.opened); rv != "10" {
		t.Fatalf("first watch from %q, want 10", rv)
	}
	first.Add(node("n1", "11"))
	if ev := recv(t, ctx, ch); ev.Type != datastore.Added || ev.Object.GetName() != "n1" || ev.Revision != "11" {
		t.Fatalf("event %v %v rev %s", ev.Type, ev.Object, ev.Revision)
	}
	first.Action(watch.Bookmark, node("", "15"))
	first.Stop() // the server closes the watch

	if rv := recvRV(t, ctx, script.opened); rv != "15" {
		t.Fatalf("reopened from %q, want the bookmark's 15 (no relist)", rv)
	}
	second.Modify(node("n1", "16"))
	if ev := recv(t, ctx, ch); ev.Type != datastore.Modified || ev.Revision != "16" {
		t.Fatalf("after resume: %v rev %s", ev.Type, ev.Revision)
	}
	gone := apierrors.NewResourceExpired("too old resource version: 16 (20)")
	gone.ErrStatus.Code = http.StatusGone
	second.Error(&gone.ErrStatus)
	ev := recv(t, ctx, ch)
	if ev.Type != datastore.Error || !apierrors.IsResourceExpired(ev.Err) {
		t.Fatalf("410: got %v %v, want an Error event", ev.Type, ev.Err)
	}
	if _, ok := <-ch; ok {
		t.Fatal("channel still open after the Error event")
	}
}

func TestWatchSkipsHostNetworkPods(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := watch.NewFake()
	script := &scriptedWatches{watchers: []*watch.FakeWatcher{w}, opened: make(chan string, 1)}
	cs := fake.NewClientset()
	cs.PrependWatchReactor("pods", script.react)
	b := newBackend(cs, nil, cs.Discovery(), Config{})
	ch, err := b.Watch(ctx, datastore.WatchOptions{Kind: "WorkloadEndpoint", Namespace: "a", Revision: "1"})
	if err != nil {
		t.Fatal(err)
	}
	recvRV(t, ctx, script.opened)
	pods := []runtime.Object{
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "host", ResourceVersion: "2"}, Spec: corev1.PodSpec{NodeName: "n", HostNetwork: true}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "pending", ResourceVersion: "3"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "web", ResourceVersion: "4"}, Spec: corev1.PodSpec{NodeName: "n"}},
	}
	for _, p := range pods {
		w.Add(p)
	}
	ev := recv(t, ctx, ch)
	if ev.Object.GetName() != "n-k8s-web-eth0" || ev.Revision != "4" {
		t.Fatalf("first endpoint event %s rev %s, want n-k8s-web-eth0 at 4", ev.Object.GetName(), ev.Revision)
	}
}

func TestCRDsMissingFromDiscovery(t *testing.T) {
	tests := []struct {
		name      string
		resources []*metav1.APIResourceList
		kind      string
		wantErr   bool
	}{
		{"no group", nil, "IPPool", true},
		{"other kind only", []*metav1.APIResourceList{{GroupVersion: CRDAPIVersion,
			APIResources: []metav1.APIResource{{Name: "bgppeers"}}}}, "IPPool", true},
		{"served", []*metav1.APIResourceList{{GroupVersion: CRDAPIVersion,
			APIResources: []metav1.APIResource{{Name: "ippools"}}}}, "IPPool", false},
	}
	for _, tc := range tests {
		cs := fake.NewClientset()
		cs.Resources = tc.resources
		b := newBackend(cs, nil, cs.Discovery(), Config{})
		k := kind(t, tc.kind)
		err := b.requireCRD(k.Plural)
		if tc.wantErr != errors.Is(err, ErrCRDsNotInstalled) {
			t.Errorf("%s: requireCRD = %v", tc.name, err)
		}
		if tc.resources == nil {
			if err := b.probe(context.Background(), false); !errors.Is(err, ErrCRDsNotInstalled) {
				t.Errorf("%s: probe = %v, want ErrCRDsNotInstalled", tc.name, err)
			}
		}
	}
}
