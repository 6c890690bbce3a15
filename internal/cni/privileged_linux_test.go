package cni

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/netnstest"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces (run as root to exercise the kernel dataplane)")
	}
}

// newNetns creates a named network namespace (so it has a CNI_NETNS path)
// with lo up; it is deleted when the test ends.
func newNetns(t testing.TB) (netns.NsHandle, string) {
	t.Helper()
	ns := netnstest.NewNamed(t, "cnitest")
	return ns.Handle, ns.Path
}

// newHostNS is a scratch "host": an uplink veth pair with 10.99.0.1/24 and
// fd99::1/64 on up0 and default routes through it, so proxy ARP has a route
// to answer for 169.254.1.1.
func newHostNS(t testing.TB) netns.NsHandle {
	t.Helper()
	hns, _ := newNetns(t)
	h, err := netlink.NewHandleAt(hns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "up0"}, PeerName: "up1"}))
	up0, err := h.LinkByName("up0")
	must(err)
	up1, err := h.LinkByName("up1")
	must(err)
	must(h.AddrAdd(up0, &netlink.Addr{IPNet: ipNet(netip.MustParsePrefix("10.99.0.1/24"))}))
	must(h.AddrAdd(up0, &netlink.Addr{IPNet: ipNet(netip.MustParsePrefix("fd99::1/64")), Flags: 0x02 /* IFA_F_NODAD */}))
	must(h.LinkSetUp(up0))
	must(h.LinkSetUp(up1))
	must(h.RouteAdd(&netlink.Route{LinkIndex: up0.Attrs().Index, Gw: net.ParseIP("10.99.0.254"), Flags: int(netlink.FLAG_ONLINK)}))
	must(h.RouteAdd(&netlink.Route{LinkIndex: up0.Attrs().Index, Dst: ipNet(netip.MustParsePrefix("::/0")), Gw: net.ParseIP("fd99::fe"), Flags: int(netlink.FLAG_ONLINK)}))
	return hns
}

// dialFrom connects from inside ns to a listener opened inside another ns.
func dialFrom(t *testing.T, from, to netns.NsHandle, addr string) error {
	t.Helper()
	var ln net.Listener
	if err := inNetNS(to, func() (err error) { ln, err = net.Listen("tcp", net.JoinHostPort(addr, "0")); return err }); err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	defer ln.Close()
	accepted := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- ""
			return
		}
		accepted <- c.RemoteAddr().String()
		c.Close()
	}()
	var conn net.Conn
	err := inNetNS(from, func() (err error) { conn, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second); return err })
	if err != nil {
		return err
	}
	conn.Close()
	<-accepted
	return nil
}

func readSysctl(t *testing.T, ns netns.NsHandle, key string) string {
	t.Helper()
	var v []byte
	if err := inNetNS(ns, func() (err error) { v, err = os.ReadFile("/proc/sys/" + key); return err }); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(v))
}

func TestPrivilegedAddDel(t *testing.T) {
	requireRoot(t)
	h := newHarness(t, "10.65.0.0/16", "fd00:65::/64")
	tests := []struct {
		name   string
		ipam   string
		podAnn map[string]string
		fam    []int
		fixed  string
	}{
		{name: "ipv4", fam: []int{4}},
		{name: "ipAddrs", podAnn: map[string]string{AnnotationIPAddrs: `["10.65.200.9"]`}, fam: []int{4}, fixed: "10.65.200.9/32"},
		{name: "dual stack", ipam: `,"assign_ipv6":"true"`, fam: []int{4, 6}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hostNS := newHostNS(t)
			contNS, contPath := newNetns(t)
			podName := fmt.Sprintf("pod%d", i)
			pods := fakePods{pods: map[string]*corev1.Pod{"prod/" + podName: pod("prod", podName, nil, tt.podAnn)}}
			o := Options{Dataplane: NewLinuxDataplane(hostNS), Pods: pods}
			inv := invocation{command: CmdAdd, id: "ctr-" + podName, netns: contPath, pod: "prod/" + podName, conf: h.conf("", tt.ipam)}
			out, code := h.run(o, inv)
			if code != 0 {
				t.Fatalf("ADD exit %d: %s", code, out)
			}
			ips := resultIPs(parseResult(t, out))
			if len(ips) != len(tt.fam) || (tt.fixed != "" && ips[0].String() != tt.fixed) {
				t.Fatalf("IPs %v, want families %v (fixed %q)", ips, tt.fam, tt.fixed)
			}
			hostIf := "cali" + vethSuffix(t, "prod."+podName)

			hh, _ := netlink.NewHandleAt(hostNS)
			defer hh.Close()
			ch, _ := netlink.NewHandleAt(contNS)
			defer ch.Close()
			hl, err := hh.LinkByName(hostIf)
			if err != nil {
				t.Fatalf("host veth: %v", err)
			}
			if hl.Attrs().HardwareAddr.String() != "ee:ee:ee:ee:ee:ee" || hl.Attrs().MTU != 1400 || hl.Attrs().Flags&net.FlagUp == 0 || hl.Type() != "veth" {
				t.Errorf("host veth attrs: %+v", hl.Attrs())
			}
			if got := readSysctl(t, hostNS, "net/ipv4/conf/"+hostIf+"/proxy_arp"); got != "1" {
				t.Errorf("proxy_arp = %s", got)
			}
			if got := readSysctl(t, hostNS, "net/ipv4/neigh/"+hostIf+"/proxy_delay"); got != "0" {
				t.Errorf("proxy_delay = %s", got)
			}
			cl, err := ch.LinkByName("eth0")
			if err != nil {
				t.Fatalf("container eth0: %v", err)
			}
			addrs, _ := ch.AddrList(cl, netlink.FAMILY_ALL)
			for _, ip := range ips {
				found := false
				for _, a := range addrs {
					found = found || a.IPNet.String() == ip.String()
				}
				if !found {
					t.Errorf("container lacks %s (has %v)", ip, addrs)
				}
				routes, _ := hh.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Dst: ipNet(ip)}, netlink.RT_FILTER_DST)
				if len(routes) != 1 || routes[0].LinkIndex != hl.Attrs().Index || routes[0].Protocol != RouteProtocolBoot || (ip.Addr().Is4() && routes[0].Scope != netlink.SCOPE_LINK) {
					t.Errorf("host route for %s = %+v", ip, routes)
				}
			}
			croutes, _ := ch.RouteList(cl, netlink.FAMILY_V4)
			var gwLink, dflt bool
			for _, r := range croutes {
				gwLink = gwLink || (r.Dst != nil && r.Dst.String() == "169.254.1.1/32" && r.Scope == netlink.SCOPE_LINK)
				dflt = dflt || ((r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.String() == "169.254.1.1")
			}
			if !gwLink || !dflt {
				t.Errorf("container v4 routes %v: link route %v, default %v", croutes, gwLink, dflt)
			}
			if err := dialFrom(t, contNS, hostNS, "10.99.0.1"); err != nil {
				t.Errorf("container -> host 10.99.0.1 over proxy ARP: %v", err)
			}
			if len(tt.fam) == 2 {
				if err := dialFrom(t, contNS, hostNS, "fd99::1"); err != nil {
					t.Errorf("container -> host fd99::1 via %s: %v", GatewayIPv6, err)
				}
			}
			wepName := "node--1-k8s-" + podName + "-eth0"
			w, err := h.wep("prod", wepName)
			if err != nil || w.Spec.InterfaceName != hostIf || w.Spec.MAC != cl.Attrs().HardwareAddr.String() || len(w.Spec.IPNetworks) != len(ips) {
				t.Fatalf("WEP %v: %+v", err, w)
			}
			if got, err := h.allocator().IPsByHandle(context.Background(), "k8s-pod-network."+inv.id); err != nil || len(got) != len(ips) {
				t.Fatalf("handle IPs %v %v", got, err)
			}

			inv.command = CmdDel
			for n := range 2 {
				if out, code := h.run(o, inv); code != 0 {
					t.Fatalf("DEL #%d: %s", n+1, out)
				}
			}
			if _, err := hh.LinkByName(hostIf); err == nil {
				t.Errorf("%s still exists after DEL", hostIf)
			}
			if _, err := ch.LinkByName("eth0"); err == nil {
				t.Errorf("container eth0 still exists after DEL")
			}
			for _, ip := range ips {
				if routes, _ := hh.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Dst: ipNet(ip)}, netlink.RT_FILTER_DST); len(routes) != 0 {
					t.Errorf("host route for %s left: %v", ip, routes)
				}
				if _, _, err := h.allocator().GetAssignmentAttributes(context.Background(), ip.Addr()); err == nil {
					t.Errorf("%s still assigned", ip)
				}
			}
			if _, err := h.wep("prod", wepName); !errors.Is(err, datastore.ErrNotFound) {
				t.Errorf("WEP after DEL: %v", err)
			}
		})
	}
}

// TestPrivilegedDelWithoutNetns: a DEL whose namespace is already gone
// still cleans up the host side and the addresses.
func TestPrivilegedDelWithoutNetns(t *testing.T) {
	requireRoot(t)
	h := newHarness(t, "10.65.0.0/16")
	hostNS := newHostNS(t)
	_, contPath := newNetns(t)
	o := Options{Dataplane: NewLinuxDataplane(hostNS)}
	inv := invocation{command: CmdAdd, id: "gone", netns: contPath, conf: h.conf("", "")}
	if out, code := h.run(o, inv); code != 0 {
		t.Fatal(out)
	}
	inv.command, inv.netns = CmdDel, ""
	if out, code := h.run(o, inv); code != 0 {
		t.Fatalf("DEL without netns: %s", out)
	}
	hh, _ := netlink.NewHandleAt(hostNS)
	defer hh.Close()
	if _, err := hh.LinkByName(VethName("cali", &Args{ContainerID: "gone"})); err == nil {
		t.Error("host veth left after DEL")
	}
}
