package storetest

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/opencalico/calicoctl/internal/ipam"
)

// RawKV reads and writes etcd values behind a store's back.
type RawKV interface {
	Put(t testing.TB, key string, value []byte)
	Get(t testing.TB, key string) []byte
}

// Upstream's etcd values (compatibility notes §1.4), written by hand.
const (
	goldenBlock = `{"cidr":"10.10.3.0/30","affinity":"host:n1","allocations":[0,null,0,null],
 "unallocated":[1,3],"attributes":[{"handle_id":"k8s-pod-network.4d1e",
 "secondary":{"namespace":"prod","node":"n1","pod":"web-7f9c","timestamp":"2024-05-01 10:00:00.000000000 +0000 UTC"}}],
 "sequenceNumber":1714557600000000000,"sequenceNumberForAllocation":{"0":1714557600000000000,"2":1714557600000000001},
 "deleted":false}`
	goldenBlockFull = `{"cidr":"fd00:1::/126","affinity":"virtual:load-balancer","affinity_claim_time":"2024-05-01T10:00:00Z",
 "allocations":[null,0,1,null],"unallocated":[3,0],
 "attributes":[{"handle_id":"lb-abc","secondary":{"service":"web","namespace":"prod"}},
  {"handle_id":"k8s-pod-network.vm","secondary":{"pod":"virt-launcher-b"},"alternate":{"pod":"virt-launcher-a"},"releasedAt":"2024-05-01T10:05:00Z"}],
 "sequenceNumber":7,"sequenceNumberForAllocation":{"1":5,"2":6},"deleted":false}`
	goldenBlockFree = `{"cidr":"10.10.4.0/30","affinity":null,"allocations":[null,null,null,null],"unallocated":[0,1,2,3],
 "attributes":[],"sequenceNumber":0,"sequenceNumberForAllocation":null,"deleted":false}`
	goldenAffinity = `{"state":"pending","deleted":false}`
	goldenHandle   = `{"block":{"10.10.3.0/30":2,"fd00:1::/126":1},"deleted":false}`
	goldenConfig   = `{"strict_affinity":true,"auto_allocate_blocks":true,"maxBlocksPerHost":4,"kubeVirtVMAddressPersistence":"Disabled","ipCooldownSeconds":30}`
)

// SameJSON fails unless got and want decode to equal JSON trees.
func SameJSON(t testing.TB, what string, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: stored value %q: %v", what, got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: golden value: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s: written back as\n %s\nwant\n %s", what, got, want)
	}
}

// RunEtcdGolden writes upstream's exact JSON under upstream's keys, reads it
// through s (which must see the same keys as raw), checks what was
// understood, writes it back unchanged through s and compares the stored
// JSON with the original.
func RunEtcdGolden(t *testing.T, s ipam.Store, raw RawKV) {
	c := ctx(t)
	t.Run("Blocks", func(t *testing.T) {
		for _, tc := range []struct {
			cidr, value, affinity string
			used                  int
		}{
			{"10.10.3.0/30", goldenBlock, "host:n1", 2},
			{"fd00:1::/126", goldenBlockFull, "virtual:load-balancer", 2},
			{"10.10.4.0/30", goldenBlockFree, "", 0},
		} {
			cidr := prefix(t, tc.cidr)
			raw.Put(t, ipam.BlockKey(cidr), []byte(tc.value))
			b := ok(s.GetBlock(c, cidr))(t, "get")
			if b.CIDR != cidr || b.Affinity != tc.affinity || ipam.UsedCount(b) != tc.used {
				t.Errorf("%s read as cidr %s affinity %q with %d used", tc.cidr, b.CIDR, b.Affinity, ipam.UsedCount(b))
			}
			ok(s.UpdateBlock(c, b))(t, "write back")
			SameJSON(t, tc.cidr, raw.Get(t, ipam.BlockKey(cidr)), []byte(tc.value))
		}
		b := ok(s.GetBlock(c, prefix(t, "fd00:1::/126")))(t, "get")
		at := b.Attributes[1]
		if at.AlternateOwnerAttrs["pod"] != "virt-launcher-a" || at.ReleasedAt == nil || b.AffinityClaimTime == nil {
			t.Errorf("full block attributes read as %+v, claim time %v", at, b.AffinityClaimTime)
		}
	})
	t.Run("LegacyHostAffinity", func(t *testing.T) {
		cidr := prefix(t, "10.10.5.0/30")
		raw.Put(t, ipam.BlockKey(cidr), []byte(`{"cidr":"10.10.5.0/30","hostAffinity":"old-node","allocations":[null,null,null,null],"unallocated":[0,1,2,3],"attributes":[]}`))
		if b := ok(s.GetBlock(c, cidr))(t, "get"); b.Affinity != "host:old-node" {
			t.Errorf("hostAffinity read as affinity %q", b.Affinity)
		}
	})
	t.Run("Affinities", func(t *testing.T) {
		cidr := prefix(t, "10.10.3.0/30")
		key := "/calico/ipam/v2/host/n1/ipv4/block/10.10.3.0-30"
		raw.Put(t, key, []byte(goldenAffinity))
		a := ok(s.GetAffinity(c, "n1", cidr))(t, "get")
		if a.State != ipam.StatePending || a.Type != ipam.AffinityTypeHost {
			t.Errorf("affinity read as %+v", a)
		}
		ok(s.UpdateAffinity(c, a))(t, "write back")
		SameJSON(t, key, raw.Get(t, key), []byte(goldenAffinity))

		legacy := "/calico/ipam/v2/host/n1/ipv6/block/fd00:1::-126"
		raw.Put(t, legacy, nil)
		a = ok(s.GetAffinity(c, "n1", prefix(t, "fd00:1::/126")))(t, "get legacy")
		if a.State != ipam.StateConfirmed {
			t.Errorf("empty affinity value read as state %q", a.State)
		}
		ok(s.UpdateAffinity(c, a))(t, "write back legacy")
		SameJSON(t, legacy, raw.Get(t, legacy), []byte(`{"state":"confirmed","deleted":false}`))

		virtual := "/calico/ipam/v2/virtual/load-balancer/ipv6/block/fd00:1::-126"
		raw.Put(t, virtual, []byte(`{"state":"confirmed","deleted":false}`))
		list := ok(s.ListAffinities(c, "load-balancer"))(t, "list")
		if len(list) != 1 || list[0].Type != ipam.AffinityTypeVirtual {
			t.Errorf("virtual owner lists %+v", list)
		}
	})
	t.Run("Handle", func(t *testing.T) {
		key := "/calico/ipam/v2/handle/k8s-pod-network.4d1eAbC"
		raw.Put(t, key, []byte(goldenHandle))
		h := ok(s.GetHandle(c, "k8s-pod-network.4d1eAbC"))(t, "get")
		if h.Block["10.10.3.0/30"] != 2 || h.Block["fd00:1::/126"] != 1 {
			t.Errorf("handle read as %+v", h)
		}
		ok(s.UpdateHandle(c, h))(t, "write back")
		SameJSON(t, key, raw.Get(t, key), []byte(goldenHandle))
	})
	t.Run("Config", func(t *testing.T) {
		raw.Put(t, ipam.ConfigKey, []byte(goldenConfig))
		cfg := ok(s.GetConfig(c))(t, "get")
		want := &ipam.Config{StrictAffinity: true, AutoAllocateBlocks: true, MaxBlocksPerHost: 4, KubeVirtVMAddressPersistence: "Disabled", IPCooldownSeconds: 30}
		same(t, "config", cfg, want)
		ok(s.SetConfig(c, cfg))(t, "write back")
		SameJSON(t, ipam.ConfigKey, raw.Get(t, ipam.ConfigKey), []byte(goldenConfig))
	})
}
