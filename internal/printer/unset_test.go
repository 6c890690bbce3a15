package printer

import (
	"maps"
	"slices"
	"testing"

	"github.com/opencalico/calicoctl/resources"
)

// unsetCells is, for every kind, each table cell (every heading that ps,
// wide or custom-columns can show) of an object whose optional fields are
// all unset. It follows upstream's templates: a nil pointer prints <nil>
// (`{{.Spec.Order}}`), `{{if .X}}...{{else}}-{{end}}` prints "-", plain
// values print Go's zero value (false, 0). docs/compatibility.md lists the
// same table; keep them together.
var unsetCells = map[string]map[string]string{
	"BGPConfiguration": {"NAME": "x", "LOGSEVERITY": "", "MESHENABLED": "-", "ASNUMBER": "-"},
	"BGPFilter":        {"NAME": "x", "NUMEXPORTV4": "0", "NUMIMPORTV4": "0", "NUMEXPORTV6": "0", "NUMIMPORTV6": "0"},
	"BGPPeer":          {"NAME": "x", "PEERIP": "", "NODE": "(global)", "ASN": "0"},
	"CalicoNodeStatus": {"NAME": "x", "NODE": "", "CLASSES": ""},
	"ClusterInformation": {"NAME": "x", "CLUSTERGUID": "", "CLUSTERTYPE": "", "CALICOVERSION": "",
		"DATASTOREREADY": "<nil>"},
	"FelixConfiguration":  {"NAME": "x"},
	"GlobalNetworkPolicy": {"NAME": "x", "TIER": "", "ORDER": "<nil>", "SELECTOR": ""},
	"GlobalNetworkSet":    {"NAME": "x", "NETS": ""},
	"HostEndpoint":        {"NAME": "x", "NODE": "", "INTERFACE": "", "IPS": "", "PROFILES": ""},
	"IPPool": {"NAME": "x", "CIDR": "", "NAT": "false", "IPIPMODE": "Never", "VXLANMODE": "Never",
		"DISABLED": "false", "DISABLEBGPEXPORT": "false", "SELECTOR": "", "ASSIGNMENTMODE": "<nil>"},
	"IPReservation":                {"NAME": "x", "CIDRS": ""},
	"KubeControllersConfiguration": {"NAME": "x"},
	"NetworkPolicy":                {"NAME": "x", "NAMESPACE": "ns", "TIER": "", "ORDER": "<nil>", "SELECTOR": ""},
	"NetworkSet":                   {"NAME": "x", "NAMESPACE": "ns", "NETS": ""},
	"Node":                         {"NAME": "x", "ASN": "", "IPV4": "", "IPV6": ""},
	"Profile":                      {"NAME": "x", "LABELS": ""},
	"Tier":                         {"NAME": "x", "ORDER": "<nil>"},
	"WorkloadEndpoint": {"NAME": "x", "NAMESPACE": "ns", "WORKLOAD": "", "ORCHESTRATOR": "", "NODE": "",
		"NETWORKS": "", "INTERFACE": "", "PROFILES": "", "NATS": ""},
}

// TestUnsetCellsEveryKind walks the kind registry: every kind must have a
// case, every heading of its layout must be covered, and each cell of an
// object with nothing optional set must print what upstream prints.
func TestUnsetCellsEveryKind(t *testing.T) {
	for _, k := range resources.Kinds() {
		t.Run(k.Kind, func(t *testing.T) {
			want, ok := unsetCells[k.Kind]
			if !ok {
				t.Fatalf("kind %s has no case in unsetCells: add its unset cells (and a line in docs/compatibility.md)", k.Kind)
			}
			cs := ColumnsFor(k)
			if got, exp := cs.Headings(), slices.Sorted(maps.Keys(want)); !slices.Equal(got, exp) {
				t.Fatalf("headings %v, case covers %v", got, exp)
			}
			for _, h := range append(slices.Clone(cs.PS), cs.Wide...) {
				if _, ok := cs.Columns[h]; !ok {
					t.Errorf("ps/wide heading %s has no column", h)
				}
			}
			obj := k.New()
			obj.SetName("x")
			if k.Namespaced {
				obj.SetNamespace("ns")
			}
			ctx := &Context{GlobalASNumber: func() string { return "64512" }}
			for h, c := range cs.Columns {
				if got := c.Value(obj, ctx); got != want[h] {
					t.Errorf("%s: %s = %q, want %q", k.Kind, h, got, want[h])
				}
			}
		})
	}
	for kind := range unsetCells {
		if k, isList := resources.LookupKind(kind); k == nil || isList {
			t.Errorf("unsetCells has a case for unknown kind %s", kind)
		}
	}
}
