package state

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opencalico/calicoctl/datastore/kubernetes"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/ipamstore"
	"github.com/opencalico/calicoctl/internal/kubetest"
	"github.com/opencalico/calicoctl/internal/kubetest/kubecrd"
	"github.com/opencalico/calicoctl/resources"
)

type kddEnv struct {
	srv   *kubetest.APIServer
	ds    *kubernetes.Backend
	c     *client.Client
	store ipam.Store
}

func newKDDEnv(t *testing.T) *kddEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("needs kube-apiserver")
	}
	srv := kubetest.Shared(t)
	kubecrd.Install(t, srv)
	ds, err := kubernetes.New(t.Context(), kubernetes.Config{Kubeconfig: srv.Kubeconfig})
	if err != nil {
		t.Fatalf("kubernetes datastore: %v", err)
	}
	t.Cleanup(func() { ds.Close() })
	store, err := ipamstore.Open(ds)
	if err != nil {
		t.Fatal(err)
	}
	return &kddEnv{srv: srv, ds: ds, c: client.New(ds), store: store}
}

// TestFollowerKDD follows Nodes, Pods (as workload endpoints), pools and
// IPAM blocks on a real kube-apiserver: the first list, then changes of
// each through watches.
func TestFollowerKDD(t *testing.T) {
	e := newKDDEnv(t)
	ctx := t.Context()
	const ns = "state-follower"
	e.srv.CreateNamespace(t, ns, nil)
	e.srv.CreateNode(t, "state-n1", nil, "10.0.0.1")
	e.srv.CreatePod(t, kubetest.Pod{Namespace: ns, Name: "a", NodeName: "state-n1",
		Annotations: map[string]string{kubernetes.AnnotationPodIP: "10.248.0.2/32"}, IPs: []string{"10.248.0.2"}})
	p := pool("state-p1", "10.248.0.0/16", false)
	resources.SetTypeMeta(p)
	if _, err := e.c.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.CreateBlock(ctx, newBlock("10.248.0.0/26", "state-n1")); err != nil {
		t.Fatal(err)
	}

	f := start(t, Config{Datastore: e.ds, Blocks: e.store})
	waitModel(t, f, "the first lists", func(m *Model, st Status) bool {
		return st.Synced && m.Node("state-n1") != nil && len(m.WorkloadEndpointsOn("state-n1")) == 1 &&
			slices.ContainsFunc(m.Pools(), func(p *resources.IPPool) bool { return p.Name == "state-p1" }) &&
			len(m.BlocksAffineTo("state-n1")) == 1
	})

	// A Calico field on the Kubernetes Node (an annotation underneath).
	r, err := e.c.Get(ctx, resources.Key{Kind: "Node", Name: "state-n1"})
	if err != nil {
		t.Fatal(err)
	}
	n := r.(*resources.Node)
	n.Spec.IPv4VXLANTunnelAddr = "10.248.0.1"
	if _, err := e.c.Update(ctx, n); err != nil {
		t.Fatal(err)
	}
	waitModel(t, f, "the node's tunnel address", func(m *Model, _ Status) bool {
		n := m.Node("state-n1")
		return n != nil && n.Spec.IPv4VXLANTunnelAddr == "10.248.0.1"
	})

	// A second pod, then its deletion.
	e.srv.CreatePod(t, kubetest.Pod{Namespace: ns, Name: "b", NodeName: "state-n1",
		Annotations: map[string]string{kubernetes.AnnotationPodIP: "10.248.0.3/32"}, IPs: []string{"10.248.0.3"}})
	waitModel(t, f, "pod b", func(m *Model, _ Status) bool { return len(m.WorkloadEndpointsOn("state-n1")) == 2 })
	if err := e.srv.Clientset(t).CoreV1().Pods(ns).Delete(ctx, "b", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	waitModel(t, f, "pod b gone", func(m *Model, _ Status) bool {
		ws := m.WorkloadEndpointsOn("state-n1")
		return len(ws) == 1 && strings.HasSuffix(ws[0].Key.Name, "-k8s-a-eth0")
	})

	// Pool modified, then deleted.
	r, err = e.c.Get(ctx, resources.Key{Kind: "IPPool", Name: "state-p1"})
	if err != nil {
		t.Fatal(err)
	}
	pp := r.(*resources.IPPool)
	pp.Spec.Disabled = true
	if _, err := e.c.Update(ctx, pp); err != nil {
		t.Fatal(err)
	}
	waitModel(t, f, "the pool disabled", func(m *Model, _ Status) bool {
		return slices.ContainsFunc(m.Pools(), func(p *resources.IPPool) bool { return p.Name == "state-p1" && p.Spec.Disabled })
	})
	if _, err := e.c.Delete(ctx, resources.Key{Kind: "IPPool", Name: "state-p1"}, ""); err != nil {
		t.Fatal(err)
	}
	waitModel(t, f, "the pool gone", func(m *Model, _ Status) bool {
		return !slices.ContainsFunc(m.Pools(), func(p *resources.IPPool) bool { return p.Name == "state-p1" })
	})

	// A block added, re-affined, deleted (a two-step delete on Kubernetes).
	b, err := e.store.CreateBlock(ctx, newBlock("10.248.0.64/26", "state-n2"))
	if err != nil {
		t.Fatal(err)
	}
	waitModel(t, f, "the new block", func(m *Model, _ Status) bool { return len(m.BlocksAffineTo("state-n2")) == 1 })
	b.Affinity = "host:state-n3"
	if b, err = e.store.UpdateBlock(ctx, b); err != nil {
		t.Fatal(err)
	}
	waitModel(t, f, "the block re-affined", func(m *Model, _ Status) bool {
		return len(m.BlocksAffineTo("state-n2")) == 0 && len(m.BlocksAffineTo("state-n3")) == 1
	})
	if err := e.store.DeleteBlock(ctx, b); err != nil {
		t.Fatal(err)
	}
	waitModel(t, f, "the block gone", func(m *Model, _ Status) bool {
		return m.BlockContaining(netip.MustParseAddr("10.248.0.70")) == nil && len(m.BlocksAffineTo("state-n3")) == 0
	})
	if st := f.Status(); !st.Synced || st.Relists != 0 {
		t.Errorf("status = %+v, want synced without relists", st)
	}
}

// TestFollowerKDDPolicy follows the policy kinds on a real kube-apiserver:
// a Calico GlobalNetworkPolicy (a CRD), a Kubernetes NetworkPolicy as
// knp.default.<name>, and Namespaces and ServiceAccounts as kns.*/ksa.*
// Profiles, created, relabelled and deleted after the first list.
func TestFollowerKDDPolicy(t *testing.T) {
	e := newKDDEnv(t)
	ctx := t.Context()
	kube := e.srv.Clientset(t)
	if err := e.c.EnsureInitialized(ctx, client.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	const ns = "state-policy"
	e.srv.CreateNamespace(t, ns, map[string]string{"tenant": "a"})
	knp := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "listed"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
	if _, err := kube.NetworkingV1().NetworkPolicies(ns).Create(ctx, knp, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	np := func(m *Model, name string) *resources.NetworkPolicy {
		for _, p := range m.NetworkPolicies() {
			if p.Namespace == ns && p.Name == name {
				return p
			}
		}
		return nil
	}
	prof := func(m *Model, name string) *resources.Profile {
		for _, p := range m.Profiles() {
			if p.Name == name {
				return p
			}
		}
		return nil
	}
	seq := uint64(0)
	f := start(t, Config{Datastore: e.ds, Blocks: e.store})
	waitModel(t, f, "the first lists", func(m *Model, st Status) bool {
		seq = m.Seq()
		p := prof(m, "kns."+ns)
		return st.Synced && np(m, "knp.default.listed") != nil && p != nil && p.Spec.LabelsToApply["pcns.tenant"] == "a" &&
			prof(m, "ksa."+ns+".default") != nil && prof(m, "projectcalico-default-allow") != nil &&
			slices.ContainsFunc(m.Tiers(), func(t *resources.Tier) bool { return t.Name == "default" })
	})

	// A Kubernetes NetworkPolicy added, changed, deleted.
	knp = &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
	knp, err := kube.NetworkingV1().NetworkPolicies(ns).Create(ctx, knp, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitModel(t, f, "knp.default.db", func(m *Model, _ Status) bool {
		p := np(m, "knp.default.db")
		return p != nil && strings.Contains(p.Spec.Selector, "app == 'db'")
	})
	knp.Spec.PodSelector.MatchLabels["app"] = "cache"
	if _, err := kube.NetworkingV1().NetworkPolicies(ns).Update(ctx, knp, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitModel(t, f, "knp.default.db changed", func(m *Model, _ Status) bool {
		p := np(m, "knp.default.db")
		return p != nil && strings.Contains(p.Spec.Selector, "app == 'cache'")
	})
	if err := kube.NetworkingV1().NetworkPolicies(ns).Delete(ctx, "db", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitModel(t, f, "knp.default.db gone", func(m *Model, _ Status) bool { return np(m, "knp.default.db") == nil })

	// A namespace created, relabelled, deleted; its service account.
	const ns2 = "state-policy-2"
	e.srv.CreateNamespace(t, ns2, map[string]string{"tenant": "b"})
	waitModel(t, f, "kns."+ns2, func(m *Model, _ Status) bool {
		p := prof(m, "kns."+ns2)
		return p != nil && p.Spec.LabelsToApply["pcns.tenant"] == "b" && prof(m, "ksa."+ns2+".default") != nil
	})
	n, err := kube.CoreV1().Namespaces().Get(ctx, ns2, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Labels["tenant"] = "c"
	if _, err := kube.CoreV1().Namespaces().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitModel(t, f, "kns."+ns2+" relabelled", func(m *Model, _ Status) bool {
		p := prof(m, "kns."+ns2)
		return p != nil && p.Spec.LabelsToApply["pcns.tenant"] == "c"
	})
	if err := kube.CoreV1().ServiceAccounts(ns2).Delete(ctx, "default", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitModel(t, f, "ksa."+ns2+".default gone", func(m *Model, _ Status) bool { return prof(m, "ksa."+ns2+".default") == nil })

	// A Calico GlobalNetworkPolicy (a CRD) added and deleted.
	g := gnp("state-g", "all()")
	resources.SetTypeMeta(g)
	if _, err := e.c.Create(ctx, g); err != nil {
		t.Fatal(err)
	}
	waitModel(t, f, "the GNP", func(m *Model, _ Status) bool {
		return slices.ContainsFunc(m.GlobalNetworkPolicies(), func(p *resources.GlobalNetworkPolicy) bool { return p.Name == "state-g" })
	})
	if _, err := e.c.Delete(ctx, resources.Key{Kind: "GlobalNetworkPolicy", Name: "state-g"}, ""); err != nil {
		t.Fatal(err)
	}
	waitModel(t, f, "the GNP gone", func(m *Model, _ Status) bool { return len(m.GlobalNetworkPolicies()) == 0 })

	f.Read(func(m *Model, _ uint64) {
		cs, ok := m.ChangesSince(seq)
		if !ok {
			t.Fatal("change log lost")
		}
		kinds := map[string]int{}
		for _, c := range cs {
			if c.Kind == ChangedPolicy {
				kinds[c.Key.Kind]++
			}
		}
		if kinds["NetworkPolicy"] < 3 || kinds["Profile"] < 3 || kinds["GlobalNetworkPolicy"] != 2 {
			t.Errorf("ChangedPolicy records by kind = %v", kinds)
		}
	})
	if st := f.Status(); !st.Synced || st.Relists != 0 {
		t.Errorf("status = %+v, want synced without relists", st)
	}
}
