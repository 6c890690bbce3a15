package kubestore

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/ipam"
)

func checkCIDR(cidr netip.Prefix) error {
	if !cidr.IsValid() {
		return fmt.Errorf("%w: invalid block CIDR", ipam.ErrInvalidValue)
	}
	return nil
}

// Blocks.

func decodeBlock(u *unstructured.Unstructured) (*ipam.Block, error) {
	var spec ipam.IPAMBlockCRSpec
	if err := decodeSpec(u, &spec); err != nil {
		return nil, err
	}
	b, err := ipam.BlockFromCRSpec(spec, u.GetResourceVersion())
	if err != nil {
		return nil, fmt.Errorf("IPAMBlock %s: %w", u.GetName(), err)
	}
	return b, nil
}

func blockObject(b *ipam.Block) (*unstructured.Unstructured, error) {
	if b == nil {
		return nil, errors.New("ipam: nil block")
	}
	if err := checkCIDR(b.CIDR); err != nil {
		return nil, err
	}
	return object(blockKind, ipam.BlockCRName(b.CIDR), b.Revision, nil, ipam.BlockToCRSpec(b))
}

func (s *Store) GetBlock(ctx context.Context, cidr netip.Prefix) (*ipam.Block, error) {
	if err := checkCIDR(cidr); err != nil {
		return nil, err
	}
	u, err := s.get(ctx, blockKind, ipam.BlockCRName(cidr), ipam.BlockResourceKey(cidr))
	if err != nil {
		return nil, err
	}
	return decodeBlock(u)
}

func (s *Store) ListBlocks(ctx context.Context) ([]*ipam.Block, error) {
	var out []*ipam.Block
	err := s.list(ctx, blockKind, "", func(u *unstructured.Unstructured) {
		b, err := decodeBlock(u)
		if err != nil {
			s.log.Warn("skipping unreadable IPAM block", "name", u.GetName(), "error", err)
			return
		}
		out = append(out, b)
	})
	if err != nil {
		return nil, fmt.Errorf("list IPAM blocks: %w", err)
	}
	return out, nil
}

func (s *Store) CreateBlock(ctx context.Context, b *ipam.Block) (*ipam.Block, error) {
	u, err := blockObject(b)
	if err != nil {
		return nil, err
	}
	out, err := s.create(ctx, blockKind, u, ipam.BlockResourceKey(b.CIDR))
	if err != nil {
		return nil, err
	}
	return decodeBlock(out)
}

func (s *Store) UpdateBlock(ctx context.Context, b *ipam.Block) (*ipam.Block, error) {
	u, err := blockObject(b)
	if err != nil {
		return nil, err
	}
	out, err := s.update(ctx, blockKind, u, ipam.BlockResourceKey(b.CIDR))
	if err != nil {
		return nil, err
	}
	return decodeBlock(out)
}

func (s *Store) DeleteBlock(ctx context.Context, b *ipam.Block) error {
	if b == nil {
		return errors.New("ipam: nil block")
	}
	marked := *b
	marked.Deleted = true
	u, err := blockObject(&marked)
	if err != nil {
		return err
	}
	return s.remove(ctx, blockKind, u, ipam.BlockResourceKey(b.CIDR))
}

// Affinities.

func decodeAffinity(u *unstructured.Unstructured) (*ipam.Affinity, error) {
	var spec ipam.BlockAffinityCRSpec
	if err := decodeSpec(u, &spec); err != nil {
		return nil, err
	}
	a, err := ipam.AffinityFromCRSpec(spec, u.GetResourceVersion())
	if err != nil {
		return nil, fmt.Errorf("BlockAffinity %s: %w", u.GetName(), err)
	}
	return a, nil
}

func affinityObject(a *ipam.Affinity) (*unstructured.Unstructured, error) {
	if a == nil {
		return nil, errors.New("ipam: nil affinity")
	}
	if err := ipam.CheckOwnerName("affinity host", a.Host); err != nil {
		return nil, err
	}
	if err := checkCIDR(a.CIDR); err != nil {
		return nil, err
	}
	switch a.Type {
	case "", ipam.AffinityTypeHost, ipam.AffinityTypeVirtual:
	default:
		return nil, fmt.Errorf("%w: affinity type %q", ipam.ErrInvalidValue, a.Type)
	}
	return object(affinityKind, ipam.AffinityCRName(a.Host, a.CIDR), a.Revision, ipam.AffinityCRLabels(a), ipam.AffinityToCRSpec(a))
}

// GetAffinity returns host's affinity (of either type) to cidr.
func (s *Store) GetAffinity(ctx context.Context, host string, cidr netip.Prefix) (*ipam.Affinity, error) {
	if err := ipam.CheckOwnerName("affinity host", host); err != nil {
		return nil, err
	}
	if err := checkCIDR(cidr); err != nil {
		return nil, err
	}
	rk := ipam.AffinityResourceKey(host, cidr)
	u, err := s.get(ctx, affinityKind, ipam.AffinityCRName(host, cidr), rk)
	if err != nil {
		return nil, err
	}
	a, err := decodeAffinity(u)
	if err != nil {
		return nil, err
	}
	if a.Host != host || a.CIDR != cidr.Masked() {
		// A long host name cut short to the same CR name as another's.
		return nil, datastore.NotFound(rk)
	}
	return a, nil
}

// ListAffinities lists host's affinities by their hostname-hash label
// (host "" = every owner).
func (s *Store) ListAffinities(ctx context.Context, host string) ([]*ipam.Affinity, error) {
	selector := ""
	if host != "" {
		if err := ipam.CheckOwnerName("affinity host", host); err != nil {
			return nil, err
		}
		selector = labels.SelectorFromSet(ipam.AffinityCRSelector(host)).String()
	}
	var out []*ipam.Affinity
	err := s.list(ctx, affinityKind, selector, func(u *unstructured.Unstructured) {
		a, err := decodeAffinity(u)
		if err != nil {
			s.log.Warn("skipping unreadable IPAM block affinity", "name", u.GetName(), "error", err)
			return
		}
		if host == "" || a.Host == host {
			out = append(out, a)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list IPAM block affinities: %w", err)
	}
	return out, nil
}

func (s *Store) CreateAffinity(ctx context.Context, a *ipam.Affinity) (*ipam.Affinity, error) {
	u, err := affinityObject(a)
	if err != nil {
		return nil, err
	}
	out, err := s.create(ctx, affinityKind, u, ipam.AffinityResourceKey(a.Host, a.CIDR))
	if err != nil {
		return nil, err
	}
	return decodeAffinity(out)
}

func (s *Store) UpdateAffinity(ctx context.Context, a *ipam.Affinity) (*ipam.Affinity, error) {
	u, err := affinityObject(a)
	if err != nil {
		return nil, err
	}
	out, err := s.update(ctx, affinityKind, u, ipam.AffinityResourceKey(a.Host, a.CIDR))
	if err != nil {
		return nil, err
	}
	return decodeAffinity(out)
}

func (s *Store) DeleteAffinity(ctx context.Context, a *ipam.Affinity) error {
	if a == nil {
		return errors.New("ipam: nil affinity")
	}
	marked := *a
	marked.Deleted = true
	u, err := affinityObject(&marked)
	if err != nil {
		return err
	}
	return s.remove(ctx, affinityKind, u, ipam.AffinityResourceKey(a.Host, a.CIDR))
}

// Handles.

func decodeHandle(u *unstructured.Unstructured) (*ipam.Handle, error) {
	var spec ipam.IPAMHandleCRSpec
	if err := decodeSpec(u, &spec); err != nil {
		return nil, err
	}
	if spec.HandleID == "" {
		// Objects written without handleID are named by the ID itself.
		spec.HandleID = u.GetName()
	}
	return ipam.HandleFromCRSpec(spec, u.GetResourceVersion()), nil
}

func handleObject(h *ipam.Handle) (*unstructured.Unstructured, error) {
	if h == nil {
		return nil, errors.New("ipam: nil handle")
	}
	if err := ipam.CheckOwnerName("handle ID", h.ID); err != nil {
		return nil, err
	}
	return object(handleKind, ipam.HandleCRName(h.ID), h.Revision, nil, ipam.HandleToCRSpec(h))
}

// GetHandle reads the handle id. Kubernetes names are lower case, so IDs
// differing only in case name the same object (as upstream); the ID
// returned is the one stored in spec.handleID.
func (s *Store) GetHandle(ctx context.Context, id string) (*ipam.Handle, error) {
	if err := ipam.CheckOwnerName("handle ID", id); err != nil {
		return nil, err
	}
	u, err := s.get(ctx, handleKind, ipam.HandleCRName(id), ipam.HandleResourceKey(id))
	if err != nil {
		return nil, err
	}
	return decodeHandle(u)
}

func (s *Store) ListHandles(ctx context.Context) ([]*ipam.Handle, error) {
	var out []*ipam.Handle
	err := s.list(ctx, handleKind, "", func(u *unstructured.Unstructured) {
		h, err := decodeHandle(u)
		if err != nil {
			s.log.Warn("skipping unreadable IPAM handle", "name", u.GetName(), "error", err)
			return
		}
		out = append(out, h)
	})
	if err != nil {
		return nil, fmt.Errorf("list IPAM handles: %w", err)
	}
	return out, nil
}

func (s *Store) CreateHandle(ctx context.Context, h *ipam.Handle) (*ipam.Handle, error) {
	u, err := handleObject(h)
	if err != nil {
		return nil, err
	}
	out, err := s.create(ctx, handleKind, u, ipam.HandleResourceKey(h.ID))
	if err != nil {
		return nil, err
	}
	return decodeHandle(out)
}

func (s *Store) UpdateHandle(ctx context.Context, h *ipam.Handle) (*ipam.Handle, error) {
	u, err := handleObject(h)
	if err != nil {
		return nil, err
	}
	out, err := s.update(ctx, handleKind, u, ipam.HandleResourceKey(h.ID))
	if err != nil {
		return nil, err
	}
	return decodeHandle(out)
}

func (s *Store) DeleteHandle(ctx context.Context, h *ipam.Handle) error {
	if h == nil {
		return errors.New("ipam: nil handle")
	}
	marked := *h
	marked.Deleted = true
	u, err := handleObject(&marked)
	if err != nil {
		return err
	}
	return s.remove(ctx, handleKind, u, ipam.HandleResourceKey(h.ID))
}

// Configuration.

// configFields are the spec fields SetConfig owns; any others (and the
// object's metadata, e.g. what the v3 IPAMConfiguration kind keeps there)
// are preserved.
var configFields = []string{"strictAffinity", "autoAllocateBlocks", "maxBlocksPerHost", "kubeVirtVMAddressPersistence", "ipCooldownSeconds"}

func decodeConfig(u *unstructured.Unstructured) (*ipam.Config, error) {
	var spec ipam.IPAMConfigCRSpec
	if err := decodeSpec(u, &spec); err != nil {
		return nil, err
	}
	return ipam.ConfigFromCRSpec(spec, u.GetResourceVersion()), nil
}

// GetConfig reads the IPAMConfig "default"; when it is absent the result is
// ipam.DefaultConfig() with Revision "".
func (s *Store) GetConfig(ctx context.Context) (*ipam.Config, error) {
	u, err := s.get(ctx, configKind, ipam.ConfigName, ipam.ConfigResourceKey())
	if errors.Is(err, datastore.ErrNotFound) {
		return ipam.DefaultConfig(), nil
	}
	if err != nil {
		return nil, err
	}
	return decodeConfig(u)
}

// SetConfig creates the config when c.Revision is "" (ErrExists if one is
// stored) and otherwise compare-and-swaps it, keeping fields it does not own.
func (s *Store) SetConfig(ctx context.Context, c *ipam.Config) (*ipam.Config, error) {
	if c == nil {
		return nil, errors.New("ipam: nil config")
	}
	rk := ipam.ConfigResourceKey()
	want, err := object(configKind, ipam.ConfigName, c.Revision, nil, ipam.ConfigToCRSpec(c))
	if err != nil {
		return nil, err
	}
	if c.Revision == "" {
		out, err := s.create(ctx, configKind, want, rk)
		if err != nil {
			return nil, err
		}
		return decodeConfig(out)
	}
	cur, err := s.get(ctx, configKind, ipam.ConfigName, rk)
	if err != nil {
		return nil, err
	}
	if cur.GetResourceVersion() != c.Revision {
		return nil, datastore.Conflict(rk, "")
	}
	spec, _, _ := unstructured.NestedMap(cur.Object, "spec")
	if spec == nil {
		spec = map[string]any{}
	}
	wantSpec, _, _ := unstructured.NestedMap(want.Object, "spec")
	for _, f := range configFields {
		delete(spec, f)
		if v, ok := wantSpec[f]; ok {
			spec[f] = v
		}
	}
	if err := unstructured.SetNestedMap(cur.Object, spec, "spec"); err != nil {
		return nil, fmt.Errorf("IPAMConfig: %w", err)
	}
	// The update is still guarded by c.Revision (cur's resourceVersion).
	out, err := s.update(ctx, configKind, cur, rk)
	if err != nil {
		return nil, err
	}
	return decodeConfig(out)
}
