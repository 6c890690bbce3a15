package kubernetes

import (
	"context"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

type (
	listFunc  func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error)
	itemsFunc func(list runtime.Object) ([]resources.Resource, error)
)

// listPages lists with limit/continue. With opts.Limit it returns one page
// and the server's continue token; without, it reads every page of
// Backend.pageSize. All pages are read at the revision of the first.
func (b *Backend) listPages(ctx context.Context, opts datastore.ListOptions, kind string, c call, fetch listFunc, items itemsFunc) (*datastore.ListResult, error) {
	key := resources.Key{Kind: kind, Namespace: c.namespace, Name: opts.NamePrefix + "*"}
	res := &datastore.ListResult{Items: []resources.Resource{}}
	lo := metav1.ListOptions{Limit: b.pageSize, Continue: opts.Continue}
	if opts.Limit > 0 {
		lo.Limit = opts.Limit
	}
	if opts.Revision != "" && opts.Continue == "" {
		lo.ResourceVersion = opts.Revision
		lo.ResourceVersionMatch = metav1.ResourceVersionMatchExact
	}
	for {
		obj, err := fetch(ctx, lo)
		if err != nil {
			return nil, b.apiError(err, "list", key, c)
		}
		lm, err := meta.ListAccessor(obj)
		if err != nil {
			return nil, err
		}
		if res.Revision == "" {
			res.Revision = lm.GetResourceVersion()
		}
		page, err := items(obj)
		if err != nil {
			return nil, err
		}
		res.Items = append(res.Items, page...)
		if lm.GetContinue() == "" {
			return res, nil
		}
		if opts.Limit > 0 {
			res.Continue = lm.GetContinue()
			return res, nil
		}
		lo = metav1.ListOptions{Limit: b.pageSize, Continue: lm.GetContinue()}
	}
}
