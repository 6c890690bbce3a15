// Package startup is what calico-node does before its dataplane runs:
// register (or refresh) this host's Node resource with its addresses,
// create the cluster-wide defaults (ClusterInformation, default pools,
// FelixConfiguration, BGPConfiguration) when they are missing, and say what
// it detected and why.
package startup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/node/autodetect"
	"github.com/opencalico/calicoctl/node/config"
	"github.com/opencalico/calicoctl/resources"
)

// Options is the input of Run.
type Options struct {
	Config   *config.Config
	NodeName string
	// Host is where addresses are detected (autodetect.System{} in
	// production).
	Host autodetect.Host
	// K8sInternalIP serves the kubernetes-internal-ip method (nil outside
	// Kubernetes).
	K8sInternalIP autodetect.K8sInternalIP
	// Kubernetes is true on the Kubernetes datastore: Nodes are created by
	// Kubernetes, never by us.
	Kubernetes bool
	// ClusterType and CalicoVersion go into ClusterInformation (on
	// Kubernetes, "kdd" is added to ClusterType as calico-node does).
	ClusterType   string
	CalicoVersion string
	Logger        *slog.Logger
}

// Result is what startup settled on.
type Result struct {
	Node       *resources.Node
	IPv4, IPv6 netip.Prefix // zero when the family is off
	Created    bool         // the Node was created by this run
	Pools      []string     // default pools created by this run
}

// maxConflictRetries bounds read-modify-write retries of the Node.
const maxConflictRetries = 10

// Run registers the node and the defaults. It is safe to run again on every
// agent start: it changes only what differs.
func Run(ctx context.Context, c *client.Client, opts Options) (*Result, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.Config == nil || opts.NodeName == "" {
		return nil, errors.New("startup: a config and a node name are required")
	}
	clusterType := opts.ClusterType
	if opts.Kubernetes {
		clusterType = client.KDDClusterType(clusterType)
	}
	if err := c.EnsureInitialized(ctx, client.InitOptions{CalicoVersion: opts.CalicoVersion, ClusterType: clusterType}); err != nil {
		return nil, fmt.Errorf("initializing the cluster: %w", err)
	}
	res := &Result{}
	if err := registerNode(ctx, c, opts, res, log); err != nil {
		return nil, err
	}
	if err := ensureDefaultPools(ctx, c, opts, res, log); err != nil {
		return nil, err
	}
	if err := ensureGlobalConfig(ctx, c, opts, log); err != nil {
		return nil, err
	}
	return res, nil
}

func nodeKey(name string) resources.Key { return resources.Key{Kind: "Node", Name: name} }

// registerNode creates or refreshes the Node resource with a compare-and-swap
// read-modify-write (a concurrent writer's change is never lost).
func registerNode(ctx context.Context, c *client.Client, opts Options, res *Result, log *slog.Logger) error {
	for attempt := 0; ; attempt++ {
		var node *resources.Node
		existing, err := c.Get(ctx, nodeKey(opts.NodeName))
		switch {
		case err == nil:
			node = existing.(*resources.Node)
		case errors.Is(err, datastore.ErrNotFound):
			if opts.Kubernetes {
				return fmt.Errorf("node %q does not exist in Kubernetes: set NODENAME to the Kubernetes node name", opts.NodeName)
			}
			node = &resources.Node{}
			resources.SetTypeMeta(node)
			node.Name = opts.NodeName
		default:
			return fmt.Errorf("reading Node %q: %w", opts.NodeName, err)
		}
		before := resources.DeepCopy(node)
		if err := configureNode(ctx, c, node, opts, res, log); err != nil {
			return err
		}
		if node.ResourceVersion != "" && equalObjects(before, node) {
			res.Node = node
			log.Info("node registration unchanged", "node", opts.NodeName)
			return nil
		}
		var saved resources.Resource
		if node.ResourceVersion == "" {
			saved, err = c.Create(ctx, node)
			res.Created = err == nil
		} else {
			saved, err = c.Update(ctx, node)
		}
		if err == nil {
			res.Node = saved.(*resources.Node)
			log.Info("node registered", "node", opts.NodeName, "ipv4", res.IPv4, "ipv6", res.IPv6, "created", res.Created)
			return nil
		}
		if (errors.Is(err, datastore.ErrConflict) || errors.Is(err, datastore.ErrExists)) && attempt < maxConflictRetries {
			continue
		}
		return fmt.Errorf("writing Node %q: %w", opts.NodeName, err)
	}
}

// configureNode sets the addresses, AS and orchestrator reference.
func configureNode(ctx context.Context, c *client.Client, node *resources.Node, opts Options, res *Result, log *slog.Logger) error {
	cfg := opts.Config
	var cur4, cur6 string
	if node.Spec.BGP != nil {
		cur4, cur6 = node.Spec.BGP.IPv4Address, node.Spec.BGP.IPv6Address
	}
	v4, err := chooseAddress(ctx, opts, cfg.IPv4, cfg.IPv4Method, 4, cur4, true, log)
	if err != nil {
		return err
	}
	v6, err := chooseAddress(ctx, opts, cfg.IPv6, cfg.IPv6Method, 6, cur6, false, log)
	if err != nil {
		return err
	}
	if !v4.IsValid() && !v6.IsValid() && cfg.Backend != config.BackendNone {
		return fmt.Errorf("node %q has no IPv4 or IPv6 address: set IP or IP6 (or IP=autodetect with a working IP_AUTODETECTION_METHOD)", opts.NodeName)
	}
	if !cfg.DisableNodeIPCheck {
		if err := checkDuplicateIP(ctx, c, opts.NodeName, v4, v6); err != nil {
			return err
		}
	}
	res.IPv4, res.IPv6 = v4, v6
	if cfg.Backend == config.BackendNone {
		// Policy-only: no BGP data on the Node.
		node.Spec.BGP = nil
	} else {
		if node.Spec.BGP == nil {
			node.Spec.BGP = &resources.NodeBGPSpec{}
		}
		node.Spec.BGP.IPv4Address = prefixText(v4)
		node.Spec.BGP.IPv6Address = prefixText(v6)
		if cfg.AS != "" {
			as, err := resources.ParseASNumber(cfg.AS)
			if err != nil {
				return fmt.Errorf("AS=%q: %w", cfg.AS, err)
			}
			node.Spec.BGP.ASNumber = &as
		}
	}
	node.Spec.Addresses = mergeAddresses(node.Spec.Addresses, v4, v6)
	if cfg.K8sNodeRef != "" {
		ref := resources.OrchRef{NodeName: cfg.K8sNodeRef, Orchestrator: "k8s"}
		if !slices.Contains(node.Spec.OrchRefs, ref) {
			node.Spec.OrchRefs = append(node.Spec.OrchRefs, ref)
		}
	}
	return nil
}

func prefixText(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

// mergeAddresses replaces the CalicoNodeIP entries with the current
// addresses and keeps the others (InternalIP etc. from Kubernetes).
func mergeAddresses(in []resources.NodeAddress, v4, v6 netip.Prefix) []resources.NodeAddress {
	var out []resources.NodeAddress
	for _, a := range in {
		if a.Type != "CalicoNodeIP" {
			out = append(out, a)
		}
	}
	for _, p := range []netip.Prefix{v4, v6} {
		if p.IsValid() {
			out = append(out, resources.NodeAddress{Address: p.String(), Type: "CalicoNodeIP"})
		}
	}
	return out
}

// chooseAddress applies IP / IP6: explicit, none, autodetect, or unset
// (keep the Node's address; autodetect when it has none and autoIfUnset).
func chooseAddress(ctx context.Context, opts Options, a config.Address, m config.Method, family int, current string, autoIfUnset bool, log *slog.Logger) (netip.Prefix, error) {
	name := "IP"
	if family == 6 {
		name = "IP6"
	}
	switch a.Mode {
	case config.AddrNone:
		log.Info("address family disabled", "var", name)
		return netip.Prefix{}, nil
	case "explicit":
		p := a.Prefix
		if !a.HasMask && opts.Host != nil {
			// Look the prefix length up from the interface carrying it.
			if ifs, err := opts.Host.Interfaces(); err == nil {
				for _, i := range ifs {
					for _, ia := range i.Addrs {
						if ia.Addr() == p.Addr() {
							p = ia
						}
					}
				}
			}
		}
		log.Info("using configured address", "var", name, "address", p)
		return p, nil
	case config.AddrUnset:
		if current != "" {
			p, err := netip.ParsePrefix(current)
			if err == nil {
				log.Info("keeping the Node's address", "var", name, "address", p)
				return p, nil
			}
			log.Warn("ignoring unparsable address on the Node", "address", current)
		}
		if !autoIfUnset {
			return netip.Prefix{}, nil
		}
	}
	if opts.Host == nil {
		return netip.Prefix{}, fmt.Errorf("%s: autodetection needs a host to inspect", name)
	}
	r, err := autodetect.Detect(ctx, opts.Host, m, family, opts.K8sInternalIP)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("autodetecting the IPv%d address (%s_AUTODETECTION_METHOD=%s): %w", family, name, m, err)
	}
	log.Info("autodetected address", "var", name, "address", r.Addr, "how", r.Reason)
	return r.Addr, nil
}

// checkDuplicateIP refuses an address another Node already uses.
func checkDuplicateIP(ctx context.Context, c *client.Client, self string, v4, v6 netip.Prefix) error {
	if !v4.IsValid() && !v6.IsValid() {
		return nil
	}
	list, err := c.List(ctx, datastore.ListOptions{Kind: "Node"})
	if err != nil {
		return fmt.Errorf("listing Nodes for the duplicate address check: %w", err)
	}
	for _, r := range list.Items {
		n := r.(*resources.Node)
		if n.Name == self || n.Spec.BGP == nil {
			continue
		}
		for _, pair := range [][2]string{{prefixText(v4), n.Spec.BGP.IPv4Address}, {prefixText(v6), n.Spec.BGP.IPv6Address}} {
			if pair[0] != "" && pair[1] != "" && addrOf(pair[0]) == addrOf(pair[1]) {
				return fmt.Errorf("node %q already uses address %s (set DISABLE_NODE_IP_CHECK=true to allow it)", n.Name, addrOf(pair[0]))
			}
		}
	}
	return nil
}

func addrOf(s string) string {
	a, _, _ := strings.Cut(s, "/")
	return a
}
