package speaker

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/opencalico/calicoctl/node/bgp"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestPlanPeers(t *testing.T) {
	p1 := bgp.Peer{Name: "Mesh_10_0_0_2", Address: addr("10.0.0.2"), PeerASN: 64512}
	p2 := bgp.Peer{Name: "Mesh_10_0_0_3", Address: addr("10.0.0.3"), PeerASN: 64512}
	withPw := p1
	withPw.Password = "x"
	policyOnly := p1
	policyOnly.NextHop, policyOnly.Filters = bgp.NextHopSelf, []string{"f"}
	renamed := p1
	renamed.Name = "Node_10_0_0_2"
	tests := []struct {
		name        string
		have        []bgp.Peer
		want        []bgp.Peer
		add, remove []string
	}{
		{"from nothing", nil, []bgp.Peer{p1, p2}, []string{"10.0.0.2", "10.0.0.3"}, nil},
		{"same", []bgp.Peer{p1, p2}, []bgp.Peer{p1, p2}, nil, nil},
		{"gone", []bgp.Peer{p1, p2}, []bgp.Peer{p2}, nil, []string{"10.0.0.2"}},
		{"session setting changed: delete and add", []bgp.Peer{p1}, []bgp.Peer{withPw}, []string{"10.0.0.2"}, []string{"10.0.0.2"}},
		{"policy-only change leaves the session", []bgp.Peer{p1}, []bgp.Peer{policyOnly}, nil, nil},
		{"rename leaves the session", []bgp.Peer{p1}, []bgp.Peer{renamed}, nil, nil},
		{"duplicate address: first wins", nil, []bgp.Peer{p1, withPw}, []string{"10.0.0.2"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			have := map[netip.Addr]bgp.Peer{}
			for _, p := range tt.have {
				have[p.Address] = p
			}
			pl := planPeers(have, tt.want)
			addrs := func(ps []bgp.Peer) []string {
				var out []string
				for _, p := range ps {
					out = append(out, p.Address.String())
				}
				return out
			}
			if got := addrs(pl.add); !slices.Equal(got, tt.add) {
				t.Errorf("add = %v, want %v", got, tt.add)
			}
			if got := addrs(pl.remove); !slices.Equal(got, tt.remove) {
				t.Errorf("remove = %v, want %v", got, tt.remove)
			}
		})
	}
}

func TestAPIPeer(t *testing.T) {
	ebgp := apiPeer(bgp.Peer{Address: addr("10.0.0.9"), PeerASN: 65001, Keepalive: 10 * time.Second,
		RestartTime: 300 * time.Second, AllowOwnAS: 2, SourceAddress: addr("10.0.0.1"), Port: 1790}, 64512, true, 30*time.Second)
	if ebgp.EbgpMultihop.GetMultihopTtl() != 255 || ebgp.TtlSecurity != nil {
		t.Errorf("eBGP without ttlSecurity is multihop 255: %v %v", ebgp.EbgpMultihop, ebgp.TtlSecurity)
	}
	if ebgp.Timers.Config.KeepaliveInterval != 10 || ebgp.Timers.Config.HoldTime != 30 || ebgp.Timers.Config.ConnectRetry != connectRetry {
		t.Errorf("timers = %v", ebgp.Timers.Config)
	}
	gr := ebgp.GracefulRestart
	if !gr.Enabled || gr.RestartTime != 300 || gr.LonglivedEnabled || !gr.LocalRestarting || gr.DeferralTime != 30 ||
		!ebgp.AfiSafis[0].MpGracefulRestart.Config.Enabled || ebgp.AfiSafis[0].Config.Family.Afi != api.Family_AFI_IP {
		t.Errorf("graceful restart = %v, afisafis = %v", gr, ebgp.AfiSafis)
	}
	if ebgp.Conf.AllowOwnAsn != 2 || ebgp.Conf.LocalAsn != 64512 || ebgp.Transport.LocalAddress != "10.0.0.1" || ebgp.Transport.RemotePort != 1790 {
		t.Errorf("conf = %v transport = %v", ebgp.Conf, ebgp.Transport)
	}
	gtsm := apiPeer(bgp.Peer{Address: addr("fd00::9"), PeerASN: 65001, TTLSecurity: 1, Passive: true, Password: "pw"}, 64512, false, time.Second)
	if gtsm.TtlSecurity.GetTtlMin() != 255 || gtsm.EbgpMultihop != nil || !gtsm.Transport.PassiveMode || gtsm.Conf.AuthPassword != "pw" ||
		gtsm.AfiSafis[0].Config.Family.Afi != api.Family_AFI_IP6 || gtsm.Transport.RemotePort != 179 || gtsm.GracefulRestart.RestartTime != 120 {
		t.Errorf("GTSM peer = %v", gtsm)
	}
	rr := apiPeer(bgp.Peer{Address: addr("10.0.0.5"), PeerASN: 64512, RouteReflectorClient: true, ClusterID: "1.2.3.4"}, 64512, false, time.Second)
	if !rr.RouteReflector.GetRouteReflectorClient() || rr.RouteReflector.GetRouteReflectorClusterId() != "1.2.3.4" || rr.EbgpMultihop != nil {
		t.Errorf("RR client = %v", rr)
	}
	localAS := apiPeer(bgp.Peer{Address: addr("10.0.0.5"), PeerASN: 65000, LocalASN: 65000}, 64512, false, time.Second)
	if localAS.Conf.LocalAsn != 65000 || localAS.EbgpMultihop != nil {
		t.Errorf("local AS = %v (same AS: iBGP, no multihop)", localAS.Conf)
	}
}

func TestPlanPaths(t *testing.T) {
	g := bgp.Global{NodeIPv4: addr("10.0.0.1")}
	pa := bgp.Path{Prefix: netip.MustParsePrefix("10.244.1.0/26")}
	pb := bgp.Path{Prefix: netip.MustParsePrefix("10.244.2.0/26")}
	pc := pa
	pc.Communities = []string{"1:2"}
	have := map[netip.Prefix]originated{pa.Prefix: {path: pa, nextHop: addr("10.0.0.1")}}
	if pl := planPaths(have, []bgp.Path{pa}, g); len(pl.add)+len(pl.remove) != 0 {
		t.Errorf("same paths: %+v", pl)
	}
	if pl := planPaths(have, []bgp.Path{pb}, g); len(pl.add) != 1 || len(pl.remove) != 1 || pl.remove[0] != pa.Prefix {
		t.Errorf("replace: %+v", pl)
	}
	if pl := planPaths(have, []bgp.Path{pc}, g); len(pl.add) != 1 || len(pl.remove) != 0 {
		t.Errorf("communities changed: %+v", pl)
	}
	if pl := planPaths(have, []bgp.Path{pa}, bgp.Global{NodeIPv4: addr("10.0.0.9")}); len(pl.add) != 1 {
		t.Errorf("next hop changed: %+v", pl)
	}
	if nh := nextHopFor(netip.MustParsePrefix("fd00::/122"), g); nh != netip.IPv6Unspecified() {
		t.Errorf("v6 next hop without a node IPv6 = %v", nh)
	}
}

func TestParseCommunities(t *testing.T) {
	std, large, err := parseCommunities([]string{"64512:100", "65000:1:2"})
	if err != nil || !slices.Equal(std, []uint32{64512<<16 | 100}) || len(large) != 1 || large[0].LocalData2 != 2 {
		t.Errorf("= %v %v %v", std, large, err)
	}
	for _, bad := range []string{"70000:1", "1", "a:b", "1:2:3:4"} {
		if _, _, err := parseCommunities([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCompilePolicy(t *testing.T) {
	peer := addr("10.0.0.9")
	d := bgp.Desired{Global: bgp.Global{ASN: 64512},
		Peers: []bgp.Peer{{Address: peer, PeerASN: 65001, NextHop: bgp.NextHopSelf, Filters: []string{"f"}}},
		Filters: []bgp.PeerFilter{{Peer: peer, Filters: []bgp.Filter{{Name: "f",
			ExportV4: []bgp.FilterRule{
				{Action: "Accept", CIDR: netip.MustParsePrefix("10.0.0.0/8"), MatchOperator: "NotIn", PrefixLenMin: 8, PrefixLenMax: 32,
					Operations: []bgp.FilterOperation{{AddCommunity: "1:2"}, {PrependASPath: []uint32{65010, 65011}}, {SetPriority: 10}}},
				{Action: "Reject", PeerType: "iBGP"}, // not this (eBGP) peer: nothing
				{Action: "Reject", Priority: 5},      // gobgp v3 cannot: skipped
			},
			ImportV4: []bgp.FilterRule{{Action: "Reject", Source: "RemotePeers", Community: "65000:1:2", ASPathPrefix: []uint32{65001, 65002}}},
		}}}},
	}
	cp := compilePolicy(d)
	if len(cp.skipped) != 1 || !strings.Contains(cp.skipped[0], "priority") {
		t.Errorf("skipped = %v", cp.skipped)
	}
	var imp, exp *api.Policy
	for _, p := range cp.req.Policies {
		switch p.Name {
		case importPolicy:
			imp = p
		case exportPolicy:
			exp = p
		}
	}
	// export: next-hop-self (continue), prepend 65011 (continue), then
	// accept with prepend 65010, community and local pref.
	if len(exp.Statements) != 3 {
		t.Fatalf("export statements = %v", exp.Statements)
	}
	if a := exp.Statements[0].Actions; !a.Nexthop.GetSelf() || a.RouteAction != api.RouteAction_NONE {
		t.Errorf("next hop statement = %v", exp.Statements[0])
	}
	if a := exp.Statements[1].Actions; a.AsPrepend.GetAsn() != 65011 || a.RouteAction != api.RouteAction_NONE {
		t.Errorf("chained prepend = %v", exp.Statements[1])
	}
	last := exp.Statements[2]
	if a := last.Actions; a.RouteAction != api.RouteAction_ACCEPT || a.AsPrepend.GetAsn() != 65010 ||
		!slices.Equal(a.Community.GetCommunities(), []string{"1:2"}) || a.LocalPref.GetValue() != maxPriority-10 {
		t.Errorf("accept statement = %v", last)
	}
	if c := last.Conditions; c.PrefixSet.GetType() != api.MatchSet_INVERT || c.NeighborSet.GetName() != "peer-10_0_0_9" || c.AfiSafiIn[0].Afi != api.Family_AFI_IP {
		t.Errorf("conditions = %v", c)
	}
	// import: RemotePeers = two statements (internal, external), each
	// with the large-community and AS-path sets.
	if len(imp.Statements) != 2 || imp.Statements[0].Conditions.RouteType != api.Conditions_ROUTE_TYPE_INTERNAL ||
		imp.Statements[1].Conditions.RouteType != api.Conditions_ROUTE_TYPE_EXTERNAL ||
		imp.Statements[0].Conditions.LargeCommunitySet == nil || imp.Statements[0].Conditions.AsPathSet == nil {
		t.Errorf("import statements = %v", imp.Statements)
	}
	sets := map[string]*api.DefinedSet{}
	for _, s := range cp.req.DefinedSets {
		sets[s.Name] = s
	}
	for _, s := range cp.req.DefinedSets {
		if s.DefinedType == api.DefinedType_AS_PATH && !slices.Equal(s.List, []string{"^65001_65002_"}) {
			t.Errorf("AS path set = %v", s.List)
		}
		if s.DefinedType == api.DefinedType_PREFIX && (s.Prefixes[0].IpPrefix != "10.0.0.0/8" || s.Prefixes[0].MaskLengthMax != 32) {
			t.Errorf("prefix set = %v", s.Prefixes)
		}
	}
	if n := sets["peer-10_0_0_9"]; n == nil || !slices.Equal(n.List, []string{"10.0.0.9/32"}) {
		t.Errorf("neighbor set = %v", n)
	}
	// Fingerprints: a change to the export rules changes only exp.
	d2 := d
	d2.Peers = []bgp.Peer{d.Peers[0]}
	d2.Peers[0].NextHop = ""
	cp2 := compilePolicy(d2)
	if cp.perPeer[peer].imp != cp2.perPeer[peer].imp || cp.perPeer[peer].exp == cp2.perPeer[peer].exp {
		t.Error("fingerprints do not follow the change")
	}
}

func TestParseTCPTable(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:45DC 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0000000000000000 100 0 0 10 0
   1: 0100007F:45DC 0200007F:B2C4 01 00000000:00000000 00:00000000 00000000     0        0 2222 1 0000000000000000 20 4 30 10 -1
`
	rows, err := parseTCPTable(strings.NewReader(table))
	if err != nil || len(rows) != 2 {
		t.Fatalf("rows = %v, %v", rows, err)
	}
	if rows[0].local.String() != "127.0.0.1:17884" || !rows[0].listening || rows[0].inode != 1111 {
		t.Errorf("row 0 = %+v", rows[0])
	}
	if rows[1].remote.String() != "127.0.0.2:45764" || rows[1].listening {
		t.Errorf("row 1 = %+v", rows[1])
	}
	v6, err := parseHexAddrPort("000080FE00000000FF000000010000FE:00B3")
	if err != nil || v6.String() != "[fe80::ff:fe00:1]:179" {
		t.Errorf("v6 = %v, %v", v6, err)
	}
	m := socketMatch{listenPort: 17884, peers: map[netip.AddrPort]bool{netip.MustParseAddrPort("10.0.0.2:179"): true}}
	if !m.matches(rows[0]) || !m.matches(rows[1]) ||
		!m.matches(tcpSocket{local: netip.MustParseAddrPort("10.0.0.1:40000"), remote: netip.MustParseAddrPort("10.0.0.2:179")}) ||
		m.matches(tcpSocket{local: netip.MustParseAddrPort("10.0.0.1:40000"), remote: netip.MustParseAddrPort("10.0.0.3:179")}) {
		t.Error("socket matching")
	}
}

func TestMarker(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", markerFile)
	now := time.Now()
	if ok, err := readMarker(p, now); ok || err != nil {
		t.Errorf("no marker = %v %v", ok, err)
	}
	if err := writeMarker(p, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ok, err := readMarker(p, now); !ok || err != nil {
		t.Errorf("fresh marker = %v %v", ok, err)
	}
	if ok, _ := readMarker(p, now); ok {
		t.Error("the marker is read once")
	}
	_ = writeMarker(p, now.Add(-time.Second))
	if ok, _ := readMarker(p, now); ok {
		t.Error("an expired marker counts")
	}
}
