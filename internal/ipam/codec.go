package ipam

// Upstream's storage formats for IPAM objects: the etcd keys under
// /calico/ipam/v2/ and their JSON values (libcalico-go's backend model), and
// the crd.projectcalico.org/v1 CR specs used on the Kubernetes datastore.
// Stores only move bytes; every format decision lives here.

import (
	"crypto/sha256"
	"crypto/sha3"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opencalico/calicoctl/resources"
)

// etcd key layout.
const (
	// IPAMKeyPrefix is the root of every IPAM key.
	IPAMKeyPrefix = "/calico/ipam/v2/"
	// BlockKeyPrefix is the root of the block keys (both IP families).
	BlockKeyPrefix = IPAMKeyPrefix + "assignment/"
	// HandleKeyPrefix is the root of the handle keys.
	HandleKeyPrefix = IPAMKeyPrefix + "handle/"
	// ConfigKey holds the cluster-wide IPAM configuration.
	ConfigKey = IPAMKeyPrefix + "config"
)

// Affinity types (Affinity.Type; "" reads as AffinityTypeHost).
const (
	AffinityTypeHost    = "host"
	AffinityTypeVirtual = "virtual"
)

// Resource kinds used in datastore errors about IPAM objects.
const (
	KindIPAMBlock     = "IPAMBlock"
	KindBlockAffinity = "BlockAffinity"
	KindIPAMHandle    = "IPAMHandle"
	KindIPAMConfig    = "IPAMConfig"
)

// ConfigName is the name of the single IPAMConfig object.
const ConfigName = "default"

// ErrInvalidValue is wrapped by every decoding and key-parsing error.
var ErrInvalidValue = errors.New("invalid IPAM value")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidValue, fmt.Sprintf(format, args...))
}

// cidrText renders a CIDR the way upstream does (masked, canonical address).
func cidrText(p netip.Prefix) string { return p.Masked().String() }

func ipVersion(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 4
	}
	return 6
}

// ParseBlockCIDR parses a CIDR as upstream does: the address is masked to the
// network ("10.0.0.7/26" reads as 10.0.0.0/26).
func ParseBlockCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, invalidf("cidr %q: %v", s, err)
	}
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// keyCIDR is the CIDR as it appears in a key: only the "/" becomes "-".
func keyCIDR(p netip.Prefix) string { return strings.Replace(cidrText(p), "/", "-", 1) }

func parseKeyCIDR(s string) (netip.Prefix, error) {
	i := strings.LastIndexByte(s, '-')
	if i < 0 {
		return netip.Prefix{}, invalidf("no prefix length in %q", s)
	}
	return ParseBlockCIDR(s[:i] + "/" + s[i+1:])
}

// BlockKey is the etcd key of the block cidr, e.g.
// /calico/ipam/v2/assignment/ipv4/block/10.10.3.0-26.
func BlockKey(cidr netip.Prefix) string {
	return fmt.Sprintf("%sipv%d/block/%s", BlockKeyPrefix, ipVersion(cidr), keyCIDR(cidr))
}

// ParseBlockKey returns the CIDR named by a block key.
func ParseBlockKey(key string) (netip.Prefix, error) {
	rest, ok := strings.CutPrefix(key, BlockKeyPrefix)
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 3 || (parts[0] != "ipv4" && parts[0] != "ipv6") || parts[1] != "block" {
		return netip.Prefix{}, invalidf("not a block key: %q", key)
	}
	return parseKeyCIDR(parts[2])
}

func affinityTypeOrHost(t string) string {
	if t == "" {
		return AffinityTypeHost
	}
	return t
}

// AffinityKey is the etcd key of host's affinity to the block cidr, e.g.
// /calico/ipam/v2/host/node1/ipv4/block/10.10.3.0-26.
func AffinityKey(host string, cidr netip.Prefix) string {
	return AffinityKeyOfType(AffinityTypeHost, host, cidr)
}

// AffinityKeyOfType is AffinityKey for an owner of the given type ("host" or
// "virtual"; "" means host).
func AffinityKeyOfType(affinityType, host string, cidr netip.Prefix) string {
	return fmt.Sprintf("%sipv%d/block/%s", AffinityHostPrefix(affinityType, host), ipVersion(cidr), keyCIDR(cidr))
}

// AffinityTypePrefix is the prefix of every affinity of one owner type.
func AffinityTypePrefix(affinityType string) string {
	return IPAMKeyPrefix + affinityTypeOrHost(affinityType) + "/"
}

// AffinityHostPrefix is the prefix of every affinity of one owner.
func AffinityHostPrefix(affinityType, host string) string {
	return AffinityTypePrefix(affinityType) + host + "/"
}

// ParseAffinityKey returns the owner type, owner and block CIDR named by an
// affinity key.
func ParseAffinityKey(key string) (affinityType, host string, cidr netip.Prefix, err error) {
	rest, ok := strings.CutPrefix(key, IPAMKeyPrefix)
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 5 || (parts[0] != AffinityTypeHost && parts[0] != AffinityTypeVirtual) ||
		parts[1] == "" || (parts[2] != "ipv4" && parts[2] != "ipv6") || parts[3] != "block" {
		return "", "", netip.Prefix{}, invalidf("not a block affinity key: %q", key)
	}
	cidr, err = parseKeyCIDR(parts[4])
	return parts[0], parts[1], cidr, err
}

// HandleKey is the etcd key of a handle (the ID keeps its case).
func HandleKey(id string) string { return HandleKeyPrefix + id }

// ParseHandleKey returns the handle ID named by a handle key.
func ParseHandleKey(key string) (string, error) {
	id, ok := strings.CutPrefix(key, HandleKeyPrefix)
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", invalidf("not a handle key: %q", key)
	}
	return id, nil
}

// CheckOwnerName rejects affinity owners and handle IDs that cannot be part
// of a key.
func CheckOwnerName(what, name string) error {
	if name == "" || strings.Contains(name, "/") {
		return invalidf("%s %q must be non-empty and contain no '/'", what, name)
	}
	return nil
}

// Keys used in datastore errors (the same on every datastore).

// BlockResourceKey names the block cidr in errors: IPAMBlock(10.10.3.0/26).
func BlockResourceKey(cidr netip.Prefix) resources.Key {
	return resources.Key{Kind: KindIPAMBlock, Name: cidrText(cidr)}
}

// AffinityResourceKey names an affinity in errors by its CR name:
// BlockAffinity(node1-10-10-3-0-26).
func AffinityResourceKey(host string, cidr netip.Prefix) resources.Key {
	return resources.Key{Kind: KindBlockAffinity, Name: AffinityCRName(host, cidr)}
}

// HandleResourceKey names a handle in errors: IPAMHandle(<id>).
func HandleResourceKey(id string) resources.Key {
	return resources.Key{Kind: KindIPAMHandle, Name: id}
}

// ConfigResourceKey names the IPAM configuration in errors: IPAMConfig(default).
func ConfigResourceKey() resources.Key {
	return resources.Key{Kind: KindIPAMConfig, Name: ConfigName}
}

// etcd values.

// attributeJSON is one entry of a block's "attributes" (the same in etcd and
// in the IPAMBlock CR).
type attributeJSON struct {
	HandleID   *string           `json:"handle_id,omitempty"`
	Secondary  map[string]string `json:"secondary,omitempty"`
	Alternate  map[string]string `json:"alternate,omitempty"`
	ReleasedAt *metav1.Time      `json:"releasedAt,omitempty"`
	// LegacyAlternate is accepted on read only: the name some notes give the
	// alternate owner. Upstream's code writes "alternate".
	LegacyAlternate map[string]string `json:"alternateOwnerAttrs,omitempty"`
}

// blockJSON is upstream's AllocationBlock.
type blockJSON struct {
	CIDR                        string            `json:"cidr"`
	Affinity                    *string           `json:"affinity"`
	AffinityClaimTime           *metav1.Time      `json:"affinity_claim_time,omitempty"`
	Allocations                 []*int            `json:"allocations"`
	Unallocated                 []int             `json:"unallocated"`
	Attributes                  []attributeJSON   `json:"attributes"`
	SequenceNumber              uint64            `json:"sequenceNumber"`
	SequenceNumberForAllocation map[string]uint64 `json:"sequenceNumberForAllocation"`
	Deleted                     bool              `json:"deleted"`
	HostAffinity                *string           `json:"hostAffinity,omitempty"`
}

func toMetaTime(t *time.Time) *metav1.Time {
	if t == nil {
		return nil
	}
	mt := metav1.NewTime(*t)
	return &mt
}

func fromMetaTime(t *metav1.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func encodeAttributes(in []AllocationAttribute) []attributeJSON {
	if in == nil {
		return nil
	}
	out := make([]attributeJSON, len(in))
	for i, a := range in {
		out[i] = attributeJSON{
			HandleID:   a.HandleID,
			Secondary:  a.ActiveOwnerAttrs,
			Alternate:  a.AlternateOwnerAttrs,
			ReleasedAt: toMetaTime(a.ReleasedAt),
		}
	}
	return out
}

func decodeAttributes(in []attributeJSON) []AllocationAttribute {
	if in == nil {
		return nil
	}
	out := make([]AllocationAttribute, len(in))
	for i, a := range in {
		alt := a.Alternate
		if alt == nil {
			alt = a.LegacyAlternate
		}
		out[i] = AllocationAttribute{
			HandleID:            a.HandleID,
			ActiveOwnerAttrs:    a.Secondary,
			AlternateOwnerAttrs: alt,
			ReleasedAt:          fromMetaTime(a.ReleasedAt),
		}
	}
	return out
}

func toBlockJSON(b *Block) blockJSON {
	v := blockJSON{
		CIDR:                        cidrText(b.CIDR),
		AffinityClaimTime:           toMetaTime(b.AffinityClaimTime),
		Allocations:                 b.Allocations,
		Unallocated:                 b.Unallocated,
		Attributes:                  encodeAttributes(b.Attributes),
		SequenceNumber:              b.SequenceNumber,
		SequenceNumberForAllocation: b.SequenceNumberForAllocation,
		Deleted:                     b.Deleted,
	}
	if b.Affinity != "" {
		aff := b.Affinity
		v.Affinity = &aff
	}
	return v
}

func fromBlockJSON(v blockJSON) (*Block, error) {
	cidr, err := ParseBlockCIDR(v.CIDR)
	if err != nil {
		return nil, err
	}
	b := &Block{
		CIDR:                        cidr,
		AffinityClaimTime:           fromMetaTime(v.AffinityClaimTime),
		Allocations:                 v.Allocations,
		Unallocated:                 v.Unallocated,
		Attributes:                  decodeAttributes(v.Attributes),
		SequenceNumber:              v.SequenceNumber,
		SequenceNumberForAllocation: v.SequenceNumberForAllocation,
		Deleted:                     v.Deleted,
	}
	switch {
	case v.Affinity != nil:
		b.Affinity = *v.Affinity
	case v.HostAffinity != nil && *v.HostAffinity != "":
		// Pre-"affinity" blocks name only the host.
		b.Affinity = AffinityTypeHost + ":" + *v.HostAffinity
	}
	if n, ok := capacityOf(cidr); ok && len(b.Allocations) != n {
		return nil, invalidf("block %s has %d allocations, want %d", v.CIDR, len(b.Allocations), n)
	}
	return b, nil
}

// EncodeBlock renders b as upstream's AllocationBlock JSON. Nil slices and
// maps are written as null, empty ones as [] / {}, so a decoded value is
// written back as it was read.
func EncodeBlock(b *Block) ([]byte, error) {
	data, err := json.Marshal(toBlockJSON(b))
	if err != nil {
		return nil, fmt.Errorf("encode block %s: %w", b.CIDR, err)
	}
	return data, nil
}

// DecodeBlock parses upstream's AllocationBlock JSON. Revision is left empty.
func DecodeBlock(data []byte) (*Block, error) {
	var v blockJSON
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, invalidf("block: %v", err)
	}
	return fromBlockJSON(v)
}

type affinityJSON struct {
	State   AffinityState `json:"state"`
	Deleted bool          `json:"deleted"`
}

func stateOrConfirmed(s AffinityState) AffinityState {
	if s == "" {
		return StateConfirmed
	}
	return s
}

// EncodeAffinity renders the value of an affinity key:
// {"state":"confirmed","deleted":false}. An empty state is written as confirmed.
func EncodeAffinity(a *Affinity) ([]byte, error) {
	data, err := json.Marshal(affinityJSON{State: stateOrConfirmed(a.State), Deleted: a.Deleted})
	if err != nil {
		return nil, fmt.Errorf("encode affinity: %w", err)
	}
	return data, nil
}

// DecodeAffinity parses an affinity from its etcd key and value. An empty
// value (written by old releases) or an empty state means confirmed.
func DecodeAffinity(key string, value []byte) (*Affinity, error) {
	typ, host, cidr, err := ParseAffinityKey(key)
	if err != nil {
		return nil, err
	}
	var v affinityJSON
	if len(value) > 0 {
		if err := json.Unmarshal(value, &v); err != nil {
			return nil, invalidf("block affinity %s: %v", key, err)
		}
	}
	return &Affinity{Host: host, Type: typ, CIDR: cidr, State: stateOrConfirmed(v.State), Deleted: v.Deleted}, nil
}

type handleJSON struct {
	Block   map[string]int `json:"block"`
	Deleted bool           `json:"deleted"`
}

// EncodeHandle renders the value of a handle key:
// {"block":{"10.10.3.0/26":2},"deleted":false}.
func EncodeHandle(h *Handle) ([]byte, error) {
	data, err := json.Marshal(handleJSON{Block: h.Block, Deleted: h.Deleted})
	if err != nil {
		return nil, fmt.Errorf("encode handle %s: %w", h.ID, err)
	}
	return data, nil
}

// DecodeHandle parses the value of the handle id.
func DecodeHandle(id string, value []byte) (*Handle, error) {
	var v handleJSON
	if err := json.Unmarshal(value, &v); err != nil {
		return nil, invalidf("handle %s: %v", id, err)
	}
	return &Handle{ID: id, Block: v.Block, Deleted: v.Deleted}, nil
}

// configJSON is upstream's IPAMConfig value; every field is omitempty, so
// {} reads as strict false, auto-allocate false.
type configJSON struct {
	StrictAffinity               bool   `json:"strict_affinity,omitempty"`
	AutoAllocateBlocks           bool   `json:"auto_allocate_blocks,omitempty"`
	MaxBlocksPerHost             int    `json:"maxBlocksPerHost,omitempty"`
	KubeVirtVMAddressPersistence string `json:"kubeVirtVMAddressPersistence,omitempty"`
	IPCooldownSeconds            int    `json:"ipCooldownSeconds,omitempty"`
}

// EncodeConfig renders the value of ConfigKey.
func EncodeConfig(c *Config) ([]byte, error) {
	data, err := json.Marshal(configJSON{
		StrictAffinity:               c.StrictAffinity,
		AutoAllocateBlocks:           c.AutoAllocateBlocks,
		MaxBlocksPerHost:             c.MaxBlocksPerHost,
		KubeVirtVMAddressPersistence: c.KubeVirtVMAddressPersistence,
		IPCooldownSeconds:            c.IPCooldownSeconds,
	})
	if err != nil {
		return nil, fmt.Errorf("encode IPAM config: %w", err)
	}
	return data, nil
}

// DecodeConfig parses the value of ConfigKey. A missing
// kubeVirtVMAddressPersistence stays "" (upstream treats it as Enabled).
func DecodeConfig(value []byte) (*Config, error) {
	var v configJSON
	if err := json.Unmarshal(value, &v); err != nil {
		return nil, invalidf("IPAM config: %v", err)
	}
	return &Config{
		StrictAffinity:               v.StrictAffinity,
		AutoAllocateBlocks:           v.AutoAllocateBlocks,
		MaxBlocksPerHost:             v.MaxBlocksPerHost,
		KubeVirtVMAddressPersistence: v.KubeVirtVMAddressPersistence,
		IPCooldownSeconds:            v.IPCooldownSeconds,
	}, nil
}

// Kubernetes (crd.projectcalico.org/v1) names, labels and specs.

// BlockAffinity labels that let the Kubernetes store select by owner.
const (
	LabelHostnameHash = "projectcalico.org/hostname-hash"
	LabelAffinityType = "projectcalico.org/affinity-type"
	LabelIPVersion    = "projectcalico.org/ip-version"
)

// CIDRName is a CIDR as a Kubernetes name: ".", ":" and "/" become "-"
// (10.10.3.0/26 -> 10-10-3-0-26, fd00:1::/122 -> fd00-1---122).
func CIDRName(cidr netip.Prefix) string {
	return strings.NewReplacer(".", "-", ":", "-", "/", "-").Replace(cidrText(cidr))
}

// BlockCRName is the name of the IPAMBlock CR of cidr.
func BlockCRName(cidr netip.Prefix) string { return CIDRName(cidr) }

// AffinityCRName is the name of the BlockAffinity CR of host's affinity to
// cidr: "<host>-<cidrname>", or, when that has 253 characters or more, the
// host cut short, the CIDR name and 11 hex digits of SHA-256("<host>+<cidrname>").
func AffinityCRName(host string, cidr netip.Prefix) string {
	cidrName := CIDRName(cidr)
	name := host + "-" + cidrName
	if len(name) < 253 {
		return name
	}
	sum := sha256.Sum256([]byte(host + "+" + cidrName))
	keep := max(252-len(cidrName)-13, 0)
	return host[:min(keep, len(host))] + "-" + cidrName + "-" + hex.EncodeToString(sum[:])[:11]
}

// HandleCRName is the name of the IPAMHandle CR of id: the ID lower-cased
// (the spec keeps the original in handleID).
func HandleCRName(id string) string { return strings.ToLower(id) }

var base32NoPad = base32.StdEncoding.WithPadding(base32.NoPadding)

// HostnameHash is the value of LabelHostnameHash: SHA3-256 of the owner name,
// base32 (standard alphabet, no padding), so any hostname fits a label.
func HostnameHash(host string) string {
	sum := sha3.Sum256([]byte(host))
	return base32NoPad.EncodeToString(sum[:])
}

// AffinityCRLabels are the labels upstream puts on a BlockAffinity CR.
func AffinityCRLabels(a *Affinity) map[string]string {
	return map[string]string{
		LabelHostnameHash: HostnameHash(a.Host),
		LabelAffinityType: affinityTypeOrHost(a.Type),
		LabelIPVersion:    strconv.Itoa(ipVersion(a.CIDR)),
	}
}

// AffinityCRSelector is the label set selecting host's BlockAffinity CRs
// (host "" selects all).
func AffinityCRSelector(host string) map[string]string {
	if host == "" {
		return nil
	}
	return map[string]string{LabelHostnameHash: HostnameHash(host)}
}

// CRAllocationAttribute is one entry of IPAMBlockCRSpec.Attributes.
type CRAllocationAttribute = attributeJSON

// IPAMBlockCRSpec is the spec of a crd.projectcalico.org/v1 IPAMBlock.
type IPAMBlockCRSpec struct {
	CIDR                        string                  `json:"cidr"`
	Affinity                    *string                 `json:"affinity,omitempty"`
	AffinityClaimTime           *metav1.Time            `json:"affinityClaimTime,omitempty"`
	Allocations                 []*int                  `json:"allocations"`
	Unallocated                 []int                   `json:"unallocated"`
	Attributes                  []CRAllocationAttribute `json:"attributes"`
	SequenceNumber              uint64                  `json:"sequenceNumber"`
	SequenceNumberForAllocation map[string]uint64       `json:"sequenceNumberForAllocation"`
	Deleted                     bool                    `json:"deleted"`
	// StrictAffinity is deprecated and unused, but the v1 CRD requires it.
	StrictAffinity bool `json:"strictAffinity"`
}

// BlockToCRSpec converts b for the Kubernetes datastore.
func BlockToCRSpec(b *Block) IPAMBlockCRSpec {
	v := toBlockJSON(b)
	return IPAMBlockCRSpec{
		CIDR:                        v.CIDR,
		Affinity:                    v.Affinity,
		AffinityClaimTime:           v.AffinityClaimTime,
		Allocations:                 orEmpty(v.Allocations),
		Unallocated:                 orEmpty(v.Unallocated),
		Attributes:                  orEmpty(v.Attributes),
		SequenceNumber:              v.SequenceNumber,
		SequenceNumberForAllocation: v.SequenceNumberForAllocation,
		Deleted:                     v.Deleted,
	}
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// BlockFromCRSpec converts an IPAMBlock spec read at revision.
func BlockFromCRSpec(spec IPAMBlockCRSpec, revision string) (*Block, error) {
	b, err := fromBlockJSON(blockJSON{
		CIDR:                        spec.CIDR,
		Affinity:                    spec.Affinity,
		AffinityClaimTime:           spec.AffinityClaimTime,
		Allocations:                 spec.Allocations,
		Unallocated:                 spec.Unallocated,
		Attributes:                  spec.Attributes,
		SequenceNumber:              spec.SequenceNumber,
		SequenceNumberForAllocation: spec.SequenceNumberForAllocation,
		Deleted:                     spec.Deleted,
	})
	if err != nil {
		return nil, err
	}
	b.Revision = revision
	return b, nil
}

// BlockAffinityCRSpec is the spec of a crd.projectcalico.org/v1 BlockAffinity.
// Deleted is the string "true" or "false" in v1.
type BlockAffinityCRSpec struct {
	State   string `json:"state"`
	Node    string `json:"node"`
	Type    string `json:"type,omitempty"`
	CIDR    string `json:"cidr"`
	Deleted string `json:"deleted"`
}

// AffinityToCRSpec converts a for the Kubernetes datastore.
func AffinityToCRSpec(a *Affinity) BlockAffinityCRSpec {
	return BlockAffinityCRSpec{
		State:   string(stateOrConfirmed(a.State)),
		Node:    a.Host,
		Type:    affinityTypeOrHost(a.Type),
		CIDR:    cidrText(a.CIDR),
		Deleted: strconv.FormatBool(a.Deleted),
	}
}

// AffinityFromCRSpec converts a BlockAffinity spec read at revision. A
// missing type means host; a missing state means confirmed.
func AffinityFromCRSpec(spec BlockAffinityCRSpec, revision string) (*Affinity, error) {
	cidr, err := ParseBlockCIDR(spec.CIDR)
	if err != nil {
		return nil, err
	}
	deleted := false
	if spec.Deleted != "" {
		if deleted, err = strconv.ParseBool(spec.Deleted); err != nil {
			return nil, invalidf("block affinity %s: deleted %q", spec.Node, spec.Deleted)
		}
	}
	return &Affinity{
		Host:     spec.Node,
		Type:     affinityTypeOrHost(spec.Type),
		CIDR:     cidr,
		State:    stateOrConfirmed(AffinityState(spec.State)),
		Deleted:  deleted,
		Revision: revision,
	}, nil
}

// IPAMHandleCRSpec is the spec of a crd.projectcalico.org/v1 IPAMHandle.
type IPAMHandleCRSpec struct {
	HandleID string         `json:"handleID"`
	Block    map[string]int `json:"block"`
	Deleted  bool           `json:"deleted"`
}

// HandleToCRSpec converts h for the Kubernetes datastore.
func HandleToCRSpec(h *Handle) IPAMHandleCRSpec {
	return IPAMHandleCRSpec{HandleID: h.ID, Block: h.Block, Deleted: h.Deleted}
}

// HandleFromCRSpec converts an IPAMHandle spec read at revision.
func HandleFromCRSpec(spec IPAMHandleCRSpec, revision string) *Handle {
	return &Handle{ID: spec.HandleID, Block: spec.Block, Deleted: spec.Deleted, Revision: revision}
}

// IPAMConfigCRSpec is the spec of the crd.projectcalico.org/v1 IPAMConfig
// named "default".
type IPAMConfigCRSpec struct {
	StrictAffinity               bool   `json:"strictAffinity"`
	AutoAllocateBlocks           bool   `json:"autoAllocateBlocks"`
	MaxBlocksPerHost             int    `json:"maxBlocksPerHost,omitempty"`
	KubeVirtVMAddressPersistence string `json:"kubeVirtVMAddressPersistence,omitempty"`
	IPCooldownSeconds            int    `json:"ipCooldownSeconds,omitempty"`
}

// ConfigToCRSpec converts c for the Kubernetes datastore.
func ConfigToCRSpec(c *Config) IPAMConfigCRSpec {
	return IPAMConfigCRSpec{
		StrictAffinity:               c.StrictAffinity,
		AutoAllocateBlocks:           c.AutoAllocateBlocks,
		MaxBlocksPerHost:             c.MaxBlocksPerHost,
		KubeVirtVMAddressPersistence: c.KubeVirtVMAddressPersistence,
		IPCooldownSeconds:            c.IPCooldownSeconds,
	}
}

// ConfigFromCRSpec converts an IPAMConfig spec read at revision.
func ConfigFromCRSpec(spec IPAMConfigCRSpec, revision string) *Config {
	return &Config{
		StrictAffinity:               spec.StrictAffinity,
		AutoAllocateBlocks:           spec.AutoAllocateBlocks,
		MaxBlocksPerHost:             spec.MaxBlocksPerHost,
		KubeVirtVMAddressPersistence: spec.KubeVirtVMAddressPersistence,
		IPCooldownSeconds:            spec.IPCooldownSeconds,
		Revision:                     revision,
	}
}
