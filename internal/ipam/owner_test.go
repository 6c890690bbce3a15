package ipam_test

import (
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/internal/ipam"
)

func TestUnusedVerdict(t *testing.T) {
	const cid = "k8s-pod-network.0123456789abcdef0123456789abcdef"
	tests := []struct {
		name       string
		handle     string
		attrs      map[string]string
		rule       string
		reasonPart string
	}{
		{"ipam assign", "h-n1b", map[string]string{"node": "n1", ipam.AttrOwner: ipam.OwnerIPAMAssign}, "", "assigned on purpose by calicoctl ipam assign"},
		{"owner wins over a container handle", cid, map[string]string{"pod": "a", ipam.AttrOwner: "me"}, "", "assigned on purpose by me"},
		{"manual handle", "vm-web-1", map[string]string{"node": "n1"}, "", `handle "vm-web-1" is not a container's`},
		{"dotted manual handle", "vm.web.1", nil, "", "assigned on purpose"},
		{"pod", cid, map[string]string{"pod": "b", "namespace": "default"}, ipam.LeakWorkloadGone, "pod default/b"},
		{"pod attrs, any handle", "default.b", map[string]string{"pod": "b", "namespace": "default"}, ipam.LeakWorkloadGone, "no workload endpoint"},
		{"container without pod attrs", "mynet.0123456789abcdef", map[string]string{"node": "n1"}, ipam.LeakWorkloadGone, "container"},
		{"k8s-pod-network handle", "k8s-pod-network.x", nil, ipam.LeakWorkloadGone, "container"},
		{"short hex is not a container", "net.abc", nil, "", "assigned on purpose"},
		{"vmi", "kv.x", map[string]string{"vmi-name": "vm1", "namespace": "ns"}, ipam.LeakWorkloadGone, "pod ns/vm1"},
		{"tunnel by type", "", map[string]string{"node": "n1", "type": ipam.TypeVXLANTunnel}, ipam.LeakTunnelGone, "vxlanTunnelAddress"},
		{"tunnel by handle", "ipip-tunnel-addr-n1", map[string]string{"node": "n1"}, ipam.LeakTunnelGone, `node "n1"`},
		{"no owner at all", "", nil, ipam.LeakNoOwner, "no handle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule, reason := ipam.UnusedVerdict(tt.handle, tt.attrs)
			if rule != tt.rule || !strings.Contains(reason, tt.reasonPart) {
				t.Errorf("UnusedVerdict(%q, %v) = %q, %q; want %q and a reason containing %q", tt.handle, tt.attrs, rule, reason, tt.rule, tt.reasonPart)
			}
		})
	}
}
