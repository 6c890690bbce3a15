package state

import (
	"testing"

	"github.com/opencalico/calicoctl/resources"
)

func bgpPeer(name, peerIP string, as resources.ASNumber) *resources.BGPPeer {
	p := &resources.BGPPeer{Spec: resources.BGPPeerSpec{PeerIP: peerIP, ASNumber: as}}
	p.Name = name
	return p
}

func bgpConfig(name string, port uint16) *resources.BGPConfiguration {
	c := &resources.BGPConfiguration{Spec: resources.BGPConfigurationSpec{ListenPort: port}}
	c.Name = name
	return c
}

func bgpFilter(name, action string) *resources.BGPFilter {
	f := &resources.BGPFilter{Spec: resources.BGPFilterSpec{ExportV4: []resources.BGPFilterRuleV4{{Action: action}}}}
	f.Name = name
	return f
}

// TestModelBGPSetters: each setter reports a change only for a new object
// or a new spec (a metadata-only update is not one), and deletes report
// whether something was there.
func TestModelBGPSetters(t *testing.T) {
	relabel := func(p *resources.BGPPeer) *resources.BGPPeer {
		q := *p
		q.Labels = map[string]string{"x": "y"}
		q.ResourceVersion = "7"
		return &q
	}
	m := NewModel()
	steps := []struct {
		name string
		do   func() bool
		want bool
	}{
		{"add peer", func() bool { return m.SetBGPPeer(bgpPeer("a", "10.0.0.1", 64512)) }, true},
		{"same peer again", func() bool { return m.SetBGPPeer(bgpPeer("a", "10.0.0.1", 64512)) }, false},
		{"peer metadata only", func() bool { return m.SetBGPPeer(relabel(bgpPeer("a", "10.0.0.1", 64512))) }, false},
		{"peer new spec", func() bool { return m.SetBGPPeer(bgpPeer("a", "10.0.0.1", 65000)) }, true},
		{"second peer", func() bool { return m.SetBGPPeer(bgpPeer("0first", "10.0.0.9", 1)) }, true},
		{"add config", func() bool { return m.SetBGPConfiguration(bgpConfig("default", 0)) }, true},
		{"same config", func() bool { return m.SetBGPConfiguration(bgpConfig("default", 0)) }, false},
		{"config new port", func() bool { return m.SetBGPConfiguration(bgpConfig("default", 1790)) }, true},
		{"add filter", func() bool { return m.SetBGPFilter(bgpFilter("f", "Accept")) }, true},
		{"filter new rule", func() bool { return m.SetBGPFilter(bgpFilter("f", "Reject")) }, true},
		{"delete absent peer", func() bool { return m.DeleteBGPPeer("nope") }, false},
		{"delete peer", func() bool { return m.DeleteBGPPeer("a") }, true},
		{"delete absent filter", func() bool { return m.DeleteBGPFilter("nope") }, false},
		{"delete absent config", func() bool { return m.DeleteBGPConfiguration("node.x") }, false},
	}
	for _, s := range steps {
		if got := s.do(); got != s.want {
			t.Errorf("%s: changed = %v, want %v", s.name, got, s.want)
		}
	}
	if got := m.BGPCounts(); got != (BGPCounts{Peers: 1, Configurations: 1, Filters: 1}) {
		t.Errorf("counts = %+v", got)
	}
	if ps := m.BGPPeers(); len(ps) != 1 || ps[0].Name != "0first" {
		t.Errorf("peers = %v", ps)
	}
	if c := m.BGPConfiguration("default"); c == nil || c.Spec.ListenPort != 1790 {
		t.Errorf("default config = %+v", c)
	}
	if f := m.BGPFilter("f"); f == nil || f.Spec.ExportV4[0].Action != "Reject" {
		t.Errorf("filter f = %+v", f)
	}
	if len(m.BGPConfigurations()) != 1 || len(m.BGPFilters()) != 1 {
		t.Errorf("maps: %d configs, %d filters", len(m.BGPConfigurations()), len(m.BGPFilters()))
	}
	// An empty model answers without panicking.
	e := NewModel()
	if e.BGPPeers() == nil || len(e.BGPPeers()) != 0 || e.BGPConfiguration("default") != nil || e.BGPFilter("f") != nil {
		t.Error("empty model returned BGP objects")
	}
}

// TestFollowerEtcdBGP follows an add, a modification and a delete of each
// BGP kind through the watches.
func TestFollowerEtcdBGP(t *testing.T) {
	e := newEtcdEnv(t)
	e.put(t, bgpConfig("default", 0))
	f := start(t, Config{Datastore: e.ds, Blocks: e.store})
	waitModel(t, f, "the initial list", func(m *Model, st Status) bool {
		return st.Synced && m.BGPConfiguration("default") != nil
	})

	tests := []struct {
		name                     string
		add, modify, remove      resources.Resource
		added, modified, removed func(m *Model) bool
	}{
		{
			name:     "BGPPeer",
			add:      bgpPeer("tor", "192.168.83.1", 64512),
			added:    func(m *Model) bool { return len(m.BGPPeers()) == 1 },
			modify:   bgpPeer("tor", "192.168.83.1", 65001),
			modified: func(m *Model) bool { p := m.BGPPeers(); return len(p) == 1 && p[0].Spec.ASNumber == 65001 },
			remove:   bgpPeer("tor", "", 0),
			removed:  func(m *Model) bool { return len(m.BGPPeers()) == 0 },
		},
		{
			name:     "BGPConfiguration",
			add:      bgpConfig("node.n1", 1790),
			added:    func(m *Model) bool { return m.BGPConfiguration("node.n1") != nil },
			modify:   bgpConfig("node.n1", 1791),
			modified: func(m *Model) bool { c := m.BGPConfiguration("node.n1"); return c != nil && c.Spec.ListenPort == 1791 },
			remove:   bgpConfig("node.n1", 0),
			removed: func(m *Model) bool {
				return m.BGPConfiguration("node.n1") == nil && m.BGPConfiguration("default") != nil
			},
		},
		{
			name:   "BGPFilter",
			add:    bgpFilter("only-pods", "Accept"),
			added:  func(m *Model) bool { return m.BGPFilter("only-pods") != nil },
			modify: bgpFilter("only-pods", "Reject"),
			modified: func(m *Model) bool {
				f := m.BGPFilter("only-pods")
				return f != nil && f.Spec.ExportV4[0].Action == "Reject"
			},
			remove:  bgpFilter("only-pods", ""),
			removed: func(m *Model) bool { return m.BGPFilter("only-pods") == nil },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.put(t, tt.add)
			waitModel(t, f, "the addition", func(m *Model, _ Status) bool { return tt.added(m) })
			e.put(t, tt.modify)
			waitModel(t, f, "the modification", func(m *Model, _ Status) bool { return tt.modified(m) })
			e.del(t, resources.KeyOf(tt.remove))
			waitModel(t, f, "the deletion", func(m *Model, _ Status) bool { return tt.removed(m) })
		})
	}
	if st := f.Status(); !st.Synced || st.Relists != 0 {
		t.Errorf("status = %+v, want synced without relists", st)
	}
}
