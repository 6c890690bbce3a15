package nscluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Ping reports whether fromNS can ping ip within the timeout (retrying, as
// routes converge asynchronously).
func (c *Cluster) Ping(fromNS, ip string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		out, err := exec.Command("ip", "netns", "exec", fromNS, "ping", "-c", "1", "-W", "1", ip).CombinedOutput()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ping %s from %s: %w\n%s", ip, fromNS, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// PingAll checks every ordered pair of pods, in parallel, and reports each
// pair that cannot reach the other as a test error.
func (c *Cluster) PingAll(pods []*Pod, timeout time.Duration) {
	c.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(pods)*len(pods))
	for _, from := range pods {
		for _, to := range pods {
			if from == to {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.Ping(from.NS, to.IP, timeout); err != nil {
					errs <- fmt.Errorf("%s/%s -> %s/%s: %w", from.Node.Name, from.Name, to.Node.Name, to.Name, err)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		c.t.Error(err)
	}
}

// Routes is `ip route` in a namespace.
func (c *Cluster) Routes(ns string) string {
	out, _ := exec.Command("ip", "-n", ns, "route").CombinedOutput()
	return string(out)
}

// RoutesVia are the lines of `ip route` in ns with "via <gw>".
func (c *Cluster) RoutesVia(ns, gw string) []string {
	var lines []string
	for _, l := range strings.Split(c.Routes(ns), "\n") {
		if strings.Contains(l, "via "+gw+" ") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	return lines
}

// wait waits for a started process, killing it after the Stop timeout.
func (c *Cluster) wait(p *exec.Cmd) {
	done := make(chan struct{})
	go func() { _ = p.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(c.cfg.Stop):
		_ = p.Process.Kill()
		<-done
	}
}

func (c *Cluster) cleanup() {
	c.mu.Lock()
	procs := append([]*exec.Cmd(nil), c.procs...)
	nss := append([]string(nil), c.nss...)
	c.mu.Unlock()
	if c.t.Failed() {
		c.dump()
	}
	running := func(p *exec.Cmd) bool { return p.Process != nil && p.ProcessState == nil }
	for _, p := range procs {
		if running(p) {
			_ = p.Process.Signal(os.Interrupt)
		}
	}
	for _, p := range procs {
		if running(p) {
			c.wait(p)
		}
	}
	for i := len(nss) - 1; i >= 0; i-- {
		_ = exec.Command("ip", "netns", "del", nss[i]).Run()
	}
}

// dumpLogs logs the tail of every process log.
func (c *Cluster) dumpLogs() {
	files, _ := filepath.Glob(filepath.Join(c.dir, "*.log"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if len(b) > 6000 {
			b = b[len(b)-6000:]
		}
		c.t.Logf("--- %s ---\n%s", filepath.Base(f), b)
	}
}

// dump logs the logs and each node's and pod's network state.
func (c *Cluster) dump() {
	c.dumpLogs()
	ipIn := func(ns string, args ...string) string {
		out, _ := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
		return string(out)
	}
	for _, n := range c.Nodes {
		c.t.Logf("--- %s: ip route ---\n%s--- ip -d link ---\n%s--- ip neigh ---\n%s",
			n.Name, c.Routes(n.NS), ipIn(n.NS, "-d", "link"), ipIn(n.NS, "neigh"))
		// Not `ip` inside sh: busybox's shell would run its own applet.
		diag, _ := exec.Command("ip", "netns", "exec", n.NS, "sh", "-c",
			"sysctl net.ipv4.ip_forward net.ipv4.conf.all.rp_filter; for f in /proc/sys/net/ipv4/conf/cali*/proxy_arp /proc/sys/net/ipv4/conf/cali*/forwarding /proc/sys/net/ipv4/conf/cali*/rp_filter; do echo $f $(cat $f); done").CombinedOutput()
		c.t.Logf("--- sysctls of %s ---\n%s", n.Name, diag)
		for _, p := range n.pods {
			c.t.Logf("--- pod %s/%s (%s) ---\n%s%s%s", n.Name, p.Name, p.IP, ipIn(p.NS, "addr"), c.Routes(p.NS), ipIn(p.NS, "neigh"))
		}
	}
}
