package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

// builtinTier is a tier upstream's client creates on first use.
type builtinTier struct {
	name   string
	order  float64
	action string
}

// The built-in tiers of the newest upstream line.
var builtinTiers = []builtinTier{
	{"default", 1000000, "Deny"},
	{"kube-admin", 1000, "Pass"},
	{"kube-baseline", 10000000, "Pass"},
}

// InitOptions says what EnsureInitialized writes into a new ClusterInformation.
type InitOptions struct {
	CalicoVersion string
	ClusterType   string
}

// EnsureInitialized creates ClusterInformation "default" (with a random
// clusterGUID and datastoreReady true) and the built-in tiers when they are
// missing, as upstream's client does on first use. When opts carries a
// version or cluster type and the stored ones are empty, they are filled in.
func (c *Client) EnsureInitialized(ctx context.Context, opts InitOptions) error {
	var errs []error
	if err := c.ensureClusterInfo(ctx, opts); err != nil {
		errs = append(errs, err)
	}
	for _, t := range builtinTiers {
		if err := c.ensureTier(ctx, t); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Client) ensureClusterInfo(ctx context.Context, opts InitOptions) error {
	key := resources.Key{Kind: "ClusterInformation", Name: "default"}
	cur, err := c.DS.Get(ctx, key)
	if errors.Is(err, datastore.ErrNotFound) {
		guid := make([]byte, 16)
		if _, err := rand.Read(guid); err != nil {
			return err
		}
		spec := map[string]any{"clusterGUID": hex.EncodeToString(guid), "datastoreReady": true}
		if opts.CalicoVersion != "" {
			spec["calicoVersion"] = opts.CalicoVersion
		}
		if opts.ClusterType != "" {
			spec["clusterType"] = opts.ClusterType
		}
		r, err := fromMap("ClusterInformation", "default", spec)
		if err != nil {
			return err
		}
		if _, err := c.Create(ctx, r); err != nil && !errors.Is(err, datastore.ErrExists) {
			return fmt.Errorf("initializing ClusterInformation: %w", err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if opts.CalicoVersion == "" && opts.ClusterType == "" {
		return nil
	}
	m, err := toMap(cur)
	if err != nil {
		return err
	}
	spec, _ := m["spec"].(map[string]any)
	if spec == nil {
		spec = map[string]any{}
	}
	changed := false
	if v, _ := spec["calicoVersion"].(string); v == "" && opts.CalicoVersion != "" {
		spec["calicoVersion"], changed = opts.CalicoVersion, true
	}
	if v, _ := spec["clusterType"].(string); opts.ClusterType != "" {
		if merged := MergeClusterTypes(v, opts.ClusterType); merged != v {
			spec["clusterType"], changed = merged, true
		}
	}
	if !changed {
		return nil
	}
	m["spec"] = spec
	upd, err := fromRaw("ClusterInformation", m)
	if err != nil {
		return err
	}
	_, err = c.DS.Update(ctx, upd)
	return err
}

func (c *Client) ensureTier(ctx context.Context, t builtinTier) error {
	key := resources.Key{Kind: "Tier", Name: t.name}
	if _, err := c.DS.Get(ctx, key); !errors.Is(err, datastore.ErrNotFound) {
		return err
	}
	r, err := fromMap("Tier", t.name, map[string]any{"order": t.order, "defaultAction": t.action})
	if err != nil {
		return err
	}
	if _, err := c.Create(ctx, r); err != nil && !errors.Is(err, datastore.ErrExists) {
		return fmt.Errorf("initializing tier %s: %w", t.name, err)
	}
	return nil
}

func fromMap(kind, name string, spec map[string]any) (resources.Resource, error) {
	return fromRaw(kind, map[string]any{
		"apiVersion": resources.APIVersion, "kind": kind,
		"metadata": map[string]any{"name": name}, "spec": spec,
	})
}

func fromRaw(kind string, m map[string]any) (resources.Resource, error) {
	k, _ := resources.LookupKind(kind)
	if k == nil {
		return nil, fmt.Errorf("unknown kind %s", kind)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	r := k.New()
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("building %s: %w", kind, err)
	}
	return r, nil
}

func toMap(r resources.Resource) (map[string]any, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

// MergeClusterTypes adds the comma-separated types of add that cur lacks,
// keeping cur's order, as upstream merges clusterType on every start.
func MergeClusterTypes(cur, add string) string {
	var out []string
	seen := map[string]bool{}
	for _, list := range []string{cur, add} {
		for _, t := range strings.Split(list, ",") {
			if t = strings.TrimSpace(t); t != "" && !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	return strings.Join(out, ",")
}

// KDDClusterType appends "kdd" to a cluster type on the Kubernetes
// datastore (last, as upstream's client does): "" -> "kdd",
// "k8s,bgp" -> "k8s,bgp,kdd".
func KDDClusterType(clusterType string) string {
	clusterType = strings.TrimSuffix(strings.TrimSpace(clusterType), ",")
	if clusterType == "" {
		return "kdd"
	}
	return MergeClusterTypes(clusterType, "kdd")
}
