package printer

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/resources"
)

func TestRenderTable(t *testing.T) {
	cases := []struct {
		name  string
		table Table
		want  string
	}{
		{
			name:  "upstream ippool example",
			table: Table{Header: []string{"NAME", "CIDR", "SELECTOR"}, Rows: [][]string{{"default-ipv4-ippool", "192.168.0.0/16", "all()"}}},
			want:  "NAME                  CIDR             SELECTOR   \ndefault-ipv4-ippool   192.168.0.0/16   all()      \n\n",
		},
		{
			name:  "header only, minimum width 5",
			table: Table{Header: []string{"NAME", "ID"}},
			want:  "NAME   ID   \n\n",
		},
		{
			name:  "empty cells and cells with tabs or newlines",
			table: Table{Header: []string{"A", "B"}, Rows: [][]string{{"", "x\ty"}, {"line\nbreak", ""}}},
			want:  "A            B     \n             x y   \nline break         \n\n",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := RenderTable(&out, c.table); err != nil {
				t.Fatal(err)
			}
			if out.String() != c.want {
				t.Errorf("got\n%q\nwant\n%q", out.String(), c.want)
			}
		})
	}
}

// TestEveryKindHasColumns checks that each registered kind's ps and wide
// headings resolve, so no table can fail with an unknown heading.
func TestEveryKindHasColumns(t *testing.T) {
	for _, k := range resources.Kinds() {
		cs, ok := columnSets[k.Kind]
		if !ok {
			t.Errorf("%s has no column set", k.Kind)
			continue
		}
		for _, hs := range [][]string{cs.PS, cs.Wide} {
			if _, err := SelectColumns(cs, hs, true); err != nil {
				t.Errorf("%s: %v", k.Kind, err)
			}
		}
		if _, has := cs.Columns["NAMESPACE"]; has != k.Namespaced {
			t.Errorf("%s: NAMESPACE column present=%v, namespaced=%v", k.Kind, has, k.Namespaced)
		}
	}
}

func TestPSAndWideHeadings(t *testing.T) {
	cases := []struct {
		kind     string
		ps, wide string
	}{
		{"IPPool", "NAME CIDR SELECTOR", "NAME CIDR NAT IPIPMODE VXLANMODE DISABLED DISABLEBGPEXPORT SELECTOR ASSIGNMENTMODE"},
		{"BGPPeer", "NAME PEERIP NODE ASN", "NAME PEERIP NODE ASN"},
		{"WorkloadEndpoint", "WORKLOAD NODE NETWORKS INTERFACE", "NAME WORKLOAD NODE NETWORKS INTERFACE PROFILES NATS"},
		{"GlobalNetworkPolicy", "NAME TIER", "NAME TIER ORDER SELECTOR"},
		{"Node", "NAME", "NAME ASN IPV4 IPV6"},
		{"Tier", "NAME ORDER", "NAME ORDER"},
		{"HostEndpoint", "NAME NODE", "NAME NODE INTERFACE IPS PROFILES"},
		{"ClusterInformation", "NAME CLUSTERGUID CLUSTERTYPE CALICOVERSION DATASTOREREADY", "NAME CLUSTERGUID CLUSTERTYPE CALICOVERSION DATASTOREREADY"},
	}
	for _, c := range cases {
		cs := columnSets[c.kind]
		if got := strings.Join(cs.PS, " "); got != c.ps {
			t.Errorf("%s ps = %q, want %q", c.kind, got, c.ps)
		}
		if got := strings.Join(cs.Wide, " "); got != c.wide {
			t.Errorf("%s wide = %q, want %q", c.kind, got, c.wide)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestCells checks the cell functions kind by kind.
func TestCells(t *testing.T) {
	asn := resources.ASNumber(65001)
	manual := resources.AssignmentManual
	cases := []struct {
		name    string
		obj     resources.Resource
		heading string
		global  string
		want    string
	}{
		{"ippool empty ipip mode", &resources.IPPool{}, "IPIPMODE", "", "Never"},
		{"ippool empty vxlan mode", &resources.IPPool{}, "VXLANMODE", "", "Never"},
		{"ippool vxlan mode", &resources.IPPool{Spec: resources.IPPoolSpec{VXLANMode: resources.EncapCrossSubnet}}, "VXLANMODE", "", "CrossSubnet"},
		{"ippool nat", &resources.IPPool{Spec: resources.IPPoolSpec{NATOutgoing: true}}, "NAT", "", "true"},
		{"ippool disabled", &resources.IPPool{}, "DISABLED", "", "false"},
		{"ippool selector", &resources.IPPool{Spec: resources.IPPoolSpec{NodeSelector: "all()"}}, "SELECTOR", "", "all()"},
		{"ippool assignment mode", &resources.IPPool{Spec: resources.IPPoolSpec{AssignmentMode: &manual}}, "ASSIGNMENTMODE", "", "Manual"},
		{"ippool unset assignment mode", &resources.IPPool{}, "ASSIGNMENTMODE", "", "<nil>"},
		{"bgppeer node", &resources.BGPPeer{Spec: resources.BGPPeerSpec{Node: "n1", NodeSelector: "rack == 'a'"}}, "NODE", "", "n1"},
		{"bgppeer node selector", &resources.BGPPeer{Spec: resources.BGPPeerSpec{NodeSelector: "rack == 'a'"}}, "NODE", "", "rack == 'a'"},
		{"bgppeer global", &resources.BGPPeer{}, "NODE", "", "(global)"},
		{"bgppeer asn", &resources.BGPPeer{Spec: resources.BGPPeerSpec{ASNumber: 64513}}, "ASN", "", "64513"},
		{"node own asn", &resources.Node{Spec: resources.NodeSpec{BGP: &resources.NodeBGPSpec{ASNumber: &asn}}}, "ASN", "", "65001"},
		{"node inherited asn", &resources.Node{Spec: resources.NodeSpec{BGP: &resources.NodeBGPSpec{}}}, "ASN", "", "(64512)"},
		{"node inherited configured asn", &resources.Node{Spec: resources.NodeSpec{BGP: &resources.NodeBGPSpec{}}}, "ASN", "63000", "(63000)"},
		{"node without bgp", &resources.Node{}, "ASN", "", ""},
		{"node ipv4", &resources.Node{Spec: resources.NodeSpec{BGP: &resources.NodeBGPSpec{IPv4Address: "10.0.0.1/24"}}}, "IPV4", "", "10.0.0.1/24"},
		{"node ipv6 without bgp", &resources.Node{}, "IPV6", "", ""},
		{"profile labels sorted", &resources.Profile{Spec: resources.ProfileSpec{LabelsToApply: map[string]string{"z": "1", "a": "2", "m": ""}}}, "LABELS", "", "a=2,m=,z=1"},
		{"profile no labels", &resources.Profile{}, "LABELS", "", ""},
		{"gnset nets short", &resources.GlobalNetworkSet{Spec: resources.GlobalNetworkSetSpec{Nets: []string{"10.0.0.0/8", "fd00::/8"}}}, "NETS", "", "10.0.0.0/8,fd00::/8"},
		{"gnset nets truncated", &resources.GlobalNetworkSet{Spec: resources.GlobalNetworkSetSpec{Nets: strings.Split(strings.Repeat("192.168.100.0/24,", 10), ",")[:10]}}, "NETS", "",
			strings.Repeat("192.168.100.0/24,", 5)[:77] + "..."},
		{"netset nets", &resources.NetworkSet{Spec: resources.NetworkSetSpec{Nets: []string{"10.1.0.0/16"}}}, "NETS", "", "10.1.0.0/16"},
		{"wep workload", &resources.WorkloadEndpoint{Spec: resources.WorkloadEndpointSpec{Workload: "w", Pod: "p"}}, "WORKLOAD", "", "w"},
		{"wep pod", &resources.WorkloadEndpoint{Spec: resources.WorkloadEndpointSpec{Pod: "p"}}, "WORKLOAD", "", "p"},
		{"wep networks", &resources.WorkloadEndpoint{Spec: resources.WorkloadEndpointSpec{IPNetworks: []string{"10.0.0.1/32", "fd00::1/128"}}}, "NETWORKS", "", "10.0.0.1/32,fd00::1/128"},
		{"wep nats", &resources.WorkloadEndpoint{Spec: resources.WorkloadEndpointSpec{IPNATs: []resources.IPNAT{{InternalIP: "10.0.0.1", ExternalIP: "172.16.0.1"}, {InternalIP: "10.0.0.2", ExternalIP: "172.16.0.2"}}}}, "NATS", "", "10.0.0.1->172.16.0.1,10.0.0.2->172.16.0.2"},
		{"wep no nats", &resources.WorkloadEndpoint{}, "NATS", "", ""},
		{"wep orchestrator", &resources.WorkloadEndpoint{Spec: resources.WorkloadEndpointSpec{Orchestrator: "k8s"}}, "ORCHESTRATOR", "", "k8s"},
		{"wep profiles", &resources.WorkloadEndpoint{Spec: resources.WorkloadEndpointSpec{Profiles: []string{"a", "b"}}}, "PROFILES", "", "a,b"},
		{"gnp unset order", &resources.GlobalNetworkPolicy{}, "ORDER", "", "<nil>"},
		{"gnp order", &resources.GlobalNetworkPolicy{Spec: resources.GlobalNetworkPolicySpec{Order: ptr(100.5)}}, "ORDER", "", "100.5"},
		{"np big order", &resources.NetworkPolicy{Spec: resources.NetworkPolicySpec{Order: ptr(1e6)}}, "ORDER", "", "1e+06"},
		{"np tier", &resources.NetworkPolicy{Spec: resources.NetworkPolicySpec{Tier: "security"}}, "TIER", "", "security"},
		{"tier order", &resources.Tier{Spec: resources.TierSpec{Order: ptr(1000000.0)}}, "ORDER", "", "1e+06"},
		{"tier fractional order", &resources.Tier{Spec: resources.TierSpec{Order: ptr(0.5)}}, "ORDER", "", "0.5"},
		{"tier large integral order", &resources.Tier{Spec: resources.TierSpec{Order: ptr(123456.0)}}, "ORDER", "", "123456"},
		{"tier 1e7 order", &resources.Tier{Spec: resources.TierSpec{Order: ptr(1e7)}}, "ORDER", "", "1e+07"},
		{"tier unset order", &resources.Tier{}, "ORDER", "", "<nil>"},
		{"hep ips", &resources.HostEndpoint{Spec: resources.HostEndpointSpec{ExpectedIPs: []string{"10.0.0.1", "10.0.0.2"}}}, "IPS", "", "10.0.0.1,10.0.0.2"},
		{"ipreservation cidrs", &resources.IPReservation{Spec: resources.IPReservationSpec{ReservedCIDRs: []string{"10.0.0.0/30", "10.0.1.0/30"}}}, "CIDRS", "", "10.0.0.0/30,10.0.1.0/30"},
		{"bgpconfig mesh", &resources.BGPConfiguration{Spec: resources.BGPConfigurationSpec{NodeToNodeMeshEnabled: ptr(false)}}, "MESHENABLED", "", "false"},
		{"bgpconfig asn unset", &resources.BGPConfiguration{}, "ASNUMBER", "", "-"},
		{"bgpconfig mesh unset", &resources.BGPConfiguration{}, "MESHENABLED", "", "-"},
		{"bgpconfig mesh true", &resources.BGPConfiguration{Spec: resources.BGPConfigurationSpec{NodeToNodeMeshEnabled: ptr(true)}}, "MESHENABLED", "", "true"},
		{"clusterinfo ready unset", &resources.ClusterInformation{}, "DATASTOREREADY", "", "<nil>"},
		{"bgpconfig asn", &resources.BGPConfiguration{Spec: resources.BGPConfigurationSpec{ASNumber: &asn}}, "ASNUMBER", "", "65001"},
		{"bgpfilter counts", &resources.BGPFilter{Spec: resources.BGPFilterSpec{ImportV6: make([]resources.BGPFilterRuleV6, 3)}}, "NUMIMPORTV6", "", "3"},
		{"clusterinfo ready", &resources.ClusterInformation{Spec: resources.ClusterInformationSpec{DatastoreReady: ptr(true)}}, "DATASTOREREADY", "", "true"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cs := ColumnsFor(resources.KindOf(c.obj))
			col, ok := cs.Columns[c.heading]
			if !ok {
				t.Fatalf("no column %s", c.heading)
			}
			ctx := &Context{}
			if c.global != "" {
				ctx.GlobalASNumber = func() string { return c.global }
			}
			if got := col.Value(c.obj, ctx); got != c.want {
				t.Errorf("%s = %q, want %q", c.heading, got, c.want)
			}
		})
	}
}

func named[T any, P interface {
	*T
	resources.Resource
}](ns, name string, set func(P)) resources.Resource {
	p := P(new(T))
	p.SetName(name)
	p.SetNamespace(ns)
	if set != nil {
		set(p)
	}
	return p
}

func TestTablePrinter(t *testing.T) {
	pool := func(name, cidr string) resources.Resource {
		return named("", name, func(p *resources.IPPool) { p.Spec.CIDR = cidr; p.Spec.NodeSelector = "all()" })
	}
	wep := func(ns, name string) resources.Resource {
		return named(ns, name, func(w *resources.WorkloadEndpoint) {
			w.Spec.Pod, w.Spec.Node, w.Spec.InterfaceName = "pod-"+name, "node1", "cali0"
			w.Spec.IPNetworks = []string{"10.0.0.1/32"}
		})
	}
	tier := func(name string, order *float64) resources.Resource {
		return named("", name, func(t *resources.Tier) { t.Spec.Order = order })
	}
	cases := []struct {
		name   string
		format string
		opts   Options
		res    Result
		want   string
	}{
		{
			name:   "ippool list",
			format: "ps",
			res:    Result{Kind: mustKind(t, "ippool"), IsList: true, Items: []resources.Resource{pool("default-ipv4-ippool", "192.168.0.0/16")}},
			want:   "NAME                  CIDR             SELECTOR   \ndefault-ipv4-ippool   192.168.0.0/16   all()      \n\n",
		},
		{
			name:   "empty list prints the header",
			format: "",
			res:    Result{Kind: mustKind(t, "ippool"), IsList: true},
			want:   "NAME   CIDR   SELECTOR   \n\n",
		},
		{
			name:   "named results print one table each",
			format: "ps",
			res:    Result{Kind: mustKind(t, "ippool"), Items: []resources.Resource{pool("a", "10.0.0.0/8"), pool("bb", "fd00::/8")}},
			want: "NAME   CIDR         SELECTOR   \na      10.0.0.0/8   all()      \n\n" +
				"NAME   CIDR       SELECTOR   \nbb     fd00::/8   all()      \n\n",
		},
		{
			name:   "wide ippool",
			format: "wide",
			res:    Result{Kind: mustKind(t, "ippool"), IsList: true, Items: []resources.Resource{pool("p", "10.0.0.0/8")}},
			want: "NAME   CIDR         NAT     IPIPMODE   VXLANMODE   DISABLED   DISABLEBGPEXPORT   SELECTOR   ASSIGNMENTMODE   \n" +
				"p      10.0.0.0/8   false   Never      Never       false      false              all()      <nil>            \n\n",
		},
		{
			name:   "namespace column with -n",
			format: "ps",
			opts:   Options{ShowNamespace: true},
			res:    Result{Kind: mustKind(t, "wep"), IsList: true, Items: []resources.Resource{wep("prod", "w1")}},
			want:   "NAMESPACE   WORKLOAD   NODE    NETWORKS      INTERFACE   \nprod        pod-w1     node1   10.0.0.1/32   cali0       \n\n",
		},
		{
			name:   "no namespace column for cluster kinds",
			format: "ps",
			opts:   Options{ShowNamespace: true},
			res:    Result{Kind: mustKind(t, "ippool"), IsList: true, Items: []resources.Resource{pool("p", "10.0.0.0/8")}},
			want:   "NAME   CIDR         SELECTOR   \np      10.0.0.0/8   all()      \n\n",
		},
		{
			name:   "custom columns",
			format: "custom-columns=NAME,ORCHESTRATOR,node",
			res:    Result{Kind: mustKind(t, "wep"), IsList: true, Items: []resources.Resource{wep("prod", "w1")}},
			want:   "NAME   ORCHESTRATOR   NODE    \nw1                    node1   \n\n",
		},
		{
			name:   "custom columns naming NAMESPACE with -A",
			format: "custom-columns=NAMESPACE,NAME",
			opts:   Options{ShowNamespace: true},
			res:    Result{Kind: mustKind(t, "wep"), IsList: true, Items: []resources.Resource{wep("prod", "w1")}},
			want:   "NAMESPACE   NAME   \nprod        w1     \n\n",
		},
		{
			name:   "tiers sorted by order, unset last",
			format: "ps",
			res: Result{Kind: mustKind(t, "tier"), IsList: true, Items: []resources.Resource{
				tier("default", ptr(1e6)), tier("zeta", nil), tier("alpha", nil), tier("security", ptr(100.0)), tier("kube-admin", ptr(1000.0)),
			}},
			want: "NAME         ORDER   \nsecurity     100     \nkube-admin   1000    \ndefault      1e+06   \nalpha        <nil>   \nzeta         <nil>   \n\n",
		},
		{
			name:   "node asn from the global default",
			format: "wide",
			opts:   Options{GlobalASNumber: func() string { return "65000" }},
			res: Result{Kind: mustKind(t, "node"), IsList: true, Items: []resources.Resource{
				named("", "n1", func(n *resources.Node) { n.Spec.BGP = &resources.NodeBGPSpec{IPv4Address: "10.0.0.1/24"} }),
			}},
			want: "NAME   ASN       IPV4          IPV6   \nn1     (65000)   10.0.0.1/24          \n\n",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := New(c.format, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := p.Print(&out, c.res); err != nil {
				t.Fatal(err)
			}
			if out.String() != c.want {
				t.Errorf("got\n%q\nwant\n%q", out.String(), c.want)
			}
		})
	}
}

func TestCustomColumnsUnknownHeading(t *testing.T) {
	p, err := New("custom-columns=NAME,BOGUS", Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Print(&bytes.Buffer{}, Result{Kind: mustKind(t, "ippool"), IsList: true})
	want := "unknown heading BOGUS, valid values are: ASSIGNMENTMODE, CIDR, DISABLEBGPEXPORT, DISABLED, IPIPMODE, NAME, NAT, SELECTOR, VXLANMODE"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestBuildTableTurnsPanicsIntoErrors(t *testing.T) {
	bad := Column{Header: "BAD", Value: func(resources.Resource, *Context) string {
		var m map[string]*string
		return *m["x"]
	}}
	_, err := BuildTable([]Column{bad}, []resources.Resource{&resources.IPPool{}}, &Context{})
	if err == nil {
		t.Fatal("want an error from a panicking column")
	}
}

func TestNewFormats(t *testing.T) {
	dir := t.TempDir()
	tplFile := filepath.Join(dir, "t.tmpl")
	if err := os.WriteFile(tplFile, []byte("{{.Name}}"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		format  string
		wantErr string
	}{
		{"ps", ""}, {"", ""}, {"wide", ""}, {"yaml", ""}, {"yml", ""}, {"json", ""},
		{"custom-columns=NAME,CIDR", ""}, {"go-template={{.Name}}", ""}, {"go-template-file=" + tplFile, ""},
		{"xml", "unrecognized output format 'xml'"},
		{"YAML", "unrecognized output format 'YAML'"},
		{"custom-columns=", "no headings given in output format 'custom-columns='"},
		{"go-template={{.Name", "invalid template"},
		{"go-template-file=" + filepath.Join(dir, "missing"), "failed to read template file"},
	}
	for _, c := range cases {
		p, err := New(c.format, Options{})
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("New(%q): %v", c.format, err)
		case c.wantErr == "" && p == nil:
			t.Errorf("New(%q) returned no printer", c.format)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("New(%q) err = %v, want %q", c.format, err, c.wantErr)
		}
	}
}
