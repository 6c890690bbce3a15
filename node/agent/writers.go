package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/vishvananda/netlink"

	"github.com/opencalico/calicoctl/node/bgp"
	"github.com/opencalico/calicoctl/node/nat"
	"github.com/opencalico/calicoctl/node/plan"
	"github.com/opencalico/calicoctl/node/routes"
	"github.com/opencalico/calicoctl/node/tunnel"
)

// The kernel writers: each converges one part of the kernel on its slice of
// the plan and computes no intent. Each is called from its own reconciler's
// goroutine only.

// routeWriter keeps the main table on the merged route sources.
type routeWriter struct {
	routes  *routes.Syncer
	ifindex map[string]int // workload device -> ifindex last seen
}

func (w *routeWriter) write(_ context.Context, in routeInput, full bool) error {
	w.routes.SetOwnedCIDRs(in.owned)
	if in.bgpReported {
		w.routes.SetHeldProtocols(nil)
	} else {
		w.routes.SetHeldProtocols([]int{bgp.RouteProtocol})
	}
	w.noticeWorkloadLinks(in.links)
	if err := w.routes.Apply(routes.Merge(in.sources)); err != nil {
		return fmt.Errorf("routes: %w", err)
	}
	if full {
		// Re-read the table: repairs routes others removed or changed.
		if err := w.routes.Resync(); err != nil {
			return fmt.Errorf("routes resync: %w", err)
		}
	}
	return nil
}

// noticeWorkloadLinks tells the route syncer about workload devices that
// appeared or were recreated since the last write.
func (w *routeWriter) noticeWorkloadLinks(links []string) {
	seen := make(map[string]bool, len(links))
	for _, name := range links {
		seen[name] = true
		idx := 0
		if l, err := netlink.LinkByName(name); err == nil {
			idx = l.Attrs().Index
		}
		if w.ifindex[name] != idx {
			w.ifindex[name] = idx
			w.routes.LinkChanged(name)
		}
	}
	for name := range w.ifindex {
		if !seen[name] {
			delete(w.ifindex, name)
		}
	}
}

// vxlanWriter ensures vxlan.calico and the remote VTEPs' FDB and neighbour
// entries.
type vxlanWriter struct {
	tun         *tunnel.Manager
	vteps       *tunnel.VTEPSyncer
	routes      *routes.Syncer
	linkChanged func()
	cfg         *tunnel.VXLANConfig // last ensured; nil = none
}

func (w *vxlanWriter) write(ctx context.Context, want plan.VXLANSet, full bool) error {
	if full {
		w.vteps.Resync()
	}
	if dev := want.Device; dev != nil && (w.cfg == nil || *w.cfg != *dev || full) {
		if err := w.tun.EnsureVXLAN(ctx, *dev); err != nil {
			return fmt.Errorf("vxlan device: %w", err)
		}
		cfg := *dev
		w.cfg = &cfg
		w.routes.LinkChanged(tunnel.VXLANDevice)
		w.linkChanged()
		w.vteps.Resync()
	}
	if err := w.vteps.Apply(want.FDB, want.Neighbors); err != nil {
		return fmt.Errorf("vxlan peers: %w", err)
	}
	return nil
}

// tunnelWriter ensures tunl0 and records the pod MTU for the CNI plugin.
type tunnelWriter struct {
	tun         *tunnel.Manager
	routes      *routes.Syncer
	linkChanged func()
	mtuFile     string
	log         *slog.Logger
	ipip        *tunnel.IPIPConfig // last ensured; nil = none
	podMTU      int                // last written to mtuFile
}

func (w *tunnelWriter) write(ctx context.Context, want plan.TunnelSet, full bool) error {
	w.writeMTU(want.MTUs.Pod)
	if want.IPIP == nil {
		return nil // an unused device is left alone
	}
	if w.ipip != nil && *w.ipip == *want.IPIP && !full {
		return nil // unchanged: leave tunl0 and the routes through it alone
	}
	if err := w.tun.EnsureIPIP(ctx, *want.IPIP); err != nil {
		return fmt.Errorf("ipip device: %w", err)
	}
	cfg := *want.IPIP
	w.ipip = &cfg
	w.routes.LinkChanged(tunnel.IPIPDevice)
	w.linkChanged()
	return nil
}

// writeMTU records the pod MTU for the CNI plugin when it changes. A file
// that cannot be written is logged, not retried: the CNI plugin then uses
// its configured MTU.
func (w *tunnelWriter) writeMTU(mtu int) {
	path := w.mtuFile
	if path == "" {
		path = "/var/lib/calico/mtu"
	}
	if path == "-" || mtu == w.podMTU {
		return
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		w.log.Warn("cannot write the pod MTU file", "path", path, "error", err)
		return
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(mtu)), 0o644); err != nil {
		w.log.Warn("cannot write the pod MTU file", "path", path, "error", err)
		return
	}
	w.podMTU = mtu
	w.log.Info("pod MTU", "mtu", mtu, "file", path)
}

// natWriter keeps our nftables table on the NAT sets.
type natWriter struct{ nat *nat.Syncer }

func (w *natWriter) write(ctx context.Context, want nat.Desired, full bool) error {
	if full {
		w.nat.ForceResync()
	}
	if err := w.nat.Apply(ctx, want); err != nil {
		return fmt.Errorf("nat: %w", err)
	}
	return nil
}
