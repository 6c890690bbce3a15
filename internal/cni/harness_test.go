package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	types100 "github.com/containernetworking/cni/pkg/types/100"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/datastore/etcd"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/internal/etcdserver"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/ipamstore"
	"github.com/opencalico/calicoctl/resources"
)

// harness is an embedded etcd with IP pools, and helpers to invoke the plugin
// the way a container runtime does.
type harness struct {
	t         testing.TB
	ds        datastore.Interface
	endpoints string
	node      string
}

func newHarness(t testing.TB, pools ...string) *harness {
	t.Helper()
	srv := etcdserver.StartForTest(t)
	ctx := context.Background()
	ds, err := etcd.New(ctx, etcd.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = ds.Close() })
	h := &harness{t: t, ds: ds, endpoints: strings.Join(srv.Endpoints(), ","), node: "node-1"}
	for i, cidr := range pools {
		p := &resources.IPPool{}
		p.Name = fmt.Sprintf("pool-%d", i)
		p.Spec.CIDR = cidr
		if _, err := client.New(ds).Create(ctx, p); err != nil {
			t.Fatalf("create pool %s: %v", cidr, err)
		}
	}
	return h
}

// conf is a network config pointing at the harness's etcd; extra is merged
// into the top level and ipam into the ipam section.
func (h *harness) conf(extra, ipamExtra string) string {
	c := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"calico","datastore_type":"etcdv3",
		"etcd_endpoints":%q,"nodename":%q,"mtu":1400,"log_level":"debug"%s,
		"ipam":{"type":"calico-ipam"%s}}`, h.endpoints, h.node, extra, ipamExtra)
	return c
}

type invocation struct {
	plugin  string
	command string
	id      string
	netns   string
	ifname  string
	pod     string // "ns/name" or "" for a plain CNI container
	conf    string
}

// run invokes the plugin in-process and returns stdout and the exit code.
func (h *harness) run(o Options, inv invocation) (string, int) {
	env := map[string]string{"CNI_COMMAND": inv.command, "CNI_CONTAINERID": inv.id, "CNI_NETNS": inv.netns, "CNI_IFNAME": inv.ifname, "CNI_PATH": "/nonexistent"}
	if inv.ifname == "" {
		env["CNI_IFNAME"] = "eth0"
	}
	if ns, name, ok := strings.Cut(inv.pod, "/"); ok {
		env["CNI_ARGS"] = fmt.Sprintf("IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;K8S_POD_INFRA_CONTAINER_ID=%s", ns, name, inv.id)
	}
	if inv.plugin == "" {
		inv.plugin = PluginCalico
	}
	var out, errOut bytes.Buffer
	o.Plugin, o.Env, o.Stdin, o.Stdout, o.Stderr = inv.plugin, envOf(env), strings.NewReader(inv.conf), &out, &errOut
	if o.FS == nil {
		o.FS = fakeFS{}
	}
	code := Run(context.Background(), o)
	if code != 0 && testing.Verbose() {
		h.t.Logf("plugin stderr:\n%s", errOut.String())
	}
	return out.String(), code
}

func parseResult(t testing.TB, out string) *types100.Result {
	t.Helper()
	r, err := types100.NewResult([]byte(out))
	if err != nil {
		t.Fatalf("result %q: %v", out, err)
	}
	res, err := types100.GetResult(r)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func resultIPs(r *types100.Result) []netip.Prefix {
	var out []netip.Prefix
	for _, ip := range r.IPs {
		a, _ := netip.AddrFromSlice(ip.Address.IP)
		ones, _ := ip.Address.Mask.Size()
		out = append(out, netip.PrefixFrom(a.Unmap(), ones))
	}
	return out
}

func (h *harness) allocator() *ipam.Allocator {
	store, err := ipamstore.Open(h.ds)
	if err != nil {
		h.t.Fatal(err)
	}
	return ipam.New(store, ipam.PoolsFromDatastore(h.ds))
}

func (h *harness) wep(ns, name string) (*resources.WorkloadEndpoint, error) {
	r, err := h.ds.Get(context.Background(), resources.Key{Kind: "WorkloadEndpoint", Namespace: ns, Name: name})
	if err != nil {
		return nil, err
	}
	return r.(*resources.WorkloadEndpoint), nil
}

// fakePods serves pods and namespaces from memory.
type fakePods struct {
	pods map[string]*corev1.Pod
	nss  map[string]*corev1.Namespace
}

func (f fakePods) PodInfo(_ context.Context, ns, name string) (*PodInfo, error) {
	p, ok := f.pods[ns+"/"+name]
	if !ok {
		return nil, fmt.Errorf("pod %s/%s not found", ns, name)
	}
	return &PodInfo{Pod: p, Namespace: f.nss[ns]}, nil
}

func pod(ns, name string, labels, ann map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, Annotations: ann},
		Spec: corev1.PodSpec{ServiceAccountName: "sa1", Containers: []corev1.Container{{Name: "c", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}}}
}

// fakeDataplane records what it was asked to wire.
type fakeDataplane struct {
	mu   sync.Mutex
	eps  map[string]Endpoint
	dels int
}

func (f *fakeDataplane) Add(_ context.Context, ep Endpoint) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.eps == nil {
		f.eps = map[string]Endpoint{}
	}
	f.eps[ep.HostIf] = ep
	if ep.ContainerMAC != nil {
		return ep.ContainerMAC.String(), nil
	}
	return "02:00:00:00:00:01", nil
}

func (f *fakeDataplane) Del(_ context.Context, hostIf, _, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.eps, hostIf)
	f.dels++
	return nil
}

func (f *fakeDataplane) Check(_ context.Context, ep Endpoint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.eps[ep.HostIf]; !ok {
		return fmt.Errorf("%s missing", ep.HostIf)
	}
	return nil
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }
