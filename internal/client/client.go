// Package client is the Calico v3 client on top of a datastore.Interface: it
// defaults and validates objects, fills the metadata upstream's client fills
// (uid, creationTimestamp), enforces per-kind rules (read-only kinds,
// Kubernetes-owned policies) and implements apply/replace with optimistic
// concurrency.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

// Client wraps a datastore with Calico's semantics.
type Client struct {
	DS  datastore.Interface
	Now func() time.Time
	// ReplaceRetries bounds Get-then-Update attempts when the input carries no
	// resourceVersion (upstream: 5).
	ReplaceRetries int
}

// New returns a Client over ds.
func New(ds datastore.Interface) *Client {
	return &Client{DS: ds, Now: time.Now, ReplaceRetries: 5}
}

// ErrOutOfDate is returned by Update when the input's resourceVersion is stale.
var ErrOutOfDate = errors.New("resource version out of date")

// OutOfDateError carries both revisions; it matches datastore.ErrConflict too.
type OutOfDateError struct {
	Key            resources.Key
	Given, Current string
}

func (e *OutOfDateError) Error() string {
	return fmt.Sprintf("resource version '%s' is out of date (latest: %s). Update the resource YAML/JSON in order to make changes", e.Given, e.Current)
}

// Unwrap lets errors.Is match both ErrOutOfDate and datastore.ErrConflict.
func (e *OutOfDateError) Unwrap() []error { return []error{ErrOutOfDate, datastore.ErrConflict} }

// CheckWritable refuses operations upstream refuses: writing
// ClusterInformation through apply, and Kubernetes-owned network policies.
func CheckWritable(op string, r resources.Resource) error {
	key := resources.KeyOf(r)
	if key.Kind == "NetworkPolicy" && strings.HasPrefix(key.Name, "knp.default.") {
		return datastore.NotSupported(op, key, "kubernetes network policies must be managed through the kubernetes API")
	}
	if key.Kind == "ClusterInformation" && op == "apply" {
		return datastore.NotSupported(op, key, "resource is readonly")
	}
	if isDefaultAllow(key) {
		return datastore.NotSupported(op, key, defaultAllowReason)
	}
	return nil
}

const defaultAllowReason = "the built-in profile is read-only"

// isDefaultAllow reports whether key names the built-in
// projectcalico-default-allow profile.
func isDefaultAllow(key resources.Key) bool {
	return key.Kind == "Profile" && key.Name == resources.DefaultAllowProfileName
}

// Prepare defaults and validates r in place. It is what every write runs
// before touching the datastore, so invalid input never reaches it.
func Prepare(r resources.Resource) error {
	r.Default()
	return r.Validate()
}

// Create defaults, validates and creates r with a fresh uid and timestamp.
func (c *Client) Create(ctx context.Context, r resources.Resource) (resources.Resource, error) {
	if err := c.prepareCreate(r); err != nil {
		return nil, err
	}
	if err := c.checkTier(ctx, r); err != nil {
		return nil, err
	}
	if err := c.checkPool(ctx, r, nil); err != nil {
		return nil, err
	}
	return c.DS.Create(ctx, r)
}

// CreateMany is Create for a batch, using the datastore's bulk path when it
// has one. Results and errors are per item, in input order.
func (c *Client) CreateMany(ctx context.Context, rs []resources.Resource) ([]resources.Resource, []error) {
	out := make([]resources.Resource, len(rs))
	errs := make([]error, len(rs))
	var ok []resources.Resource
	var idx, deferred []int
	// Tiers created by this batch: a policy in one of them is written after
	// them (upstream writes a file's documents one after another).
	batchTiers := map[string]bool{}
	for _, r := range rs {
		if t, isTier := r.(*resources.Tier); isTier {
			batchTiers[t.Name] = true
		}
	}
	for i, r := range rs {
		if err := c.prepareCreate(r); err != nil {
			errs[i] = err
			continue
		}
		if err := c.checkTier(ctx, r); err != nil {
			if batchTiers[policyTier(r)] {
				deferred = append(deferred, i)
				continue
			}
			errs[i] = err
			continue
		}
		if err := c.checkPool(ctx, r, nil); err != nil {
			errs[i] = err
			continue
		}
		ok = append(ok, r)
		idx = append(idx, i)
	}
	if bc, isBatch := c.DS.(datastore.BatchCreator); isBatch && len(ok) > 1 {
		res, es := bc.CreateMany(ctx, ok)
		for j, i := range idx {
			out[i], errs[i] = res[j], es[j]
		}
	} else {
		for j, r := range ok {
			out[idx[j]], errs[idx[j]] = c.DS.Create(ctx, r)
		}
	}
	for _, i := range deferred {
		if errs[i] = c.checkTier(ctx, rs[i]); errs[i] == nil {
			out[i], errs[i] = c.DS.Create(ctx, rs[i])
		}
	}
	return out, errs
}

func (c *Client) prepareCreate(r resources.Resource) error {
	if r.GetName() == "" {
		return errors.New("resource name may not be empty")
	}
	if err := CheckWritable("create", r); err != nil {
		return err
	}
	if err := Prepare(r); err != nil {
		return err
	}
	r.SetResourceVersion("")
	r.SetUID(types.UID(uuid.NewString()))
	r.SetCreationTimestamp(metav1.NewTime(c.Now().UTC().Truncate(time.Second)))
	return nil
}

// checkTier refuses a policy whose tier does not exist, as upstream does.
func (c *Client) checkTier(ctx context.Context, r resources.Resource) error {
	tier := policyTier(r)
	if tier == "" {
		return nil
	}
	if _, err := c.DS.Get(ctx, resources.Key{Kind: "Tier", Name: tier}); err != nil {
		if errors.Is(err, datastore.ErrNotFound) {
			return fmt.Errorf("%s: tier '%s' does not exist", resources.KeyOf(r), tier)
		}
		return err
	}
	return nil
}

// Update replaces the stored object. With a resourceVersion in r it must be
// current (OutOfDateError otherwise); without one it reads the current
// revision and retries on conflict. Stored metadata (uid, creationTimestamp)
// is kept; labels and annotations come from r.
func (c *Client) Update(ctx context.Context, r resources.Resource) (resources.Resource, error) {
	if err := CheckWritable("update", r); err != nil {
		return nil, err
	}
	if err := Prepare(r); err != nil {
		return nil, err
	}
	key := resources.KeyOf(r)
	given := r.GetResourceVersion()
	attempts := max(c.ReplaceRetries, 1)
	var lastErr error
	for range attempts {
		cur, err := c.DS.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		if given != "" && given != cur.GetResourceVersion() {
			return nil, &OutOfDateError{Key: key, Given: given, Current: cur.GetResourceVersion()}
		}
		if err := c.checkPool(ctx, r, cur); err != nil {
			return nil, err
		}
		r.SetResourceVersion(cur.GetResourceVersion())
		r.SetUID(cur.GetUID())
		r.SetCreationTimestamp(cur.GetCreationTimestamp())
		out, err := c.DS.Update(ctx, r)
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, datastore.ErrConflict) || given != "" {
			if given != "" && errors.Is(err, datastore.ErrConflict) {
				if now, gerr := c.DS.Get(ctx, key); gerr == nil {
					return nil, &OutOfDateError{Key: key, Given: given, Current: now.GetResourceVersion()}
				}
			}
			return nil, err
		}
		lastErr = err
	}
	return nil, lastErr
}

// Apply creates r, or updates it when it exists. As upstream does, a create
// the datastore does not support (a Kubernetes Node, which only Kubernetes
// creates) also falls back to an update: read-only kinds then fail the
// update with their own reason.
func (c *Client) Apply(ctx context.Context, r resources.Resource) (resources.Resource, error) {
	if err := CheckWritable("apply", r); err != nil {
		return nil, err
	}
	given := r.GetResourceVersion()
	r.SetResourceVersion("")
	out, err := c.Create(ctx, r)
	if err == nil || !applyFallsBack(err) {
		return out, err
	}
	r.SetResourceVersion(given)
	return c.Update(ctx, r)
}

// applyFallsBack reports whether a failed create in apply is retried as an
// update: the object exists, or the datastore cannot create that kind.
func applyFallsBack(err error) bool {
	return errors.Is(err, datastore.ErrExists) || errors.Is(err, datastore.ErrNotSupported)
}

// ApplyMany is Apply for a batch: a bulk create, then updates for the items
// that already existed.
func (c *Client) ApplyMany(ctx context.Context, rs []resources.Resource) ([]resources.Resource, []error) {
	given := make([]string, len(rs))
	errs := make([]error, len(rs))
	var creatable []resources.Resource
	var idx []int
	for i, r := range rs {
		if err := CheckWritable("apply", r); err != nil {
			errs[i] = err
			continue
		}
		given[i] = r.GetResourceVersion()
		r.SetResourceVersion("")
		creatable = append(creatable, r)
		idx = append(idx, i)
	}
	out := make([]resources.Resource, len(rs))
	res, es := c.CreateMany(ctx, creatable)
	var retry []int
	for j, i := range idx {
		out[i], errs[i] = res[j], es[j]
		if errs[i] != nil && applyFallsBack(errs[i]) {
			retry = append(retry, i)
		}
	}
	runParallel(len(retry), 16, func(n int) {
		i := retry[n]
		rs[i].SetResourceVersion(given[i])
		out[i], errs[i] = c.Update(ctx, rs[i])
	})
	return out, errs
}

// Get reads one object, applying read-time defaults. The built-in
// projectcalico-default-allow profile is served on every datastore, stored
// or not, as upstream does.
func (c *Client) Get(ctx context.Context, key resources.Key) (resources.Resource, error) {
	r, err := c.DS.Get(ctx, key)
	if err != nil {
		if isDefaultAllow(key) && errors.Is(err, datastore.ErrNotFound) {
			return resources.DefaultAllowProfile(), nil
		}
		return nil, err
	}
	readDefaults(r)
	return r, nil
}

// List reads every object of a kind (in a namespace, or all). Tiers come in
// upstream's order (by order, unset last, then by name); profiles include the
// built-in projectcalico-default-allow first when the datastore does not
// hold it.
func (c *Client) List(ctx context.Context, opts datastore.ListOptions) (*datastore.ListResult, error) {
	l, err := c.DS.List(ctx, opts)
	if err != nil {
		return nil, err
	}
	for _, r := range l.Items {
		readDefaults(r)
	}
	switch opts.Kind {
	case "Tier":
		slices.SortStableFunc(l.Items, resources.CompareTiers)
	case "Profile":
		if opts.Continue == "" && strings.HasPrefix(resources.DefaultAllowProfileName, opts.NamePrefix) &&
			!slices.ContainsFunc(l.Items, func(r resources.Resource) bool { return r.GetName() == resources.DefaultAllowProfileName }) {
			l.Items = slices.Insert(l.Items, 0, resources.Resource(resources.DefaultAllowProfile()))
		}
	}
	return l, nil
}

// Delete removes one object (guarded by revision when given).
func (c *Client) Delete(ctx context.Context, key resources.Key, revision string) (resources.Resource, error) {
	if key.Kind == "NetworkPolicy" && strings.HasPrefix(key.Name, "knp.default.") {
		return nil, datastore.NotSupported("delete", key, "kubernetes network policies must be managed through the kubernetes API")
	}
	if isDefaultAllow(key) {
		return nil, datastore.NotSupported("delete", key, defaultAllowReason)
	}
	return c.DS.Delete(ctx, key, revision)
}

// readDefaults applies the defaults upstream also applies when reading
// (IPPool), so older stored objects print complete.
func readDefaults(r resources.Resource) {
	if resources.KindOf(r).Kind == "IPPool" {
		r.Default()
	}
}

func runParallel(n, workers int, fn func(i int)) {
	if n == 0 {
		return
	}
	workers = min(workers, n)
	next := make(chan int)
	done := make(chan struct{})
	for range workers {
		go func() {
			for i := range next {
				fn(i)
			}
			done <- struct{}{}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	for range workers {
		<-done
	}
}

// policyTier returns the tier of a policy object ("" for other kinds).
func policyTier(r resources.Resource) string {
	switch resources.KindOf(r).Kind {
	case "NetworkPolicy", "GlobalNetworkPolicy":
	default:
		return ""
	}
	var p struct {
		Spec struct {
			Tier string `json:"tier"`
		} `json:"spec"`
	}
	b, err := json.Marshal(r)
	if err != nil || json.Unmarshal(b, &p) != nil || p.Spec.Tier == "" {
		return "default"
	}
	return p.Spec.Tier
}
