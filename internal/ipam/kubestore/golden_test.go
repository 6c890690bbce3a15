package kubestore_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/kubestore"
	"github.com/opencalico/calicoctl/internal/ipam/storetest"
)

// Upstream's crd.projectcalico.org/v1 objects (compatibility notes §2.6),
// written by hand.
const (
	goldenBlockCR = `{"apiVersion":"crd.projectcalico.org/v1","kind":"IPAMBlock","metadata":{"name":"10-20-3-0-30"},
 "spec":{"cidr":"10.20.3.0/30","affinity":"host:n1","affinityClaimTime":"2024-05-01T10:00:00Z",
  "allocations":[0,null,1,null],"unallocated":[1,3],
  "attributes":[{"handle_id":"k8s-pod-network.4d1e","secondary":{"namespace":"prod","node":"n1","pod":"web-7f9c","timestamp":"2024-05-01 10:00:00.000000000 +0000 UTC"}},
   {"handle_id":"k8s-pod-network.vm","secondary":{"pod":"virt-launcher-b"},"alternate":{"pod":"virt-launcher-a"}}],
  "sequenceNumber":1714557600000000002,"sequenceNumberForAllocation":{"0":1714557600000000000,"2":1714557600000000001},
  "deleted":false,"strictAffinity":false}}`
	goldenAffinityCR = `{"apiVersion":"crd.projectcalico.org/v1","kind":"BlockAffinity","metadata":{"name":"n1-10-20-3-0-30",
  "labels":{"projectcalico.org/hostname-hash":"HASH","projectcalico.org/affinity-type":"host","projectcalico.org/ip-version":"4"}},
 "spec":{"state":"confirmed","node":"n1","type":"host","cidr":"10.20.3.0/30","deleted":"false"}}`
	goldenHandleCR = `{"apiVersion":"crd.projectcalico.org/v1","kind":"IPAMHandle","metadata":{"name":"k8s-pod-network.4d1eabc"},
 "spec":{"handleID":"k8s-pod-network.4d1eAbC","block":{"10.20.3.0/30":2},"deleted":false}}`
	goldenConfigCR = `{"apiVersion":"crd.projectcalico.org/v1","kind":"IPAMConfig","metadata":{"name":"default",
  "annotations":{"projectcalico.org/metadata":"{\"creationTimestamp\":null}"}},
 "spec":{"strictAffinity":true,"autoAllocateBlocks":true,"maxBlocksPerHost":4,"kubeVirtVMAddressPersistence":"Disabled","ipCooldownSeconds":30}}`
)

var goldenBlockV6CR = `{"apiVersion":"crd.projectcalico.org/v1","kind":"IPAMBlock","metadata":{"name":"fd00-20---122"},
 "spec":{"cidr":"fd00:20::/122","allocations":[` + nulls64 + `],"unallocated":[` + ordinals64 + `],
  "attributes":[],"sequenceNumber":0,"sequenceNumberForAllocation":{},"deleted":false,"strictAffinity":false}}`

var nulls64, ordinals64 = func() (string, string) {
	n, o := make([]any, 64), make([]int, 64)
	for i := range o {
		o[i] = i
	}
	nb, _ := json.Marshal(n)
	ob, _ := json.Marshal(o)
	return string(nb[1 : len(nb)-1]), string(ob[1 : len(ob)-1])
}()

func TestGolden(t *testing.T) {
	rc := server(t)
	dyn := dynClient(t, rc)
	wipe(t)
	s, err := kubestore.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	put := func(t *testing.T, gvr schema.GroupVersionResource, text string) *unstructured.Unstructured {
		t.Helper()
		u := &unstructured.Unstructured{}
		if err := utiljson.Unmarshal([]byte(text), &u.Object); err != nil {
			t.Fatal(err)
		}
		out, err := dyn.Resource(gvr).Create(ctx, u, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create %s: %v", u.GetName(), err)
		}
		return out
	}
	// stored returns what the API server holds for name: its spec and labels.
	stored := func(t *testing.T, gvr schema.GroupVersionResource, name string) (spec, labels []byte, u *unstructured.Unstructured) {
		t.Helper()
		u, err := dyn.Resource(gvr).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get %s: %v", name, err)
		}
		spec, _ = json.Marshal(u.Object["spec"])
		labels, _ = json.Marshal(u.GetLabels())
		return spec, labels, u
	}
	specOf := func(t *testing.T, text string) (spec, labels []byte) {
		t.Helper()
		var o struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Spec json.RawMessage `json:"spec"`
		}
		if err := json.Unmarshal([]byte(text), &o); err != nil {
			t.Fatal(err)
		}
		labels, _ = json.Marshal(o.Metadata.Labels)
		return o.Spec, labels
	}

	t.Run("Blocks", func(t *testing.T) {
		for _, tc := range []struct {
			name, cidr, text, affinity string
			used                       int
		}{
			{"10-20-3-0-30", "10.20.3.0/30", goldenBlockCR, "host:n1", 2},
			{"fd00-20---122", "fd00:20::/122", goldenBlockV6CR, "", 0},
		} {
			put(t, kubestore.BlockResource, tc.text)
			b, err := s.GetBlock(ctx, mustPrefix(t, tc.cidr))
			if err != nil {
				t.Fatalf("get %s: %v", tc.cidr, err)
			}
			if b.Affinity != tc.affinity || ipam.UsedCount(b) != tc.used {
				t.Errorf("%s read with affinity %q and %d used", tc.cidr, b.Affinity, ipam.UsedCount(b))
			}
			if _, err := s.UpdateBlock(ctx, b); err != nil {
				t.Fatalf("write back %s: %v", tc.cidr, err)
			}
			got, _, _ := stored(t, kubestore.BlockResource, tc.name)
			want, _ := specOf(t, tc.text)
			storetest.SameJSON(t, tc.name, got, want)
		}
		b, err := s.GetBlock(ctx, mustPrefix(t, "10.20.3.0/30"))
		if err != nil {
			t.Fatal(err)
		}
		if b.SequenceNumber != 1714557600000000002 || b.Attributes[1].AlternateOwnerAttrs["pod"] != "virt-launcher-a" {
			t.Errorf("block read with sequence number %d, attributes %+v", b.SequenceNumber, b.Attributes)
		}
	})
	t.Run("Affinity", func(t *testing.T) {
		text := strings.Replace(goldenAffinityCR, "HASH", ipam.HostnameHash("n1"), 1)
		put(t, kubestore.AffinityResource, text)
		a, err := s.GetAffinity(ctx, "n1", mustPrefix(t, "10.20.3.0/30"))
		if err != nil {
			t.Fatal(err)
		}
		list, err := s.ListAffinities(ctx, "n1")
		if err != nil || len(list) != 1 || list[0].CIDR != a.CIDR {
			t.Errorf("list n1 = %v, %v", list, err)
		}
		if _, err := s.UpdateAffinity(ctx, a); err != nil {
			t.Fatal(err)
		}
		gotSpec, gotLabels, _ := stored(t, kubestore.AffinityResource, "n1-10-20-3-0-30")
		wantSpec, wantLabels := specOf(t, text)
		storetest.SameJSON(t, "spec", gotSpec, wantSpec)
		storetest.SameJSON(t, "labels", gotLabels, wantLabels)

		// Deleting goes through deleted: "true" and removes the object.
		a, _ = s.GetAffinity(ctx, "n1", a.CIDR)
		if err := s.DeleteAffinity(ctx, a); err != nil {
			t.Fatal(err)
		}
		if _, err := dyn.Resource(kubestore.AffinityResource).Get(ctx, "n1-10-20-3-0-30", metav1.GetOptions{}); err == nil {
			t.Error("affinity CR still exists after delete")
		}
	})
	t.Run("MarkedDeletedReadsAsAbsent", func(t *testing.T) {
		text := strings.Replace(strings.Replace(goldenAffinityCR, "HASH", ipam.HostnameHash("n1"), 1), `"deleted":"false"`, `"deleted":"true"`, 1)
		put(t, kubestore.AffinityResource, text)
		if list, err := s.ListAffinities(ctx, "n1"); err != nil || len(list) != 0 {
			t.Errorf("list shows a deleted affinity: %v %v", list, err)
		}
		_, err := s.GetAffinity(ctx, "n1", mustPrefix(t, "10.20.3.0/30"))
		wantNotFound(t, err)
		// The reader finished the delete, so the name can be claimed again.
		if _, err := s.CreateAffinity(ctx, &ipam.Affinity{Host: "n1", CIDR: mustPrefix(t, "10.20.3.0/30"), State: ipam.StatePending}); err != nil {
			t.Errorf("create after a half-finished delete: %v", err)
		}
	})
	t.Run("Handle", func(t *testing.T) {
		put(t, kubestore.HandleResource, goldenHandleCR)
		h, err := s.GetHandle(ctx, "k8s-pod-network.4d1eAbC")
		if err != nil {
			t.Fatal(err)
		}
		if h.ID != "k8s-pod-network.4d1eAbC" || h.Block["10.20.3.0/30"] != 2 {
			t.Errorf("handle read as %+v", h)
		}
		if _, err := s.UpdateHandle(ctx, h); err != nil {
			t.Fatal(err)
		}
		got, _, _ := stored(t, kubestore.HandleResource, "k8s-pod-network.4d1eabc")
		want, _ := specOf(t, goldenHandleCR)
		storetest.SameJSON(t, "handle", got, want)
	})
	t.Run("Config", func(t *testing.T) {
		put(t, kubestore.ConfigResource, goldenConfigCR)
		c, err := s.GetConfig(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !c.StrictAffinity || c.MaxBlocksPerHost != 4 || c.IPCooldownSeconds != 30 || c.KubeVirtVMAddressPersistence != "Disabled" {
			t.Errorf("config read as %+v", c)
		}
		if _, err := s.SetConfig(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, _, u := stored(t, kubestore.ConfigResource, "default")
		want, _ := specOf(t, goldenConfigCR)
		storetest.SameJSON(t, "config", got, want)
		if u.GetAnnotations()["projectcalico.org/metadata"] == "" {
			t.Error("SetConfig dropped the v3 metadata annotation")
		}
	})
}

func mustPrefix(t testing.TB, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func wantNotFound(t testing.TB, err error) {
	t.Helper()
	if !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("error %v, want not found", err)
	}
}
