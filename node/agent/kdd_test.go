package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/opencalico/calicoctl/datastore/kubernetes"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/ipamstore"
	"github.com/opencalico/calicoctl/internal/ipam/kubestore"
	"github.com/opencalico/calicoctl/internal/kubetest"
	"github.com/opencalico/calicoctl/internal/kubetest/kubecrd"
	"github.com/opencalico/calicoctl/node/autodetect"
	"github.com/opencalico/calicoctl/node/config"
	"github.com/opencalico/calicoctl/node/routes"
	"github.com/opencalico/calicoctl/resources"
)

// kddServer is the binary's shared kube-apiserver with every Calico CRD
// served.
func kddServer(t *testing.T) *kubetest.APIServer {
	t.Helper()
	if testing.Short() {
		t.Skip("needs kube-apiserver")
	}
	srv := kubetest.Shared(t)
	kubecrd.Install(t, srv)
	return srv
}

// kddInternalIP reads the Kubernetes Node's InternalIP addresses through
// the datastore, as `calicoctl node run` does for kubernetes-internal-ip.
func kddInternalIP(ds *kubernetes.Backend, node string) autodetect.K8sInternalIP {
	return func(ctx context.Context) ([]netip.Addr, error) {
		r, err := ds.Get(ctx, resources.Key{Kind: "Node", Name: node})
		if err != nil {
			return nil, err
		}
		var out []netip.Addr
		for _, a := range r.(*resources.Node).Spec.Addresses {
			if a.Type != resources.NodeAddressInternalIP {
				continue
			}
			if p, err := parseAddrOrPrefix(a.Address); err == nil {
				out = append(out, p.Addr())
			}
		}
		return out, nil
	}
}

// kddAgent is an agent run on the Kubernetes datastore.
type kddAgent struct {
	ds    *kubernetes.Backend
	dp    *fakeDataplane
	logs  *logCapture
	ready chan struct{}
	done  chan error
}

// startKDDAgent runs the agent for node with the kubernetes-internal-ip
// method, a host whose eth0 carries 10.0.0.5/24 and a default VXLAN pool.
// The agent stops when the test ends.
func startKDDAgent(t *testing.T, srv *kubetest.APIServer, node string) *kddAgent {
	t.Helper()
	ds, err := kubernetes.New(t.Context(), kubernetes.Config{Kubeconfig: srv.Kubeconfig})
	if err != nil {
		t.Fatalf("kubernetes datastore: %v", err)
	}
	t.Cleanup(func() { ds.Close() })
	store, err := ipamstore.Open(ds)
	if err != nil {
		t.Fatal(err)
	}
	envCfg, err := config.FromEnviron([]string{"NODENAME=" + node, "IP=autodetect",
		"IP_AUTODETECTION_METHOD=kubernetes-internal-ip",
		"CALICO_IPV4POOL_CIDR=10.244.0.0/16", "CALICO_IPV4POOL_VXLAN=Always"})
	if err != nil {
		t.Fatal(err)
	}
	a := &kddAgent{ds: ds, dp: newFakeDataplane(), logs: &logCapture{}, ready: make(chan struct{}), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		a.done <- Run(ctx, Config{
			Env: envCfg, NodeName: node, Datastore: ds, IPAM: store, Kubernetes: true,
			ClusterType: "k8s,bgp", CalicoVersion: "test",
			Host:          staticHost{{Name: "eth0", Up: true, Addrs: []netip.Prefix{pfx("10.0.0.5/24")}}},
			K8sInternalIP: kddInternalIP(ds, node),
			Dataplane:     a.dp, SyncInterval: 100 * time.Millisecond, MTUFile: "-",
			Logger: slog.New(a.logs), Ready: func() { close(a.ready) },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-a.done; err != nil {
			t.Errorf("Run returned %v on cancel, want nil", err)
		}
	})
	return a
}

// TestKDDRunRegistersNodeAndSyncsPods runs the agent on a real
// kube-apiserver: it must annotate the Kubernetes Node, create the default
// pool, the cluster information and the VXLAN tunnel address as IPAM CRs,
// and hand the dataplane the node's pod as a local VXLAN workload.
func TestKDDRunRegistersNodeAndSyncsPods(t *testing.T) {
	srv := kddServer(t)
	const (
		node  = "kdd-agent-node"
		ns    = "kdd-agent"
		pod   = "web-0"
		podIP = "10.244.7.9"
	)
	srv.CreateNode(t, node, map[string]string{"kubernetes.io/os": "linux"}, "10.0.0.5")
	srv.CreateNamespace(t, ns, nil)
	srv.CreatePod(t, kubetest.Pod{Namespace: ns, Name: pod, NodeName: node,
		Annotations: map[string]string{kubernetes.AnnotationPodIP: podIP + "/32"}, IPs: []string{podIP}})

	a := startKDDAgent(t, srv, node)
	select {
	case <-a.ready:
	case err := <-a.done:
		t.Fatalf("Run returned before the first sync: %v", err)
	case <-time.After(90 * time.Second):
		t.Fatal("no first sync (hang guard)")
	}
	if got, _ := a.logs.attr("node registered", "ipv4"); got != "10.0.0.5/24" {
		t.Errorf(`"node registered" logged ipv4 %q, want 10.0.0.5/24`, got)
	}

	ctx := t.Context()
	// The Kubernetes Node carries the Calico data as annotations.
	kn, err := srv.Clientset(t).CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ann := kn.Annotations
	if got := ann[kubernetes.AnnotationIPv4Address]; got != "10.0.0.5/24" {
		t.Errorf("annotation %s = %q, want 10.0.0.5/24", kubernetes.AnnotationIPv4Address, got)
	}
	tunnel, err := netip.ParseAddr(ann[kubernetes.AnnotationIPv4VXLANTunnelAddr])
	if err != nil || !pfx("10.244.0.0/16").Contains(tunnel) {
		t.Fatalf("annotation %s = %q, want an address in 10.244.0.0/16", kubernetes.AnnotationIPv4VXLANTunnelAddr, ann[kubernetes.AnnotationIPv4VXLANTunnelAddr])
	}
	if mac := ann[kubernetes.AnnotationVXLANTunnelMACAddr]; len(mac) != 17 || strings.Count(mac, ":") != 5 {
		t.Errorf("annotation %s = %q, want a MAC address", kubernetes.AnnotationVXLANTunnelMACAddr, mac)
	}
	if kn.Labels["kubernetes.io/os"] != "linux" || len(kn.Status.Addresses) == 0 {
		t.Errorf("the agent clobbered the Kubernetes Node: labels %v, addresses %v", kn.Labels, kn.Status.Addresses)
	}

	dyn, err := dynamic.NewForConfig(srv.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	get := func(resource, name string) *unstructured.Unstructured {
		t.Helper()
		gvr := schema.GroupVersionResource{Group: kubestore.Group, Version: kubestore.Version, Resource: resource}
		u, err := dyn.Resource(gvr).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get %s %s: %v", resource, name, err)
		}
		return u
	}
	specString := func(u *unstructured.Unstructured, field string) string {
		v, _, _ := unstructured.NestedString(u.Object, "spec", field)
		return v
	}

	// The default pool and the cluster information are custom resources.
	p := get("ippools", "default-ipv4-ippool")
	if got := specString(p, "cidr"); got != "10.244.0.0/16" {
		t.Errorf("default pool cidr = %q", got)
	}
	if got := specString(p, "vxlanMode"); got != "Always" {
		t.Errorf("default pool vxlanMode = %q, want Always", got)
	}
	ci := get("clusterinformations", "default")
	if ct := strings.Split(specString(ci, "clusterType"), ","); !slices.Contains(ct, "kdd") || !slices.Contains(ct, "k8s") {
		t.Errorf("ClusterInformation clusterType = %q, want k8s and kdd in it", specString(ci, "clusterType"))
	}

	// The tunnel address is allocated in an IPAMBlock CR under the handle
	// upstream uses, with the VXLAN attribute type.
	handle := "vxlan-tunnel-addr-" + node
	h := get("ipamhandles", ipam.HandleCRName(handle))
	if got := specString(h, "handleID"); got != handle {
		t.Errorf("IPAMHandle handleID = %q, want %q", got, handle)
	}
	blocks, err := dyn.Resource(kubestore.BlockResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, u := range blocks.Items {
		b, err := blockFromCR(u)
		if err != nil {
			t.Fatalf("IPAMBlock %s: %v", u.GetName(), err)
		}
		for o, idx := range b.Allocations {
			if idx == nil {
				continue
			}
			attr := b.Attributes[*idx]
			if attr.HandleID == nil || *attr.HandleID != handle {
				continue
			}
			ip, _ := ipam.IPAt(b, o)
			found = append(found, fmt.Sprintf("%s %s %s", ip, attr.ActiveOwnerAttrs[ipam.AttrType], b.Affinity))
		}
	}
	want := fmt.Sprintf("%s %s host:%s", tunnel, ipam.TypeVXLANTunnel, node)
	if len(found) != 1 || found[0] != want {
		t.Errorf("IPAM allocations under %s = %q, want [%q]", handle, found, want)
	}

	// The dataplane gets the pod as a local workload on cali<11 hex>, with
	// VXLAN on and this node's tunnel address.
	iface := kubernetes.VethName(ns, pod)
	wantRoute := routes.WorkloadRoute{Addr: pfx(podIP + "/32"), Iface: iface}
	s := a.dp.waitFor(t, "the pod as a local workload", func(s *Snapshot) bool {
		return slices.Contains(s.Routes.Workloads, wantRoute)
	})
	if len(iface) != len("cali")+11 || !strings.HasPrefix(iface, "cali") {
		t.Errorf("interface name %q is not cali<11 hex>", iface)
	}
	if !s.VXLAN {
		t.Errorf("snapshot VXLAN flag off with a VXLAN Always pool")
	}
	if s.Local.IPv4 != pfx("10.0.0.5/24") || s.Local.IPv4VXLANTunnelAddr != tunnel {
		t.Errorf("snapshot local node = %+v, want 10.0.0.5/24 with tunnel %s", s.Local, tunnel)
	}
	if !hasPool(s, "10.244.0.0/16") {
		t.Errorf("snapshot pools %+v lack the default pool", s.Routes.Pools)
	}
}

// blockFromCR decodes an IPAMBlock custom resource.
func blockFromCR(u unstructured.Unstructured) (*ipam.Block, error) {
	var spec ipam.IPAMBlockCRSpec
	raw, err := json.Marshal(u.Object["spec"])
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, err
	}
	return ipam.BlockFromCRSpec(spec, u.GetResourceVersion())
}

// TestKDDRunRejectsUnknownNode: on Kubernetes the agent never invents a
// Node; a NODENAME that is not a Kubernetes node fails Run with a message
// that says what to fix.
func TestKDDRunRejectsUnknownNode(t *testing.T) {
	srv := kddServer(t)
	for _, tc := range []struct{ name, node string }{
		{"no such node", "kdd-ghost"},
		{"hostname-like name", "kdd-ghost.example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := startKDDAgent(t, srv, tc.node)
			var err error
			select {
			case err = <-a.done:
				a.done <- nil // the cleanup's cancel then reads a clean return
			case <-a.ready:
				t.Fatalf("the agent became ready for a node that is not in Kubernetes")
			case <-time.After(90 * time.Second):
				t.Fatal("Run did not return (hang guard)")
			}
			want := fmt.Sprintf("node %q does not exist in Kubernetes", tc.node)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Run error = %v, want it to contain %q", err, want)
			}
			if _, gerr := srv.Clientset(t).CoreV1().Nodes().Get(t.Context(), tc.node, metav1.GetOptions{}); gerr == nil {
				t.Errorf("a Kubernetes Node %s was created", tc.node)
			}
		})
	}
}
