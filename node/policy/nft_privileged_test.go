package policy

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/opencalico/calicoctl/internal/netnstest"
)

func requirePrivileged(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (creates network namespaces and nftables tables)")
	}
	for _, bin := range []string{"nft", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs the %s command", bin)
		}
	}
}

// inNS runs fn inside the named namespace (netnstest.Do).
func inNS(t testing.TB, name string, fn func()) { t.Helper(); netnstest.Do(t, name, fn) }

func nsRun(t *testing.T, ns, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestPrivilegedRulesetLoads loads every golden case's table into a
// scratch namespace through knftables (the kernel accepts the syntax),
// applies it a second time (Render on an existing table converges), and
// checks that `nft list table` shows every chain and parses back.
func TestPrivilegedRulesetLoads(t *testing.T) {
	requirePrivileged(t)
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			ns := netnstest.NewNamed(t, "calpol").Name
			d := Compile(tc.in())
			inNS(t, ns, func() {
				nft, err := knftables.New(knftables.InetFamily, TableName)
				if err != nil {
					t.Fatal(err)
				}
				for i := range 2 {
					tx := nft.NewTransaction()
					Render(tx, d)
					if err := nft.Run(context.Background(), tx); err != nil {
						t.Fatalf("apply %d: %v\n%s", i, err, tx)
					}
				}
			})
			listing := nsRun(t, ns, "", "nft", "list", "table", "inet", TableName)
			for _, ch := range d.Chains {
				if !strings.Contains(listing, "chain "+ch.Name+" {") {
					t.Errorf("chain %s missing from the listing:\n%s", ch.Name, listing)
				}
			}
			rules := strings.Count(listing, "counter packets ")
			want := 0
			for _, ch := range d.Chains {
				for _, r := range ch.Rules {
					want += strings.Count(r.Rule, "counter ")
				}
			}
			if rules != want {
				t.Errorf("listing has %d counter rules, want %d:\n%s", rules, want, listing)
			}
			// The listing is valid input for nft (check mode).
			nsRun(t, ns, listing, "nft", "-c", "-f", "-")
		})
	}
}

// TestPrivilegedSeed001Packets loads seed 001's tenant, all on one node,
// into a scratch "host" namespace with workloads in namespaces of their
// own behind cali* veths, and checks real TCP connections: the frontend
// reaches the database on 3306 only, another workload does not, and an
// interface with no endpoint is dropped.
func TestPrivilegedSeed001Packets(t *testing.T) {
	requirePrivileged(t)
	host := netnstest.NewNamed(t, "calpol-host").Name
	run := func(ns string, args ...string) { nsRun(t, ns, "", args...) }
	run(host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	// Proxy ARP answers for 169.254.1.1 only if the host routes it out
	// of another interface: give the host a default route.
	// (A veth pair: the dummy module may be missing.)
	run(host, "ip", "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink1")
	run(host, "ip", "link", "set", "uplink0", "up")
	run(host, "ip", "link", "set", "uplink1", "up")
	run(host, "ip", "route", "add", "default", "dev", "uplink0")
	workload := func(iface, addr string) string {
		ns := netnstest.NewNamed(t, "calpol-wl").Name
		run(host, "ip", "link", "add", iface, "type", "veth", "peer", "name", "eth0", "netns", ns)
		run(host, "ip", "link", "set", iface, "up")
		run(host, "sysctl", "-qw", "net.ipv4.conf."+iface+".proxy_arp=1")
		run(host, "sysctl", "-qw", "net.ipv4.neigh."+iface+".proxy_delay=0")
		run(host, "ip", "route", "add", addr+"/32", "dev", iface)
		run(ns, "ip", "link", "set", "eth0", "up")
		run(ns, "ip", "addr", "add", addr+"/32", "dev", "eth0")
		run(ns, "ip", "route", "add", "169.254.1.1", "dev", "eth0")
		run(ns, "ip", "route", "add", "default", "via", "169.254.1.1", "dev", "eth0")
		return ns
	}
	front := workload("cali0ef24b1", "192.168.0.1")
	other := workload("cali0ef24b4", "192.168.0.4")
	unknown := workload("cali0ef24b9", "192.168.0.9")
	db := workload("cali0ef24b3", "192.168.1.1")

	in := seed001("slave1")
	for _, e := range in.Endpoints {
		e.Node = "slave1"
	}
	in.Profiles = append(in.Profiles, profile("allow-egress", nil, nil, allowAll))
	in.Endpoints = append(in.Endpoints, ep("default", "slave1-k8s-other-eth0", "slave1", "cali0ef24b4",
		map[string]string{"app": "other"}, []string{"192.168.0.4/32"}, "allow-egress"))
	var listeners []net.Listener
	for _, port := range []string{"3306", "80"} {
		inNS(t, db, func() {
			l, err := net.Listen("tcp4", "192.168.1.1:"+port)
			if err != nil {
				t.Fatal(err)
			}
			listeners = append(listeners, l)
		})
	}
	for _, l := range listeners {
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	dial := func(ns, port string) error {
		var err error
		inNS(t, ns, func() {
			var c net.Conn
			c, err = net.DialTimeout("tcp4", "192.168.1.1:"+port, 1500*time.Millisecond)
			if err == nil {
				c.Close()
			}
		})
		return err
	}
	// Control: without our table every connection succeeds, so the
	// failures below are policy's doing.
	for _, ns := range []string{front, other, unknown} {
		for _, port := range []string{"3306", "80"} {
			if err := dial(ns, port); err != nil {
				t.Fatalf("before policy: %s to database:%s: %v", ns, port, err)
			}
		}
	}
	d := Compile(in)
	inNS(t, host, func() {
		nft, err := knftables.New(knftables.InetFamily, TableName)
		if err != nil {
			t.Fatal(err)
		}
		tx := nft.NewTransaction()
		Render(tx, d)
		if err := nft.Run(context.Background(), tx); err != nil {
			t.Fatal(err)
		}
	})

	for _, tc := range []struct {
		name, ns, port string
		ok             bool
	}{
		{"frontend to database 3306", front, "3306", true},
		{"frontend to database 80", front, "80", false},
		{"other workload to database 3306", other, "3306", false},
		{"unknown cali interface to database 3306", unknown, "3306", false},
	} {
		err := dial(tc.ns, tc.port)
		if (err == nil) != tc.ok {
			t.Errorf("%s: connect error %v, want success %v", tc.name, err, tc.ok)
		}
	}
	if t.Failed() {
		t.Log(nsRun(t, host, "", "nft", "list", "table", "inet", TableName))
	}
}
