package checksystem

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/opencalico/calicoctl/internal/netlinksafe"
	"github.com/opencalico/calicoctl/node/tunnel"
)

// System probes the running kernel. Every probe works in a network
// namespace of its own that disappears when the probe ends.
type System struct{}

var _ Kernel = System{}

// Release returns uname -r.
func (System) Release() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

// IPIP is tunnel.IPIPSupported (itself a scratch-namespace probe).
func (System) IPIP() (bool, string) { return tunnel.IPIPSupported() }

// CanCreateLink creates a link of kind in a scratch namespace.
func (System) CanCreateLink(kind string) error {
	var link netlink.Link
	attrs := netlink.LinkAttrs{Name: "calchk0"}
	switch kind {
	case "veth":
		link = &netlink.Veth{LinkAttrs: attrs, PeerName: "calchk1"}
	case "vxlan":
		// As the agent makes vxlan.calico: VNI 4096, UDP 4789.
		link = &netlink.Vxlan{LinkAttrs: attrs, VxlanId: 4096, Port: 4789, Learning: false}
	case "bridge":
		link = &netlink.Bridge{LinkAttrs: attrs}
	default:
		return fmt.Errorf("unknown link kind %q", kind)
	}
	return netlinksafe.InScratchNetns(func(h *netlink.Handle) error {
		if err := h.LinkAdd(link); err != nil {
			return err
		}
		return h.LinkDel(link)
	})
}

// nftProbe is the kind of table the agent writes: a NAT chain with
// masquerade (natOutgoing) and DNAT (floating IPs), and a conntrack match.
const nftProbe = `add table inet calico-checksystem
add chain inet calico-checksystem post { type nat hook postrouting priority 100 ; }
add rule inet calico-checksystem post ip saddr 10.0.0.0/8 ct state new masquerade
add chain inet calico-checksystem pre { type nat hook prerouting priority -100 ; }
add rule inet calico-checksystem pre ip daddr 192.0.2.1 dnat ip to 10.0.0.1
delete table inet calico-checksystem
`

// NFTables runs the probe script through nft in a new network namespace
// (the nft process is cloned into it; the namespace dies with it).
func (System) NFTables(ctx context.Context) error {
	path, err := exec.LookPath("nft")
	if err != nil {
		return ErrNoNFT
	}
	cmd := exec.CommandContext(ctx, path, "-f", "-")
	cmd.Stdin = strings.NewReader(nftProbe)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft could not create a NAT table: %w: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}
