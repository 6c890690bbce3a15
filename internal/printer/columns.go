package printer

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/opencalico/calicoctl/resources"
)

// This file holds the table layout of every kind: which headings -o ps and
// -o wide show and how each cell is computed. Each cell function is pure.

// columnSets maps a kind name to its table layout.
var columnSets = map[string]*ColumnSet{
	"BGPConfiguration": newColumnSet(
		[]string{"NAME", "LOGSEVERITY", "MESHENABLED", "ASNUMBER"}, nil,
		col("LOGSEVERITY", func(r *resources.BGPConfiguration, _ *Context) string { return r.Spec.LogSeverityScreen }),
		col("MESHENABLED", func(r *resources.BGPConfiguration, _ *Context) string { return orDash(r.Spec.NodeToNodeMeshEnabled) }),
		col("ASNUMBER", func(r *resources.BGPConfiguration, _ *Context) string { return orDash(r.Spec.ASNumber) }),
	),
	"BGPFilter": newColumnSet(
		[]string{"NAME", "NUMEXPORTV4", "NUMIMPORTV4", "NUMEXPORTV6", "NUMIMPORTV6"}, nil,
		col("NUMEXPORTV4", func(r *resources.BGPFilter, _ *Context) string { return strconv.Itoa(len(r.Spec.ExportV4)) }),
		col("NUMIMPORTV4", func(r *resources.BGPFilter, _ *Context) string { return strconv.Itoa(len(r.Spec.ImportV4)) }),
		col("NUMEXPORTV6", func(r *resources.BGPFilter, _ *Context) string { return strconv.Itoa(len(r.Spec.ExportV6)) }),
		col("NUMIMPORTV6", func(r *resources.BGPFilter, _ *Context) string { return strconv.Itoa(len(r.Spec.ImportV6)) }),
	),
	"BGPPeer": newColumnSet(
		[]string{"NAME", "PEERIP", "NODE", "ASN"}, nil,
		col("PEERIP", func(r *resources.BGPPeer, _ *Context) string { return r.Spec.PeerIP }),
		col("NODE", bgpPeerNode),
		col("ASN", func(r *resources.BGPPeer, _ *Context) string { return r.Spec.ASNumber.String() }),
	),
	"CalicoNodeStatus": newColumnSet(
		[]string{"NAME", "NODE"}, []string{"NAME", "NODE", "CLASSES"},
		col("NODE", func(r *resources.CalicoNodeStatus, _ *Context) string { return r.Spec.Node }),
		col("CLASSES", func(r *resources.CalicoNodeStatus, _ *Context) string { return strings.Join(r.Spec.Classes, ",") }),
	),
	"ClusterInformation": newColumnSet(
		[]string{"NAME", "CLUSTERGUID", "CLUSTERTYPE", "CALICOVERSION", "DATASTOREREADY"}, nil,
		col("CLUSTERGUID", func(r *resources.ClusterInformation, _ *Context) string { return r.Spec.ClusterGUID }),
		col("CLUSTERTYPE", func(r *resources.ClusterInformation, _ *Context) string { return r.Spec.ClusterType }),
		col("CALICOVERSION", func(r *resources.ClusterInformation, _ *Context) string { return r.Spec.CalicoVersion }),
		col("DATASTOREREADY", func(r *resources.ClusterInformation, _ *Context) string { return ptrValue(r.Spec.DatastoreReady) }),
	),
	"FelixConfiguration":           newColumnSet([]string{"NAME"}, nil),
	"KubeControllersConfiguration": newColumnSet([]string{"NAME"}, nil),
	"GlobalNetworkPolicy": newColumnSet(
		[]string{"NAME", "TIER"}, []string{"NAME", "TIER", "ORDER", "SELECTOR"},
		col("TIER", func(r *resources.GlobalNetworkPolicy, _ *Context) string { return r.Spec.Tier }),
		col("ORDER", func(r *resources.GlobalNetworkPolicy, _ *Context) string { return orderString(r.Spec.Order) }),
		col("SELECTOR", func(r *resources.GlobalNetworkPolicy, _ *Context) string { return r.Spec.Selector }),
	),
	"NetworkPolicy": newColumnSet(
		[]string{"NAME", "TIER"}, []string{"NAME", "TIER", "ORDER", "SELECTOR"},
		namespaceColumn,
		col("TIER", func(r *resources.NetworkPolicy, _ *Context) string { return r.Spec.Tier }),
		col("ORDER", func(r *resources.NetworkPolicy, _ *Context) string { return orderString(r.Spec.Order) }),
		col("SELECTOR", func(r *resources.NetworkPolicy, _ *Context) string { return r.Spec.Selector }),
	),
	"GlobalNetworkSet": newColumnSet(
		[]string{"NAME"}, []string{"NAME", "NETS"},
		col("NETS", func(r *resources.GlobalNetworkSet, _ *Context) string { return netsString(r.Spec.Nets) }),
	),
	"NetworkSet": newColumnSet(
		[]string{"NAME"}, []string{"NAME", "NETS"},
		namespaceColumn,
		col("NETS", func(r *resources.NetworkSet, _ *Context) string { return netsString(r.Spec.Nets) }),
	),
	"HostEndpoint": newColumnSet(
		[]string{"NAME", "NODE"}, []string{"NAME", "NODE", "INTERFACE", "IPS", "PROFILES"},
		col("NODE", func(r *resources.HostEndpoint, _ *Context) string { return r.Spec.Node }),
		col("INTERFACE", func(r *resources.HostEndpoint, _ *Context) string { return r.Spec.InterfaceName }),
		col("IPS", func(r *resources.HostEndpoint, _ *Context) string { return strings.Join(r.Spec.ExpectedIPs, ",") }),
		col("PROFILES", func(r *resources.HostEndpoint, _ *Context) string { return strings.Join(r.Spec.Profiles, ",") }),
	),
	"IPPool": newColumnSet(
		[]string{"NAME", "CIDR", "SELECTOR"},
		[]string{"NAME", "CIDR", "NAT", "IPIPMODE", "VXLANMODE", "DISABLED", "DISABLEBGPEXPORT", "SELECTOR", "ASSIGNMENTMODE"},
		col("CIDR", func(r *resources.IPPool, _ *Context) string { return r.Spec.CIDR }),
		col("NAT", func(r *resources.IPPool, _ *Context) string { return strconv.FormatBool(r.Spec.NATOutgoing) }),
		col("IPIPMODE", func(r *resources.IPPool, _ *Context) string { return encapMode(r.Spec.IPIPMode) }),
		col("VXLANMODE", func(r *resources.IPPool, _ *Context) string { return encapMode(r.Spec.VXLANMode) }),
		col("DISABLED", func(r *resources.IPPool, _ *Context) string { return strconv.FormatBool(r.Spec.Disabled) }),
		col("DISABLEBGPEXPORT", func(r *resources.IPPool, _ *Context) string { return strconv.FormatBool(r.Spec.DisableBGPExport) }),
		col("SELECTOR", func(r *resources.IPPool, _ *Context) string { return r.Spec.NodeSelector }),
		col("ASSIGNMENTMODE", func(r *resources.IPPool, _ *Context) string { return ptrValue(r.Spec.AssignmentMode) }),
	),
	"IPReservation": newColumnSet(
		[]string{"NAME"}, []string{"NAME", "CIDRS"},
		col("CIDRS", func(r *resources.IPReservation, _ *Context) string { return strings.Join(r.Spec.ReservedCIDRs, ",") }),
	),
	"Node": newColumnSet(
		[]string{"NAME"}, []string{"NAME", "ASN", "IPV4", "IPV6"},
		col("ASN", nodeASN),
		col("IPV4", func(r *resources.Node, _ *Context) string {
			if r.Spec.BGP == nil {
				return ""
			}
			return r.Spec.BGP.IPv4Address
		}),
		col("IPV6", func(r *resources.Node, _ *Context) string {
			if r.Spec.BGP == nil {
				return ""
			}
			return r.Spec.BGP.IPv6Address
		}),
	),
	"Profile": newColumnSet(
		[]string{"NAME"}, []string{"NAME", "LABELS"},
		col("LABELS", func(r *resources.Profile, _ *Context) string { return labelsString(r.Spec.LabelsToApply) }),
	),
	"Tier": withLess(newColumnSet(
		[]string{"NAME", "ORDER"}, nil,
		col("ORDER", func(r *resources.Tier, _ *Context) string { return orderString(r.Spec.Order) }),
	), resources.CompareTiers),
	"WorkloadEndpoint": newColumnSet(
		[]string{"WORKLOAD", "NODE", "NETWORKS", "INTERFACE"},
		[]string{"NAME", "WORKLOAD", "NODE", "NETWORKS", "INTERFACE", "PROFILES", "NATS"},
		namespaceColumn,
		col("WORKLOAD", func(r *resources.WorkloadEndpoint, _ *Context) string {
			return cmp.Or(r.Spec.Workload, r.Spec.Pod)
		}),
		col("ORCHESTRATOR", func(r *resources.WorkloadEndpoint, _ *Context) string { return r.Spec.Orchestrator }),
		col("NODE", func(r *resources.WorkloadEndpoint, _ *Context) string { return r.Spec.Node }),
		col("NETWORKS", func(r *resources.WorkloadEndpoint, _ *Context) string { return strings.Join(r.Spec.IPNetworks, ",") }),
		col("INTERFACE", func(r *resources.WorkloadEndpoint, _ *Context) string { return r.Spec.InterfaceName }),
		col("PROFILES", func(r *resources.WorkloadEndpoint, _ *Context) string { return strings.Join(r.Spec.Profiles, ",") }),
		col("NATS", wepNATs),
	),
}

// newColumnSet builds a layout from the ps and wide headings (wide nil means
// the same as ps) and the columns; NAME is always available.
func newColumnSet(ps, wide []string, cols ...Column) *ColumnSet {
	if wide == nil {
		wide = ps
	}
	cs := &ColumnSet{PS: ps, Wide: wide, Columns: map[string]Column{"NAME": nameColumn}}
	for _, c := range cols {
		cs.Columns[c.Header] = c
	}
	return cs
}

func withLess(cs *ColumnSet, less func(a, b resources.Resource) int) *ColumnSet {
	cs.Less = less
	return cs
}

// netsMaxLen is the width NETS cells are truncated to.
const netsMaxLen = 80

func netsString(nets []string) string {
	return truncate(strings.Join(nets, ","), netsMaxLen)
}

// nilCell is what upstream's table templates print for a nil pointer
// (text/template hands it to fmt, which prints <nil>).
const nilCell = "<nil>"

// ptrValue prints a pointer field as upstream's `{{.Field}}` does: the
// pointed-to value with %v, or <nil>.
func ptrValue[T any](p *T) string {
	if p == nil {
		return nilCell
	}
	return fmt.Sprint(*p)
}

// orDash prints a pointer field as upstream's
// `{{if .Field}}{{.Field}}{{else}}-{{end}}` does: the value when set (even
// false or 0), else "-".
func orDash[T any](p *T) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}

// encapMode shows an unset IPIP/VXLAN mode as the Never it means.
func encapMode(m resources.EncapMode) string {
	if m == "" {
		return string(resources.EncapNever)
	}
	return string(m)
}

// orderString prints a policy or tier order as upstream's `{{.Spec.Order}}`
// does: Go's %v of a float64 (100, 1000, 1e+06, 0.5), <nil> when unset.
func orderString(o *float64) string { return ptrValue(o) }

// bgpPeerNode names where a peering applies: one node, the nodes a selector
// picks, or every node.
func bgpPeerNode(r *resources.BGPPeer, _ *Context) string {
	switch {
	case r.Spec.Node != "":
		return r.Spec.Node
	case r.Spec.NodeSelector != "":
		return r.Spec.NodeSelector
	}
	return "(global)"
}

// nodeASN shows a node's own AS number, or the global one in parentheses
// when the node inherits it; nodes without BGP show nothing.
func nodeASN(r *resources.Node, ctx *Context) string {
	switch {
	case r.Spec.BGP == nil:
		return ""
	case r.Spec.BGP.ASNumber != nil:
		return r.Spec.BGP.ASNumber.String()
	}
	global := DefaultASNumber
	if ctx != nil && ctx.GlobalASNumber != nil {
		global = ctx.GlobalASNumber()
	}
	return "(" + global + ")"
}

func labelsString(labels map[string]string) string {
	keys := slices.Sorted(maps.Keys(labels))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + labels[k]
	}
	return strings.Join(parts, ",")
}

// wepNATs lists the 1:1 NATs of an endpoint as internal->external.
func wepNATs(r *resources.WorkloadEndpoint, _ *Context) string {
	parts := make([]string, len(r.Spec.IPNATs))
	for i, n := range r.Spec.IPNATs {
		parts[i] = fmt.Sprintf("%s->%s", n.InternalIP, n.ExternalIP)
	}
	return strings.Join(parts, ",")
}
