package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

// Node annotations carrying Calico data on a Kubernetes Node (spec §2.5).
const (
	AnnotationIPv4Address             = "projectcalico.org/IPv4Address"
	AnnotationIPv6Address             = "projectcalico.org/IPv6Address"
	AnnotationIPv4IPIPTunnelAddr      = "projectcalico.org/IPv4IPIPTunnelAddr"
	AnnotationIPv4VXLANTunnelAddr     = "projectcalico.org/IPv4VXLANTunnelAddr"
	AnnotationIPv6VXLANTunnelAddr     = "projectcalico.org/IPv6VXLANTunnelAddr"
	AnnotationVXLANTunnelMACAddr      = "projectcalico.org/VXLANTunnelMACAddr"
	AnnotationVXLANTunnelMACAddrV6    = "projectcalico.org/VXLANTunnelMACAddrV6"
	AnnotationASNumber                = "projectcalico.org/ASNumber"
	AnnotationRouteReflectorClusterID = "projectcalico.org/RouteReflectorClusterID"
	AnnotationIPv4WireguardAddr       = "projectcalico.org/IPv4WireguardInterfaceAddr"
	AnnotationIPv6WireguardAddr       = "projectcalico.org/IPv6WireguardInterfaceAddr"
	AnnotationWireguardPublicKey      = "projectcalico.org/WireguardPublicKey"
	AnnotationWireguardPublicKeyV6    = "projectcalico.org/WireguardPublicKeyV6"
	AnnotationInterfaces              = "projectcalico.org/Interfaces"
	AnnotationLabels                  = "projectcalico.org/labels"
	AnnotationAnnotations             = "projectcalico.org/annotations"
	AnnotationKubeLabels              = "projectcalico.org/kube-labels"
)

// NodeToCalico converts a Kubernetes Node into the Calico Node of the same
// name. Labels are the Calico labels with the Kubernetes labels over them.
func NodeToCalico(n *corev1.Node) (*resources.Node, error) {
	a := n.Annotations
	cn := &resources.Node{}
	cn.Name = n.Name
	cn.ResourceVersion = n.ResourceVersion
	cn.UID = n.UID
	cn.CreationTimestamp = n.CreationTimestamp
	labels := map[string]string{}
	if err := jsonAnnotation(a, AnnotationLabels, &labels); err != nil {
		return nil, fmt.Errorf("Node %s: %w", n.Name, err)
	}
	maps.Copy(labels, n.Labels)
	if len(labels) > 0 {
		cn.Labels = labels
	}
	ann := map[string]string{}
	if err := jsonAnnotation(a, AnnotationAnnotations, &ann); err != nil {
		return nil, fmt.Errorf("Node %s: %w", n.Name, err)
	}
	// The snapshot of the Kubernetes labels lets a write undo the merge
	// above (MergeCalicoNode); upstream shows it, as JSON ("null" when the
	// Node has no labels at all).
	kubeLabels, err := json.Marshal(n.Labels)
	if err != nil {
		return nil, fmt.Errorf("Node %s: %w", n.Name, err)
	}
	ann[AnnotationKubeLabels] = string(kubeLabels)
	cn.Annotations = ann

	s := &cn.Spec
	bgp := resources.NodeBGPSpec{
		IPv4Address:             a[AnnotationIPv4Address],
		IPv6Address:             a[AnnotationIPv6Address],
		IPv4IPIPTunnelAddr:      a[AnnotationIPv4IPIPTunnelAddr],
		RouteReflectorClusterID: a[AnnotationRouteReflectorClusterID],
	}
	if v := a[AnnotationASNumber]; v != "" {
		asn, err := resources.ParseASNumber(v)
		if err != nil {
			return nil, fmt.Errorf("Node %s: annotation %s: %w", n.Name, AnnotationASNumber, err)
		}
		bgp.ASNumber = &asn
	}
	if bgp != (resources.NodeBGPSpec{}) {
		s.BGP = &bgp
	}
	s.IPv4VXLANTunnelAddr = a[AnnotationIPv4VXLANTunnelAddr]
	s.IPv6VXLANTunnelAddr = a[AnnotationIPv6VXLANTunnelAddr]
	s.VXLANTunnelMACAddr = a[AnnotationVXLANTunnelMACAddr]
	s.VXLANTunnelMACAddrV6 = a[AnnotationVXLANTunnelMACAddrV6]
	if v4, v6 := a[AnnotationIPv4WireguardAddr], a[AnnotationIPv6WireguardAddr]; v4 != "" || v6 != "" {
		s.Wireguard = &resources.NodeWireguardSpec{InterfaceIPv4Address: v4, InterfaceIPv6Address: v6}
	}
	if err := jsonAnnotation(a, AnnotationInterfaces, &s.Interfaces); err != nil {
		return nil, fmt.Errorf("Node %s: %w", n.Name, err)
	}
	s.OrchRefs = []resources.OrchRef{{NodeName: n.Name, Orchestrator: resources.OrchestratorKubernetes}}
	for _, ip := range []string{bgp.IPv4Address, bgp.IPv6Address} {
		if ip != "" {
			s.Addresses = append(s.Addresses, resources.NodeAddress{Address: ip, Type: resources.NodeAddressCalicoNodeIP})
		}
	}
	for _, addr := range n.Status.Addresses {
		switch addr.Type {
		case corev1.NodeInternalIP:
			s.Addresses = append(s.Addresses, resources.NodeAddress{Address: addr.Address, Type: resources.NodeAddressInternalIP})
		case corev1.NodeExternalIP:
			s.Addresses = append(s.Addresses, resources.NodeAddress{Address: addr.Address, Type: resources.NodeAddressExternalIP})
		}
	}
	cn.Status.WireguardPublicKey = a[AnnotationWireguardPublicKey]
	cn.Status.WireguardPublicKeyV6 = a[AnnotationWireguardPublicKeyV6]
	cn.Status.PodCIDRs = append([]string(nil), n.Spec.PodCIDRs...)
	if len(cn.Status.PodCIDRs) == 0 && n.Spec.PodCIDR != "" {
		cn.Status.PodCIDRs = []string{n.Spec.PodCIDR}
	}
	resources.SetTypeMeta(cn)
	return cn, nil
}

// MergeCalicoNode writes the Calico data of cn into a copy of the Kubernetes
// Node n: only annotations change. The labels read from Kubernetes are not
// stored again as Calico labels: those named in cn's kube-labels snapshot
// (the Node's labels when cn was read; Kubernetes labels win on read, so a
// Calico value for one of them could never show) and, for input without a
// snapshot, those equal to the Node's current labels. The snapshot itself is
// bookkeeping and is never stored.
func MergeCalicoNode(n *corev1.Node, cn *resources.Node) (*corev1.Node, error) {
	calicoLabels, calicoAnnotations, err := restoreCalicoMetadata(n, cn)
	if err != nil {
		return nil, err
	}
	out := n.DeepCopy()
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	a := out.Annotations
	set := func(key, v string) {
		if v == "" {
			delete(a, key)
		} else {
			a[key] = v
		}
	}
	var bgp resources.NodeBGPSpec
	if cn.Spec.BGP != nil {
		bgp = *cn.Spec.BGP
	}
	set(AnnotationIPv4Address, bgp.IPv4Address)
	set(AnnotationIPv6Address, bgp.IPv6Address)
	set(AnnotationIPv4IPIPTunnelAddr, bgp.IPv4IPIPTunnelAddr)
	set(AnnotationRouteReflectorClusterID, bgp.RouteReflectorClusterID)
	asn := ""
	if bgp.ASNumber != nil {
		asn = bgp.ASNumber.String()
	}
	set(AnnotationASNumber, asn)
	s := &cn.Spec
	set(AnnotationIPv4VXLANTunnelAddr, s.IPv4VXLANTunnelAddr)
	set(AnnotationIPv6VXLANTunnelAddr, s.IPv6VXLANTunnelAddr)
	set(AnnotationVXLANTunnelMACAddr, s.VXLANTunnelMACAddr)
	set(AnnotationVXLANTunnelMACAddrV6, s.VXLANTunnelMACAddrV6)
	var wg resources.NodeWireguardSpec
	if s.Wireguard != nil {
		wg = *s.Wireguard
	}
	set(AnnotationIPv4WireguardAddr, wg.InterfaceIPv4Address)
	set(AnnotationIPv6WireguardAddr, wg.InterfaceIPv6Address)
	set(AnnotationWireguardPublicKey, cn.Status.WireguardPublicKey)
	set(AnnotationWireguardPublicKeyV6, cn.Status.WireguardPublicKeyV6)
	if err := setJSONAnnotation(a, AnnotationInterfaces, s.Interfaces, len(s.Interfaces) > 0); err != nil {
		return nil, err
	}
	if err := setJSONAnnotation(a, AnnotationLabels, calicoLabels, len(calicoLabels) > 0); err != nil {
		return nil, err
	}
	// Not stored on the Node (upstream never does); drop a copy earlier
	// versions of this tool wrote.
	delete(a, AnnotationKubeLabels)
	if err := setJSONAnnotation(a, AnnotationAnnotations, calicoAnnotations, len(calicoAnnotations) > 0); err != nil {
		return nil, err
	}
	return out, nil
}

// restoreCalicoMetadata undoes NodeToCalico's label merge: it returns the
// labels and annotations of cn that belong to Calico.
func restoreCalicoMetadata(n *corev1.Node, cn *resources.Node) (labels, annotations map[string]string, err error) {
	annotations = maps.Clone(cn.Annotations)
	snapshot, hasSnapshot := annotations[AnnotationKubeLabels]
	delete(annotations, AnnotationKubeLabels)
	var kubeLabels map[string]string
	if hasSnapshot && snapshot != "" {
		if err := json.Unmarshal([]byte(snapshot), &kubeLabels); err != nil {
			return nil, nil, fmt.Errorf("metadata.annotations[%s] must be the JSON object of the node's Kubernetes labels: %w", AnnotationKubeLabels, err)
		}
	}
	labels = map[string]string{}
	for k, v := range cn.Labels {
		if _, inherited := kubeLabels[k]; inherited {
			continue
		}
		if kv, ok := n.Labels[k]; ok && kv == v {
			continue
		}
		labels[k] = v
	}
	return labels, annotations, nil
}

func jsonAnnotation(a map[string]string, key string, into any) error {
	v, ok := a[key]
	if !ok || v == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(v), into); err != nil {
		return fmt.Errorf("annotation %s: %w", key, err)
	}
	return nil
}

func setJSONAnnotation(a map[string]string, key string, v any, present bool) error {
	if !present {
		delete(a, key)
		return nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("annotation %s: %w", key, err)
	}
	a[key] = string(data)
	return nil
}

// nodeStore is Node: a view of Kubernetes Nodes.
type nodeStore struct {
	b *Backend
	k *resources.Kind
}

var nodeCall = call{resource: "nodes"}

func (s *nodeStore) get(ctx context.Context, key resources.Key) (resources.Resource, error) {
	n, err := s.b.kube.CoreV1().Nodes().Get(ctx, key.Name, metav1.GetOptions{})
	if err != nil {
		return nil, s.b.apiError(err, "get", key, nodeCall)
	}
	return NodeToCalico(n)
}

func (s *nodeStore) list(ctx context.Context, opts datastore.ListOptions) (*datastore.ListResult, error) {
	return s.b.listPages(ctx, opts, s.k.Kind, nodeCall,
		func(ctx context.Context, lo metav1.ListOptions) (runtime.Object, error) {
			return s.b.kube.CoreV1().Nodes().List(ctx, lo)
		},
		func(obj runtime.Object) ([]resources.Resource, error) {
			var out []resources.Resource
			for i := range obj.(*corev1.NodeList).Items {
				n := &obj.(*corev1.NodeList).Items[i]
				if !hasPrefix(n.Name, opts.NamePrefix) {
					continue
				}
				cn, err := NodeToCalico(n)
				if err != nil {
					s.b.log.Warn("skipping unconvertible Node", "err", err)
					continue
				}
				out = append(out, cn)
			}
			return out, nil
		})
}

const nodeReason = "Calico nodes are the cluster's Kubernetes nodes: add or remove them through Kubernetes"

func (s *nodeStore) create(_ context.Context, r resources.Resource) (resources.Resource, error) {
	return nil, datastore.NotSupported("Create", resources.KeyOf(r), nodeReason)
}

func (s *nodeStore) delete(_ context.Context, key resources.Key, _ string) (resources.Resource, error) {
	return nil, datastore.NotSupported("Delete", key, nodeReason)
}

func (s *nodeStore) update(ctx context.Context, r resources.Resource) (resources.Resource, error) {
	key := resources.KeyOf(r)
	cn, ok := r.(*resources.Node)
	if !ok {
		return nil, fmt.Errorf("kubernetes: %T is not a Node", r)
	}
	n, err := s.b.kube.CoreV1().Nodes().Get(ctx, key.Name, metav1.GetOptions{})
	if err != nil {
		return nil, s.b.apiError(err, "update", key, nodeCall)
	}
	if rv := r.GetResourceVersion(); rv != "" && rv != n.ResourceVersion {
		return nil, datastore.Conflict(key, "")
	}
	merged, err := MergeCalicoNode(n, cn)
	if err != nil {
		return nil, err // names the field; the caller names the node
	}
	out, err := s.b.kube.CoreV1().Nodes().Update(ctx, merged, metav1.UpdateOptions{})
	if err != nil {
		return nil, s.b.apiError(err, "update", key, nodeCall)
	}
	return NodeToCalico(out)
}

func (s *nodeStore) watch(ctx context.Context, opts datastore.WatchOptions) (<-chan datastore.Event, error) {
	rv := opts.Revision
	if rv == "" {
		l, err := s.b.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return nil, s.b.apiError(err, "list", resources.Key{Kind: s.k.Kind}, nodeCall)
		}
		rv = l.ResourceVersion
	}
	src := watchSource{
		kind: s.k.Kind,
		c:    nodeCall,
		start: func(ctx context.Context, lo metav1.ListOptions) (watch.Interface, error) {
			return s.b.kube.CoreV1().Nodes().Watch(ctx, lo)
		},
		convert: func(obj runtime.Object, rv string) (resources.Resource, string, bool, error) {
			n, ok := obj.(*corev1.Node)
			if !ok {
				return nil, "", false, fmt.Errorf("unexpected object %T", obj)
			}
			cn, err := NodeToCalico(n)
			return cn, rv, err == nil, err
		},
	}
	return s.b.watchSources(ctx, []string{rv}, src), nil
}
