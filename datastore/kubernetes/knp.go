package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

// KNPPrefix names the Calico view of a Kubernetes NetworkPolicy.
const KNPPrefix = "knp.default."

// knpOrder is the order upstream gives converted Kubernetes policies.
const knpOrder = 1000.0

// knpReason is why a knp.default.* policy cannot be written here.
const knpReason = "kubernetes network policies must be managed through the kubernetes API"

// KNPToPolicy converts a Kubernetes NetworkPolicy into the read-only Calico
// NetworkPolicy knp.default.<name> in the same namespace.
func KNPToPolicy(np *networkingv1.NetworkPolicy) (*resources.NetworkPolicy, error) {
	order := knpOrder
	p := &resources.NetworkPolicy{}
	p.Name = KNPPrefix + np.Name
	p.Namespace = np.Namespace
	p.ResourceVersion = np.ResourceVersion
	p.UID = np.UID
	p.CreationTimestamp = np.CreationTimestamp
	p.Labels = map[string]string{resources.LabelTier: resources.DefaultTierName}
	p.Spec.Tier = resources.DefaultTierName
	p.Spec.Order = &order
	p.Spec.Selector = podSelector(&np.Spec.PodSelector)
	for _, r := range np.Spec.Ingress {
		rules, err := knpRules(r.From, r.Ports, true)
		if err != nil {
			return nil, fmt.Errorf("NetworkPolicy %s/%s: %w", np.Namespace, np.Name, err)
		}
		p.Spec.Ingress = append(p.Spec.Ingress, rules...)
	}
	for _, r := range np.Spec.Egress {
		rules, err := knpRules(r.To, r.Ports, false)
		if err != nil {
			return nil, fmt.Errorf("NetworkPolicy %s/%s: %w", np.Namespace, np.Name, err)
		}
		p.Spec.Egress = append(p.Spec.Egress, rules...)
	}
	for _, t := range np.Spec.PolicyTypes {
		p.Spec.Types = append(p.Spec.Types, resources.PolicyType(t))
	}
	if len(p.Spec.Types) == 0 {
		p.Spec.Types = []resources.PolicyType{resources.PolicyTypeIngress}
		if len(np.Spec.Egress) > 0 {
			p.Spec.Types = append(p.Spec.Types, resources.PolicyTypeEgress)
		}
	}
	resources.SetTypeMeta(p)
	return p, nil
}

// knpRules converts one Kubernetes rule: one Allow rule per peer and port.
func knpRules(peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, ingress bool) ([]resources.Rule, error) {
	peerList := make([]*networkingv1.NetworkPolicyPeer, 0, len(peers))
	for i := range peers {
		peerList = append(peerList, &peers[i])
	}
	if len(peerList) == 0 {
		peerList = append(peerList, nil)
	}
	portList := make([]*networkingv1.NetworkPolicyPort, 0, len(ports))
	for i := range ports {
		portList = append(portList, &ports[i])
	}
	if len(portList) == 0 {
		portList = append(portList, nil)
	}
	var out []resources.Rule
	for _, peer := range peerList {
		for _, port := range portList {
			r := resources.Rule{Action: resources.Action("Allow")}
			var peerEnt resources.EntityRule
			if peer != nil {
				peerEnt = peerEntity(peer)
			}
			var dst resources.EntityRule
			if port != nil {
				proto := "TCP"
				if port.Protocol != nil {
					proto = string(*port.Protocol)
				}
				p := resources.ProtocolFromString(proto)
				r.Protocol = &p
				if port.Port != nil {
					cp, err := calicoPort(port.Port, port.EndPort)
					if err != nil {
						return nil, err
					}
					dst.Ports = []resources.Port{cp}
				}
			}
			if ingress {
				r.Source = peerEnt
				r.Destination = dst
			} else {
				peerEnt.Ports = dst.Ports
				r.Destination = peerEnt
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func calicoPort(p *intstr.IntOrString, end *int32) (resources.Port, error) {
	if p.Type == intstr.String {
		return resources.NamedPort(p.StrVal), nil
	}
	if p.IntVal < 0 || p.IntVal > 65535 {
		return resources.Port{}, fmt.Errorf("port %d out of range", p.IntVal)
	}
	if end != nil && *end > p.IntVal && *end <= 65535 {
		return resources.PortRange(uint16(p.IntVal), uint16(*end))
	}
	return resources.SinglePort(uint16(p.IntVal)), nil
}

func peerEntity(peer *networkingv1.NetworkPolicyPeer) resources.EntityRule {
	var e resources.EntityRule
	switch {
	case peer.IPBlock != nil:
		e.Nets = []string{peer.IPBlock.CIDR}
		e.NotNets = slices.Clone(peer.IPBlock.Except)
	case peer.NamespaceSelector != nil:
		e.NamespaceSelector = namespaceSelector(peer.NamespaceSelector)
		e.Selector = podSelector(peer.PodSelector)
	case peer.PodSelector != nil:
		e.Selector = podSelector(peer.PodSelector)
	}
	return e
}

const k8sOrchestratorSelector = resources.LabelOrchestrator + " == 'k8s'"

// podSelector converts a Kubernetes pod selector (nil matches every pod).
func podSelector(sel *metav1.LabelSelector) string {
	parts := append([]string{k8sOrchestratorSelector}, selectorTerms(sel)...)
	return strings.Join(parts, " && ")
}

// namespaceSelector converts a Kubernetes namespace selector; the empty one
// selects every namespace.
func namespaceSelector(sel *metav1.LabelSelector) string {
	terms := selectorTerms(sel)
	if len(terms) == 0 {
		return "all()"
	}
	return strings.Join(terms, " && ")
}

func selectorTerms(sel *metav1.LabelSelector) []string {
	if sel == nil {
		return nil
	}
	var terms []string
	keys := make([]string, 0, len(sel.MatchLabels))
	for k := range sel.MatchLabels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		terms = append(terms, fmt.Sprintf("%s == '%s'", k, sel.MatchLabels[k]))
	}
	for _, e := range sel.MatchExpressions {
		vals := make([]string, len(e.Values))
		for i, v := range e.Values {
			vals[i] = "'" + v + "'"
		}
		set := "{" + strings.Join(vals, ", ") + "}"
		switch e.Operator {
		case metav1.LabelSelectorOpIn:
			terms = append(terms, fmt.Sprintf("%s in %s", e.Key, set))
		case metav1.LabelSelectorOpNotIn:
			terms = append(terms, fmt.Sprintf("%s not in %s", e.Key, set))
		case metav1.LabelSelectorOpExists:
			terms = append(terms, fmt.Sprintf("has(%s)", e.Key))
		case metav1.LabelSelectorOpDoesNotExist:
			terms = append(terms, fmt.Sprintf("! has(%s)", e.Key))
		}
	}
	return terms
}

// policyStore is NetworkPolicy: Calico CRs plus the read-only views of
// Kubernetes NetworkPolicies.
type policyStore struct {
	crStore
}

func knpCall(ns string) call {
	return call{group: "networking.k8s.io", resource: "networkpolicies", namespace: ns}
}

func isKNP(name string) bool { return strings.HasPrefix(name, KNPPrefix) }

func (s *policyStore) get(ctx context.Context, key resources.Key) (resources.Resource, error) {
	if !isKNP(key.Name) {
		return s.crStore.get(ctx, key)
	}
	np, err := s.b.kube.NetworkingV1().NetworkPolicies(key.Namespace).Get(ctx, strings.TrimPrefix(key.Name, KNPPrefix), metav1.GetOptions{})
	if err != nil {
		return nil, s.b.apiError(err, "get", key, knpCall(key.Namespace))
	}
	return KNPToPolicy(np)
}

func (s *policyStore) create(ctx context.Context, r resources.Resource) (resources.Resource, error) {
	if isKNP(r.GetName()) {
		return nil, datastore.NotSupported("Create", resources.KeyOf(r), knpReason)
	}
	return s.crStore.create(ctx, r)
}

func (s *policyStore) update(ctx context.Context, r resources.Resource) (resources.Resource, error) {
	if isKNP(r.GetName()) {
		return nil, datastore.NotSupported("Update", resources.KeyOf(r), knpReason)
	}
	return s.crStore.update(ctx, r)
}

func (s *policyStore) delete(ctx context.Context, key resources.Key, revision string) (resources.Resource, error) {
	if isKNP(key.Name) {
		return nil, datastore.NotSupported("Delete", key, knpReason)
	}
	return s.crStore.delete(ctx, key, revision)
}

// knpContinue marks a continue token that is in the Kubernetes policies.
const knpContinue = "knp:"

func (s *policyStore) list(ctx context.Context, opts datastore.ListOptions) (*datastore.ListResult, error) {
	res := &datastore.ListResult{Items: []resources.Resource{}}
	knpOpts := opts
	if rest, ok := strings.CutPrefix(opts.Continue, knpContinue); ok {
		knpOpts.Continue = rest
	} else {
		var err error
		if res, err = s.crStore.list(ctx, opts); err != nil {
			return nil, err
		}
		if res.Continue != "" {
			return res, nil
		}
		knpOpts.Continue = ""
		if opts.Limit > 0 {
			knpOpts.Limit = opts.Limit - int64(len(res.Items))
			if knpOpts.Limit <= 0 {
				res.Continue = knpContinue
				return res, nil
			}
		}
	}
	if opts.NamePrefix != "" && !isKNP(opts.NamePrefix) && !strings.HasPrefix(KNPPrefix, opts.NamePrefix) {
		return res, nil
	}
	knpOpts.NamePrefix = ""
	knps, err := s.b.listPages(ctx, knpOpts, s.k.Kind, knpCall(opts.Namespace),
		func(ctx context.Context, lo metav1.ListOptions) (runtime.Object, error) {
			return s.b.kube.NetworkingV1().NetworkPolicies(opts.Namespace).List(ctx, lo)
		},
		func(obj runtime.Object) ([]resources.Resource, error) {
			var out []resources.Resource
			for i := range obj.(*networkingv1.NetworkPolicyList).Items {
				p, err := KNPToPolicy(&obj.(*networkingv1.NetworkPolicyList).Items[i])
				if err != nil {
					s.b.log.Warn("skipping unconvertible Kubernetes NetworkPolicy", "err", err)
					continue
				}
				if hasPrefix(p.Name, opts.NamePrefix) {
					out = append(out, p)
				}
			}
			return out, nil
		})
	if err != nil {
		return nil, err
	}
	res.Items = append(res.Items, knps.Items...)
	res.Revision = maxRevision(res.Revision, knps.Revision)
	if knps.Continue != "" {
		res.Continue = knpContinue + knps.Continue
	}
	return res, nil
}

func (s *policyStore) watch(ctx context.Context, opts datastore.WatchOptions) (<-chan datastore.Event, error) {
	if err := s.b.requireCRD(s.k.Plural); err != nil {
		return nil, err
	}
	ns := opts.Namespace
	rv := opts.Revision
	if rv == "" {
		var err error
		if rv, err = s.currentRevision(ctx, ns); err != nil && !errors.Is(err, errNoRevision) {
			return nil, err
		}
	}
	knpSrc := watchSource{
		kind: s.k.Kind,
		c:    knpCall(ns),
		start: func(ctx context.Context, lo metav1.ListOptions) (watch.Interface, error) {
			return s.b.kube.NetworkingV1().NetworkPolicies(ns).Watch(ctx, lo)
		},
		convert: func(obj runtime.Object, rv string) (resources.Resource, string, bool, error) {
			np, ok := obj.(*networkingv1.NetworkPolicy)
			if !ok {
				return nil, "", false, fmt.Errorf("unexpected object %T", obj)
			}
			p, err := KNPToPolicy(np)
			return p, rv, err == nil, err
		},
	}
	return s.b.watchSources(ctx, []string{rv, rv}, s.source(ns), knpSrc), nil
}
