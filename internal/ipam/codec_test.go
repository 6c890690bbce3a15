package ipam

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// jsonTree decodes data keeping numbers exact, for comparing JSON documents.
func jsonTree(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return v
}

func TestKeys(t *testing.T) {
	v4 := netip.MustParsePrefix("10.10.3.0/26")
	v6 := netip.MustParsePrefix("fd00:1::/122")
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"block v4", BlockKey(v4), "/calico/ipam/v2/assignment/ipv4/block/10.10.3.0-26"},
		{"block v6", BlockKey(v6), "/calico/ipam/v2/assignment/ipv6/block/fd00:1::-122"},
		{"block unmasked", BlockKey(netip.MustParsePrefix("10.10.3.7/26")), "/calico/ipam/v2/assignment/ipv4/block/10.10.3.0-26"},
		{"affinity host", AffinityKey("node1", v4), "/calico/ipam/v2/host/node1/ipv4/block/10.10.3.0-26"},
		{"affinity v6", AffinityKey("node1", v6), "/calico/ipam/v2/host/node1/ipv6/block/fd00:1::-122"},
		{"affinity virtual", AffinityKeyOfType(AffinityTypeVirtual, "load-balancer", v4), "/calico/ipam/v2/virtual/load-balancer/ipv4/block/10.10.3.0-26"},
		{"affinity empty type", AffinityKeyOfType("", "n", v4), "/calico/ipam/v2/host/n/ipv4/block/10.10.3.0-26"},
		{"host prefix", AffinityHostPrefix("", "n"), "/calico/ipam/v2/host/n/"},
		{"handle keeps case", HandleKey("k8s-pod-network.ABC"), "/calico/ipam/v2/handle/k8s-pod-network.ABC"},
		{"config", ConfigKey, "/calico/ipam/v2/config"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestParseKeys(t *testing.T) {
	tests := []struct {
		key     string
		typ     string
		host    string
		cidr    string
		handle  string
		wantErr bool
	}{
		{key: "/calico/ipam/v2/assignment/ipv4/block/10.10.3.0-26", cidr: "10.10.3.0/26"},
		{key: "/calico/ipam/v2/assignment/ipv6/block/fd00:1::-122", cidr: "fd00:1::/122"},
		{key: "/calico/ipam/v2/assignment/ipv4/block/10.10.3.0", wantErr: true},
		{key: "/calico/ipam/v2/assignment/ipv4/blocks/10.10.3.0-26", wantErr: true},
		{key: "/calico/ipam/v2/host/node1/ipv4/block/10.10.3.0-26", typ: "host", host: "node1", cidr: "10.10.3.0/26"},
		{key: "/calico/ipam/v2/virtual/lb/ipv6/block/fd00:1::-122", typ: "virtual", host: "lb", cidr: "fd00:1::/122"},
		{key: "/calico/ipam/v2/host//ipv4/block/10.10.3.0-26", typ: "host", wantErr: true},
		{key: "/calico/ipam/v2/other/x/ipv4/block/10.10.3.0-26", typ: "host", wantErr: true},
		{key: "/calico/ipam/v2/handle/Mixed.Case", handle: "Mixed.Case"},
		{key: "/calico/ipam/v2/handle/", handle: "x", wantErr: true},
	}
	for _, tt := range tests {
		switch {
		case tt.handle != "":
			id, err := ParseHandleKey(tt.key)
			if (err != nil) != tt.wantErr || (!tt.wantErr && id != tt.handle) {
				t.Errorf("ParseHandleKey(%q) = %q, %v", tt.key, id, err)
			}
		case tt.typ != "":
			typ, host, cidr, err := ParseAffinityKey(tt.key)
			if (err != nil) != tt.wantErr {
				t.Errorf("ParseAffinityKey(%q) error %v, wantErr %v", tt.key, err, tt.wantErr)
				continue
			}
			if !tt.wantErr && (typ != tt.typ || host != tt.host || cidr.String() != tt.cidr) {
				t.Errorf("ParseAffinityKey(%q) = %q %q %v", tt.key, typ, host, cidr)
			}
			if err != nil && !errors.Is(err, ErrInvalidValue) {
				t.Errorf("error %v does not wrap ErrInvalidValue", err)
			}
		default:
			cidr, err := ParseBlockKey(tt.key)
			if (err != nil) != tt.wantErr || (!tt.wantErr && cidr.String() != tt.cidr) {
				t.Errorf("ParseBlockKey(%q) = %v, %v", tt.key, cidr, err)
			}
		}
	}
}

// upstreamBlock is §1.4's constructed example (a /30 for brevity), with a
// claim time, an alternate owner and an address cooling down.
const upstreamBlock = `{"cidr":"10.10.3.0/30","affinity":"host:n1",
 "affinity_claim_time":"2024-05-01T10:00:00Z",
 "allocations":[0,null,0,1],
 "unallocated":[1],
 "attributes":[{"handle_id":"k8s-pod-network.4d1e0a","secondary":{"namespace":"prod","node":"n1","pod":"web-7f9c","timestamp":"2024-05-01 10:00:00.123 +0000 UTC"},
   "alternate":{"pod":"web-7f9c-target"}},
  {"releasedAt":"2024-05-01T11:00:00Z"}],
 "sequenceNumber":1714557600000000000,
 "sequenceNumberForAllocation":{"0":1714557600000000000,"2":1714557600000000001,"3":1714557600000000002},
 "deleted":false}`

func TestBlockJSONRoundTrip(t *testing.T) {
	b, err := DecodeBlock([]byte(upstreamBlock))
	if err != nil {
		t.Fatal(err)
	}
	if b.CIDR.String() != "10.10.3.0/30" || b.Affinity != "host:n1" {
		t.Errorf("cidr/affinity = %v %q", b.CIDR, b.Affinity)
	}
	if b.AffinityClaimTime == nil || !b.AffinityClaimTime.Equal(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("claim time = %v", b.AffinityClaimTime)
	}
	if len(b.Allocations) != 4 || b.Allocations[1] != nil || *b.Allocations[2] != 0 || *b.Allocations[3] != 1 {
		t.Errorf("allocations = %v", b.Allocations)
	}
	if b.SequenceNumber != 1714557600000000000 || b.SequenceNumberForAllocation["2"] != 1714557600000000001 {
		t.Errorf("sequence numbers = %d %v", b.SequenceNumber, b.SequenceNumberForAllocation)
	}
	a := b.Attributes[0]
	if *a.HandleID != "k8s-pod-network.4d1e0a" || a.ActiveOwnerAttrs["pod"] != "web-7f9c" || a.AlternateOwnerAttrs["pod"] != "web-7f9c-target" {
		t.Errorf("attribute 0 = %+v", a)
	}
	if b.Attributes[1].HandleID != nil || b.Attributes[1].ReleasedAt == nil {
		t.Errorf("attribute 1 = %+v", b.Attributes[1])
	}
	out, err := EncodeBlock(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := jsonTree(t, out), jsonTree(t, []byte(upstreamBlock)); !reflect.DeepEqual(got, want) {
		t.Errorf("round trip differs:\n got %s\nwant %s", out, upstreamBlock)
	}
}

func TestBlockJSONEdgeCases(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		check   func(*Block) bool
		wantErr bool
	}{
		{"no affinity is null", `{"cidr":"10.0.0.0/31","affinity":null,"allocations":[null,null],"unallocated":[0,1],"attributes":[],"sequenceNumber":1,"sequenceNumberForAllocation":{},"deleted":false}`,
			func(b *Block) bool { return b.Affinity == "" }, false},
		{"legacy hostAffinity", `{"cidr":"10.0.0.0/31","hostAffinity":"old","allocations":[null,null],"unallocated":[0,1],"attributes":null,"sequenceNumber":0,"sequenceNumberForAllocation":null,"deleted":false}`,
			func(b *Block) bool { return b.Affinity == "host:old" }, false},
		{"legacy alternate name", `{"cidr":"10.0.0.0/32","affinity":null,"allocations":[0],"unallocated":[],"attributes":[{"alternateOwnerAttrs":{"pod":"p"}}],"sequenceNumber":0,"sequenceNumberForAllocation":null,"deleted":true}`,
			func(b *Block) bool { return b.Attributes[0].AlternateOwnerAttrs["pod"] == "p" && b.Deleted }, false},
		{"wrong allocation count", `{"cidr":"10.0.0.0/30","allocations":[null],"unallocated":[],"attributes":[]}`, nil, true},
		{"bad cidr", `{"cidr":"10.0.0.0","allocations":[]}`, nil, true},
		{"not json", `{`, nil, true},
	}
	for _, tt := range tests {
		b, err := DecodeBlock([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: error %v, wantErr %v", tt.name, err, tt.wantErr)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidValue) {
				t.Errorf("%s: %v does not wrap ErrInvalidValue", tt.name, err)
			}
			continue
		}
		if !tt.check(b) {
			t.Errorf("%s: unexpected block %+v", tt.name, b)
		}
	}
}

func TestNewBlockEncoding(t *testing.T) {
	now := time.Date(2024, 5, 1, 10, 0, 0, 500, time.UTC)
	b := NewBlock(netip.MustParsePrefix("10.10.3.0/30"), "", now)
	out, err := EncodeBlock(b)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"cidr":"10.10.3.0/30","affinity":null,"allocations":[null,null,null,null],"unallocated":[0,1,2,3],"attributes":[],"sequenceNumber":1714557600000000500,"sequenceNumberForAllocation":{},"deleted":false}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
}

func TestSmallValues(t *testing.T) {
	v4 := netip.MustParsePrefix("10.10.3.0/26")
	affKey := AffinityKey("node1", v4)
	tests := []struct {
		name string
		enc  func() ([]byte, error)
		want string
	}{
		{"affinity", func() ([]byte, error) { return EncodeAffinity(&Affinity{State: StateConfirmed}) }, `{"state":"confirmed","deleted":false}`},
		{"affinity pending deleted", func() ([]byte, error) { return EncodeAffinity(&Affinity{State: StatePending, Deleted: true}) }, `{"state":"pending","deleted":true}`},
		{"affinity no state", func() ([]byte, error) { return EncodeAffinity(&Affinity{}) }, `{"state":"confirmed","deleted":false}`},
		{"handle", func() ([]byte, error) {
			return EncodeHandle(&Handle{ID: "h", Block: map[string]int{"10.10.3.0/26": 2}})
		}, `{"block":{"10.10.3.0/26":2},"deleted":false}`},
		{"config zero", func() ([]byte, error) { return EncodeConfig(&Config{}) }, `{}`},
		{"config full", func() ([]byte, error) {
			return EncodeConfig(&Config{StrictAffinity: true, AutoAllocateBlocks: true, MaxBlocksPerHost: 4, KubeVirtVMAddressPersistence: "Disabled", IPCooldownSeconds: 30})
		}, `{"strict_affinity":true,"auto_allocate_blocks":true,"maxBlocksPerHost":4,"kubeVirtVMAddressPersistence":"Disabled","ipCooldownSeconds":30}`},
	}
	for _, tt := range tests {
		got, err := tt.enc()
		if err != nil || string(got) != tt.want {
			t.Errorf("%s: got %s, %v; want %s", tt.name, got, err, tt.want)
		}
	}

	for _, value := range []string{"", "{}", `{"state":""}`, `{"state":"confirmed","deleted":false}`} {
		a, err := DecodeAffinity(affKey, []byte(value))
		if err != nil || a.State != StateConfirmed || a.Host != "node1" || a.Type != AffinityTypeHost || a.CIDR != v4 {
			t.Errorf("DecodeAffinity(%q) = %+v, %v", value, a, err)
		}
	}
	if _, err := DecodeAffinity(affKey, []byte("{")); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("bad affinity value: %v", err)
	}
	h, err := DecodeHandle("Mixed", []byte(`{"block":{"10.10.3.0/26":2},"deleted":true}`))
	if err != nil || h.ID != "Mixed" || h.Block["10.10.3.0/26"] != 2 || !h.Deleted {
		t.Errorf("DecodeHandle = %+v, %v", h, err)
	}
	c, err := DecodeConfig([]byte(`{"strict_affinity":true,"maxBlocksPerHost":3}`))
	if err != nil || !c.StrictAffinity || c.AutoAllocateBlocks || c.MaxBlocksPerHost != 3 {
		t.Errorf("DecodeConfig = %+v, %v", c, err)
	}
}

func TestCRNames(t *testing.T) {
	v4 := netip.MustParsePrefix("10.10.3.0/26")
	v6 := netip.MustParsePrefix("fd00:1::/122")
	long := strings.Repeat("a", 250)
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"block v4", BlockCRName(v4), "10-10-3-0-26"},
		{"block v6", BlockCRName(v6), "fd00-1---122"},
		{"affinity", AffinityCRName("node1", v4), "node1-10-10-3-0-26"},
		{"affinity long", AffinityCRName(long, v4), strings.Repeat("a", 252-12-13) + "-10-10-3-0-26-" + "*"},
		{"handle", HandleCRName("k8s-pod-network.ABCdef"), "k8s-pod-network.abcdef"},
		{"hostname hash", HostnameHash("node-a"), "PY3TQE2E3XMTETLM2MJO3UITKPFB27YUJ4T4E5XGPEJON3SM4QAA"},
	}
	for _, tt := range tests {
		if prefix, ok := strings.CutSuffix(tt.want, "*"); ok {
			if !strings.HasPrefix(tt.got, prefix) || len(tt.got) != len(prefix)+11 || len(tt.got) >= 253 {
				t.Errorf("%s: got %q (len %d), want %q + 11 hex digits", tt.name, tt.got, len(tt.got), prefix)
			}
			continue
		}
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	// The hash keeps two long names that differ only at the end apart.
	if AffinityCRName(long+"x", v4) == AffinityCRName(long+"y", v4) {
		t.Error("long affinity names collide")
	}
	labels := AffinityCRLabels(&Affinity{Host: "node-a", CIDR: v6})
	want := map[string]string{LabelHostnameHash: "PY3TQE2E3XMTETLM2MJO3UITKPFB27YUJ4T4E5XGPEJON3SM4QAA", LabelAffinityType: "host", LabelIPVersion: "6"}
	if !reflect.DeepEqual(labels, want) {
		t.Errorf("labels = %v", labels)
	}
}

func TestCRSpecs(t *testing.T) {
	b, err := DecodeBlock([]byte(upstreamBlock))
	if err != nil {
		t.Fatal(err)
	}
	spec := BlockToCRSpec(b)
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	tree := jsonTree(t, data).(map[string]any)
	for _, field := range []string{"cidr", "affinity", "affinityClaimTime", "allocations", "unallocated", "attributes", "sequenceNumber", "sequenceNumberForAllocation", "deleted", "strictAffinity"} {
		if _, ok := tree[field]; !ok {
			t.Errorf("IPAMBlock spec lacks %q: %s", field, data)
		}
	}
	back, err := BlockFromCRSpec(spec, "42")
	if err != nil {
		t.Fatal(err)
	}
	b.Revision = "42"
	if !reflect.DeepEqual(back, b) {
		t.Errorf("block CR round trip:\n got %+v\nwant %+v", back, b)
	}
	empty := BlockToCRSpec(&Block{CIDR: netip.MustParsePrefix("10.0.0.0/32"), Allocations: []*int{nil}})
	if empty.Unallocated == nil || empty.Attributes == nil || empty.Affinity != nil {
		t.Errorf("empty block spec = %+v", empty)
	}

	aff := &Affinity{Host: "node1", Type: AffinityTypeVirtual, CIDR: netip.MustParsePrefix("fd00:1::/122"), State: StatePendingDeletion, Deleted: true}
	aspec := AffinityToCRSpec(aff)
	data, _ = json.Marshal(aspec)
	if want := `{"state":"pendingDeletion","node":"node1","type":"virtual","cidr":"fd00:1::/122","deleted":"true"}`; string(data) != want {
		t.Errorf("affinity spec = %s, want %s", data, want)
	}
	aback, err := AffinityFromCRSpec(aspec, "7")
	aff.Revision = "7"
	if err != nil || !reflect.DeepEqual(aback, aff) {
		t.Errorf("affinity CR round trip = %+v, %v", aback, err)
	}
	old, err := AffinityFromCRSpec(BlockAffinityCRSpec{Node: "n", CIDR: "10.0.0.0/26"}, "1")
	if err != nil || old.Type != AffinityTypeHost || old.State != StateConfirmed || old.Deleted {
		t.Errorf("legacy affinity spec = %+v, %v", old, err)
	}
	if _, err := AffinityFromCRSpec(BlockAffinityCRSpec{Node: "n", CIDR: "10.0.0.0/26", Deleted: "maybe"}, ""); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("bad deleted string: %v", err)
	}

	h := &Handle{ID: "Mixed.Case", Block: map[string]int{"10.0.0.0/26": 1}, Revision: "3"}
	data, _ = json.Marshal(HandleToCRSpec(h))
	if want := `{"handleID":"Mixed.Case","block":{"10.0.0.0/26":1},"deleted":false}`; string(data) != want {
		t.Errorf("handle spec = %s", data)
	}
	if got := HandleFromCRSpec(HandleToCRSpec(h), "3"); !reflect.DeepEqual(got, h) {
		t.Errorf("handle CR round trip = %+v", got)
	}

	c := &Config{StrictAffinity: true, MaxBlocksPerHost: 2, Revision: "9"}
	data, _ = json.Marshal(ConfigToCRSpec(c))
	if want := `{"strictAffinity":true,"autoAllocateBlocks":false,"maxBlocksPerHost":2}`; string(data) != want {
		t.Errorf("config spec = %s", data)
	}
	if got := ConfigFromCRSpec(ConfigToCRSpec(c), "9"); !reflect.DeepEqual(got, c) {
		t.Errorf("config CR round trip = %+v", got)
	}
}
