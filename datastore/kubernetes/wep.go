package kubernetes

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

// Pod annotations written by the CNI plugin and read into WorkloadEndpoints.
const (
	AnnotationPodIP          = "cni.projectcalico.org/podIP"
	AnnotationPodIPs         = "cni.projectcalico.org/podIPs"
	AnnotationContainerID    = "cni.projectcalico.org/containerID"
	AnnotationFloatingIPs    = "cni.projectcalico.org/floatingIPs"
	AnnotationAllowedSources = "cni.projectcalico.org/allowedSourcePrefixes"
	AnnotationAWSPodIPs      = "vpc.amazonaws.com/pod-ips"

	// LabelServiceAccount carries a pod's service account on its endpoint.
	LabelServiceAccount = "projectcalico.org/serviceaccount"

	// NamespaceProfilePrefix and ServiceAccountProfilePrefix name the
	// profiles derived from namespaces and service accounts.
	NamespaceProfilePrefix      = "kns."
	ServiceAccountProfilePrefix = "ksa."

	wepEndpoint = "eth0"
)

// VethName is the host-side interface name of a pod: "cali" and the first
// 11 hex digits of sha1("<namespace>.<pod>").
func VethName(namespace, pod string) string {
	sum := sha1.Sum([]byte(namespace + "." + pod))
	return "cali" + hex.EncodeToString(sum[:])[:11]
}

// wepPod reports whether a pod has a WorkloadEndpoint: it is scheduled and
// not on the host network.
func wepPod(p *corev1.Pod) bool {
	return p.Spec.NodeName != "" && !p.Spec.HostNetwork
}

// PodToWEP converts a scheduled, non-hostNetwork pod into its
// WorkloadEndpoint (spec §2.4).
func PodToWEP(p *corev1.Pod) (*resources.WorkloadEndpoint, error) {
	if !wepPod(p) {
		return nil, fmt.Errorf("pod %s/%s has no workload endpoint (unscheduled or host network)", p.Namespace, p.Name)
	}
	ids := resources.WEPIdentifiers{Node: p.Spec.NodeName, Orchestrator: resources.OrchestratorKubernetes, Pod: p.Name, Endpoint: wepEndpoint}
	name, err := ids.Name()
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	w := &resources.WorkloadEndpoint{}
	w.Name = name
	w.Namespace = p.Namespace
	w.ResourceVersion = p.ResourceVersion
	w.UID = p.UID
	w.CreationTimestamp = p.CreationTimestamp
	w.GenerateName = p.GenerateName
	labels := map[string]string{}
	for k, v := range p.Labels {
		labels[k] = v
	}
	labels[resources.LabelNamespace] = p.Namespace
	labels[resources.LabelOrchestrator] = resources.OrchestratorKubernetes
	sa := p.Spec.ServiceAccountName
	if sa != "" && len(sa) < 63 {
		labels[LabelServiceAccount] = sa
	}
	w.Labels = labels

	s := &w.Spec
	s.Orchestrator = resources.OrchestratorKubernetes
	s.Node = p.Spec.NodeName
	s.Pod = p.Name
	s.Endpoint = wepEndpoint
	s.ContainerID = p.Annotations[AnnotationContainerID]
	s.ServiceAccountName = sa
	s.InterfaceName = VethName(p.Namespace, p.Name)
	s.Profiles = []string{NamespaceProfilePrefix + p.Namespace}
	if sa != "" {
		s.Profiles = append(s.Profiles, ServiceAccountProfilePrefix+p.Namespace+"."+sa)
	}
	if s.IPNetworks, err = podNetworks(p); err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	if s.IPNATs, err = podNATs(p, s.IPNetworks); err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	if err := jsonAnnotation(p.Annotations, AnnotationAllowedSources, &s.AllowSpoofedSourcePrefixes); err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == "" && cp.HostPort == 0 {
				continue
			}
			proto := string(cp.Protocol)
			if proto == "" {
				proto = "TCP"
			}
			s.Ports = append(s.Ports, resources.WorkloadEndpointPort{
				Name: cp.Name, Protocol: resources.ProtocolFromString(proto),
				Port: uint16(cp.ContainerPort), HostPort: uint16(cp.HostPort), HostIP: cp.HostIP,
			})
		}
	}
	resources.SetTypeMeta(w)
	return w, nil
}

// podNetworks returns the pod's addresses as /32 or /128 networks, from the
// first source that has any: status.podIPs, status.podIP, the Calico CNI
// annotations, then the AWS one. A finished pod, or a terminating one whose
// podIP annotation was blanked, has none.
func podNetworks(p *corev1.Pod) ([]string, error) {
	switch p.Status.Phase {
	case corev1.PodFailed, corev1.PodSucceeded, "Completed":
		return nil, nil
	}
	if v, ok := p.Annotations[AnnotationPodIP]; ok && v == "" && p.DeletionTimestamp != nil {
		return nil, nil
	}
	var raw []string
	switch {
	case len(p.Status.PodIPs) > 0:
		for _, ip := range p.Status.PodIPs {
			raw = append(raw, ip.IP)
		}
	case p.Status.PodIP != "":
		raw = []string{p.Status.PodIP}
	case p.Annotations[AnnotationPodIPs] != "":
		raw = strings.Split(p.Annotations[AnnotationPodIPs], ",")
	case p.Annotations[AnnotationPodIP] != "":
		raw = []string{p.Annotations[AnnotationPodIP]}
	case p.Annotations[AnnotationAWSPodIPs] != "":
		raw = strings.Split(p.Annotations[AnnotationAWSPodIPs], ",")
	}
	var out []string
	for _, r := range raw {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		n, err := hostNetwork(r)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// hostNetwork turns "10.0.0.1" or "10.0.0.1/32" into "10.0.0.1/32".
func hostNetwork(s string) (string, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return "", fmt.Errorf("invalid pod IP %q: %w", s, err)
		}
		return netip.PrefixFrom(p.Addr(), p.Addr().BitLen()).String(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return "", fmt.Errorf("invalid pod IP %q: %w", s, err)
	}
	return netip.PrefixFrom(a, a.BitLen()).String(), nil
}

// podNATs maps each floating IP to the pod's address of the same family.
func podNATs(p *corev1.Pod, networks []string) ([]resources.IPNAT, error) {
	var floating []string
	if err := jsonAnnotation(p.Annotations, AnnotationFloatingIPs, &floating); err != nil {
		return nil, err
	}
	var out []resources.IPNAT
	for _, f := range floating {
		ext, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("annotation %s: invalid IP %q", AnnotationFloatingIPs, f)
		}
		for _, n := range networks {
			in := netip.MustParsePrefix(n).Addr()
			if in.Is4() == ext.Is4() {
				out = append(out, resources.IPNAT{InternalIP: in.String(), ExternalIP: ext.String()})
				break
			}
		}
	}
	return out, nil
}

// wepStore is WorkloadEndpoint: a view of pods. Writes are the CNI plugin's
// "patch mode": they set (or blank) the pod's IP and container annotations.
type wepStore struct {
	b *Backend
	k *resources.Kind
}

func podCall(ns string) call { return call{resource: "pods", namespace: ns} }

// podName finds the pod of a WorkloadEndpoint name.
func podName(key resources.Key) (string, error) {
	ids, err := resources.ParseWEPName(key.Name)
	if err != nil || ids.Orchestrator != resources.OrchestratorKubernetes || ids.Pod == "" {
		return "", datastore.NotFound(key)
	}
	return ids.Pod, nil
}

func (s *wepStore) get(ctx context.Context, key resources.Key) (resources.Resource, error) {
	pod, err := podName(key)
	if err != nil {
		return nil, err
	}
	p, err := s.b.kube.CoreV1().Pods(key.Namespace).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		return nil, s.b.apiError(err, "get", key, podCall(key.Namespace))
	}
	if !wepPod(p) {
		return nil, datastore.NotFound(key)
	}
	w, err := PodToWEP(p)
	if err != nil {
		return nil, err
	}
	if w.Name != key.Name {
		return nil, datastore.NotFound(key) // the pod runs on another node
	}
	return w, nil
}

func (s *wepStore) list(ctx context.Context, opts datastore.ListOptions) (*datastore.ListResult, error) {
	return s.b.listPages(ctx, opts, s.k.Kind, podCall(opts.Namespace),
		func(ctx context.Context, lo metav1.ListOptions) (runtime.Object, error) {
			return s.b.kube.CoreV1().Pods(opts.Namespace).List(ctx, lo)
		},
		func(obj runtime.Object) ([]resources.Resource, error) {
			var out []resources.Resource
			for i := range obj.(*corev1.PodList).Items {
				p := &obj.(*corev1.PodList).Items[i]
				if !wepPod(p) {
					continue
				}
				w, err := PodToWEP(p)
				if err != nil {
					s.b.log.Warn("skipping unconvertible pod", "err", err)
					continue
				}
				if hasPrefix(w.Name, opts.NamePrefix) {
					out = append(out, w)
				}
			}
			return out, nil
		})
}

func (s *wepStore) create(ctx context.Context, r resources.Resource) (resources.Resource, error) {
	return s.patch(ctx, r, "create")
}

func (s *wepStore) update(ctx context.Context, r resources.Resource) (resources.Resource, error) {
	return s.patch(ctx, r, "update")
}

// patch writes the endpoint's addresses and container ID onto its pod.
func (s *wepStore) patch(ctx context.Context, r resources.Resource, verb string) (resources.Resource, error) {
	w, ok := r.(*resources.WorkloadEndpoint)
	if !ok {
		return nil, fmt.Errorf("kubernetes: %T is not a WorkloadEndpoint", r)
	}
	key := resources.KeyOf(r)
	pod, err := podName(key)
	if err != nil {
		return nil, err
	}
	ann := map[string]*string{AnnotationPodIP: ptr(""), AnnotationPodIPs: ptr("")}
	if len(w.Spec.IPNetworks) > 0 {
		ann[AnnotationPodIP] = ptr(w.Spec.IPNetworks[0])
		ann[AnnotationPodIPs] = ptr(strings.Join(w.Spec.IPNetworks, ","))
	}
	if w.Spec.ContainerID != "" {
		ann[AnnotationContainerID] = ptr(w.Spec.ContainerID)
	}
	return s.patchPod(ctx, key, pod, verb, ann)
}

func (s *wepStore) patchPod(ctx context.Context, key resources.Key, pod, verb string, ann map[string]*string) (resources.Resource, error) {
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}})
	if err != nil {
		return nil, err
	}
	p, err := s.b.kube.CoreV1().Pods(key.Namespace).Patch(ctx, pod, types.StrategicMergePatchType, body, metav1.PatchOptions{}, "status")
	if err != nil {
		return nil, s.b.apiError(err, verb, key, call{resource: "pods/status", namespace: key.Namespace})
	}
	if !wepPod(p) {
		return nil, datastore.NotFound(key)
	}
	return PodToWEP(p)
}

// delete blanks the pod's IP annotations: the pod itself stays.
func (s *wepStore) delete(ctx context.Context, key resources.Key, revision string) (resources.Resource, error) {
	cur, err := s.get(ctx, key)
	if err != nil {
		return nil, err
	}
	if revision != "" && revision != cur.GetResourceVersion() {
		return nil, datastore.Conflict(key, "")
	}
	pod, _ := podName(key)
	if _, err := s.patchPod(ctx, key, pod, "delete", map[string]*string{AnnotationPodIP: ptr(""), AnnotationPodIPs: ptr("")}); err != nil {
		return nil, err
	}
	return cur, nil
}

func (s *wepStore) watch(ctx context.Context, opts datastore.WatchOptions) (<-chan datastore.Event, error) {
	ns := opts.Namespace
	rv := opts.Revision
	if rv == "" {
		l, err := s.b.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return nil, s.b.apiError(err, "list", resources.Key{Kind: s.k.Kind}, podCall(ns))
		}
		rv = l.ResourceVersion
	}
	src := watchSource{
		kind: s.k.Kind,
		c:    podCall(ns),
		start: func(ctx context.Context, lo metav1.ListOptions) (watch.Interface, error) {
			return s.b.kube.CoreV1().Pods(ns).Watch(ctx, lo)
		},
		convert: func(obj runtime.Object, rv string) (resources.Resource, string, bool, error) {
			p, ok := obj.(*corev1.Pod)
			if !ok {
				return nil, "", false, fmt.Errorf("unexpected object %T", obj)
			}
			if !wepPod(p) {
				return nil, "", false, nil
			}
			w, err := PodToWEP(p)
			return w, rv, err == nil, err
		},
	}
	return s.b.watchSources(ctx, []string{rv}, src), nil
}

func ptr[T any](v T) *T { return &v }
