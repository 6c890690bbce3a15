package cluster

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// blockOf is the IPAM block of bits holding ip.
func blockOf(ip string, bits int) string {
	return netip.PrefixFrom(netip.MustParseAddr(ip), bits).Masked().String()
}

// RouteTo is the route for exactly dst in a namespace ("" when none).
func (c *Cluster) RouteTo(ns, dst string) string {
	out, _ := exec.Command("ip", "-n", ns, "route", "show", "exact", dst).CombinedOutput()
	return strings.TrimSpace(string(out))
}

// WaitRoute waits until the route for dst in ns contains want (or, with
// want "", until there is none) and returns it.
func (c *Cluster) WaitRoute(ns, dst, want string) string {
	c.t.Helper()
	var got string
	c.WaitFor(fmt.Sprintf("route %s in %s to read %q (last: %q)", dst, ns, want, got), 15*time.Second, func() bool {
		got = c.RouteTo(ns, dst)
		if want == "" {
			return got == ""
		}
		return strings.Contains(got, want)
	})
	return got
}

// MustPing fails the test unless every pair reaches the other.
func (c *Cluster) MustPing(pairs ...[2]*Pod) {
	c.t.Helper()
	for _, pr := range pairs {
		if err := c.Ping(pr[0].NS, pr[1].IP, 5*time.Second); err != nil {
			c.t.Errorf("%s -> %s: %v", pr[0].Name, pr[1].Name, err)
		}
	}
}

// MustEcho fails the test unless a TCP echo from each pod to srv works
// and the server sees the client's own (unmasqueraded) address.
func (c *Cluster) MustEcho(srv *Pod, from ...*Pod) {
	c.t.Helper()
	for _, p := range from {
		peer, err := c.Dial(p.NS, srv.IP, 5*time.Second)
		if err != nil {
			c.t.Errorf("%s -> %s: %v", p.Name, srv.Name, err)
			continue
		}
		if peer != p.IP {
			c.t.Errorf("%s -> %s: the server saw %s, want the pod's own address %s", p.Name, srv.Name, peer, p.IP)
		}
	}
}

// Patch merge-patches the default IPv4 pool.
func (c *Cluster) PatchPool(name, spec string) {
	c.t.Helper()
	c.MustCalicoctl("patch", "ippool", name, "-p", `{"spec":`+spec+`}`)
}

// Apply writes yaml to a file and runs `calicoctl apply -f` on it.
func (c *Cluster) Apply(yaml string) {
	c.t.Helper()
	f := filepath.Join(c.Dir(), fmt.Sprintf("apply-%d.yaml", time.Now().UnixNano()))
	if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.MustCalicoctl("apply", "-f", f)
}

const defaultPool = "default-ipv4-ippool"

// poolEnv is the calico-node environment for the default pool.
func poolEnv(cidr, vxlan string, extra ...string) []string {
	return append([]string{"CALICO_IPV4POOL_CIDR=" + cidr, "CALICO_IPV4POOL_VXLAN=" + vxlan, "CALICO_IPV4POOL_IPIP=Never"}, extra...)
}
