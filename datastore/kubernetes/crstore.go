package kubernetes

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

// crStore keeps one Calico kind as custom resources.
type crStore struct {
	b *Backend
	k *resources.Kind
}

func (s *crStore) client(namespace string) dynamic.ResourceInterface {
	r := s.b.dyn.Resource(gvr(s.k))
	if s.k.Namespaced && namespace != "" {
		return r.Namespace(namespace)
	}
	return r
}

func (s *crStore) call(namespace string) call {
	if !s.k.Namespaced {
		namespace = ""
	}
	return call{group: CRDGroup, resource: s.k.Plural, namespace: namespace}
}

func (s *crStore) checkKey(key resources.Key) error {
	if key.Name == "" {
		return fmt.Errorf("kubernetes: %s name must not be empty", s.k.Kind)
	}
	if s.k.Namespaced && key.Namespace == "" {
		return fmt.Errorf("kubernetes: %s(%s) needs a namespace", s.k.Kind, key.Name)
	}
	return s.b.requireCRD(s.k.Plural)
}

func (s *crStore) decode(u *unstructured.Unstructured) (resources.Resource, error) {
	return FromCR(s.k, u.Object)
}

// getCR reads the CR of key, trying the legacy "default." name of a
// default-tier policy when the current name is not there.
func (s *crStore) getCR(ctx context.Context, key resources.Key) (*unstructured.Unstructured, error) {
	u, err := s.client(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if legacy := legacyPolicyCRName(s.k.Kind, key.Name); legacy != "" {
			if lu, lerr := s.client(key.Namespace).Get(ctx, legacy, metav1.GetOptions{}); lerr == nil {
				if r, derr := s.decode(lu); derr == nil && r.GetName() == key.Name {
					return lu, nil
				}
			}
		}
	}
	return u, err
}

func (s *crStore) get(ctx context.Context, key resources.Key) (resources.Resource, error) {
	if err := s.checkKey(key); err != nil {
		return nil, err
	}
	u, err := s.getCR(ctx, key)
	if err != nil {
		return nil, s.b.apiError(err, "get", key, s.call(key.Namespace))
	}
	return s.decode(u)
}

func (s *crStore) create(ctx context.Context, r resources.Resource) (resources.Resource, error) {
	key := resources.KeyOf(r)
	if err := s.checkKey(key); err != nil {
		return nil, err
	}
	in := resources.DeepCopy(r)
	in.SetResourceVersion("")
	content, err := ToCR(s.k, in)
	if err != nil {
		return nil, err
	}
	u, err := s.client(key.Namespace).Create(ctx, &unstructured.Unstructured{Object: content}, metav1.CreateOptions{})
	if err != nil {
		return nil, s.b.apiError(err, "create", key, s.call(key.Namespace))
	}
	return s.decode(u)
}

func (s *crStore) update(ctx context.Context, r resources.Resource) (resources.Resource, error) {
	key := resources.KeyOf(r)
	if err := s.checkKey(key); err != nil {
		return nil, err
	}
	in := resources.DeepCopy(r)
	crName := key.Name
	if in.GetResourceVersion() == "" {
		// Custom resources take no unconditional update: use the stored revision.
		cur, err := s.getCR(ctx, key)
		if err != nil {
			return nil, s.b.apiError(err, "update", key, s.call(key.Namespace))
		}
		in.SetResourceVersion(cur.GetResourceVersion())
		crName = cur.GetName()
	}
	content, err := ToCR(s.k, in)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: content}
	// No uid precondition: the resourceVersion already guards the write.
	u.SetUID("")
	u.SetName(crName)
	out, err := s.client(key.Namespace).Update(ctx, u, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) && crName == key.Name {
		// The policy may be stored under its legacy name.
		if cur, gerr := s.getCR(ctx, key); gerr == nil && cur.GetName() != crName {
			u.SetName(cur.GetName())
			out, err = s.client(key.Namespace).Update(ctx, u, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		return nil, s.b.apiError(err, "update", key, s.call(key.Namespace))
	}
	return s.decode(out)
}

func (s *crStore) delete(ctx context.Context, key resources.Key, revision string) (resources.Resource, error) {
	if err := s.checkKey(key); err != nil {
		return nil, err
	}
	for {
		cur, err := s.getCR(ctx, key)
		if err != nil {
			return nil, s.b.apiError(err, "delete", key, s.call(key.Namespace))
		}
		if revision != "" && cur.GetResourceVersion() != revision {
			return nil, datastore.Conflict(key, "")
		}
		uid, rv := cur.GetUID(), cur.GetResourceVersion()
		err = s.client(key.Namespace).Delete(ctx, cur.GetName(), metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv},
		})
		if apierrors.IsConflict(err) && revision == "" {
			continue // changed between the read and the delete: read it again
		}
		if err != nil {
			return nil, s.b.apiError(err, "delete", key, s.call(key.Namespace))
		}
		return s.decode(cur)
	}
}

func (s *crStore) list(ctx context.Context, opts datastore.ListOptions) (*datastore.ListResult, error) {
	if err := s.b.requireCRD(s.k.Plural); err != nil {
		return nil, err
	}
	ns := opts.Namespace
	if !s.k.Namespaced {
		ns = ""
	}
	return s.b.listPages(ctx, opts, s.k.Kind, s.call(ns),
		func(ctx context.Context, lo metav1.ListOptions) (runtime.Object, error) {
			return s.client(ns).List(ctx, lo)
		},
		func(obj runtime.Object) ([]resources.Resource, error) {
			ul := obj.(*unstructured.UnstructuredList)
			var out []resources.Resource
			for i := range ul.Items {
				if !hasPrefix(ul.Items[i].GetName(), opts.NamePrefix) && !s.legacyPrefixMatch(&ul.Items[i], opts.NamePrefix) {
					continue
				}
				r, err := s.decode(&ul.Items[i])
				if err != nil {
					s.b.log.Warn("skipping undecodable custom resource", "kind", s.k.Kind,
						"namespace", ul.Items[i].GetNamespace(), "name", ul.Items[i].GetName(), "err", err)
					continue
				}
				if hasPrefix(r.GetName(), opts.NamePrefix) {
					out = append(out, r)
				}
			}
			return out, nil
		})
}

// legacyPrefixMatch lets a name-prefix list find a policy stored under its
// legacy "default." name.
func (s *crStore) legacyPrefixMatch(u *unstructured.Unstructured, prefix string) bool {
	return policyKinds[s.k.Kind] && hasPrefix(u.GetName(), legacyDefaultTierPrefix+prefix)
}

func (s *crStore) source(ns string) watchSource {
	return watchSource{
		kind: s.k.Kind,
		c:    s.call(ns),
		start: func(ctx context.Context, lo metav1.ListOptions) (watch.Interface, error) {
			return s.client(ns).Watch(ctx, lo)
		},
		convert: func(obj runtime.Object, rv string) (resources.Resource, string, bool, error) {
			u, ok := obj.(*unstructured.Unstructured)
			if !ok {
				return nil, "", false, fmt.Errorf("unexpected object %T", obj)
			}
			r, err := s.decode(u)
			return r, rv, err == nil, err
		},
	}
}

func (s *crStore) currentRevision(ctx context.Context, ns string) (string, error) {
	l, err := s.client(ns).List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return "", s.b.apiError(err, "list", resources.Key{Kind: s.k.Kind}, s.call(ns))
	}
	if l.GetResourceVersion() == "" {
		return "", errNoRevision
	}
	return l.GetResourceVersion(), nil
}

func (s *crStore) watch(ctx context.Context, opts datastore.WatchOptions) (<-chan datastore.Event, error) {
	if err := s.b.requireCRD(s.k.Plural); err != nil {
		return nil, err
	}
	ns := opts.Namespace
	if !s.k.Namespaced {
		ns = ""
	}
	rv := opts.Revision
	if rv == "" {
		var err error
		if rv, err = s.currentRevision(ctx, ns); err != nil && !errors.Is(err, errNoRevision) {
			return nil, err
		}
	}
	return s.b.watchSources(ctx, []string{rv}, s.source(ns)), nil
}
