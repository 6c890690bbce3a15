package kubernetes

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/opencalico/calicoctl/resources"
)

func TestConvertUID(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"", "", false},
		{"00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000080", false},
		{"12345678-9abc-4def-8123-456789abcdef", "482c6a1e-593d-4df7-81c4-a2e691d5b3f7", false},
		{"not-a-uuid", "", true},
	}
	for _, tc := range tests {
		got, err := ConvertUID(types.UID(tc.in))
		if (err != nil) != tc.wantErr {
			t.Fatalf("ConvertUID(%q) err = %v, want error %v", tc.in, err, tc.wantErr)
		}
		if tc.wantErr {
			continue
		}
		if string(got) != tc.want {
			t.Errorf("ConvertUID(%q) = %q, want %q", tc.in, got, tc.want)
		}
		back, err := ConvertUID(got)
		if err != nil || string(back) != tc.in {
			t.Errorf("ConvertUID(ConvertUID(%q)) = %q, %v; want the input (self-inverse)", tc.in, back, err)
		}
	}
}

func kind(t *testing.T, name string) *resources.Kind {
	t.Helper()
	k, err := resources.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func crMeta(t *testing.T, cr map[string]any) metav1.ObjectMeta {
	t.Helper()
	data, _ := json.Marshal(cr["metadata"])
	var m metav1.ObjectMeta
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestToCRKeepsOnlyCalicoMetadata(t *testing.T) {
	created := metav1.NewTime(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))
	pool := &resources.IPPool{}
	pool.Name = "pool-a"
	pool.ResourceVersion = "42"
	pool.UID = "12345678-9abc-4def-8123-456789abcdef"
	pool.CreationTimestamp = created
	pool.Labels = map[string]string{"team": "a", "projectcalico.org/x": "1", "operator.tigera.io/y": "2"}
	pool.Annotations = map[string]string{"note": "hi", "projectcalico.org/z": "3"}
	pool.OwnerReferences = []metav1.OwnerReference{
		{APIVersion: "projectcalico.org/v3", Kind: "Tier", Name: "t", UID: "00000000-0000-4000-8000-000000000001"},
		{APIVersion: "v1", Kind: "ConfigMap", Name: "c", UID: "00000000-0000-4000-8000-000000000002"},
	}
	pool.Spec.CIDR = "10.10.0.0/16"
	k := kind(t, "IPPool")

	cr, err := ToCR(k, pool)
	if err != nil {
		t.Fatal(err)
	}
	if cr["apiVersion"] != "crd.projectcalico.org/v1" || cr["kind"] != "IPPool" {
		t.Fatalf("type meta %v %v", cr["apiVersion"], cr["kind"])
	}
	if spec := cr["spec"].(map[string]any); spec["cidr"] != "10.10.0.0/16" {
		t.Fatalf("spec not carried: %v", spec)
	}
	m := crMeta(t, cr)
	if m.Name != "pool-a" || m.ResourceVersion != "42" || m.UID != "482c6a1e-593d-4df7-81c4-a2e691d5b3f7" {
		t.Fatalf("CR identity %s rv %s uid %s", m.Name, m.ResourceVersion, m.UID)
	}
	if want := map[string]string{"projectcalico.org/x": "1", "operator.tigera.io/y": "2"}; !maps.Equal(m.Labels, want) {
		t.Fatalf("CR labels %v, want %v", m.Labels, want)
	}
	if !m.CreationTimestamp.IsZero() || len(m.OwnerReferences) != 0 {
		t.Fatalf("CR metadata keeps %v / %v", m.CreationTimestamp, m.OwnerReferences)
	}
	if m.Annotations["projectcalico.org/z"] != "3" || m.Annotations["note"] != "" {
		t.Fatalf("CR annotations %v", m.Annotations)
	}
	var stored metav1.ObjectMeta
	if err := json.Unmarshal([]byte(m.Annotations[MetadataAnnotation]), &stored); err != nil {
		t.Fatalf("metadata annotation: %v", err)
	}
	if stored.Name != "" || stored.UID != "" || stored.ResourceVersion != "" {
		t.Fatalf("metadata annotation keeps identity: %+v", stored)
	}
	if stored.Labels["team"] != "a" || stored.Annotations["note"] != "hi" || !stored.CreationTimestamp.Equal(&created) {
		t.Fatalf("metadata annotation lost user metadata: %+v", stored)
	}
	if ref := stored.OwnerReferences[0]; ref.APIVersion != "crd.projectcalico.org/v1" || ref.UID != "00000000-0000-4000-8000-000000000080" {
		t.Fatalf("calico owner ref not converted: %+v", ref)
	}
	if ref := stored.OwnerReferences[1]; ref.APIVersion != "v1" || ref.UID != "00000000-0000-4000-8000-000000000002" {
		t.Fatalf("foreign owner ref changed: %+v", ref)
	}

	back, err := FromCR(k, cr)
	if err != nil {
		t.Fatal(err)
	}
	got := back.(*resources.IPPool)
	if got.Name != pool.Name || got.UID != pool.UID || got.ResourceVersion != "42" || !got.CreationTimestamp.Equal(&created) {
		t.Fatalf("round trip identity: %+v", got.ObjectMeta)
	}
	if !maps.Equal(got.Labels, pool.Labels) || !maps.Equal(got.Annotations, pool.Annotations) {
		t.Fatalf("round trip labels %v annotations %v", got.Labels, got.Annotations)
	}
	if !slices.Equal(got.OwnerReferences, pool.OwnerReferences) {
		t.Fatalf("round trip owner refs %+v", got.OwnerReferences)
	}
	if got.Spec.CIDR != "10.10.0.0/16" || got.APIVersion != "projectcalico.org/v3" || got.Kind != "IPPool" {
		t.Fatalf("round trip spec/type: %+v", got)
	}
}

func TestFromCRPolicyNames(t *testing.T) {
	k := kind(t, "NetworkPolicy")
	cr := func(name, tier, metaName string) map[string]any {
		m := map[string]any{"name": name, "namespace": "ns1", "resourceVersion": "7"}
		if metaName != "" {
			m["annotations"] = map[string]any{MetadataAnnotation: `{"name":"` + metaName + `"}`}
		}
		return map[string]any{"apiVersion": CRDAPIVersion, "kind": "NetworkPolicy", "metadata": m,
			"spec": map[string]any{"tier": tier}}
	}
	tests := []struct {
		name string
		cr   map[string]any
		want string
	}{
		{"current naming", cr("allow-dns", "default", "allow-dns"), "allow-dns"},
		{"legacy default prefix with annotation", cr("default.allow-dns", "default", "allow-dns"), "allow-dns"},
		{"legacy default prefix without annotation", cr("default.allow-dns", "default", ""), "allow-dns"},
		{"legacy default prefix, empty tier", cr("default.allow-dns", "", ""), "allow-dns"},
		{"other tier keeps its prefix", cr("sec.allow-dns", "sec", ""), "sec.allow-dns"},
		{"other tier named default.x keeps it", cr("default.x", "sec", ""), "default.x"},
	}
	for _, tc := range tests {
		r, err := FromCR(k, tc.cr)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if r.GetName() != tc.want || r.GetNamespace() != "ns1" {
			t.Errorf("%s: name %s/%s, want ns1/%s", tc.name, r.GetNamespace(), r.GetName(), tc.want)
		}
		if _, ok := r.GetAnnotations()[MetadataAnnotation]; ok {
			t.Errorf("%s: metadata annotation leaked into the v3 object", tc.name)
		}
	}

	p := &resources.NetworkPolicy{}
	p.Name, p.Namespace = "allow-dns", "ns1"
	out, err := ToCR(k, p)
	if err != nil {
		t.Fatal(err)
	}
	m := crMeta(t, out)
	if m.Name != "allow-dns" || !strings.Contains(m.Annotations[MetadataAnnotation], `"name":"allow-dns"`) {
		t.Fatalf("policy CR name %q annotation %q: want the v3 name in both", m.Name, m.Annotations[MetadataAnnotation])
	}
}

func TestFromCRReadsOldLabelsOnCR(t *testing.T) {
	// Older releases kept user labels on the CR itself; they still read.
	cr := map[string]any{"apiVersion": CRDAPIVersion, "kind": "IPPool",
		"metadata": map[string]any{"name": "p", "labels": map[string]any{"old": "1", "both": "cr"},
			"annotations": map[string]any{MetadataAnnotation: `{"labels":{"both":"meta"}}`}}}
	r, err := FromCR(kind(t, "IPPool"), cr)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"old": "1", "both": "meta"}; !maps.Equal(r.GetLabels(), want) {
		t.Fatalf("labels %v, want %v", r.GetLabels(), want)
	}
}

func TestNodeConversion(t *testing.T) {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "worker-1", ResourceVersion: "5", UID: "u1",
			Labels: map[string]string{"kubernetes.io/hostname": "worker-1", "shared": "k8s"},
			Annotations: map[string]string{
				AnnotationIPv4Address: "10.0.0.5/24", AnnotationIPv6Address: "fd00::5/64",
				AnnotationIPv4IPIPTunnelAddr: "192.168.1.1", AnnotationASNumber: "64512",
				AnnotationRouteReflectorClusterID: "1.2.3.4", AnnotationIPv4VXLANTunnelAddr: "192.168.2.1",
				AnnotationVXLANTunnelMACAddr: "66:77:88:99:aa:bb", AnnotationLabels: `{"rack":"r1","shared":"calico"}`,
				AnnotationAnnotations: `{"note":"x"}`, AnnotationInterfaces: `[{"name":"eth0","addresses":["10.0.0.5"]}]`,
				"other/annotation": "kept",
			}},
		Spec: corev1.NodeSpec{PodCIDRs: []string{"10.244.1.0/24"}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "10.0.0.5"}, {Type: corev1.NodeHostName, Address: "worker-1"},
			{Type: corev1.NodeExternalIP, Address: "1.1.1.1"}}},
	}
	cn, err := NodeToCalico(n)
	if err != nil {
		t.Fatal(err)
	}
	if cn.Name != "worker-1" || cn.ResourceVersion != "5" || cn.Kind != "Node" {
		t.Fatalf("identity %s %s %s", cn.Name, cn.ResourceVersion, cn.Kind)
	}
	wantLabels := map[string]string{"kubernetes.io/hostname": "worker-1", "shared": "k8s", "rack": "r1"}
	if !maps.Equal(cn.Labels, wantLabels) {
		t.Fatalf("labels %v, want %v (k8s labels win)", cn.Labels, wantLabels)
	}
	wantAnn := map[string]string{"note": "x", AnnotationKubeLabels: `{"kubernetes.io/hostname":"worker-1","shared":"k8s"}`}
	if !maps.Equal(cn.Annotations, wantAnn) {
		t.Fatalf("annotations %v, want %v", cn.Annotations, wantAnn)
	}
	b := cn.Spec.BGP
	if b == nil || b.IPv4Address != "10.0.0.5/24" || b.IPv6Address != "fd00::5/64" || b.IPv4IPIPTunnelAddr != "192.168.1.1" ||
		b.ASNumber == nil || *b.ASNumber != 64512 || b.RouteReflectorClusterID != "1.2.3.4" {
		t.Fatalf("bgp %+v", b)
	}
	if cn.Spec.IPv4VXLANTunnelAddr != "192.168.2.1" || cn.Spec.VXLANTunnelMACAddr != "66:77:88:99:aa:bb" {
		t.Fatalf("vxlan %+v", cn.Spec)
	}
	if want := []resources.OrchRef{{NodeName: "worker-1", Orchestrator: "k8s"}}; !slices.Equal(cn.Spec.OrchRefs, want) {
		t.Fatalf("orchRefs %+v", cn.Spec.OrchRefs)
	}
	wantAddrs := []resources.NodeAddress{{Address: "10.0.0.5/24", Type: "CalicoNodeIP"}, {Address: "fd00::5/64", Type: "CalicoNodeIP"},
		{Address: "10.0.0.5", Type: "InternalIP"}, {Address: "1.1.1.1", Type: "ExternalIP"}}
	if !slices.Equal(cn.Spec.Addresses, wantAddrs) {
		t.Fatalf("addresses %+v, want %+v", cn.Spec.Addresses, wantAddrs)
	}
	if !slices.Equal(cn.Status.PodCIDRs, []string{"10.244.1.0/24"}) || len(cn.Spec.Interfaces) != 1 {
		t.Fatalf("podCIDRs %v interfaces %v", cn.Status.PodCIDRs, cn.Spec.Interfaces)
	}

	// Write back a change: new tunnel address, BGP removed, a new Calico label.
	cn.Spec.BGP = nil
	cn.Spec.IPv4VXLANTunnelAddr = "192.168.9.9"
	cn.Labels["zone"] = "z1"
	merged, err := MergeCalicoNode(n, cn)
	if err != nil {
		t.Fatal(err)
	}
	a := merged.Annotations
	if _, ok := a[AnnotationIPv4Address]; ok {
		t.Fatalf("removed BGP address still annotated")
	}
	if a[AnnotationIPv4VXLANTunnelAddr] != "192.168.9.9" || a["other/annotation"] != "kept" {
		t.Fatalf("annotations after merge %v", a)
	}
	var calicoLabels map[string]string
	if err := json.Unmarshal([]byte(a[AnnotationLabels]), &calicoLabels); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"rack": "r1", "zone": "z1"}; !maps.Equal(calicoLabels, want) {
		t.Fatalf("calico labels %v, want %v (k8s labels are not duplicated)", calicoLabels, want)
	}
	if !maps.Equal(merged.Labels, n.Labels) {
		t.Fatalf("k8s labels changed: %v", merged.Labels)
	}
	if _, ok := a[AnnotationKubeLabels]; ok || a[AnnotationAnnotations] != `{"note":"x"}` {
		t.Fatalf("the kube-labels snapshot was stored: kube-labels %q, calico annotations %q", a[AnnotationKubeLabels], a[AnnotationAnnotations])
	}
	if n.Annotations[AnnotationIPv4VXLANTunnelAddr] != "192.168.2.1" {
		t.Fatalf("MergeCalicoNode modified its input")
	}
	again, err := NodeToCalico(merged)
	if err != nil {
		t.Fatal(err)
	}
	if again.Spec.BGP != nil || again.Labels["zone"] != "z1" || again.Spec.IPv4VXLANTunnelAddr != "192.168.9.9" {
		t.Fatalf("re-read after merge: %+v labels %v", again.Spec, again.Labels)
	}
}

func TestPodToWEP(t *testing.T) {
	base := func() *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "web-7f9c", ResourceVersion: "9", UID: "pu",
				Labels:      map[string]string{"app": "web"},
				Annotations: map[string]string{AnnotationContainerID: "abc123", AnnotationFloatingIPs: `["1.2.3.4"]`}},
			Spec: corev1.PodSpec{NodeName: "worker-1", ServiceAccountName: "sa1", Containers: []corev1.Container{{
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}, {ContainerPort: 53, Protocol: "UDP", HostPort: 5353},
					{ContainerPort: 9999}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.10.3.2",
				PodIPs: []corev1.PodIP{{IP: "10.10.3.2"}, {IP: "fd00::2"}}},
		}
	}
	w, err := PodToWEP(base())
	if err != nil {
		t.Fatal(err)
	}
	if w.Name != "worker--1-k8s-web--7f9c-eth0" || w.Namespace != "prod" || w.ResourceVersion != "9" {
		t.Fatalf("identity %s/%s rv %s", w.Namespace, w.Name, w.ResourceVersion)
	}
	wantLabels := map[string]string{"app": "web", "projectcalico.org/namespace": "prod",
		"projectcalico.org/orchestrator": "k8s", "projectcalico.org/serviceaccount": "sa1"}
	if !maps.Equal(w.Labels, wantLabels) {
		t.Fatalf("labels %v", w.Labels)
	}
	s := w.Spec
	if s.Orchestrator != "k8s" || s.Node != "worker-1" || s.Pod != "web-7f9c" || s.Endpoint != "eth0" || s.ContainerID != "abc123" {
		t.Fatalf("ids %+v", s)
	}
	if s.InterfaceName != VethName("prod", "web-7f9c") || len(s.InterfaceName) != 15 || !strings.HasPrefix(s.InterfaceName, "cali") {
		t.Fatalf("interface %q", s.InterfaceName)
	}
	if !slices.Equal(s.IPNetworks, []string{"10.10.3.2/32", "fd00::2/128"}) {
		t.Fatalf("ipNetworks %v", s.IPNetworks)
	}
	if !slices.Equal(s.Profiles, []string{"kns.prod", "ksa.prod.sa1"}) {
		t.Fatalf("profiles %v", s.Profiles)
	}
	if len(s.IPNATs) != 1 || s.IPNATs[0] != (resources.IPNAT{InternalIP: "10.10.3.2", ExternalIP: "1.2.3.4"}) {
		t.Fatalf("ipNATs %v", s.IPNATs)
	}
	if len(s.Ports) != 2 || s.Ports[0].Name != "http" || s.Ports[0].Protocol.String() != "TCP" || s.Ports[1].HostPort != 5353 {
		t.Fatalf("ports %+v", s.Ports)
	}

	// Where the addresses come from.
	now := metav1.Now()
	tests := []struct {
		name   string
		modify func(p *corev1.Pod)
		want   []string
	}{
		{"annotation podIPs", func(p *corev1.Pod) {
			p.Status.PodIPs, p.Status.PodIP = nil, ""
			p.Annotations[AnnotationPodIPs] = "10.1.1.1/32,fd00::1/128"
		}, []string{"10.1.1.1/32", "fd00::1/128"}},
		{"annotation podIP", func(p *corev1.Pod) {
			p.Status.PodIPs, p.Status.PodIP = nil, ""
			p.Annotations[AnnotationPodIP] = "10.1.1.2/32"
		}, []string{"10.1.1.2/32"}},
		{"aws", func(p *corev1.Pod) {
			p.Status.PodIPs, p.Status.PodIP = nil, ""
			p.Annotations[AnnotationAWSPodIPs] = "10.1.1.3"
		}, []string{"10.1.1.3/32"}},
		{"succeeded", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }, nil},
		{"terminating with blanked IP", func(p *corev1.Pod) {
			p.DeletionTimestamp = &now
			p.Annotations[AnnotationPodIP] = ""
		}, nil},
	}
	for _, tc := range tests {
		p := base()
		tc.modify(p)
		w, err := PodToWEP(p)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.Equal(w.Spec.IPNetworks, tc.want) {
			t.Errorf("%s: ipNetworks %v, want %v", tc.name, w.Spec.IPNetworks, tc.want)
		}
	}

	for _, p := range []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "unscheduled", Namespace: "a"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "host", Namespace: "a"}, Spec: corev1.PodSpec{NodeName: "n", HostNetwork: true}},
	} {
		if _, err := PodToWEP(p); err == nil {
			t.Errorf("pod %s converted, want an error", p.Name)
		}
	}
}

func TestVethName(t *testing.T) {
	// Expected values from sha1sum of "<ns>.<pod>".
	tests := []struct{ ns, pod, want string }{
		{"default", "nginx", "calic440f455693"},
		{"kube-system", "coredns-1", "cali5adc4ab58e2"},
	}
	for _, tc := range tests {
		if got := VethName(tc.ns, tc.pod); got != tc.want {
			t.Errorf("VethName(%s, %s) = %q, want %q", tc.ns, tc.pod, got, tc.want)
		}
	}
}

func TestProfiles(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "prod", ResourceVersion: "11", Labels: map[string]string{"env": "prod"}}}
	p := NamespaceToProfile(ns)
	if p.Name != "kns.prod" || p.ResourceVersion != "11/" || p.Kind != "Profile" {
		t.Fatalf("namespace profile %s rv %s kind %s", p.Name, p.ResourceVersion, p.Kind)
	}
	if want := map[string]string{"pcns.env": "prod", "pcns.projectcalico.org/name": "prod"}; !maps.Equal(p.Spec.LabelsToApply, want) {
		t.Fatalf("labelsToApply %v", p.Spec.LabelsToApply)
	}
	if len(p.Spec.Ingress) != 1 || p.Spec.Ingress[0].Action != "Allow" || len(p.Spec.Egress) != 1 || p.Spec.Egress[0].Action != "Allow" {
		t.Fatalf("rules %+v %+v", p.Spec.Ingress, p.Spec.Egress)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "builder", ResourceVersion: "12", Labels: map[string]string{"role": "ci"}}}
	sp := ServiceAccountToProfile(sa)
	if sp.Name != "ksa.prod.builder" || sp.ResourceVersion != "/12" || len(sp.Spec.Ingress)+len(sp.Spec.Egress) != 0 {
		t.Fatalf("sa profile %+v", sp)
	}
	if want := map[string]string{"pcsa.role": "ci", "pcsa.projectcalico.org/name": "builder"}; !maps.Equal(sp.Spec.LabelsToApply, want) {
		t.Fatalf("sa labelsToApply %v", sp.Spec.LabelsToApply)
	}
	if d := DefaultAllow(); d.Name != "projectcalico-default-allow" || len(d.Spec.Ingress) != 1 || len(d.Spec.Egress) != 1 {
		t.Fatalf("default allow %+v", d)
	}
}

func TestKNPToPolicy(t *testing.T) {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	port80, named := intstr.FromInt32(80), intstr.FromString("dns")
	end := int32(90)
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "allow-web", ResourceVersion: "77"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"},
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b"}}}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{
					{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "fe"}}},
					{NamespaceSelector: &metav1.LabelSelector{}},
					{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}},
				},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port80, EndPort: &end}},
			}},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"name": "kube-system"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &named}},
			}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	}
	p, err := KNPToPolicy(np)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "knp.default.allow-web" || p.Namespace != "prod" || p.ResourceVersion != "77" {
		t.Fatalf("identity %s/%s rv %s", p.Namespace, p.Name, p.ResourceVersion)
	}
	if p.Spec.Order == nil || *p.Spec.Order != 1000 || p.Spec.Tier != "default" {
		t.Fatalf("order/tier %v %s", p.Spec.Order, p.Spec.Tier)
	}
	if want := "projectcalico.org/orchestrator == 'k8s' && app == 'web' && tier in {'a', 'b'}"; p.Spec.Selector != want {
		t.Fatalf("selector %q, want %q", p.Spec.Selector, want)
	}
	if len(p.Spec.Ingress) != 3 || len(p.Spec.Egress) != 1 {
		t.Fatalf("rules: %d ingress, %d egress", len(p.Spec.Ingress), len(p.Spec.Egress))
	}
	in := p.Spec.Ingress
	if in[0].Source.Selector != "projectcalico.org/orchestrator == 'k8s' && role == 'fe'" || in[0].Source.NamespaceSelector != "" {
		t.Fatalf("pod peer %+v", in[0].Source)
	}
	if in[1].Source.NamespaceSelector != "all()" || in[1].Source.Selector != "projectcalico.org/orchestrator == 'k8s'" {
		t.Fatalf("namespace peer %+v", in[1].Source)
	}
	if !slices.Equal(in[2].Source.Nets, []string{"10.0.0.0/8"}) || !slices.Equal(in[2].Source.NotNets, []string{"10.1.0.0/16"}) {
		t.Fatalf("ipBlock peer %+v", in[2].Source)
	}
	for _, r := range in {
		if r.Action != "Allow" || r.Protocol == nil || r.Protocol.String() != "TCP" || len(r.Destination.Ports) != 1 || r.Destination.Ports[0].String() != "80:90" {
			t.Fatalf("ingress rule %+v", r)
		}
	}
	eg := p.Spec.Egress[0]
	if eg.Destination.NamespaceSelector != "name == 'kube-system'" || eg.Protocol.String() != "UDP" || eg.Destination.Ports[0].String() != "dns" {
		t.Fatalf("egress %+v", eg)
	}
	if !slices.Equal(p.Spec.Types, []resources.PolicyType{"Ingress", "Egress"}) {
		t.Fatalf("types %v", p.Spec.Types)
	}

	// Defaults: no policyTypes, an allow-all ingress rule, empty pod selector.
	np2 := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "all"},
		Spec: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{}}}}
	p2, err := KNPToPolicy(np2)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Spec.Selector != "projectcalico.org/orchestrator == 'k8s'" || !slices.Equal(p2.Spec.Types, []resources.PolicyType{"Ingress"}) {
		t.Fatalf("defaults: selector %q types %v", p2.Spec.Selector, p2.Spec.Types)
	}
	if len(p2.Spec.Ingress) != 1 || p2.Spec.Ingress[0].Protocol != nil || len(p2.Spec.Ingress[0].Source.Nets) != 0 {
		t.Fatalf("allow-all rule %+v", p2.Spec.Ingress)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("converted policy does not validate: %v", err)
	}
}

// TestNodeLabelRoundTrip: the kube-labels snapshot undoes the label merge on
// write, even when the Kubernetes labels changed since the read; input
// without a snapshot drops only labels equal to the current ones; a broken
// snapshot is refused naming the node and the annotation.
func TestNodeLabelRoundTrip(t *testing.T) {
	read := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "m1", Labels: map[string]string{"kubernetes.io/hostname": "m1", "tier": "old"}}}
	cn, err := NodeToCalico(read)
	if err != nil {
		t.Fatal(err)
	}
	cn.Labels["i-am-a-route-reflector"] = "true"
	now := read.DeepCopy()
	now.Labels["tier"] = "new" // changed in Kubernetes since the export
	merged, err := MergeCalicoNode(now, cn)
	if err != nil {
		t.Fatal(err)
	}
	if got := merged.Annotations[AnnotationLabels]; got != `{"i-am-a-route-reflector":"true"}` {
		t.Errorf("calico labels %s, want only the new label", got)
	}
	if _, ok := merged.Annotations[AnnotationKubeLabels]; ok {
		t.Errorf("snapshot stored on the Node: %v", merged.Annotations)
	}
	again, err := NodeToCalico(merged)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"kubernetes.io/hostname": "m1", "tier": "new", "i-am-a-route-reflector": "true"}; !maps.Equal(again.Labels, want) {
		t.Errorf("re-read labels %v, want %v", again.Labels, want)
	}

	hand := &resources.Node{}
	hand.Name = "m1"
	hand.Labels = map[string]string{"kubernetes.io/hostname": "m1", "tier": "mine"}
	merged, err = MergeCalicoNode(now, hand)
	if err != nil {
		t.Fatal(err)
	}
	if got := merged.Annotations[AnnotationLabels]; got != `{"tier":"mine"}` {
		t.Errorf("hand-written node: calico labels %s, want {\"tier\":\"mine\"}", got)
	}
	if _, ok := merged.Annotations[AnnotationAnnotations]; ok {
		t.Errorf("hand-written node without annotations stored %q", merged.Annotations[AnnotationAnnotations])
	}

	bare, err := NodeToCalico(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "bare"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := bare.Annotations[AnnotationKubeLabels]; got != "null" {
		t.Errorf("node without labels: kube-labels %q, want null (upstream's JSON of no labels)", got)
	}

	hand.Annotations = map[string]string{AnnotationKubeLabels: "{not json"}
	_, err = MergeCalicoNode(now, hand)
	if err == nil || !strings.Contains(err.Error(), "metadata.annotations["+AnnotationKubeLabels+"]") {
		t.Errorf("broken snapshot: err = %v, want one naming the annotation", err)
	}
}
