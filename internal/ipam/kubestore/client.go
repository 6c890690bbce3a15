// Package kubestore keeps IPAM objects in the Kubernetes datastore as
// upstream Calico does: crd.projectcalico.org/v1 IPAMBlock, BlockAffinity,
// IPAMHandle and IPAMConfig custom resources, in the shapes and under the
// names of ipam's CR codec. Revision is metadata.resourceVersion, so every
// update is a compare-and-swap done by the API server.
//
// Kubernetes cannot compare-and-delete on a resourceVersion, so deletes are
// two steps, as upstream's: an update that marks the object deleted (the
// compare-and-swap), then a delete with UID and resourceVersion
// preconditions. Readers treat a marked object as absent and finish its
// deletion.
package kubestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/datastore/kubernetes"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/resources"
)

// Group and version of the IPAM custom resources.
const (
	Group      = "crd.projectcalico.org"
	Version    = "v1"
	APIVersion = Group + "/" + Version
)

// Resources of the four IPAM kinds.
var (
	BlockResource    = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "ipamblocks"}
	AffinityResource = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "blockaffinities"}
	HandleResource   = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "ipamhandles"}
	ConfigResource   = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "ipamconfigs"}
)

// Resources lists the four IPAM resources.
func Resources() []schema.GroupVersionResource {
	return []schema.GroupVersionResource{BlockResource, AffinityResource, HandleResource, ConfigResource}
}

// DefaultPageSize is how many objects one list request returns.
const DefaultPageSize = 500

// crKind is one IPAM custom resource kind.
type crKind struct {
	kind string
	gvr  schema.GroupVersionResource
}

var (
	blockKind    = crKind{ipam.KindIPAMBlock, BlockResource}
	affinityKind = crKind{ipam.KindBlockAffinity, AffinityResource}
	handleKind   = crKind{ipam.KindIPAMHandle, HandleResource}
	configKind   = crKind{ipam.KindIPAMConfig, ConfigResource}
)

// Store implements ipam.Store on the Kubernetes API.
type Store struct {
	dyn      dynamic.Interface
	host     string
	pageSize int64
	log      *slog.Logger
}

var _ ipam.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithPageSize sets the list page size (default DefaultPageSize).
func WithPageSize(n int64) Option {
	return func(s *Store) {
		if n > 0 {
			s.pageSize = n
		}
	}
}

// WithLogger sets where warnings about unreadable objects go (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// New returns a store talking to the API server of rc, e.g.
// (*kubernetes.Backend).RESTConfig().
func New(rc *rest.Config, opts ...Option) (*Store, error) {
	if rc == nil {
		return nil, errors.New("kubestore: nil REST config")
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubestore: kubernetes client: %w", err)
	}
	s := NewFromDynamic(dyn, opts...)
	s.host = rc.Host
	return s, nil
}

// NewFromDynamic returns a store on a dynamic client.
func NewFromDynamic(dyn dynamic.Interface, opts ...Option) *Store {
	s := &Store{dyn: dyn, pageSize: DefaultPageSize, log: slog.Default()}
	for _, o := range opts {
		o(s)
	}
	return s
}

func (s *Store) res(k crKind) dynamic.ResourceInterface { return s.dyn.Resource(k.gvr) }

var userInMessage = regexp.MustCompile(`User "([^"]*)"`)

// apiError maps an API error to the datastore's errors, as the Kubernetes
// resource backend does.
func (s *Store) apiError(err error, verb string, k crKind, key resources.Key) error {
	if err == nil {
		return nil
	}
	var status apierrors.APIStatus
	switch {
	case apierrors.IsNotFound(err):
		return datastore.NotFound(key)
	case apierrors.IsAlreadyExists(err):
		return datastore.Exists(key)
	case apierrors.IsConflict(err):
		return datastore.Conflict(key, "")
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		user := ""
		if m := userInMessage.FindStringSubmatch(err.Error()); m != nil {
			user = m[1]
		}
		return &kubernetes.ForbiddenError{Verb: verb, Resource: k.gvr.Resource + "." + Group, User: user, Cause: err}
	case errors.As(err, &status), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s %s: %w", verb, key, err)
	}
	return &datastore.KeyError{Err: datastore.ErrUnavailable, Key: key,
		Cause: fmt.Errorf("kubernetes API at %s: %s: %w", s.host, verb, err)}
}

// object builds a CR of kind k. spec is marshalled to JSON and read back
// with integers kept as int64, so large sequence numbers survive.
func object(k crKind, name, revision string, labels map[string]string, spec any) (*unstructured.Unstructured, error) {
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", k.kind, name, err)
	}
	var content map[string]any
	if err := utiljson.Unmarshal(data, &content); err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", k.kind, name, err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": APIVersion, "kind": k.kind, "spec": content}}
	u.SetName(name)
	u.SetResourceVersion(revision)
	if labels != nil {
		u.SetLabels(labels)
	}
	return u, nil
}

// decodeSpec reads the spec of u into out.
func decodeSpec(u *unstructured.Unstructured, out any) error {
	spec, _, err := unstructured.NestedFieldNoCopy(u.Object, "spec")
	if err != nil {
		return fmt.Errorf("%w: %s %s: %v", ipam.ErrInvalidValue, u.GetKind(), u.GetName(), err)
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("%w: %s %s: %v", ipam.ErrInvalidValue, u.GetKind(), u.GetName(), err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%w: %s %s: %v", ipam.ErrInvalidValue, u.GetKind(), u.GetName(), err)
	}
	return nil
}

// markedDeleted says whether u is half-way through a two-step delete
// (spec.deleted true, or "true" on a BlockAffinity).
func markedDeleted(u *unstructured.Unstructured) bool {
	v, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "deleted")
	if !ok {
		return false
	}
	switch d := v.(type) {
	case bool:
		return d
	case string:
		return strings.EqualFold(d, "true")
	}
	return false
}

// get reads the CR name; a CR marked deleted is removed and reads as not
// found.
func (s *Store) get(ctx context.Context, k crKind, name string, key resources.Key) (*unstructured.Unstructured, error) {
	u, err := s.res(k).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, s.apiError(err, "get", k, key)
	}
	if markedDeleted(u) {
		s.finishDelete(ctx, k, u)
		return nil, datastore.NotFound(key)
	}
	return u, nil
}

// finishDelete deletes a CR marked deleted, if it is still the same one.
func (s *Store) finishDelete(ctx context.Context, k crKind, u *unstructured.Unstructured) {
	err := s.deleteExactly(ctx, k, u)
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		s.log.Debug("could not finish deleting IPAM object", "kind", k.kind, "name", u.GetName(), "error", err)
	}
}

// deleteExactly deletes u only if its UID and resourceVersion still match.
func (s *Store) deleteExactly(ctx context.Context, k crKind, u *unstructured.Unstructured) error {
	uid, rv := u.GetUID(), u.GetResourceVersion()
	return s.res(k).Delete(ctx, u.GetName(), metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv},
	})
}

// create creates u; a same-named CR marked deleted is removed first.
func (s *Store) create(ctx context.Context, k crKind, u *unstructured.Unstructured, key resources.Key) (*unstructured.Unstructured, error) {
	u.SetResourceVersion("")
	out, err := s.res(k).Create(ctx, u, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		if old, gerr := s.res(k).Get(ctx, u.GetName(), metav1.GetOptions{}); gerr == nil && markedDeleted(old) {
			s.finishDelete(ctx, k, old)
			out, err = s.res(k).Create(ctx, u, metav1.CreateOptions{})
		}
	}
	if err != nil {
		return nil, s.apiError(err, "create", k, key)
	}
	return out, nil
}

// update replaces the CR with u, a compare-and-swap on u's resourceVersion;
// with none, the CR must exist (its current version is read first).
func (s *Store) update(ctx context.Context, k crKind, u *unstructured.Unstructured, key resources.Key) (*unstructured.Unstructured, error) {
	if u.GetResourceVersion() == "" {
		cur, err := s.get(ctx, k, u.GetName(), key)
		if err != nil {
			return nil, err
		}
		u.SetResourceVersion(cur.GetResourceVersion())
	}
	out, err := s.res(k).Update(ctx, u, metav1.UpdateOptions{})
	if err != nil {
		return nil, s.apiError(err, "update", k, key)
	}
	return out, nil
}

// remove is the two-step delete: u (already marked deleted) is written as a
// compare-and-swap, then the written version is deleted.
func (s *Store) remove(ctx context.Context, k crKind, u *unstructured.Unstructured, key resources.Key) error {
	marked, err := s.update(ctx, k, u, key)
	if err != nil {
		return err
	}
	err = s.deleteExactly(ctx, k, marked)
	if apierrors.IsNotFound(err) {
		// A reader saw the mark and finished the delete for us.
		return nil
	}
	return s.apiError(err, "delete", k, key)
}

// list calls fn for every CR of kind k matching selector, a page at a time.
func (s *Store) list(ctx context.Context, k crKind, selector string, fn func(*unstructured.Unstructured)) error {
	_, err := s.listRevision(ctx, k, selector, fn)
	return err
}

// listRevision is list, returning the resourceVersion every page was read
// at (the first page's: continue tokens keep it).
func (s *Store) listRevision(ctx context.Context, k crKind, selector string, fn func(*unstructured.Unstructured)) (string, error) {
	opts := metav1.ListOptions{Limit: s.pageSize, LabelSelector: selector}
	key := resources.Key{Kind: k.kind}
	rev := ""
	for {
		l, err := s.res(k).List(ctx, opts)
		if err != nil {
			return "", s.apiError(err, "list", k, key)
		}
		if rev == "" {
			rev = l.GetResourceVersion()
		}
		for i := range l.Items {
			if !markedDeleted(&l.Items[i]) {
				fn(&l.Items[i])
			}
		}
		if l.GetContinue() == "" {
			return rev, nil
		}
		opts.Continue = l.GetContinue()
	}
}
