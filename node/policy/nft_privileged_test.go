package policy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
	"sigs.k8s.io/knftables"

	"github.com/opencalico/calicoctl/internal/netnstest"
)

func requirePrivileged(t *testing.T) {
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

// inNS runs fn on this goroutine's OS thread switched into the named
// namespace (child processes such as nft inherit it), then switches back.
func inNS(t *testing.T, name string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(fmt.Sprintf("cannot restore network namespace: %v", err))
		}
	}()
	fn()
}

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
