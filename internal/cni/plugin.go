package cni

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/internal/config"
	"github.com/opencalico/calicoctl/resources"
)

// plugin is one invocation.
type plugin struct {
	o    Options
	args *Args
	conf *NetConf
	log  *slog.Logger

	stdin []byte // the network config as received

	ds      datastore.Interface
	closeDS func()
	node    string
}

func (p *plugin) close() {
	if p.closeDS != nil {
		p.closeDS()
	}
}

func (p *plugin) run(ctx context.Context) (*types100.Result, error) {
	if p.args.Command == CmdGC {
		return nil, nil // nothing is cached on the host: there is nothing to collect
	}
	if err := p.connect(ctx); err != nil {
		if p.args.Command == CmdStatus {
			return nil, &types.Error{Code: types.ErrPluginNotAvailable, Msg: "datastore not reachable", Details: err.Error()}
		}
		return nil, err
	}
	if p.args.Command == CmdStatus {
		if _, err := p.ds.List(ctx, datastore.ListOptions{Kind: "IPPool", Limit: 1}); err != nil {
			return nil, &types.Error{Code: types.ErrPluginNotAvailable, Msg: "datastore not usable", Details: err.Error()}
		}
		return nil, nil
	}
	node, err := p.conf.NodenameFrom(p.o.FS)
	if err != nil {
		return nil, err
	}
	p.node = node
	p.log = p.log.With("node", node)
	switch {
	case p.o.Plugin == PluginIPAM && p.args.Command == CmdAdd:
		pod, err := p.podInfo(ctx)
		if err != nil {
			return nil, err
		}
		res, _, err := p.ipamAdd(ctx, pod)
		return res, err
	case p.o.Plugin == PluginIPAM && p.args.Command == CmdDel:
		return nil, p.ipamDel(ctx)
	case p.o.Plugin == PluginIPAM:
		return nil, nil // CHECK: allocations are verified by the calico plugin's CHECK
	case p.args.Command == CmdAdd:
		return p.add(ctx)
	case p.args.Command == CmdDel:
		return nil, p.del(ctx)
	default:
		return nil, p.check(ctx)
	}
}

// connect opens the datastore from the config's fields, falling back to the
// environment (DATASTORE_TYPE, ETCD_ENDPOINTS, KUBECONFIG ...) as upstream does.
func (p *plugin) connect(ctx context.Context) error {
	if p.o.Datastore != nil {
		p.ds = p.o.Datastore
		return nil
	}
	ds, err := client.Connect(ctx, p.spec(), p.lookupEnv)
	if err != nil {
		return fmt.Errorf("connecting to the datastore: %w", err)
	}
	p.ds, p.closeDS = ds, func() { _ = ds.Close() }
	return nil
}

func (p *plugin) lookupEnv(k string) (string, bool) {
	v := p.o.Env(k)
	return v, v != ""
}

// spec turns the datastore fields into a client configuration.
func (p *plugin) spec() config.Spec {
	c, env := p.conf, p.o.Env
	first := func(vals ...string) string {
		for _, v := range vals {
			if v != "" {
				return v
			}
		}
		return ""
	}
	return config.Spec{
		DatastoreType:    first(c.DatastoreType, env("DATASTORE_TYPE"), env("CALICO_DATASTORE_TYPE"), config.DatastoreEtcdV3),
		EtcdEndpoints:    first(c.EtcdEndpoints, env("ETCD_ENDPOINTS"), env("CALICO_ETCD_ENDPOINTS")),
		EtcdDiscoverySrv: first(c.EtcdDiscoverySrv, env("ETCD_DISCOVERY_SRV")),
		EtcdUsername:     first(c.EtcdUsername, env("ETCD_USERNAME")),
		EtcdPassword:     first(c.EtcdPassword, env("ETCD_PASSWORD")),
		EtcdKeyFile:      first(c.EtcdKeyFile, env("ETCD_KEY_FILE")),
		EtcdCertFile:     first(c.EtcdCertFile, env("ETCD_CERT_FILE")),
		EtcdCACertFile:   first(c.EtcdCACertFile, env("ETCD_CA_CERT_FILE")),
		Kubeconfig:       first(c.Kubernetes.Kubeconfig, env("KUBECONFIG")),
		K8sAPIEndpoint:   first(c.Kubernetes.K8sAPIRoot, env("K8S_API_ENDPOINT")),
		CalicoAPIGroup:   c.CalicoAPIGroup,
	}
}

// podInfo fetches the pod and its namespace when this is a Kubernetes pod and
// an API server is configured; nil otherwise.
func (p *plugin) podInfo(ctx context.Context) (*PodInfo, error) {
	if !p.args.IsK8s() {
		return nil, nil
	}
	src := p.o.Pods
	if src == nil {
		var err error
		if src, err = podSourceFor(ctx, p.ds, p.spec(), p.lookupEnv); err != nil {
			return nil, err
		}
	}
	if src == nil {
		return nil, nil
	}
	info, err := src.PodInfo(ctx, p.args.K8s.Namespace, p.args.K8s.Name)
	if err != nil {
		return nil, fmt.Errorf("reading pod %s/%s: %w", p.args.K8s.Namespace, p.args.K8s.Name, err)
	}
	return info, nil
}

// add wires the container: IPAM, veth, routes, WorkloadEndpoint. A failure
// after addresses were assigned releases them again.
func (p *plugin) add(ctx context.Context) (*types100.Result, error) {
	if p.args.Netns == "" {
		return nil, &EnvError{Var: "CNI_NETNS", Reason: "is not set"}
	}
	pod, err := p.podInfo(ctx)
	if err != nil {
		return nil, err
	}
	mtu, err := p.conf.MTUFrom(p.o.FS, p.o.MTUFile)
	if err != nil {
		return nil, err
	}
	var res *types100.Result
	var owned bool // IPs came from calico-ipam under our handle
	if p.conf.IPAM.Type == IPAMCalico {
		res, owned, err = p.ipamAdd(ctx, pod)
	} else {
		res, err = p.delegateIPAM(ctx, CmdAdd)
		owned = true
	}
	if err != nil {
		return nil, err
	}
	undoIPAM := func() {
		if !owned {
			return
		}
		uctx := context.WithoutCancel(ctx)
		var uerr error
		if p.conf.IPAM.Type == IPAMCalico {
			uerr = p.ipamDel(uctx)
		} else {
			_, uerr = p.delegateIPAM(uctx, CmdDel)
		}
		if uerr != nil {
			p.log.Warn("releasing addresses after a failed ADD", "err", uerr)
		}
	}
	ips := make([]netip.Prefix, 0, len(res.IPs))
	for _, ipc := range res.IPs {
		a, _ := netip.AddrFromSlice(ipc.Address.IP)
		a = a.Unmap()
		ips = append(ips, netip.PrefixFrom(a, a.BitLen()))
	}
	if len(ips) == 0 {
		undoIPAM()
		return nil, errors.New("IPAM returned no addresses")
	}
	ep := Endpoint{
		HostIf: VethName(InterfacePrefix(p.o.Env), p.args), ContainerIf: p.args.IfName,
		Netns: p.args.Netns, MTU: mtu, NumQueues: p.conf.NumQueues, IPs: ips,
	}
	if pod != nil {
		if ep.ContainerMAC, err = hwAddrFrom(pod.Pod.Annotations); err != nil {
			undoIPAM()
			return nil, err
		}
	}
	dp := p.dataplane()
	mac, err := dp.Add(ctx, ep)
	if err != nil {
		undoIPAM()
		return nil, fmt.Errorf("wiring %s: %w", ep.HostIf, err)
	}
	p.log.Info("wired container", "hostIf", ep.HostIf, "ips", ips, "mtu", mtu)
	wep, err := p.buildWEP(pod, ep.HostIf, mac, ips)
	if err == nil {
		err = p.writeWEP(ctx, wep)
	}
	if err != nil {
		if derr := dp.Del(context.WithoutCancel(ctx), ep.HostIf, ep.Netns, ep.ContainerIf); derr != nil {
			p.log.Warn("removing veth after a failed ADD", "err", derr)
		}
		undoIPAM()
		return nil, err
	}
	out := newResult()
	out.Interfaces = []*types100.Interface{
		{Name: ep.HostIf, Mac: HostMAC.String()},
		{Name: ep.ContainerIf, Mac: mac, Sandbox: ep.Netns},
	}
	for _, ipc := range res.IPs {
		c := *ipc
		c.Interface = types100.Int(1)
		c.Address = net.IPNet{IP: ipc.Address.IP, Mask: net.CIDRMask(bitsOf(ipc.Address.IP), bitsOf(ipc.Address.IP))}
		out.IPs = append(out.IPs, &c)
	}
	out.DNS = res.DNS
	return out, nil
}

func bitsOf(ip net.IP) int {
	if ip.To4() != nil {
		return 32
	}
	return 128
}

func (p *plugin) dataplane() Dataplane {
	if p.o.Dataplane != nil {
		return p.o.Dataplane
	}
	return defaultDataplane()
}

// del undoes add. Every step tolerates what is already gone, so DEL may be
// repeated; the WEP is only deleted when it still belongs to this container.
func (p *plugin) del(ctx context.Context) error {
	hostIf := VethName(InterfacePrefix(p.o.Env), p.args)
	var errs []error
	if err := p.dataplane().Del(ctx, hostIf, p.args.Netns, p.args.IfName); err != nil {
		errs = append(errs, fmt.Errorf("removing %s: %w", hostIf, err))
	}
	if p.conf.IPAM.Type == IPAMCalico {
		if err := p.ipamDel(ctx); err != nil {
			errs = append(errs, err)
		}
	} else if _, err := p.delegateIPAM(ctx, CmdDel); err != nil {
		errs = append(errs, err)
	}
	if err := p.deleteWEP(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// check verifies the interfaces and addresses of prevResult.
func (p *plugin) check(ctx context.Context) error {
	if ok, _ := version.GreaterThanOrEqualTo(p.conf.CNIVersion, "0.4.0"); !ok {
		return &types.Error{Code: types.ErrIncompatibleCNIVersion, Msg: "CHECK needs cniVersion 0.4.0 or later"}
	}
	if p.conf.RawPrevResult == nil {
		return &types.Error{Code: types.ErrInvalidNetworkConfig, Msg: "CHECK needs prevResult in the network config"}
	}
	pc := &types.PluginConf{CNIVersion: p.conf.CNIVersion, RawPrevResult: p.conf.RawPrevResult}
	if err := version.ParsePrevResult(pc); err != nil {
		return &types.Error{Code: types.ErrDecodingFailure, Msg: "decoding prevResult", Details: err.Error()}
	}
	prev, err := types100.NewResultFromResult(pc.PrevResult)
	if err != nil {
		return &types.Error{Code: types.ErrDecodingFailure, Msg: "converting prevResult", Details: err.Error()}
	}
	ep := Endpoint{HostIf: VethName(InterfacePrefix(p.o.Env), p.args), ContainerIf: p.args.IfName, Netns: p.args.Netns}
	for _, ipc := range prev.IPs {
		a, _ := netip.AddrFromSlice(ipc.Address.IP)
		a = a.Unmap()
		ep.IPs = append(ep.IPs, netip.PrefixFrom(a, a.BitLen()))
	}
	if err := p.dataplane().Check(ctx, ep); err != nil {
		return err
	}
	name, err := WEPIdentifiers(p.node, p.args).Name()
	if err != nil {
		return err
	}
	if _, err := p.ds.Get(ctx, resources.Key{Kind: "WorkloadEndpoint", Namespace: p.args.Namespace(), Name: name}); err != nil {
		return fmt.Errorf("workload endpoint %s: %w", name, err)
	}
	return nil
}

// hwAddrFrom reads the cni.projectcalico.org/hwAddr annotation.
func hwAddrFrom(ann map[string]string) (net.HardwareAddr, error) {
	s := strings.TrimSpace(ann[AnnotationHWAddr])
	if s == "" {
		return nil, nil
	}
	mac, err := net.ParseMAC(s)
	if err != nil {
		return nil, fmt.Errorf("annotation %s: %w", AnnotationHWAddr, err)
	}
	return mac, nil
}
