package etcd

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/opencalico/calicoctl/resources"
)

// Prefix is where every v3 resource lives in etcd.
const Prefix = "/calico/resources/v3/projectcalico.org/"

// MetadataAnnotation carries a policy's v3 name in its stored value.
const MetadataAnnotation = "projectcalico.org/metadata"

// legacyDefaultTierPrefix was prepended to default-tier policy names by
// releases before 3.30.
const legacyDefaultTierPrefix = "default."

// policyKinds get the name annotation on write (spec §1.2).
var policyKinds = map[string]bool{
	"NetworkPolicy":             true,
	"GlobalNetworkPolicy":       true,
	"StagedNetworkPolicy":       true,
	"StagedGlobalNetworkPolicy": true,
}

// kindOf resolves a canonical kind name.
func kindOf(name string) (*resources.Kind, error) {
	k, isList := resources.LookupKind(name)
	if k == nil || isList {
		return nil, fmt.Errorf("etcd: unknown kind %q", name)
	}
	return k, nil
}

// kindPrefix is the key prefix of every object of k ("…/ippools/").
func kindPrefix(k *resources.Kind) string { return Prefix + k.Plural + "/" }

// etcdKey returns the key of one object.
func etcdKey(k *resources.Kind, namespace, name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("etcd: %s name must not be empty", k.Kind)
	}
	if strings.Contains(name, "/") {
		return "", fmt.Errorf("etcd: %s name %q must not contain '/'", k.Kind, name)
	}
	if !k.Namespaced {
		return kindPrefix(k) + name, nil
	}
	if namespace == "" {
		return "", fmt.Errorf("etcd: %s(%s) needs a namespace", k.Kind, name)
	}
	if strings.Contains(namespace, "/") {
		return "", fmt.Errorf("etcd: namespace %q must not contain '/'", namespace)
	}
	return kindPrefix(k) + namespace + "/" + name, nil
}

// keyFromEtcd parses a stored key back into namespace and name.
func keyFromEtcd(k *resources.Kind, etcdKey string) (namespace, name string, ok bool) {
	rest, ok := strings.CutPrefix(etcdKey, kindPrefix(k))
	if !ok || rest == "" {
		return "", "", false
	}
	if !k.Namespaced {
		if strings.Contains(rest, "/") {
			return "", "", false
		}
		return "", rest, true
	}
	namespace, name, ok = strings.Cut(rest, "/")
	if !ok || namespace == "" || name == "" || strings.Contains(name, "/") {
		return "", "", false
	}
	return namespace, name, true
}

// encode renders r as upstream stores it: apiVersion and kind set, no
// resourceVersion or selfLink, and for policy kinds the name annotation.
// r itself is not modified.
func encode(k *resources.Kind, r resources.Resource) ([]byte, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode %s(%s): %w", k.Kind, r.GetName(), err)
	}
	c := k.New()
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("encode %s(%s): %w", k.Kind, r.GetName(), err)
	}
	c.SetResourceVersion("")
	c.SetSelfLink("")
	if !k.Namespaced {
		c.SetNamespace("")
	}
	resources.SetTypeMeta(c)
	if policyKinds[k.Kind] {
		meta, err := json.Marshal(struct {
			Name string `json:"name"`
		}{c.GetName()})
		if err != nil {
			return nil, fmt.Errorf("encode %s(%s): %w", k.Kind, r.GetName(), err)
		}
		ann := make(map[string]string, len(c.GetAnnotations())+1)
		for key, v := range c.GetAnnotations() {
			ann[key] = v
		}
		ann[MetadataAnnotation] = string(meta)
		c.SetAnnotations(ann)
	}
	out, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode %s(%s): %w", k.Kind, r.GetName(), err)
	}
	return out, nil
}

// decode parses a stored value. Unknown fields are ignored: the value may
// have been written by upstream with fields this binary does not know.
// The namespace comes from the key; the revision becomes resourceVersion.
func decode(k *resources.Kind, etcdKey string, value []byte, revision int64) (resources.Resource, error) {
	r := k.New()
	if err := json.Unmarshal(value, r); err != nil {
		return nil, fmt.Errorf("decode %s: %w", etcdKey, err)
	}
	resources.SetTypeMeta(r)
	if ns, name, ok := keyFromEtcd(k, etcdKey); ok {
		if k.Namespaced {
			r.SetNamespace(ns)
		}
		if r.GetName() == "" {
			r.SetName(name)
		}
	}
	r.SetResourceVersion(strconv.FormatInt(revision, 10))
	if policyKinds[k.Kind] {
		if err := restorePolicyName(r, value); err != nil {
			return nil, fmt.Errorf("decode %s: %w", etcdKey, err)
		}
	}
	return r, nil
}

// restorePolicyName applies upstream's read rules for policy names: the name
// in the metadata annotation wins (and the annotation is dropped); without
// it, a default-tier policy loses a legacy "default." prefix.
func restorePolicyName(r resources.Resource, value []byte) error {
	ann := r.GetAnnotations()
	if raw, ok := ann[MetadataAnnotation]; ok {
		var meta struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal([]byte(raw), &meta); err != nil {
			return fmt.Errorf("annotation %s: %w", MetadataAnnotation, err)
		}
		if meta.Name != "" {
			r.SetName(meta.Name)
		}
		delete(ann, MetadataAnnotation)
		if len(ann) == 0 {
			ann = nil
		}
		r.SetAnnotations(ann)
		return nil
	}
	var tier struct {
		Spec struct {
			Tier string `json:"tier"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(value, &tier); err != nil {
		return err
	}
	if tier.Spec.Tier == "" || tier.Spec.Tier == "default" {
		r.SetName(strings.TrimPrefix(r.GetName(), legacyDefaultTierPrefix))
	}
	return nil
}
