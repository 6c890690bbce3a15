package startup

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/node/config"
	"github.com/opencalico/calicoctl/resources"
)

// equalObjects compares two resources by their JSON form.
func equalObjects(a, b resources.Resource) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && reflect.DeepEqual(ja, jb)
}

// Fallback IPv4 pool choices when CALICO_IPV4POOL_CIDR is unset: upstream's
// 192.168.0.0/16, else the first 172.16-31.0.0/16 not overlapping a host
// address.
var defaultIPv4Candidates = func() []netip.Prefix {
	out := []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")}
	for i := 16; i <= 31; i++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16))
	}
	return out
}()

// ensureDefaultPools creates default-ipv4-ippool / default-ipv6-ippool when
// no pool of that family exists (and NO_DEFAULT_POOLS is not set).
func ensureDefaultPools(ctx context.Context, c *client.Client, opts Options, res *Result, log *slog.Logger) error {
	cfg := opts.Config
	if cfg.NoDefaultPools {
		log.Info("NO_DEFAULT_POOLS=true: not creating default pools")
		return nil
	}
	list, err := c.List(ctx, datastore.ListOptions{Kind: "IPPool"})
	if err != nil {
		return fmt.Errorf("listing IP pools: %w", err)
	}
	have := map[bool]bool{}
	for _, r := range list.Items {
		p, err := netip.ParsePrefix(r.(*resources.IPPool).Spec.CIDR)
		if err == nil {
			have[p.Addr().Is4()] = true
		}
	}
	if !have[true] && !cfg.IPv4Pool.Disabled {
		cidr := cfg.IPv4Pool.CIDR
		if !cidr.IsValid() {
			cidr = pickIPv4Pool(hostPrefixes(opts))
		}
		if err := createPool(ctx, c, config.DefaultIPv4PoolName, cidr, cfg.IPv4Pool, res, log); err != nil {
			return err
		}
	}
	// IPv6: only when this node has IPv6 and the pool is not disabled.
	if !have[false] && !cfg.IPv6Pool.Disabled && res.IPv6.IsValid() {
		cidr := cfg.IPv6Pool.CIDR
		if !cidr.IsValid() {
			cidr = randomULA()
		}
		if err := createPool(ctx, c, config.DefaultIPv6PoolName, cidr, cfg.IPv6Pool, res, log); err != nil {
			return err
		}
	}
	return nil
}

func hostPrefixes(opts Options) []netip.Prefix {
	if opts.Host == nil {
		return nil
	}
	ifs, err := opts.Host.Interfaces()
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, i := range ifs {
		out = append(out, i.Addrs...)
	}
	return out
}

func pickIPv4Pool(host []netip.Prefix) netip.Prefix {
	for _, cand := range defaultIPv4Candidates {
		clash := false
		for _, h := range host {
			if h.Addr().Is4() && cand.Overlaps(h.Masked()) {
				clash = true
				break
			}
		}
		if !clash {
			return cand
		}
	}
	return defaultIPv4Candidates[0]
}

// randomULA is a random fdXX:XXXX:XXXX::/48 as upstream picks.
func randomULA() netip.Prefix {
	var b [16]byte
	b[0] = 0xfd
	_, _ = rand.Read(b[1:6])
	return netip.PrefixFrom(netip.AddrFrom16(b), 48)
}

func createPool(ctx context.Context, c *client.Client, name string, cidr netip.Prefix, pc config.PoolConfig, res *Result, log *slog.Logger) error {
	p := &resources.IPPool{}
	resources.SetTypeMeta(p)
	p.Name = name
	p.Spec = resources.IPPoolSpec{
		CIDR:             cidr.String(),
		IPIPMode:         pc.IPIPMode,
		VXLANMode:        pc.VXLANMode,
		NATOutgoing:      pc.NATOutgoing,
		BlockSize:        pc.BlockSize,
		NodeSelector:     pc.NodeSelector,
		DisableBGPExport: pc.DisableBGPExport,
	}
	_, err := c.Create(ctx, p)
	if errors.Is(err, datastore.ErrExists) {
		return nil // another node made it first
	}
	if err != nil {
		return fmt.Errorf("creating the default IP pool %s (%s): %w", name, cidr, err)
	}
	res.Pools = append(res.Pools, name)
	log.Info("created the default IP pool", "name", name, "cidr", cidr, "ipipMode", pc.IPIPMode, "vxlanMode", pc.VXLANMode)
	return nil
}

// ensureGlobalConfig creates the FelixConfiguration and BGPConfiguration
// objects calico-node creates, when missing; existing ones are not touched.
func ensureGlobalConfig(ctx context.Context, c *client.Client, opts Options, log *slog.Logger) error {
	fc := resources.NewFelixConfiguration("default")
	fc.Spec.ReportingInterval = &metav1.Duration{Duration: 0 * time.Second}
	fc.Spec.LogSeverityScreen = "Info"
	objs := []resources.Resource{fc}
	if !opts.Kubernetes {
		nfc := resources.NewFelixConfiguration("node." + opts.NodeName)
		nfc.Spec.DefaultEndpointToHostAction = "Return"
		objs = append(objs, nfc)
	}
	bc := &resources.BGPConfiguration{}
	resources.SetTypeMeta(bc)
	bc.Name = "default"
	objs = append(objs, bc)
	for _, o := range objs {
		_, err := c.Create(ctx, o)
		switch {
		case err == nil:
			log.Info("created default configuration", "kind", resources.KindOf(o).Kind, "name", o.GetName())
		case errors.Is(err, datastore.ErrExists):
		default:
			return fmt.Errorf("creating %s %s: %w", resources.KindOf(o).Kind, o.GetName(), err)
		}
	}
	return nil
}
