package clitest

// KindCase is one kind's CLI round trip, shared by the etcd and kdd suites:
// create from the etcd suite's testdata/kinds/<lowercase kind>.yaml, read
// back, replace an edited copy, patch, label and delete.
type KindCase struct {
	Kind string // canonical kind
	Word string // what the user types (an alias, to exercise the registry)
	Name string
	NS   string // namespace the object lands in; "" for cluster-scoped kinds
	// NSFlag passes -n NS to every command (else the namespace comes from the
	// manifest or defaults to "default").
	NSFlag bool
	// Native marks kinds that the Kubernetes datastore backs with native
	// Kubernetes objects (Node, namespace/service-account Profiles, Pods)
	// rather than crd.projectcalico.org CRs. The kdd suite covers them with
	// their own tests and round-trips only CRDKindCases.
	Native bool
	// Want are fields (dotted path -> JSON value) of `get -o yaml` after
	// create, defaults included.
	Want map[string]string
	// EditPath/EditValue change the fetched YAML before `replace -f`.
	EditPath  string
	EditValue any
	EditWant  string // JSON of the value read back
	// Patch is the -p document; PatchPath/PatchWant what must be read back.
	Patch     string
	PatchPath string
	PatchWant string
}

// KindCases has one case per registered kind except ClusterInformation,
// which the datastore writes itself and which has its own tests.
var KindCases = []KindCase{
	{
		Kind: "BGPConfiguration", Word: "bgpconfig", Name: "default",
		Want: map[string]string{
			"spec.asNumber":                       `63400`,
			"spec.logSeverityScreen":              `"Info"`,
			"spec.nodeToNodeMeshEnabled":          `true`,
			"spec.serviceLoadBalancerAggregation": `"Enabled"`,
		},
		EditPath: "spec.logSeverityScreen", EditValue: "Debug", EditWant: `"Debug"`,
		Patch: `{"spec":{"asNumber":64512}}`, PatchPath: "spec.asNumber", PatchWant: `64512`,
	},
	{
		Kind: "BGPFilter", Word: "bgpfilters", Name: "only-pod-routes",
		Want: map[string]string{
			"spec.exportV4.0.action":        `"Accept"`,
			"spec.exportV4.1.matchOperator": `"NotIn"`,
			"spec.importV4.0.cidr":          `"0.0.0.0/0"`,
			"spec.exportV6":                 `<absent>`,
		},
		EditPath: "spec.importV4.0.action", EditValue: "Accept", EditWant: `"Accept"`,
		Patch:     `{"spec":{"exportV6":[{"action":"Reject","matchOperator":"In","cidr":"fd00::/8"}]}}`,
		PatchPath: "spec.exportV6", PatchWant: `[{"action":"Reject","cidr":"fd00::/8","matchOperator":"In"}]`,
	},
	{
		Kind: "BGPPeer", Word: "bgpp", Name: "rr-border",
		Want: map[string]string{
			"spec.peerIP":       `"192.168.83.1"`,
			"spec.asNumber":     `64512`,
			"spec.nodeSelector": `"has(i-am-a-route-reflector)"`,
		},
		EditPath: "spec.asNumber", EditValue: 64513, EditWant: `64513`,
		Patch: `{"spec":{"peerIP":"192.168.83.2"}}`, PatchPath: "spec.peerIP", PatchWant: `"192.168.83.2"`,
	},
	{
		Kind: "FelixConfiguration", Word: "felixconfig", Name: "default",
		Want: map[string]string{
			"spec.reportingInterval":              `"0s"`,
			"spec.ipipEnabled":                    `true`,
			"spec.bpfConnectTimeLoadBalancing":    `"TCP"`,
			"spec.bpfHostNetworkedNATWithoutCTLB": `"Enabled"`,
			"spec.bpfLogLevel":                    `""`,
			"spec.floatingIPs":                    `"Disabled"`,
			"spec.nftablesMode":                   `"Auto"`,
			"spec.nftablesFlowTableOffload":       `"Disabled"`,
		},
		EditPath: "spec.logSeverityScreen", EditValue: "Warning", EditWant: `"Warning"`,
		Patch: `{"spec":{"bpfEnabled":true}}`, PatchPath: "spec.bpfEnabled", PatchWant: `true`,
	},
	{
		Kind: "GlobalNetworkPolicy", Word: "gnp", Name: "allow-ping",
		Want: map[string]string{
			"metadata.labels":          `{"projectcalico.org/tier":"default"}`,
			"spec.tier":                `"default"`,
			"spec.order":               `100`,
			"spec.ingress.0.icmp.type": `8`,
			"spec.types":               `["Ingress"]`,
		},
		EditPath: "spec.order", EditValue: 200, EditWant: `200`,
		Patch: `{"spec":{"selector":"role == 'web'"}}`, PatchPath: "spec.selector", PatchWant: `"role == 'web'"`,
	},
	{
		Kind: "GlobalNetworkSet", Word: "gnetsets", Name: "blocked-ranges",
		Want: map[string]string{
			"metadata.labels": `{"role":"blocked"}`,
			"spec.nets":       `["198.51.100.0/28","203.0.113.0/24"]`,
		},
		EditPath: "spec.nets", EditValue: []any{"192.0.2.0/24"}, EditWant: `["192.0.2.0/24"]`,
		Patch: `{"spec":{"nets":["198.51.100.0/28"]}}`, PatchPath: "spec.nets", PatchWant: `["198.51.100.0/28"]`,
	},
	{
		Kind: "HostEndpoint", Word: "hep", Name: "node1-eth0",
		Want: map[string]string{
			"spec.node":          `"node1"`,
			"spec.interfaceName": `"eth0"`,
			"spec.expectedIPs":   `["192.168.83.36"]`,
			"spec.ports.0":       `{"name":"ssh","port":22,"protocol":"TCP"}`,
		},
		EditPath: "spec.interfaceName", EditValue: "eth1", EditWant: `"eth1"`,
		Patch: `{"spec":{"expectedIPs":["192.168.83.37"]}}`, PatchPath: "spec.expectedIPs", PatchWant: `["192.168.83.37"]`,
	},
	{
		Kind: "IPPool", Word: "pool", Name: "pool-blue",
		Want: map[string]string{
			"spec.cidr":           `"10.96.0.0/20"`,
			"spec.natOutgoing":    `true`,
			"spec.ipipMode":       `"Never"`,
			"spec.vxlanMode":      `"Never"`,
			"spec.blockSize":      `26`,
			"spec.nodeSelector":   `"all()"`,
			"spec.allowedUses":    `["Workload","Tunnel"]`,
			"spec.assignmentMode": `"Automatic"`,
		},
		EditPath: "spec.disabled", EditValue: true, EditWant: `true`,
		Patch: `{"spec":{"vxlanMode":"CrossSubnet"}}`, PatchPath: "spec.vxlanMode", PatchWant: `"CrossSubnet"`,
	},
	{
		Kind: "CalicoNodeStatus", Word: "nodestatus", Name: "my-caliconodestatus-1",
		Want: map[string]string{
			"spec.node":                `"my-node"`,
			"spec.classes":             `["Agent","BGP","Routes"]`,
			"spec.updatePeriodSeconds": `10`,
		},
		EditPath: "spec.updatePeriodSeconds", EditValue: 30, EditWant: `30`,
		Patch: `{"spec":{"classes":["BGP"]}}`, PatchPath: "spec.classes", PatchWant: `["BGP"]`,
	},
	{
		Kind: "IPReservation", Word: "reservation", Name: "my-ipreservation-1",
		Want: map[string]string{
			"spec.reservedCIDRs": `["192.168.2.3/32","10.0.2.3/32","cafe:f00d::/123"]`,
		},
		EditPath: "spec.reservedCIDRs", EditValue: []any{"192.168.2.0/30"}, EditWant: `["192.168.2.0/30"]`,
		Patch: `{"spec":{"reservedCIDRs":["10.0.2.3/32"]}}`, PatchPath: "spec.reservedCIDRs", PatchWant: `["10.0.2.3/32"]`,
	},
	{
		Kind: "KubeControllersConfiguration", Word: "kubecontrollersconfig", Name: "default",
		Want: map[string]string{
			"spec.healthChecks":                      `"Enabled"`,
			"spec.prometheusMetricsPort":             `9094`,
			"spec.controllers.node.leakGracePeriod":  `"15m0s"`,
			"spec.controllers.node.reconcilerPeriod": `"5m0s"`,
			"spec.controllers.node.syncLabels":       `"Enabled"`,
			"status":                                 `{}`,
		},
		EditPath: "spec.healthChecks", EditValue: "Disabled", EditWant: `"Disabled"`,
		Patch: `{"spec":{"logSeverityScreen":"Debug"}}`, PatchPath: "spec.logSeverityScreen", PatchWant: `"Debug"`,
	},
	{
		Kind: "NetworkPolicy", Word: "np", Name: "allow-tcp-6379", NS: "default",
		Want: map[string]string{
			"metadata.namespace":               `"default"`,
			"metadata.labels":                  `{"projectcalico.org/tier":"default"}`,
			"spec.tier":                        `"default"`,
			"spec.selector":                    `"role == 'database'"`,
			"spec.ingress.0.destination.ports": `[6379]`,
			"spec.ingress.0.source.selector":   `"role == 'frontend'"`,
		},
		EditPath: "spec.order", EditValue: 10, EditWant: `10`,
		Patch: `{"spec":{"types":["Ingress","Egress"]}}`, PatchPath: "spec.types", PatchWant: `["Ingress","Egress"]`,
	},
	{
		// The manifest names namespace prod; the kdd suite creates it.
		Kind: "NetworkSet", Word: "netset", Name: "external-db", NS: "prod", NSFlag: true,
		Want: map[string]string{
			"metadata.namespace": `"prod"`,
			"metadata.labels":    `{"role":"db"}`,
			"spec.nets":          `["203.0.113.10/32"]`,
		},
		EditPath: "spec.nets", EditValue: []any{"203.0.113.11/32"}, EditWant: `["203.0.113.11/32"]`,
		Patch: `{"spec":{"nets":["203.0.113.12/32","2001:db8::/64"]}}`, PatchPath: "spec.nets", PatchWant: `["203.0.113.12/32","2001:db8::/64"]`,
	},
	{
		Kind: "Node", Word: "no", Name: "node1", Native: true,
		Want: map[string]string{
			"metadata.labels":                  `{"i-am-a-route-reflector":"true"}`,
			"spec.bgp.ipv4Address":             `"192.168.83.36/24"`,
			"spec.bgp.routeReflectorClusterID": `"244.0.0.1"`,
			"status":                           `{}`,
		},
		EditPath: "spec.bgp.ipv4Address", EditValue: "192.168.83.37/24", EditWant: `"192.168.83.37/24"`,
		Patch: `{"spec":{"bgp":{"asNumber":65001}}}`, PatchPath: "spec.bgp.asNumber", PatchWant: `65001`,
	},
	{
		Kind: "Profile", Word: "pro", Name: "edge", Native: true,
		Want: map[string]string{
			"spec.labelsToApply":               `{"zone":"edge"}`,
			"spec.ingress.0.destination.ports": `[22]`,
			"spec.egress":                      `[{"action":"Allow"}]`,
		},
		EditPath: "spec.labelsToApply", EditValue: map[string]any{"zone": "core"}, EditWant: `{"zone":"core"}`,
		Patch: `{"spec":{"egress":[{"action":"Deny"}]}}`, PatchPath: "spec.egress", PatchWant: `[{"action":"Deny"}]`,
	},
	{
		Kind: "Tier", Word: "tiers", Name: "security",
		Want: map[string]string{
			"spec.order":         `300`,
			"spec.defaultAction": `"Deny"`,
			"status":             `{}`,
		},
		EditPath: "spec.order", EditValue: 400, EditWant: `400`,
		Patch: `{"spec":{"defaultAction":"Pass"}}`, PatchPath: "spec.defaultAction", PatchWant: `"Pass"`,
	},
	{
		Kind: "WorkloadEndpoint", Word: "wep", Name: "worker--1-k8s-web--7f9c-eth0", NS: "prod", NSFlag: true, Native: true,
		Want: map[string]string{
			"metadata.namespace": `"prod"`,
			"metadata.labels":    `{"app":"web","projectcalico.org/namespace":"prod","projectcalico.org/orchestrator":"k8s"}`,
			"spec.ipNetworks":    `["10.244.1.5/32"]`,
			"spec.ports.0":       `{"hostIP":"","hostPort":0,"name":"http","port":8080,"protocol":"TCP"}`,
		},
		EditPath: "spec.ipNetworks", EditValue: []any{"10.244.1.6/32"}, EditWant: `["10.244.1.6/32"]`,
		Patch: `{"spec":{"profiles":["kns.prod","ksa.prod.web"]}}`, PatchPath: "spec.profiles", PatchWant: `["kns.prod","ksa.prod.web"]`,
	},
}

// CRDKindCases returns the cases for kinds stored as crd.projectcalico.org
// CRs on the Kubernetes datastore: KindCases without the Native ones.
func CRDKindCases() []KindCase {
	var out []KindCase
	for _, kc := range KindCases {
		if !kc.Native {
			out = append(out, kc)
		}
	}
	return out
}
