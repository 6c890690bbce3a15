package kubernetes

import (
	"context"
	"errors"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

// isolated lets the conformance subtests share one API server: every name
// and namespace gets a per-subtest prefix on the way in and loses it on the
// way out, and lists and watches only show the subtest's own objects. The
// backend underneath is exercised unchanged.
type isolated struct {
	inner *Backend
	p     string
	admin k8s.Interface

	mu         sync.Mutex
	namespaces map[string]bool
}

var (
	_ datastore.Interface    = (*isolated)(nil)
	_ datastore.BatchCreator = (*isolated)(nil)
)

func (i *isolated) ns(n string) string {
	if n == "" {
		return ""
	}
	return i.p + n
}

func (i *isolated) key(k resources.Key) resources.Key {
	return resources.Key{Kind: k.Kind, Namespace: i.ns(k.Namespace), Name: i.p + k.Name}
}

func (i *isolated) unkey(k resources.Key) resources.Key {
	return resources.Key{Kind: k.Kind, Namespace: strings.TrimPrefix(k.Namespace, i.p), Name: strings.TrimPrefix(k.Name, i.p)}
}

func (i *isolated) in(ctx context.Context, r resources.Resource) (resources.Resource, error) {
	c := resources.DeepCopy(r)
	c.SetName(i.p + r.GetName())
	if r.GetNamespace() != "" {
		c.SetNamespace(i.p + r.GetNamespace())
		if err := i.ensureNamespace(ctx, c.GetNamespace()); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// ensureNamespace creates a namespace once: namespaced custom resources
// need theirs to exist.
func (i *isolated) ensureNamespace(ctx context.Context, ns string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.namespaces[ns] {
		return nil
	}
	_, err := i.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	i.namespaces[ns] = true
	return nil
}

func (i *isolated) out(r resources.Resource, err error) (resources.Resource, error) {
	if err != nil {
		return nil, i.err(err)
	}
	r.SetName(strings.TrimPrefix(r.GetName(), i.p))
	if r.GetNamespace() != "" {
		r.SetNamespace(strings.TrimPrefix(r.GetNamespace(), i.p))
	}
	return r, nil
}

func (i *isolated) err(err error) error {
	var ke *datastore.KeyError
	if errors.As(err, &ke) {
		c := *ke
		c.Key = i.unkey(c.Key)
		return &c
	}
	return err
}

func (i *isolated) Get(ctx context.Context, key resources.Key) (resources.Resource, error) {
	return i.out(i.inner.Get(ctx, i.key(key)))
}

func (i *isolated) Create(ctx context.Context, r resources.Resource) (resources.Resource, error) {
	c, err := i.in(ctx, r)
	if err != nil {
		return nil, err
	}
	return i.out(i.inner.Create(ctx, c))
}

func (i *isolated) Update(ctx context.Context, r resources.Resource) (resources.Resource, error) {
	c, err := i.in(ctx, r)
	if err != nil {
		return nil, err
	}
	return i.out(i.inner.Update(ctx, c))
}

func (i *isolated) Delete(ctx context.Context, key resources.Key, rev string) (resources.Resource, error) {
	return i.out(i.inner.Delete(ctx, i.key(key), rev))
}

// List skips pages that hold only other subtests' objects, so a limited
// list still returns at most Limit items per page.
func (i *isolated) List(ctx context.Context, opts datastore.ListOptions) (*datastore.ListResult, error) {
	opts.NamePrefix = i.p + opts.NamePrefix
	opts.Namespace = i.ns(opts.Namespace)
	for {
		res, err := i.inner.List(ctx, opts)
		if err != nil {
			return nil, i.err(err)
		}
		if opts.Limit > 0 && len(res.Items) == 0 && res.Continue != "" {
			opts.Continue = res.Continue
			continue
		}
		for _, r := range res.Items {
			if _, err := i.out(r, nil); err != nil {
				return nil, err
			}
		}
		return res, nil
	}
}

func (i *isolated) Watch(ctx context.Context, opts datastore.WatchOptions) (<-chan datastore.Event, error) {
	opts.Namespace = i.ns(opts.Namespace)
	ch, err := i.inner.Watch(ctx, opts)
	if err != nil {
		return nil, i.err(err)
	}
	out := make(chan datastore.Event)
	go func() {
		defer close(out)
		for ev := range ch {
			if ev.Object != nil {
				if !strings.HasPrefix(ev.Object.GetName(), i.p) {
					continue
				}
				_, _ = i.out(ev.Object, nil)
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				for range ch {
				}
				return
			}
		}
	}()
	return out, nil
}

func (i *isolated) CreateMany(ctx context.Context, rs []resources.Resource) ([]resources.Resource, []error) {
	in := make([]resources.Resource, len(rs))
	for n, r := range rs {
		c, err := i.in(ctx, r)
		if err != nil {
			errs := make([]error, len(rs))
			for m := range errs {
				errs[m] = err
			}
			return make([]resources.Resource, len(rs)), errs
		}
		in[n] = c
	}
	outs, errs := i.inner.CreateMany(ctx, in)
	for n := range outs {
		if errs[n] != nil {
			errs[n] = i.err(errs[n])
			continue
		}
		outs[n], _ = i.out(outs[n], nil)
	}
	return outs, errs
}

func (i *isolated) Close() error { return nil }
