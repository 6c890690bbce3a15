package kubetest

import (
	"net"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PauseImage is the image the helper pods name; nothing pulls it.
const PauseImage = "registry.k8s.io/pause:3.10"

// CreateNamespace creates a namespace and its "default" service account,
// as the admin. Without a controller-manager, deleting the namespace later
// leaves it Terminating forever.
func (s *APIServer) CreateNamespace(t testing.TB, name string, labels map[string]string) *corev1.Namespace {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	out, err := s.admin(t).CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kubetest: create namespace %s: %v", name, err)
	}
	if err := s.createDefaultServiceAccounts(t.Context(), name); err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	return out
}

// CreateServiceAccount creates a service account as the admin (no token
// controller runs, so it gets no secrets).
func (s *APIServer) CreateServiceAccount(t testing.TB, namespace, name string) *corev1.ServiceAccount {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	out, err := s.admin(t).CoreV1().ServiceAccounts(namespace).Create(t.Context(), sa, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kubetest: create service account %s/%s: %v", namespace, name, err)
	}
	return out
}

// nodeAddresses maps the given addresses to node status addresses: IPs
// become InternalIP, anything else Hostname.
func nodeAddresses(addrs []string) []corev1.NodeAddress {
	var out []corev1.NodeAddress
	for _, a := range addrs {
		typ := corev1.NodeHostName
		if net.ParseIP(a) != nil {
			typ = corev1.NodeInternalIP
		}
		out = append(out, corev1.NodeAddress{Type: typ, Address: a})
	}
	return out
}

// CreateNode creates a node as a kubelet would register it: the object,
// then status.addresses (InternalIP for IPs, Hostname otherwise) and a
// Ready condition through the status subresource.
func (s *APIServer) CreateNode(t testing.TB, name string, labels map[string]string, addresses ...string) *corev1.Node {
	t.Helper()
	cs := s.admin(t)
	node, err := cs.CoreV1().Nodes().Create(t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kubetest: create node %s: %v", name, err)
	}
	node.Status.Addresses = nodeAddresses(addresses)
	node.Status.Conditions = []corev1.NodeCondition{{
		Type:               corev1.NodeReady,
		Status:             corev1.ConditionTrue,
		Reason:             "KubeletReady",
		LastHeartbeatTime:  metav1.Now(),
		LastTransitionTime: metav1.Now(),
	}}
	out, err := cs.CoreV1().Nodes().UpdateStatus(t.Context(), node, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("kubetest: set status of node %s: %v", name, err)
	}
	return out
}

// Pod describes a pod for CreatePod.
type Pod struct {
	Namespace, Name string
	// NodeName is set in the spec as if the scheduler had bound the pod.
	NodeName string
	Labels   map[string]string
	// Annotations, e.g. cni.projectcalico.org/podIPs.
	Annotations map[string]string
	// IPs become status.podIP (the first) and status.podIPs.
	IPs []string
	// ServiceAccount defaults to "default", as the (disabled) admission
	// plugin would set it.
	ServiceAccount string
	// HostNetwork marks a host-networked pod.
	HostNetwork bool
}

// CreatePod creates a pod and then writes, through the status subresource,
// what a kubelet would report for it running: phase Running, Ready, and
// the pod IPs.
func (s *APIServer) CreatePod(t testing.TB, p Pod) *corev1.Pod {
	t.Helper()
	cs := s.admin(t)
	sa := p.ServiceAccount
	if sa == "" {
		sa = "default"
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels, Annotations: p.Annotations},
		Spec: corev1.PodSpec{
			NodeName:           p.NodeName,
			ServiceAccountName: sa,
			HostNetwork:        p.HostNetwork,
			Containers:         []corev1.Container{{Name: "main", Image: PauseImage}},
		},
	}
	pod, err := cs.CoreV1().Pods(p.Namespace).Create(t.Context(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kubetest: create pod %s/%s: %v", p.Namespace, p.Name, err)
	}
	now := metav1.Now()
	pod.Status = corev1.PodStatus{
		Phase:     corev1.PodRunning,
		StartTime: &now,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		},
	}
	for _, ip := range p.IPs {
		pod.Status.PodIPs = append(pod.Status.PodIPs, corev1.PodIP{IP: ip})
	}
	if len(p.IPs) > 0 {
		pod.Status.PodIP = p.IPs[0]
	}
	out, err := cs.CoreV1().Pods(p.Namespace).UpdateStatus(t.Context(), pod, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("kubetest: set status of pod %s/%s: %v", p.Namespace, p.Name, err)
	}
	return out
}
