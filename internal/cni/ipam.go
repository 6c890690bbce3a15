package cni

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/ipamstore"
)

// allocator opens the IPAM allocator on the invocation's datastore. There is
// no host-wide lock: every block write is a compare-and-swap.
func (p *plugin) allocator() (*ipam.Allocator, ipam.PoolSource, error) {
	store, err := ipamstore.Open(p.ds)
	if err != nil {
		return nil, nil, err
	}
	pools := ipam.PoolsFromDatastore(p.ds)
	return ipam.New(store, pools, ipam.WithLogger(p.log)), pools, nil
}

// attrs are the allocation's owner attributes.
func (p *plugin) attrs() map[string]string {
	a := map[string]string{
		ipam.AttrNode:      p.node,
		ipam.AttrTimestamp: p.o.Now().UTC().Format(time.RFC3339),
	}
	if p.args.IsK8s() {
		a[ipam.AttrPod] = p.args.K8s.Name
		a[ipam.AttrNamespace] = p.args.K8s.Namespace
	}
	return a
}

// ipamAdd assigns the container's addresses (calico-ipam). owned says the
// addresses are recorded under our handle (false for ipAddrsNoIpam). A
// repeated ADD for the same container returns the addresses it already has.
func (p *plugin) ipamAdd(ctx context.Context, pod *PodInfo) (*types100.Result, bool, error) {
	ann := pod.annotations()
	fixed, hasFixed, err := jsonList(ann, AnnotationIPAddrs)
	if err != nil {
		return nil, false, err
	}
	noIPAM, hasNoIPAM, err := jsonList(ann, AnnotationIPAddrsNoIPAM)
	if err != nil {
		return nil, false, err
	}
	if hasFixed && hasNoIPAM {
		return nil, false, fmt.Errorf("annotations %s and %s may not be used together", AnnotationIPAddrs, AnnotationIPAddrsNoIPAM)
	}
	if hasNoIPAM {
		if !p.conf.FeatureControl.IPAddrsNoIPAM {
			return nil, false, fmt.Errorf("annotation %s needs feature_control.ip_addrs_no_ipam in the network config", AnnotationIPAddrsNoIPAM)
		}
		addrs, err := parseAddrs(AnnotationIPAddrsNoIPAM, noIPAM)
		if err != nil {
			return nil, false, err
		}
		p.log.Info("using addresses without IPAM", "ips", addrs)
		return resultOf(addrs), false, nil
	}
	alloc, pools, err := p.allocator()
	if err != nil {
		return nil, false, err
	}
	handle := HandleID(p.conf.Name, p.args.ContainerID)
	have, err := alloc.IPsByHandle(ctx, handle)
	switch {
	case err == nil && len(have) > 0:
		p.log.Info("container already has addresses", "handle", handle, "ips", have)
		return resultOf(have), true, nil
	case err != nil && !errors.Is(err, datastore.ErrNotFound):
		// Not knowing what the handle holds, assigning more could leak.
		return nil, false, fmt.Errorf("reading IPAM handle %s: %w", handle, err)
	}
	if hasFixed {
		addrs, err := parseAddrs(AnnotationIPAddrs, fixed)
		if err != nil {
			return nil, false, err
		}
		for _, a := range addrs {
			err := alloc.AssignIP(ctx, ipam.AssignIPArgs{IP: a, HandleID: handle, Attrs: p.attrs(), Hostname: p.node, IntendedUse: ipam.UseWorkload})
			if err != nil {
				p.releaseHandle(context.WithoutCancel(ctx), alloc, handle)
				return nil, false, fmt.Errorf("assigning %s from annotation %s: %w", a, AnnotationIPAddrs, err)
			}
		}
		p.log.Info("assigned requested addresses", "handle", handle, "ips", addrs)
		return resultOf(addrs), true, nil
	}
	args := ipam.AutoAssignArgs{HandleID: handle, Attrs: p.attrs(), Hostname: p.node, IntendedUse: ipam.UseWorkload}
	if p.conf.AssignIPv4() {
		args.Num4 = 1
	}
	if p.conf.AssignIPv6() {
		args.Num6 = 1
	}
	if args.IPv4Pools, err = p.poolsFor(ctx, pools, pod, AnnotationIPv4Pools, p.conf.IPAM.IPv4Pools, 4); err != nil {
		return nil, false, err
	}
	if args.IPv6Pools, err = p.poolsFor(ctx, pools, pod, AnnotationIPv6Pools, p.conf.IPAM.IPv6Pools, 6); err != nil {
		return nil, false, err
	}
	got, err := alloc.AutoAssign(ctx, args)
	if err != nil {
		return nil, false, fmt.Errorf("assigning addresses: %w", err)
	}
	var addrs []netip.Addr
	for _, ip := range append(got.IPv4, got.IPv6...) {
		addrs = append(addrs, ip.Addr())
	}
	p.log.Info("assigned addresses", "handle", handle, "ips", addrs)
	return resultOf(addrs), true, nil
}

// poolsFor picks the requested pools of one family: pod annotation, then
// namespace annotation, then the config; none means every matching pool.
// Entries are pool names or CIDRs.
func (p *plugin) poolsFor(ctx context.Context, src ipam.PoolSource, pod *PodInfo, key string, conf []string, fam int) ([]netip.Prefix, error) {
	names, ok, err := jsonList(pod.annotations(), key)
	if err != nil {
		return nil, err
	}
	from := "pod annotation " + key
	if !ok {
		if names, ok, err = jsonList(pod.nsAnnotations(), key); err != nil {
			return nil, err
		}
		from = "namespace annotation " + key
	}
	if !ok {
		names, from = conf, "network config"
	}
	if len(names) == 0 {
		return nil, nil
	}
	all, err := src.Pools(ctx)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, n := range names {
		i := slices.IndexFunc(all, func(pl ipam.Pool) bool { return pl.Name == n || pl.CIDR.String() == n })
		if i < 0 {
			if pfx, perr := netip.ParsePrefix(n); perr == nil {
				out = append(out, pfx.Masked()) // the allocator reports a missing pool
				continue
			}
			return nil, fmt.Errorf("IPv%d pool %q (from %s) does not exist", fam, n, from)
		}
		if fam4 := all[i].CIDR.Addr().Is4(); fam4 != (fam == 4) {
			return nil, fmt.Errorf("pool %q (from %s) is not an IPv%d pool", n, from, fam)
		}
		out = append(out, all[i].CIDR)
	}
	return out, nil
}

// ipamDel releases the container's handle, then the legacy pod handle.
// Nothing to release is success.
func (p *plugin) ipamDel(ctx context.Context) error {
	alloc, _, err := p.allocator()
	if err != nil {
		return err
	}
	handles := []string{HandleID(p.conf.Name, p.args.ContainerID)}
	if p.args.IsK8s() {
		handles = append(handles, LegacyHandleID(p.args))
	}
	var errs []error
	for _, h := range handles {
		if err := alloc.ReleaseByHandle(ctx, h); err != nil && !errors.Is(err, datastore.ErrNotFound) {
			errs = append(errs, err)
		} else if err == nil {
			p.log.Info("released addresses", "handle", h)
		}
	}
	return errors.Join(errs...)
}

func (p *plugin) releaseHandle(ctx context.Context, alloc *ipam.Allocator, handle string) {
	if err := alloc.ReleaseByHandle(ctx, handle); err != nil && !errors.Is(err, datastore.ErrNotFound) {
		p.log.Warn("releasing partial assignment", "handle", handle, "err", err)
	}
}

// parseAddrs reads an annotation's address list: at most one per family.
func parseAddrs(key string, vals []string) ([]netip.Addr, error) {
	var out []netip.Addr
	var n4, n6 int
	for _, v := range vals {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("annotation %s: %q is not an IP address", key, v)
		}
		a = a.Unmap()
		if a.Is4() {
			n4++
		} else {
			n6++
		}
		out = append(out, a)
	}
	if n4 > 1 || n6 > 1 {
		return nil, fmt.Errorf("annotation %s: at most one IPv4 and one IPv6 address", key)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("annotation %s: no addresses", key)
	}
	return out, nil
}

// resultOf is an IPAM result: each address as a /32 or /128.
func resultOf(addrs []netip.Addr) *types100.Result {
	r := newResult()
	for _, a := range addrs {
		r.IPs = append(r.IPs, &types100.IPConfig{Address: net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}})
	}
	return r
}
