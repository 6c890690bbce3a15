package kubernetes

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

const (
	// DefaultAllowProfile is the static profile that allows all traffic.
	DefaultAllowProfile = resources.DefaultAllowProfileName

	namespaceLabelPrefix      = "pcns."
	serviceAccountLabelPrefix = "pcsa."
	nameLabel                 = "projectcalico.org/name"

	profileReason = "Invalid name: profiles are derived from Kubernetes namespaces and service accounts and cannot be changed through Calico"
)

func allowRules() []resources.Rule { return []resources.Rule{{Action: resources.Action("Allow")}} }

// DefaultAllow returns the static projectcalico-default-allow profile.
func DefaultAllow() *resources.Profile { return resources.DefaultAllowProfile() }

// NamespaceToProfile converts a namespace into profile kns.<namespace>.
// Its revision is "<nsRV>/".
func NamespaceToProfile(ns *corev1.Namespace) *resources.Profile {
	p := &resources.Profile{}
	p.Name = NamespaceProfilePrefix + ns.Name
	p.ResourceVersion = ns.ResourceVersion + "/"
	p.UID = ns.UID
	p.CreationTimestamp = ns.CreationTimestamp
	p.Spec.LabelsToApply = map[string]string{namespaceLabelPrefix + nameLabel: ns.Name}
	for k, v := range ns.Labels {
		p.Spec.LabelsToApply[namespaceLabelPrefix+k] = v
	}
	p.Spec.Ingress = allowRules()
	p.Spec.Egress = allowRules()
	resources.SetTypeMeta(p)
	return p
}

// ServiceAccountToProfile converts a service account into profile
// ksa.<namespace>.<name>, without rules. Its revision is "/<saRV>".
func ServiceAccountToProfile(sa *corev1.ServiceAccount) *resources.Profile {
	p := &resources.Profile{}
	p.Name = ServiceAccountProfilePrefix + sa.Namespace + "." + sa.Name
	p.ResourceVersion = "/" + sa.ResourceVersion
	p.UID = sa.UID
	p.CreationTimestamp = sa.CreationTimestamp
	p.Spec.LabelsToApply = map[string]string{serviceAccountLabelPrefix + nameLabel: sa.Name}
	for k, v := range sa.Labels {
		p.Spec.LabelsToApply[serviceAccountLabelPrefix+k] = v
	}
	resources.SetTypeMeta(p)
	return p
}

// profileStore is Profile: read-only views of namespaces and service accounts.
type profileStore struct {
	b *Backend
	k *resources.Kind
}

var (
	nsCall = call{resource: "namespaces"}
	saCall = call{resource: "serviceaccounts"}
)

func (s *profileStore) get(ctx context.Context, key resources.Key) (resources.Resource, error) {
	key.Namespace = ""
	switch {
	case key.Name == DefaultAllowProfile:
		return DefaultAllow(), nil
	case strings.HasPrefix(key.Name, NamespaceProfilePrefix):
		ns, err := s.b.kube.CoreV1().Namespaces().Get(ctx, strings.TrimPrefix(key.Name, NamespaceProfilePrefix), metav1.GetOptions{})
		if err != nil {
			return nil, s.b.apiError(err, "get", key, nsCall)
		}
		return NamespaceToProfile(ns), nil
	case strings.HasPrefix(key.Name, ServiceAccountProfilePrefix):
		ns, name, ok := strings.Cut(strings.TrimPrefix(key.Name, ServiceAccountProfilePrefix), ".")
		if !ok {
			return nil, datastore.NotFound(key)
		}
		sa, err := s.b.kube.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, s.b.apiError(err, "get", key, call{resource: "serviceaccounts", namespace: ns})
		}
		return ServiceAccountToProfile(sa), nil
	}
	return nil, datastore.NotFound(key)
}

// list reads every namespace and service account; Limit/Continue page
// through the combined result by offset.
func (s *profileStore) list(ctx context.Context, opts datastore.ListOptions) (*datastore.ListResult, error) {
	all := []resources.Resource{DefaultAllow()}
	nsList, err := s.b.listPages(ctx, datastore.ListOptions{Kind: s.k.Kind}, s.k.Kind, nsCall,
		func(ctx context.Context, lo metav1.ListOptions) (runtime.Object, error) {
			return s.b.kube.CoreV1().Namespaces().List(ctx, lo)
		},
		func(obj runtime.Object) ([]resources.Resource, error) {
			var out []resources.Resource
			for i := range obj.(*corev1.NamespaceList).Items {
				out = append(out, NamespaceToProfile(&obj.(*corev1.NamespaceList).Items[i]))
			}
			return out, nil
		})
	if err != nil {
		return nil, err
	}
	saList, err := s.b.listPages(ctx, datastore.ListOptions{Kind: s.k.Kind}, s.k.Kind, saCall,
		func(ctx context.Context, lo metav1.ListOptions) (runtime.Object, error) {
			return s.b.kube.CoreV1().ServiceAccounts("").List(ctx, lo)
		},
		func(obj runtime.Object) ([]resources.Resource, error) {
			var out []resources.Resource
			for i := range obj.(*corev1.ServiceAccountList).Items {
				out = append(out, ServiceAccountToProfile(&obj.(*corev1.ServiceAccountList).Items[i]))
			}
			return out, nil
		})
	if err != nil {
		return nil, err
	}
	all = append(all, nsList.Items...)
	all = append(all, saList.Items...)
	res := &datastore.ListResult{Items: []resources.Resource{}, Revision: nsList.Revision + "/" + saList.Revision}
	for _, p := range all {
		if hasPrefix(p.GetName(), opts.NamePrefix) {
			res.Items = append(res.Items, p)
		}
	}
	if opts.Limit > 0 {
		start := 0
		if opts.Continue != "" {
			raw, err := base64.RawURLEncoding.DecodeString(opts.Continue)
			if err == nil {
				start, err = strconv.Atoi(string(raw))
			}
			if err != nil || start < 0 || start > len(res.Items) {
				return nil, fmt.Errorf("kubernetes: invalid continue token for profiles")
			}
		}
		end := min(start+int(opts.Limit), len(res.Items))
		if end < len(res.Items) {
			res.Continue = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end)))
		}
		res.Items = res.Items[start:end]
	}
	return res, nil
}

func (s *profileStore) create(_ context.Context, r resources.Resource) (resources.Resource, error) {
	return nil, datastore.NotSupported("Create", resources.KeyOf(r), profileReason)
}

func (s *profileStore) update(_ context.Context, r resources.Resource) (resources.Resource, error) {
	return nil, datastore.NotSupported("Update", resources.KeyOf(r), profileReason)
}

func (s *profileStore) delete(_ context.Context, key resources.Key, _ string) (resources.Resource, error) {
	return nil, datastore.NotSupported("Delete", key, profileReason)
}

// watch follows namespaces and service accounts. The revision is
// "<nsRV>/<saRV>"; each event carries the pair as of that event.
func (s *profileStore) watch(ctx context.Context, opts datastore.WatchOptions) (<-chan datastore.Event, error) {
	nsRV, saRV, _ := strings.Cut(opts.Revision, "/")
	if opts.Revision == "" {
		l, err := s.b.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return nil, s.b.apiError(err, "list", resources.Key{Kind: s.k.Kind}, nsCall)
		}
		nsRV = l.ResourceVersion
		sl, err := s.b.kube.CoreV1().ServiceAccounts("").List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return nil, s.b.apiError(err, "list", resources.Key{Kind: s.k.Kind}, saCall)
		}
		saRV = sl.ResourceVersion
	}
	var mu sync.Mutex
	pair := [2]string{nsRV, saRV}
	revision := func(i int, rv string) string {
		mu.Lock()
		defer mu.Unlock()
		pair[i] = rv
		return pair[0] + "/" + pair[1]
	}
	nsSrc := watchSource{
		kind: s.k.Kind, c: nsCall,
		start: func(ctx context.Context, lo metav1.ListOptions) (watch.Interface, error) {
			return s.b.kube.CoreV1().Namespaces().Watch(ctx, lo)
		},
		convert: func(obj runtime.Object, rv string) (resources.Resource, string, bool, error) {
			ns, ok := obj.(*corev1.Namespace)
			if !ok {
				return nil, "", false, fmt.Errorf("unexpected object %T", obj)
			}
			return NamespaceToProfile(ns), revision(0, rv), true, nil
		},
	}
	saSrc := watchSource{
		kind: s.k.Kind, c: saCall,
		start: func(ctx context.Context, lo metav1.ListOptions) (watch.Interface, error) {
			return s.b.kube.CoreV1().ServiceAccounts("").Watch(ctx, lo)
		},
		convert: func(obj runtime.Object, rv string) (resources.Resource, string, bool, error) {
			sa, ok := obj.(*corev1.ServiceAccount)
			if !ok {
				return nil, "", false, fmt.Errorf("unexpected object %T", obj)
			}
			return ServiceAccountToProfile(sa), revision(1, rv), true, nil
		},
	}
	return s.b.watchSources(ctx, []string{nsRV, saRV}, nsSrc, saSrc), nil
}
