package tunnel

import (
	"net/netip"
	"testing"
)

func TestMTUsFor(t *testing.T) {
	tests := []struct {
		name    string
		host    int
		enabled Encaps
		pod     int
	}{
		{"none", 1500, Encaps{}, 1500},
		{"ipip", 1500, Encaps{IPIP: true}, 1480},
		{"vxlan", 1500, Encaps{VXLAN: true}, 1450},
		{"ipip+vxlan", 1500, Encaps{IPIP: true, VXLAN: true}, 1450},
		{"vxlan v6", 9000, Encaps{VXLAN: true, VXLANv6: true}, 8930},
		{"wireguard", 1500, Encaps{Wireguard: true, IPIP: true}, 1440},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MTUsFor(tt.host, tt.enabled)
			if got.Pod != tt.pod || got.IPIP != tt.host-20 || got.VXLAN != tt.host-50 || got.VXLANv6 != tt.host-70 {
				t.Errorf("MTUsFor(%d, %+v) = %+v, want pod %d", tt.host, tt.enabled, got, tt.pod)
			}
		})
	}
}

func TestSelectHostMTU(t *testing.T) {
	ifaces := []Iface{
		{Name: "lo", MTU: 65536, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}},
		{Name: "eth0", MTU: 1500, Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.5")}},
		{Name: "ens5", MTU: 9001},
		{Name: "docker0", MTU: 1400},
		{Name: "bond0", MTU: 9000, Addrs: []netip.Addr{netip.MustParseAddr("10.9.0.5")}},
	}
	tests := []struct {
		name   string
		ifaces []Iface
		nodeIP string
		mtu    int
		iface  string
		err    bool
	}{
		{"node ip on eth0", ifaces, "10.0.0.5", 1500, "eth0", false},
		{"node ip on a non-matching name", ifaces, "10.9.0.5", 9000, "bond0", false},
		{"unknown ip falls back to smallest uplink", ifaces, "10.7.7.7", 1500, "eth0", false},
		{"no ip", ifaces[2:], "", 9001, "ens5", false},
		{"nothing", ifaces[3:4], "", 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ip netip.Addr
			if tt.nodeIP != "" {
				ip = netip.MustParseAddr(tt.nodeIP)
			}
			mtu, iface, err := SelectHostMTU(tt.ifaces, ip, nil)
			if (err != nil) != tt.err || mtu != tt.mtu || iface != tt.iface {
				t.Errorf("got %d %q %v, want %d %q err=%v", mtu, iface, err, tt.mtu, tt.iface, tt.err)
			}
		})
	}
}

func TestPrivilegedHostMTU(t *testing.T) {
	m, _ := newManager(t)
	mtu, iface, err := m.HostMTU(netip.MustParseAddr("10.1.0.1"), nil)
	if err != nil || mtu != 9000 || iface != "ens1" {
		t.Errorf("HostMTU = %d %q %v, want 9000 ens1", mtu, iface, err)
	}
}
