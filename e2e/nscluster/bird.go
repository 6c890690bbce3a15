package nscluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Router is a namespace with a leg on several hub subnets (a core switch
// or ToR): it routes between them and may run BIRD.
type Router struct {
	Name string
	NS   string
	// IPs are its addresses by subnet (third octet).
	IPs map[int]string
	c   *Cluster
	dir string
}

// AddRouter creates a router namespace with a leg on each given subnet at
// 10.99.<subnet>.<octet>, forwarding between them. Its default route goes
// to the hub of the first subnet listed.
func (c *Cluster) AddRouter(name string, octet int, subnets ...int) *Router {
	c.t.Helper()
	r := &Router{Name: name, NS: c.nsName(name), IPs: map[int]string{}, c: c, dir: filepath.Join(c.dir, name)}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		c.t.Fatal(err)
	}
	c.addNS(r.NS)
	for i, sn := range subnets {
		ip := fmt.Sprintf("10.99.%d.%d", sn, octet)
		br := c.bridge(sn)
		hubSide := fmt.Sprintf("v%s%s%d", c.id, name, sn)
		if len(hubSide) > 15 {
			hubSide = hubSide[:15]
		}
		dev := fmt.Sprintf("eth%d", i)
		c.Run("ip", "link", "add", hubSide, "netns", c.hub, "type", "veth", "peer", "name", dev, "netns", r.NS)
		c.Run("ip", "-n", c.hub, "link", "set", hubSide, "master", br, "up")
		c.Run("ip", "-n", r.NS, "addr", "add", ip+"/24", "dev", dev)
		c.Run("ip", "-n", r.NS, "link", "set", dev, "up")
		if i == 0 {
			c.Run("ip", "-n", r.NS, "route", "add", "default", "via", fmt.Sprintf("10.99.%d.1", sn))
		}
		r.IPs[sn] = ip
	}
	c.Run("ip", "netns", "exec", r.NS, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	return r
}

// AddLAN puts a host namespace behind the router on its own /24 (router at
// .1, host at .10, e.g. prefix "192.168.100") and returns the host's
// namespace. The hub routes the LAN through the router's leg on subnet 0,
// so replies from any node find their way back.
func (r *Router) AddLAN(name, prefix string) (ns, hostIP string) {
	c := r.c
	c.t.Helper()
	ns = c.nsName(name)
	c.addNS(ns)
	rside := "lan" + name
	if len(rside) > 15 {
		rside = rside[:15]
	}
	c.Run("ip", "link", "add", rside, "netns", r.NS, "type", "veth", "peer", "name", "eth0", "netns", ns)
	c.Run("ip", "-n", r.NS, "addr", "add", prefix+".1/24", "dev", rside)
	c.Run("ip", "-n", r.NS, "link", "set", rside, "up")
	hostIP = prefix + ".10"
	c.Run("ip", "-n", ns, "addr", "add", hostIP+"/24", "dev", "eth0")
	c.Run("ip", "-n", ns, "link", "set", "eth0", "up")
	c.Run("ip", "-n", ns, "route", "add", "default", "via", prefix+".1")
	if ip, ok := r.IPs[0]; ok {
		c.Run("ip", "-n", c.hub, "route", "replace", prefix+".0/24", "via", ip)
	}
	return ns, hostIP
}

// StartBIRD runs Debian's BIRD 2 in the router's namespace with config
// (its control socket and log are in the router's directory) and waits
// until birdc answers.
func (r *Router) StartBIRD(config string) {
	c := r.c
	c.t.Helper()
	if _, err := exec.LookPath("bird"); err != nil {
		c.t.Skip("needs BIRD 2 (Debian package bird2)")
	}
	cfg := filepath.Join(r.dir, "bird.conf")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		c.t.Fatal(err)
	}
	lf, err := os.OpenFile(filepath.Join(r.dir, "bird.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer lf.Close()
	cmd := exec.Command("ip", "netns", "exec", r.NS, "bird", "-f", "-c", cfg, "-s", r.sock())
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start bird: %v", err)
	}
	c.Track(cmd)
	c.WaitFor("BIRD to answer", 10*time.Second, func() bool {
		_, err := r.Birdc("show", "status")
		return err == nil
	})
}

func (r *Router) sock() string { return filepath.Join(r.dir, "bird.ctl") }

// Birdc runs a birdc command against the router's BIRD.
func (r *Router) Birdc(args ...string) (string, error) {
	out, err := exec.Command("birdc", append([]string{"-s", r.sock()}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Routes is the router's kernel routing table.
func (r *Router) Routes() string {
	out, _ := exec.Command("ip", "-n", r.NS, "route", "show").CombinedOutput()
	return string(out)
}
