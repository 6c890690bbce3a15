package cni

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

func TestAddDelKubernetesPod(t *testing.T) {
	h := newHarness(t, "10.65.0.0/16")
	pods := fakePods{pods: map[string]*corev1.Pod{"prod/web-1": pod("prod", "web-1", map[string]string{"app": "web"}, nil)}}
	dp := &fakeDataplane{}
	o := Options{Dataplane: dp, Pods: pods}
	conf := h.conf(`,"policy":{"type":"k8s"}`, "")
	inv := invocation{command: CmdAdd, id: "ctr1", netns: "/run/netns/p1", pod: "prod/web-1", conf: conf}

	out, code := h.run(o, inv)
	if code != 0 {
		t.Fatalf("ADD exit %d: %s", code, out)
	}
	res := parseResult(t, out)
	ips := resultIPs(res)
	if len(ips) != 1 || ips[0].Bits() != 32 || !netip.MustParsePrefix("10.65.0.0/16").Contains(ips[0].Addr()) {
		t.Fatalf("result IPs = %v, want one /32 from the pool", ips)
	}
	hostIf := "cali" + vethSuffix(t, "prod.web-1")
	if len(res.Interfaces) != 2 || res.Interfaces[0].Name != hostIf || res.Interfaces[1].Name != "eth0" || res.Interfaces[1].Sandbox != "/run/netns/p1" || *res.IPs[0].Interface != 1 {
		t.Fatalf("interfaces = %+v", res.Interfaces)
	}
	if ep := dp.eps[hostIf]; ep.MTU != 1400 || ep.ContainerIf != "eth0" || len(ep.IPs) != 1 || ep.IPs[0] != ips[0] {
		t.Fatalf("dataplane endpoint = %+v", ep)
	}

	w, err := h.wep("prod", "node--1-k8s-web--1-eth0")
	if err != nil {
		t.Fatalf("WEP: %v", err)
	}
	s := w.Spec
	if s.Orchestrator != "k8s" || s.Node != "node-1" || s.Pod != "web-1" || s.Endpoint != "eth0" || s.ContainerID != "ctr1" ||
		s.InterfaceName != hostIf || s.MAC != "02:00:00:00:00:01" || !slices.Equal(s.IPNetworks, []string{ips[0].String()}) {
		t.Errorf("WEP spec = %+v", s)
	}
	if !slices.Equal(s.Profiles, []string{"kns.prod", "ksa.prod.sa1"}) || s.ServiceAccountName != "sa1" || len(s.Ports) != 1 || s.Ports[0].Name != "http" {
		t.Errorf("WEP profiles/ports = %v %v", s.Profiles, s.Ports)
	}
	if w.Labels["app"] != "web" || w.Labels["projectcalico.org/namespace"] != "prod" || w.Labels["projectcalico.org/orchestrator"] != "k8s" {
		t.Errorf("WEP labels = %v", w.Labels)
	}

	alloc := h.allocator()
	attrs, handle, err := alloc.GetAssignmentAttributes(context.Background(), ips[0].Addr())
	if err != nil || handle == nil || *handle != "k8s-pod-network.ctr1" {
		t.Fatalf("allocation of %s: handle %v, err %v", ips[0], handle, err)
	}
	if attrs["node"] != "node-1" || attrs["pod"] != "web-1" || attrs["namespace"] != "prod" || attrs["timestamp"] == "" {
		t.Errorf("allocation attrs = %v", attrs)
	}

	// A repeated ADD for the same container keeps its address.
	out, code = h.run(o, inv)
	if code != 0 || resultIPs(parseResult(t, out))[0] != ips[0] {
		t.Fatalf("second ADD: exit %d, %s; want the same address %s", code, out, ips[0])
	}

	inv.command = CmdDel
	for i := range 2 { // DEL is idempotent
		if out, code := h.run(o, inv); code != 0 || out != "" {
			t.Fatalf("DEL #%d: exit %d, stdout %q", i+1, code, out)
		}
	}
	if _, err := h.wep("prod", "node--1-k8s-web--1-eth0"); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("WEP after DEL: %v, want not found", err)
	}
	if _, _, err := alloc.GetAssignmentAttributes(context.Background(), ips[0].Addr()); err == nil {
		t.Errorf("%s still assigned after DEL", ips[0])
	}
	if _, ok := dp.eps[hostIf]; ok || dp.dels != 2 {
		t.Errorf("dataplane after DEL: eps %v, dels %d", dp.eps, dp.dels)
	}
}

func vethSuffix(t *testing.T, s string) string {
	t.Helper()
	name := VethName("", &Args{K8s: K8sArgs{Namespace: strings.Split(s, ".")[0], Name: strings.SplitN(s, ".", 2)[1]}})
	if len(name) != 11 {
		t.Fatalf("suffix %q", name)
	}
	return name
}

func TestAddAnnotations(t *testing.T) {
	h := newHarness(t, "10.65.0.0/16", "10.66.0.0/16", "fd00:65::/64")
	ns := func(ann map[string]string) map[string]*corev1.Namespace {
		return map[string]*corev1.Namespace{"prod": {ObjectMeta: metav1.ObjectMeta{Name: "prod", Annotations: ann}}}
	}
	tests := []struct {
		name     string
		podAnn   map[string]string
		nsAnn    map[string]string
		extra    string
		ipam     string
		want     []string // CIDRs each result address must fall in, in order
		wantErr  string
		wantNATs int
	}{
		{name: "all pools", want: []string{"10.0.0.0/8"}},
		{name: "conf pool", ipam: `,"ipv4_pools":["pool-1"]`, want: []string{"10.66.0.0/16"}},
		{name: "conf pool by CIDR", ipam: `,"ipv4_pools":["10.66.0.0/16"]`, want: []string{"10.66.0.0/16"}},
		{name: "namespace beats conf", nsAnn: map[string]string{AnnotationIPv4Pools: `["pool-0"]`}, ipam: `,"ipv4_pools":["pool-1"]`, want: []string{"10.65.0.0/16"}},
		{name: "pod beats namespace", podAnn: map[string]string{AnnotationIPv4Pools: `["pool-1"]`}, nsAnn: map[string]string{AnnotationIPv4Pools: `["pool-0"]`}, want: []string{"10.66.0.0/16"}},
		{name: "unknown pool", podAnn: map[string]string{AnnotationIPv4Pools: `["nope"]`}, wantErr: "nope"},
		{name: "bad pool JSON", podAnn: map[string]string{AnnotationIPv4Pools: `pool-0`}, wantErr: "JSON list"},
		{name: "ipAddrs", podAnn: map[string]string{AnnotationIPAddrs: `["10.66.7.7"]`}, want: []string{"10.66.7.7/32"}},
		{name: "ipAddrs outside pools", podAnn: map[string]string{AnnotationIPAddrs: `["192.0.2.1"]`}, wantErr: "outside every IP pool"},
		{name: "ipAddrsNoIpam disabled", podAnn: map[string]string{AnnotationIPAddrsNoIPAM: `["192.0.2.1"]`}, wantErr: "ip_addrs_no_ipam"},
		{name: "ipAddrsNoIpam", podAnn: map[string]string{AnnotationIPAddrsNoIPAM: `["192.0.2.1"]`}, extra: `,"feature_control":{"ip_addrs_no_ipam":true}`, want: []string{"192.0.2.1/32"}},
		{name: "both address annotations", podAnn: map[string]string{AnnotationIPAddrs: `["10.66.7.8"]`, AnnotationIPAddrsNoIPAM: `["192.0.2.1"]`}, extra: `,"feature_control":{"ip_addrs_no_ipam":true}`, wantErr: "together"},
		{name: "dual stack", ipam: `,"assign_ipv6":"true"`, want: []string{"10.0.0.0/8", "fd00:65::/64"}},
		{name: "v6 only", ipam: `,"assign_ipv4":"false","assign_ipv6":"true"`, want: []string{"fd00:65::/64"}},
		{name: "floating IPs disabled", podAnn: map[string]string{AnnotationFloatingIPs: `["198.51.100.1"]`}, wantErr: "floating_ips"},
		{name: "floating IPs", podAnn: map[string]string{AnnotationFloatingIPs: `["198.51.100.1"]`}, extra: `,"feature_control":{"floating_ips":true}`, want: []string{"10.0.0.0/8"}, wantNATs: 1},
		{name: "hwAddr", podAnn: map[string]string{AnnotationHWAddr: "0a:58:0a:f4:00:09"}, want: []string{"10.0.0.0/8"}},
		{name: "bad hwAddr", podAnn: map[string]string{AnnotationHWAddr: "zz"}, wantErr: "hwAddr"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "p" + string(rune('a'+i))
			pods := fakePods{pods: map[string]*corev1.Pod{"prod/" + name: pod("prod", name, nil, tt.podAnn)}, nss: ns(tt.nsAnn)}
			dp := &fakeDataplane{}
			inv := invocation{command: CmdAdd, id: "c-" + name, netns: "/run/netns/" + name, pod: "prod/" + name, conf: h.conf(tt.extra, tt.ipam)}
			out, code := h.run(Options{Dataplane: dp, Pods: pods}, inv)
			if tt.wantErr != "" {
				if code == 0 || !strings.Contains(out, tt.wantErr) || !strings.Contains(out, `"code"`) {
					t.Fatalf("exit %d, stdout %s; want an error JSON mentioning %s", code, out, tt.wantErr)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d: %s", code, out)
			}
			ips := resultIPs(parseResult(t, out))
			if len(ips) != len(tt.want) {
				t.Fatalf("IPs %v, want %d in %v", ips, len(tt.want), tt.want)
			}
			for j, w := range tt.want {
				if !netip.MustParsePrefix(w).Contains(ips[j].Addr()) {
					t.Errorf("IP %s not in %s", ips[j], w)
				}
			}
			w, err := h.wep("prod", "node--1-k8s-"+name+"-eth0")
			if err != nil {
				t.Fatal(err)
			}
			if len(w.Spec.IPNATs) != tt.wantNATs || (tt.wantNATs > 0 && w.Spec.IPNATs[0].ExternalIP != "198.51.100.1") {
				t.Errorf("ipNATs = %v", w.Spec.IPNATs)
			}
			if mac := tt.podAnn[AnnotationHWAddr]; mac != "" && (w.Spec.MAC != mac || dp.eps["cali"+vethSuffix(t, "prod."+name)].ContainerMAC.String() != mac) {
				t.Errorf("MAC = %s, want %s", w.Spec.MAC, mac)
			}
			inv.command = CmdDel
			if out, code := h.run(Options{Dataplane: dp, Pods: pods}, inv); code != 0 {
				t.Fatalf("DEL: %d %s", code, out)
			}
		})
	}
}

func TestPlainCNIContainer(t *testing.T) {
	h := newHarness(t, "10.65.0.0/16")
	dp := &fakeDataplane{}
	inv := invocation{command: CmdAdd, id: "abcdef0123456789", netns: "/run/netns/x", conf: h.conf("", "")}
	out, code := h.run(Options{Dataplane: dp}, inv)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	w, err := h.wep("default", "node--1-cni-abcdef0123456789-eth0")
	if err != nil {
		t.Fatal(err)
	}
	if w.Spec.Orchestrator != "cni" || !slices.Equal(w.Spec.Profiles, []string{"k8s-pod-network"}) || w.Spec.InterfaceName != "caliabcdef01234" ||
		w.Spec.Workload != "abcdef0123456789" || w.Spec.Pod != "" {
		t.Errorf("WEP = %+v", w.Spec)
	}
	// The network's profile was created (the agent's policy drops an
	// endpoint whose profile does not exist); an operator's edit of it is
	// kept by the next ADD.
	r, err := h.ds.Get(context.Background(), resources.Key{Kind: "Profile", Name: "k8s-pod-network"})
	if err != nil {
		t.Fatalf("network profile: %v", err)
	}
	prof := r.(*resources.Profile)
	if prof.Spec.LabelsToApply["k8s-pod-network"] != "" || len(prof.Spec.LabelsToApply) != 1 ||
		len(prof.Spec.Ingress) != 1 || prof.Spec.Ingress[0].Source.Selector != "has(k8s-pod-network)" ||
		len(prof.Spec.Egress) != 1 || prof.Spec.Egress[0].Action != resources.ActionAllow {
		t.Errorf("network profile = %+v", prof.Spec)
	}
	prof.Spec.Egress = []resources.Rule{{Action: resources.ActionDeny}}
	if _, err := h.ds.Update(context.Background(), prof); err != nil {
		t.Fatal(err)
	}
	inv2 := invocation{command: CmdAdd, id: "bbcdef0123456789", netns: "/run/netns/y", conf: h.conf("", "")}
	if out, code := h.run(Options{Dataplane: dp}, inv2); code != 0 {
		t.Fatalf("second ADD exit %d: %s", code, out)
	}
	r, _ = h.ds.Get(context.Background(), resources.Key{Kind: "Profile", Name: "k8s-pod-network"})
	if got := r.(*resources.Profile).Spec.Egress; len(got) != 1 || got[0].Action != resources.ActionDeny {
		t.Errorf("the operator's profile was overwritten: egress %+v", got)
	}
}

func TestLateDelKeepsNewSandboxWEP(t *testing.T) {
	h := newHarness(t, "10.65.0.0/16")
	pods := fakePods{pods: map[string]*corev1.Pod{"prod/db": pod("prod", "db", nil, nil)}}
	o := Options{Dataplane: &fakeDataplane{}, Pods: pods}
	old := invocation{command: CmdAdd, id: "old", netns: "/run/netns/old", pod: "prod/db", conf: h.conf("", "")}
	if out, code := h.run(o, old); code != 0 {
		t.Fatal(out)
	}
	cur := old
	cur.id, cur.netns = "new", "/run/netns/new"
	if out, code := h.run(o, cur); code != 0 {
		t.Fatal(out)
	}
	old.command = CmdDel
	if out, code := h.run(o, old); code != 0 {
		t.Fatal(out)
	}
	w, err := h.wep("prod", "node--1-k8s-db-eth0")
	if err != nil || w.Spec.ContainerID != "new" {
		t.Fatalf("WEP after the old sandbox's DEL: %v, %v; want the new sandbox's", w, err)
	}
	if ips, err := h.allocator().IPsByHandle(context.Background(), "k8s-pod-network.new"); err != nil || len(ips) != 1 {
		t.Fatalf("new sandbox's addresses: %v %v", ips, err)
	}
}

func TestCalicoIPAMPlugin(t *testing.T) {
	h := newHarness(t, "10.65.0.0/16", "fd00:65::/64")
	conf := h.conf("", `,"assign_ipv6":"true"`)
	inv := invocation{plugin: PluginIPAM, command: CmdAdd, id: "ipam1", netns: "/run/netns/i", conf: conf}
	out, code := h.run(Options{}, inv)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	res := parseResult(t, out)
	if len(res.IPs) != 2 || len(res.Interfaces) != 0 || resultIPs(res)[1].Bits() != 128 {
		t.Fatalf("result = %s", out)
	}
	inv.command = CmdDel
	if out, code := h.run(Options{}, inv); code != 0 {
		t.Fatalf("DEL: %s", out)
	}
	if _, err := h.allocator().IPsByHandle(context.Background(), "k8s-pod-network.ipam1"); !errors.Is(err, datastore.ErrNotFound) {
		t.Fatalf("handle after DEL: %v", err)
	}
}
