package cni

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/datastore/kubernetes"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/kubestore"
	"github.com/opencalico/calicoctl/internal/kubetest"
	"github.com/opencalico/calicoctl/internal/kubetest/kubecrd"
	"github.com/opencalico/calicoctl/resources"
)

// The Kubernetes-datastore tests share one kube-apiserver (kubetest.Shared,
// started by TestMain's kubetest.Main) with the Calico CRDs, one node and
// two pools: kdd-pool-a for automatic assignment and kdd-pool-b, whose
// nodeSelector matches no node, used only when asked for by name.
const (
	kddNode      = "kdd-node-1"
	kddPoolA     = "kdd-pool-a"
	kddPoolACIDR = "10.70.0.0/16"
	kddPoolB     = "kdd-pool-b"
	kddPoolBCIDR = "10.71.0.0/16"
	kddBlockBits = 26 // the pools' default blockSize
)

// kddFixture is the shared API server seen through the clients the tests
// check with: the Calico Kubernetes backend (what `calicoctl get` reads),
// client-go and a dynamic client for the IPAM custom resources.
type kddFixture struct {
	srv *kubetest.APIServer
	ds  datastore.Interface
	cs  k8s.Interface
	dyn dynamic.Interface
}

func kddSetup(t *testing.T) *kddFixture {
	t.Helper()
	srv := kubetest.Shared(t)
	f := &kddFixture{srv: srv, cs: srv.Clientset(t)}
	var err error
	if f.dyn, err = dynamic.NewForConfig(srv.RESTConfig()); err != nil {
		t.Fatalf("dynamic client: %v", err)
	}
	kubecrd.Install(t, srv)
	ds, err := kubernetes.New(t.Context(), kubernetes.Config{Kubeconfig: srv.Kubeconfig})
	if err != nil {
		t.Fatalf("kubernetes backend: %v", err)
	}
	t.Cleanup(func() { _ = ds.Close() })
	f.ds = ds

	// The node and pools are made by whichever test comes first.
	if _, err := f.cs.CoreV1().Nodes().Get(t.Context(), kddNode, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		srv.CreateNode(t, kddNode, map[string]string{"kubernetes.io/hostname": kddNode}, "192.0.2.10")
	} else if err != nil {
		t.Fatalf("node %s: %v", kddNode, err)
	}
	for _, p := range []struct{ name, cidr, sel string }{{kddPoolA, kddPoolACIDR, ""}, {kddPoolB, kddPoolBCIDR, "has(kdd-no-such-label)"}} {
		pool := &resources.IPPool{}
		pool.Name = p.name
		pool.Spec.CIDR = p.cidr
		pool.Spec.NodeSelector = p.sel
		if _, err := client.New(ds).Create(t.Context(), pool); err != nil && !errors.Is(err, datastore.ErrExists) {
			t.Fatalf("create IPPool %s: %v", p.name, err)
		}
	}
	return f
}

// conf is a network config on the Kubernetes datastore, as the upstream
// installer writes it; ipamExtra is merged into the ipam section.
func (f *kddFixture) conf(ipamExtra string) string {
	return fmt.Sprintf(`{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"calico","datastore_type":"kubernetes",
		"kubernetes":{"kubeconfig":%q},"nodename":%q,"mtu":1400,"log_level":"debug","policy":{"type":"k8s"},
		"ipam":{"type":"calico-ipam"%s}}`, f.srv.Kubeconfig, kddNode, ipamExtra)
}

// run invokes the plugin for pod ns/name with the given container ID. Only
// the dataplane is faked: the datastore and the pod source are the ones the
// plugin builds from the config.
func (f *kddFixture) run(t *testing.T, dp Dataplane, command, id, ns, name, ipamExtra string) (string, int) {
	t.Helper()
	h := &harness{t: t, node: kddNode}
	return h.run(Options{Dataplane: dp}, invocation{command: command, id: id, netns: "/run/netns/" + id,
		pod: ns + "/" + name, conf: f.conf(ipamExtra)})
}

// namespace creates a namespace with annotations.
func (f *kddFixture) namespace(t *testing.T, name string, ann map[string]string) {
	t.Helper()
	f.srv.CreateNamespace(t, name, nil)
	if len(ann) == 0 {
		return
	}
	body := mustJSON(map[string]any{"metadata": map[string]any{"annotations": ann}})
	if _, err := f.cs.CoreV1().Namespaces().Patch(t.Context(), name, types.MergePatchType, []byte(body), metav1.PatchOptions{}); err != nil {
		t.Fatalf("annotate namespace %s: %v", name, err)
	}
}

func (f *kddFixture) pod(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	p, err := f.cs.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod %s/%s: %v", ns, name, err)
	}
	return p
}

// cr reads one IPAM custom resource; nil when it does not exist.
func (f *kddFixture) cr(t *testing.T, gvr schema.GroupVersionResource, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := f.dyn.Resource(gvr).Get(t.Context(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("get %s %s: %v", gvr.Resource, name, err)
	}
	return u
}

// blockOf is the /26 block holding ip and ip's ordinal in it.
func blockOf(ip netip.Addr) (netip.Prefix, int) {
	block := netip.PrefixFrom(ip, kddBlockBits).Masked()
	b, a := block.Addr().As4(), ip.As4()
	return block, int(a[3]) - int(b[3])
}

// allocation returns the handle_id recorded for ip in its IPAMBlock CR
// ("" when the ordinal is free) and the block's affinity.
func (f *kddFixture) allocation(t *testing.T, ip netip.Addr) (handle, affinity string) {
	t.Helper()
	block, ord := blockOf(ip)
	u := f.cr(t, kubestore.BlockResource, ipam.BlockCRName(block))
	if u == nil {
		t.Fatalf("IPAMBlock %s for %s does not exist", ipam.BlockCRName(block), ip)
	}
	affinity, _, _ = unstructured.NestedString(u.Object, "spec", "affinity")
	allocs, _, _ := unstructured.NestedSlice(u.Object, "spec", "allocations")
	attrs, _, _ := unstructured.NestedSlice(u.Object, "spec", "attributes")
	if ord >= len(allocs) || allocs[ord] == nil {
		return "", affinity
	}
	idx, ok := allocs[ord].(int64)
	if !ok || int(idx) >= len(attrs) {
		t.Fatalf("IPAMBlock %s: allocation %d = %v with %d attributes", u.GetName(), ord, allocs[ord], len(attrs))
	}
	handle, _, _ = unstructured.NestedString(attrs[idx].(map[string]any), "handle_id")
	return handle, affinity
}

// checkAllocated asserts the IPAM CRs of an assignment of ip to handle on
// kddNode: the block's allocation, the node's affinity and the handle.
func (f *kddFixture) checkAllocated(t *testing.T, ip netip.Addr, handle string) {
	t.Helper()
	block, _ := blockOf(ip)
	if h, aff := f.allocation(t, ip); h != handle || aff != "host:"+kddNode {
		t.Errorf("IPAMBlock %s: %s allocated to %q with affinity %q; want %q, host:%s", ipam.BlockCRName(block), ip, h, aff, handle, kddNode)
	}
	aff := f.cr(t, kubestore.AffinityResource, ipam.AffinityCRName(kddNode, block))
	if aff == nil {
		t.Errorf("BlockAffinity %s does not exist", ipam.AffinityCRName(kddNode, block))
	} else if state, _, _ := unstructured.NestedString(aff.Object, "spec", "state"); state != "confirmed" {
		t.Errorf("BlockAffinity %s: state %q, want confirmed", aff.GetName(), state)
	}
	hu := f.cr(t, kubestore.HandleResource, ipam.HandleCRName(handle))
	if hu == nil {
		t.Fatalf("IPAMHandle %s does not exist", ipam.HandleCRName(handle))
	}
	id, _, _ := unstructured.NestedString(hu.Object, "spec", "handleID")
	count, _, _ := unstructured.NestedInt64(hu.Object, "spec", "block", block.String())
	if id != handle || count != 1 {
		t.Errorf("IPAMHandle %s: handleID %q, block %s count %d; want %q, 1", hu.GetName(), id, block, count, handle)
	}
}

// checkReleased asserts ip is free in its block and handle's CR is gone.
func (f *kddFixture) checkReleased(t *testing.T, ip netip.Addr, handle string) {
	t.Helper()
	if h, _ := f.allocation(t, ip); h != "" {
		t.Errorf("%s still allocated to %q", ip, h)
	}
	if hu := f.cr(t, kubestore.HandleResource, ipam.HandleCRName(handle)); hu != nil {
		t.Errorf("IPAMHandle %s still exists: %v", hu.GetName(), hu.Object["spec"])
	}
}

// onlyIP parses an ADD result that must carry one IPv4 /32.
func onlyIP(t *testing.T, out string) netip.Addr {
	t.Helper()
	ips := resultIPs(parseResult(t, out))
	if len(ips) != 1 || ips[0].Bits() != 32 || !ips[0].Addr().Is4() {
		t.Fatalf("result IPs %v, want one IPv4 /32", ips)
	}
	return ips[0].Addr()
}

// TestKDDAddPod: an ADD on the Kubernetes datastore assigns from the pool,
// records the address on the pod, makes the IPAM CRs, and the WEP that
// `calicoctl get wep -n <ns>` lists carries it with the pod's identity.
func TestKDDAddPod(t *testing.T) {
	f := kddSetup(t)
	const ns, name, id = "kdd-add", "web-1", "kddadd0001"
	f.namespace(t, ns, nil)
	f.srv.CreateServiceAccount(t, ns, "sa1")
	f.srv.CreatePod(t, kubetest.Pod{Namespace: ns, Name: name, NodeName: kddNode, ServiceAccount: "sa1", Labels: map[string]string{"app": "web"}})
	dp := &fakeDataplane{}

	out, code := f.run(t, dp, CmdAdd, id, ns, name, "")
	if code != 0 {
		t.Fatalf("ADD exit %d: %s", code, out)
	}
	ip := onlyIP(t, out)
	if !netip.MustParsePrefix(kddPoolACIDR).Contains(ip) {
		t.Fatalf("ADD assigned %s, want an address of %s (%s)", ip, kddPoolA, kddPoolACIDR)
	}
	hostIf := kubernetes.VethName(ns, name)
	if ep, ok := dp.eps[hostIf]; !ok || ep.MTU != 1400 || len(ep.IPs) != 1 || ep.IPs[0].Addr() != ip {
		t.Errorf("dataplane endpoint %s = %+v (present %v)", hostIf, ep, ok)
	}

	ann := f.pod(t, ns, name).Annotations
	want := map[string]string{kubernetes.AnnotationPodIP: ip.String() + "/32", kubernetes.AnnotationPodIPs: ip.String() + "/32", kubernetes.AnnotationContainerID: id}
	for k, v := range want {
		if ann[k] != v {
			t.Errorf("pod annotation %s = %q, want %q", k, ann[k], v)
		}
	}

	list, err := f.ds.List(t.Context(), datastore.ListOptions{Kind: "WorkloadEndpoint", Namespace: ns})
	if err != nil {
		t.Fatalf("list WEPs in %s: %v", ns, err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("WEPs in %s: %d, want 1", ns, len(list.Items))
	}
	w := list.Items[0].(*resources.WorkloadEndpoint)
	s := w.Spec
	if w.Name != "kdd--node--1-k8s-web--1-eth0" || s.Node != kddNode || s.Pod != name || s.ContainerID != id || s.InterfaceName != hostIf ||
		!slices.Equal(s.IPNetworks, []string{ip.String() + "/32"}) {
		t.Errorf("WEP %s spec = %+v", w.Name, s)
	}
	if !slices.Equal(s.Profiles, []string{"kns." + ns, "ksa." + ns + ".sa1"}) || s.ServiceAccountName != "sa1" {
		t.Errorf("WEP profiles %v, service account %q", s.Profiles, s.ServiceAccountName)
	}
	if w.Labels["app"] != "web" || w.Labels[resources.LabelNamespace] != ns || w.Labels[resources.LabelOrchestrator] != "k8s" ||
		w.Labels[kubernetes.LabelServiceAccount] != "sa1" {
		t.Errorf("WEP labels = %v", w.Labels)
	}

	handle := HandleID("k8s-pod-network", id)
	f.checkAllocated(t, ip, handle)

	// A repeated ADD keeps the address and the annotations.
	out, code = f.run(t, dp, CmdAdd, id, ns, name, "")
	if code != 0 || onlyIP(t, out) != ip {
		t.Fatalf("second ADD: exit %d, %s; want %s again", code, out, ip)
	}
	if got := f.pod(t, ns, name).Annotations[kubernetes.AnnotationPodIP]; got != ip.String()+"/32" {
		t.Errorf("podIP after the second ADD = %q", got)
	}
}

// TestKDDAnnotations: the pod and namespace annotations steer the
// assignment on the Kubernetes datastore as on etcd.
func TestKDDAnnotations(t *testing.T) {
	f := kddSetup(t)
	tests := []struct {
		name   string
		podAnn map[string]string
		nsAnn  map[string]string
		want   string // CIDR (or /32) the address must fall in
	}{
		{name: "ipaddrs", podAnn: map[string]string{AnnotationIPAddrs: `["10.70.200.7"]`}, want: "10.70.200.7/32"},
		{name: "pod-pool", podAnn: map[string]string{AnnotationIPv4Pools: `["` + kddPoolB + `"]`}, want: kddPoolBCIDR},
		{name: "pod-pool-cidr", podAnn: map[string]string{AnnotationIPv4Pools: `["` + kddPoolBCIDR + `"]`}, want: kddPoolBCIDR},
		{name: "ns-pool", nsAnn: map[string]string{AnnotationIPv4Pools: `["` + kddPoolB + `"]`}, want: kddPoolBCIDR},
		{name: "pod-beats-ns", podAnn: map[string]string{AnnotationIPv4Pools: `["` + kddPoolA + `"]`}, nsAnn: map[string]string{AnnotationIPv4Pools: `["` + kddPoolB + `"]`}, want: kddPoolACIDR},
		{name: "hwaddr", podAnn: map[string]string{AnnotationHWAddr: "0a:58:0a:f4:00:09"}, want: kddPoolACIDR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, id := "kdd-ann-"+tt.name, "kddann"+tt.name
			f.namespace(t, ns, tt.nsAnn)
			f.srv.CreatePod(t, kubetest.Pod{Namespace: ns, Name: "p", NodeName: kddNode, Annotations: tt.podAnn})
			dp := &fakeDataplane{}
			out, code := f.run(t, dp, CmdAdd, id, ns, "p", "")
			if code != 0 {
				t.Fatalf("ADD exit %d: %s", code, out)
			}
			ip := onlyIP(t, out)
			if !netip.MustParsePrefix(tt.want).Contains(ip) {
				t.Fatalf("assigned %s, want one in %s", ip, tt.want)
			}
			if got := f.pod(t, ns, "p").Annotations[kubernetes.AnnotationPodIP]; got != ip.String()+"/32" {
				t.Errorf("podIP annotation %q, want %s/32", got, ip)
			}
			f.checkAllocated(t, ip, HandleID("k8s-pod-network", id))
			if mac := tt.podAnn[AnnotationHWAddr]; mac != "" {
				res := parseResult(t, out)
				ep := dp.eps[kubernetes.VethName(ns, "p")]
				if ep.ContainerMAC.String() != mac || len(res.Interfaces) != 2 || res.Interfaces[1].Mac != mac {
					t.Errorf("container MAC: dataplane %v, result %+v; want %s", ep.ContainerMAC, res.Interfaces, mac)
				}
			}
			if out, code := f.run(t, dp, CmdDel, id, ns, "p", ""); code != 0 {
				t.Fatalf("DEL exit %d: %s", code, out)
			}
			f.checkReleased(t, ip, HandleID("k8s-pod-network", id))
		})
	}
}

// TestKDDDel: DEL releases the address and blanks the pod's IP annotations,
// may be repeated, and still releases when the pod is already gone.
func TestKDDDel(t *testing.T) {
	f := kddSetup(t)
	const ns = "kdd-del"
	f.namespace(t, ns, nil)
	tests := []struct {
		name      string
		deletePod bool // delete the pod from the API server before DEL
	}{
		{name: "pod-present"},
		{name: "pod-deleted", deletePod: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "kdddel" + tt.name
			f.srv.CreatePod(t, kubetest.Pod{Namespace: ns, Name: tt.name, NodeName: kddNode})
			dp := &fakeDataplane{}
			out, code := f.run(t, dp, CmdAdd, id, ns, tt.name, "")
			if code != 0 {
				t.Fatalf("ADD exit %d: %s", code, out)
			}
			ip := onlyIP(t, out)
			handle := HandleID("k8s-pod-network", id)
			f.checkAllocated(t, ip, handle)
			if tt.deletePod {
				zero := int64(0) // no kubelet runs to finish a graceful delete
				if err := f.cs.CoreV1().Pods(ns).Delete(t.Context(), tt.name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
					t.Fatalf("delete pod: %v", err)
				}
			}
			for i := range 2 {
				if out, code := f.run(t, dp, CmdDel, id, ns, tt.name, ""); code != 0 || out != "" {
					t.Fatalf("DEL #%d: exit %d, stdout %q", i+1, code, out)
				}
			}
			f.checkReleased(t, ip, handle)
			if dp.dels != 2 || len(dp.eps) != 0 {
				t.Errorf("dataplane after DEL: %d deletes, endpoints %v", dp.dels, dp.eps)
			}
			if tt.deletePod {
				return
			}
			ann := f.pod(t, ns, tt.name).Annotations
			for _, k := range []string{kubernetes.AnnotationPodIP, kubernetes.AnnotationPodIPs} {
				if v, ok := ann[k]; !ok || v != "" {
					t.Errorf("pod annotation %s after DEL = %q (present %v), want blank", k, v, ok)
				}
			}
			w, err := f.ds.Get(t.Context(), resources.Key{Kind: "WorkloadEndpoint", Namespace: ns, Name: mustName(t, resources.WEPIdentifiers{Node: kddNode, Orchestrator: "k8s", Pod: tt.name, Endpoint: "eth0"})})
			if err != nil {
				t.Fatalf("WEP after DEL: %v", err)
			}
			if nets := w.(*resources.WorkloadEndpoint).Spec.IPNetworks; len(nets) != 0 {
				t.Errorf("WEP after DEL still has addresses %v", nets)
			}
		})
	}
}

// TestKDDLateDelKeepsNewSandbox: a DEL for a pod's old sandbox, arriving
// after the new sandbox's ADD, releases only the old address and leaves the
// pod's annotations (its WEP) with the new sandbox.
func TestKDDLateDelKeepsNewSandbox(t *testing.T) {
	f := kddSetup(t)
	const ns, name = "kdd-late", "db"
	f.namespace(t, ns, nil)
	f.srv.CreatePod(t, kubetest.Pod{Namespace: ns, Name: name, NodeName: kddNode})
	dp := &fakeDataplane{}
	ips := map[string]netip.Addr{}
	for _, id := range []string{"kddlateold", "kddlatenew"} {
		out, code := f.run(t, dp, CmdAdd, id, ns, name, "")
		if code != 0 {
			t.Fatalf("ADD %s exit %d: %s", id, code, out)
		}
		ips[id] = onlyIP(t, out)
	}
	if ips["kddlateold"] == ips["kddlatenew"] {
		t.Fatalf("both sandboxes got %s", ips["kddlatenew"])
	}
	if out, code := f.run(t, dp, CmdDel, "kddlateold", ns, name, ""); code != 0 {
		t.Fatalf("DEL of the old sandbox: exit %d: %s", code, out)
	}
	f.checkReleased(t, ips["kddlateold"], HandleID("k8s-pod-network", "kddlateold"))
	f.checkAllocated(t, ips["kddlatenew"], HandleID("k8s-pod-network", "kddlatenew"))
	ann := f.pod(t, ns, name).Annotations
	if ann[kubernetes.AnnotationContainerID] != "kddlatenew" || ann[kubernetes.AnnotationPodIP] != ips["kddlatenew"].String()+"/32" {
		t.Errorf("pod annotations after the old sandbox's DEL = %v; want the new sandbox's (%s)", ann, ips["kddlatenew"])
	}
}
