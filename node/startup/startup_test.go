package startup

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/datastore/etcd"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/internal/etcdserver"
	"github.com/opencalico/calicoctl/node/autodetect"
	"github.com/opencalico/calicoctl/node/config"
	"github.com/opencalico/calicoctl/resources"
)

type host []autodetect.Interface

func (h host) Interfaces() ([]autodetect.Interface, error) { return h, nil }
func (h host) SourceFor(context.Context, netip.Addr) (netip.Addr, error) {
	return netip.Addr{}, errors.New("unreachable")
}
func (h host) ResolveHost(context.Context, string) ([]netip.Addr, error) {
	return nil, errors.New("no such host")
}

func oneIface(addrs ...string) host {
	i := autodetect.Interface{Name: "eth0", Up: true}
	for _, a := range addrs {
		i.Addrs = append(i.Addrs, netip.MustParsePrefix(a))
	}
	return host{i}
}

func newClient(t *testing.T) *client.Client {
	t.Helper()
	srv := etcdserver.StartForTest(t)
	ds, err := etcd.New(context.Background(), etcd.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	return client.New(ds)
}

func opts(t *testing.T, node string, h host, env ...string) Options {
	t.Helper()
	cfg, err := config.FromEnviron(env)
	if err != nil {
		t.Fatal(err)
	}
	return Options{Config: cfg, NodeName: node, Host: h, ClusterType: "etcd", CalicoVersion: "v3.32.1",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func get[T resources.Resource](t *testing.T, c *client.Client, kind, name string) T {
	t.Helper()
	r, err := c.Get(context.Background(), resources.Key{Kind: kind, Name: name})
	if err != nil {
		t.Fatalf("get %s %s: %v", kind, name, err)
	}
	return r.(T)
}

func TestFreshClusterRegistration(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	o := opts(t, "node-a", oneIface("fe80::1/64", "10.0.0.5/24"),
		"CALICO_IPV4POOL_CIDR=10.244.0.0/16", "CALICO_IPV4POOL_VXLAN=Always", "AS=64513")
	res, err := Run(ctx, c, o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.IPv4.String() != "10.0.0.5/24" || res.IPv6.IsValid() {
		t.Fatalf("result = %+v", res)
	}
	n := get[*resources.Node](t, c, "Node", "node-a")
	if n.Spec.BGP == nil || n.Spec.BGP.IPv4Address != "10.0.0.5/24" || n.Spec.BGP.ASNumber == nil || n.Spec.BGP.ASNumber.String() != "64513" {
		t.Errorf("node bgp = %+v", n.Spec.BGP)
	}
	if len(n.Spec.Addresses) != 1 || n.Spec.Addresses[0] != (resources.NodeAddress{Address: "10.0.0.5/24", Type: "CalicoNodeIP"}) {
		t.Errorf("addresses = %+v", n.Spec.Addresses)
	}
	p := get[*resources.IPPool](t, c, "IPPool", "default-ipv4-ippool")
	if p.Spec.CIDR != "10.244.0.0/16" || p.Spec.VXLANMode != "Always" || p.Spec.IPIPMode != "Never" || !p.Spec.NATOutgoing || p.Spec.BlockSize != 26 || p.Spec.NodeSelector != "all()" {
		t.Errorf("pool = %+v", p.Spec)
	}
	fc := get[*resources.FelixConfiguration](t, c, "FelixConfiguration", "default")
	if fc.Spec.ReportingInterval == nil || fc.Spec.ReportingInterval.Duration != 0 || fc.Spec.LogSeverityScreen != "Info" {
		t.Errorf("felix default = %+v", fc.Spec)
	}
	if nfc := get[*resources.FelixConfiguration](t, c, "FelixConfiguration", "node.node-a"); nfc.Spec.DefaultEndpointToHostAction != "Return" {
		t.Errorf("felix node = %+v", nfc.Spec)
	}
	get[*resources.BGPConfiguration](t, c, "BGPConfiguration", "default")
	ci := get[*resources.ClusterInformation](t, c, "ClusterInformation", "default")
	if ci.Spec.ClusterType != "etcd" || ci.Spec.CalicoVersion != "v3.32.1" {
		t.Errorf("cluster info = %+v", ci.Spec)
	}

	// A restart with the same settings writes nothing.
	res2, err := Run(ctx, c, o)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Created || len(res2.Pools) != 0 || res2.Node.ResourceVersion != n.ResourceVersion {
		t.Errorf("second run changed things: %+v (rv %s -> %s)", res2, n.ResourceVersion, res2.Node.ResourceVersion)
	}
}

func TestAddressChoice(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	if _, err := Run(ctx, c, opts(t, "n1", oneIface("10.0.0.5/24"), "IP=10.0.0.9/24")); err != nil {
		t.Fatal(err)
	}
	// IP unset keeps what the Node has, even though detection would differ.
	res, err := Run(ctx, c, opts(t, "n1", oneIface("10.0.0.5/24")))
	if err != nil || res.IPv4.String() != "10.0.0.9/24" {
		t.Fatalf("unset IP: %v %v", res, err)
	}
	// IP=autodetect replaces it.
	res, err = Run(ctx, c, opts(t, "n1", oneIface("10.0.0.5/24"), "IP=autodetect"))
	if err != nil || res.IPv4.String() != "10.0.0.5/24" {
		t.Fatalf("autodetect: %v %v", res, err)
	}
	// An explicit address without a mask takes the interface's.
	res, err = Run(ctx, c, opts(t, "n1", oneIface("10.0.0.5/24"), "IP=10.0.0.5"))
	if err != nil || res.IPv4.String() != "10.0.0.5/24" {
		t.Fatalf("explicit: %v %v", res, err)
	}
	// Another node with the same address is refused, unless the check is off.
	_, err = Run(ctx, c, opts(t, "n2", oneIface("10.0.0.5/24")))
	if err == nil || !strings.Contains(err.Error(), `node "n1" already uses address 10.0.0.5`) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := c.Get(ctx, nodeKey("n2")); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("refused node was written: %v", err)
	}
	if _, err := Run(ctx, c, opts(t, "n2", oneIface("10.0.0.5/24"), "DISABLE_NODE_IP_CHECK=true")); err != nil {
		t.Fatal(err)
	}
	// No address at all is an error naming the way out.
	_, err = Run(ctx, c, opts(t, "n3", host{}, "IP=autodetect"))
	if err == nil || !strings.Contains(err.Error(), "autodetecting the IPv4 address (IP_AUTODETECTION_METHOD=first-found)") {
		t.Fatalf("no address: %v", err)
	}
}

func TestDefaultPoolChoices(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	// The host sits in 192.168/16, so the fallback is 172.16.0.0/16.
	res, err := Run(ctx, c, opts(t, "n1", oneIface("192.168.1.5/24", "fd00::5/64"), "IP6=autodetect"))
	if err != nil {
		t.Fatal(err)
	}
	if got := get[*resources.IPPool](t, c, "IPPool", "default-ipv4-ippool").Spec.CIDR; got != "172.16.0.0/16" {
		t.Errorf("v4 default pool = %s", got)
	}
	v6 := get[*resources.IPPool](t, c, "IPPool", "default-ipv6-ippool")
	if p, err := netip.ParsePrefix(v6.Spec.CIDR); err != nil || p.Bits() != 48 || p.Addr().As16()[0] != 0xfd || v6.Spec.NATOutgoing || v6.Spec.BlockSize != 122 {
		t.Errorf("v6 default pool = %+v", v6.Spec)
	}
	if len(res.Pools) != 2 || res.IPv6.String() != "fd00::5/64" {
		t.Errorf("result = %+v", res)
	}
	// A pool exists: no new default even with other settings.
	res, err = Run(ctx, c, opts(t, "n2", oneIface("192.168.1.6/24"), "CALICO_IPV4POOL_CIDR=10.9.0.0/16"))
	if err != nil || len(res.Pools) != 0 {
		t.Fatalf("second node created pools: %+v %v", res, err)
	}
}

func TestNoDefaultPoolsAndPolicyOnly(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	res, err := Run(ctx, c, opts(t, "n1", oneIface("10.0.0.5/24"), "NO_DEFAULT_POOLS=true", "CALICO_NETWORKING_BACKEND=none"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pools) != 0 {
		t.Errorf("pools created: %v", res.Pools)
	}
	list, err := c.List(ctx, datastore.ListOptions{Kind: "IPPool"})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("pools in datastore: %d %v", len(list.Items), err)
	}
	if n := get[*resources.Node](t, c, "Node", "n1"); n.Spec.BGP != nil {
		t.Errorf("policy-only node has BGP data: %+v", n.Spec.BGP)
	}
}

func TestKubernetesNodeMustExist(t *testing.T) {
	c := newClient(t)
	o := opts(t, "ghost", oneIface("10.0.0.5/24"))
	o.Kubernetes = true
	_, err := Run(context.Background(), c, o)
	if err == nil || !strings.Contains(err.Error(), `node "ghost" does not exist in Kubernetes`) {
		t.Fatalf("err = %v", err)
	}
}

func TestKeepsForeignAddressesAndOrchRefs(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	n := &resources.Node{}
	resources.SetTypeMeta(n)
	n.Name = "n1"
	n.Labels = map[string]string{"rack": "r1"}
	n.Spec.Addresses = []resources.NodeAddress{{Address: "10.0.0.5", Type: "InternalIP"}}
	if _, err := c.Create(ctx, n); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctx, c, opts(t, "n1", oneIface("10.0.0.5/24"), "CALICO_K8S_NODE_REF=k8s-n1")); err != nil {
		t.Fatal(err)
	}
	got := get[*resources.Node](t, c, "Node", "n1")
	if got.Labels["rack"] != "r1" || len(got.Spec.Addresses) != 2 || got.Spec.Addresses[0].Type != "InternalIP" {
		t.Errorf("node = %+v labels %v", got.Spec.Addresses, got.Labels)
	}
	if len(got.Spec.OrchRefs) != 1 || got.Spec.OrchRefs[0] != (resources.OrchRef{NodeName: "k8s-n1", Orchestrator: "k8s"}) {
		t.Errorf("orchRefs = %+v", got.Spec.OrchRefs)
	}
}
