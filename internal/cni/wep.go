package cni

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/datastore/kubernetes"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/resources"
)

// BuildWEP builds the container's WorkloadEndpoint (spec §7.3). With a pod
// its labels, profiles, service account and ports come from the pod and
// namespace as the Kubernetes conversion makes them; otherwise the profile
// is the network name.
func BuildWEP(node string, a *Args, conf *NetConf, pod *PodInfo, hostIf, mac string, ips []netip.Prefix) (*resources.WorkloadEndpoint, error) {
	ids := WEPIdentifiers(node, a)
	name, err := ids.Name()
	if err != nil {
		return nil, fmt.Errorf("workload endpoint name: %w", err)
	}
	w := &resources.WorkloadEndpoint{}
	if pod != nil && pod.Pod != nil {
		pc := pod.Pod.DeepCopy()
		pc.Spec.NodeName = node
		pc.Spec.HostNetwork = false
		base, err := kubernetes.PodToWEP(pc)
		if err != nil {
			return nil, err
		}
		w.Labels = base.Labels
		w.Spec.Profiles = base.Spec.Profiles
		w.Spec.ServiceAccountName = base.Spec.ServiceAccountName
		w.Spec.Ports = base.Spec.Ports
		w.Spec.AllowSpoofedSourcePrefixes = base.Spec.AllowSpoofedSourcePrefixes
		if conf.Policy.Type != "k8s" {
			w.Spec.Profiles = []string{conf.Name}
		}
	} else {
		w.Spec.Profiles = []string{conf.Name}
	}
	w.Name = name
	w.Namespace = a.Namespace()
	s := &w.Spec
	s.Orchestrator = ids.Orchestrator
	s.Node = node
	s.Endpoint = a.IfName
	s.ContainerID = a.ContainerID
	if a.IsK8s() {
		s.Pod = a.K8s.Name
	} else {
		// As upstream: outside Kubernetes the container is the workload.
		s.Workload = a.ContainerID
	}
	s.InterfaceName = hostIf
	s.MAC = mac
	for _, ip := range ips {
		s.IPNetworks = append(s.IPNetworks, netip.PrefixFrom(ip.Addr(), ip.Addr().BitLen()).String())
	}
	floating, ok, err := jsonList(pod.annotations(), AnnotationFloatingIPs)
	if err != nil {
		return nil, err
	}
	if ok {
		if !conf.FeatureControl.FloatingIPs {
			return nil, fmt.Errorf("annotation %s needs feature_control.floating_ips in the network config", AnnotationFloatingIPs)
		}
		if s.IPNATs, err = floatingNATs(floating, ips); err != nil {
			return nil, err
		}
	}
	resources.SetTypeMeta(w)
	return w, nil
}

// floatingNATs maps each floating IP onto the endpoint address of its family.
func floatingNATs(floating []string, ips []netip.Prefix) ([]resources.IPNAT, error) {
	var out []resources.IPNAT
	for _, f := range floating {
		ext, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("annotation %s: %q is not an IP address", AnnotationFloatingIPs, f)
		}
		found := false
		for _, ip := range ips {
			if ip.Addr().Is4() == ext.Is4() {
				out = append(out, resources.IPNAT{InternalIP: ip.Addr().String(), ExternalIP: ext.String()})
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("annotation %s: floating IP %s has no pod address of its family", AnnotationFloatingIPs, f)
		}
	}
	return out, nil
}

func (p *plugin) buildWEP(pod *PodInfo, hostIf, mac string, ips []netip.Prefix) (*resources.WorkloadEndpoint, error) {
	return BuildWEP(p.node, p.args, p.conf, pod, hostIf, mac, ips)
}

// writeWEP creates the endpoint, or replaces one left by an earlier sandbox
// of the same pod (on Kubernetes this patches the pod's annotations).
func (p *plugin) writeWEP(ctx context.Context, w *resources.WorkloadEndpoint) error {
	if err := p.ensureNetworkProfile(ctx, w); err != nil {
		return err
	}
	if _, err := client.New(p.ds).Apply(ctx, w); err != nil {
		return fmt.Errorf("writing workload endpoint %s/%s: %w", w.Namespace, w.Name, err)
	}
	p.log.Info("wrote workload endpoint", "wep", w.Namespace+"/"+w.Name)
	return nil
}

// deleteWEP removes the endpoint if it still belongs to this container: a
// late DEL of an old sandbox must not remove the new sandbox's endpoint.
func (p *plugin) deleteWEP(ctx context.Context) error {
	name, err := WEPIdentifiers(p.node, p.args).Name()
	if err != nil {
		return err
	}
	key := resources.Key{Kind: "WorkloadEndpoint", Namespace: p.args.Namespace(), Name: name}
	cur, err := p.ds.Get(ctx, key)
	if errors.Is(err, datastore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading workload endpoint %s: %w", key, err)
	}
	if w, ok := cur.(*resources.WorkloadEndpoint); ok && w.Spec.ContainerID != "" && w.Spec.ContainerID != p.args.ContainerID {
		p.log.Info("workload endpoint belongs to another container: kept", "wep", name, "owner", w.Spec.ContainerID)
		return nil
	}
	if _, err := p.ds.Delete(ctx, key, cur.GetResourceVersion()); err != nil && !errors.Is(err, datastore.ErrNotFound) {
		return fmt.Errorf("deleting workload endpoint %s: %w", key, err)
	}
	p.log.Info("deleted workload endpoint", "wep", name)
	return nil
}

// ensureNetworkProfile creates the profile named after the network when an
// endpoint outside Kubernetes names it and it does not exist yet, as
// upstream's plugin does: endpoints of the network get the label
// <network>="" and the profile allows ingress from them and all egress.
// Without it the agent's policy would drop the endpoint's traffic (a
// profile that does not exist allows nothing). An existing profile is
// never changed.
func (p *plugin) ensureNetworkProfile(ctx context.Context, w *resources.WorkloadEndpoint) error {
	if _, kdd := p.ds.(*kubernetes.Backend); kdd || len(w.Spec.Profiles) != 1 || w.Spec.Profiles[0] != p.conf.Name {
		return nil
	}
	key := resources.Key{Kind: "Profile", Name: p.conf.Name}
	if _, err := p.ds.Get(ctx, key); err == nil || !errors.Is(err, datastore.ErrNotFound) {
		if err != nil {
			return fmt.Errorf("reading profile %s: %w", p.conf.Name, err)
		}
		return nil
	}
	prof := NetworkProfile(p.conf.Name)
	if _, err := p.ds.Create(ctx, prof); err != nil && !errors.Is(err, datastore.ErrExists) {
		return fmt.Errorf("creating profile %s for network %s: %w", p.conf.Name, p.conf.Name, err)
	}
	p.log.Info("created the network's profile", "profile", p.conf.Name)
	return nil
}

// NetworkProfile is the profile of a network's endpoints outside
// Kubernetes: label <network>="", ingress allowed from endpoints with that
// label, egress allowed.
func NetworkProfile(network string) *resources.Profile {
	prof := &resources.Profile{}
	prof.Name = network
	prof.Spec.LabelsToApply = map[string]string{network: ""}
	prof.Spec.Ingress = []resources.Rule{{Action: resources.ActionAllow, Source: resources.EntityRule{Selector: "has(" + network + ")"}}}
	prof.Spec.Egress = []resources.Rule{{Action: resources.ActionAllow}}
	resources.SetTypeMeta(prof)
	return prof
}
