package nat

import (
	"context"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"
)

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func fip(ext, in string) FloatingNAT {
	return FloatingNAT{Ext: netip.MustParseAddr(ext), Int: netip.MustParseAddr(in)}
}

func TestNewPlan(t *testing.T) {
	tests := []struct {
		name        string
		in          Desired
		sets        map[string][]string
		maps        map[string]map[string]string
		skippedSubs []string
	}{
		{
			name: "masked, deduplicated, outermost only, masq added to all",
			in: Desired{
				MasqPools: pfx("10.65.1.7/16", "10.65.0.0/16"),
				AllPools:  pfx("10.66.0.0/16", "10.66.4.0/24", "fd00:1::/48"),
			},
			sets: map[string][]string{
				"masq-pools": {"10.65.0.0/16"}, "all-pools": {"10.65.0.0/16", "10.66.0.0/16"},
				"masq-pools-v6": {}, "all-pools-v6": {"fd00:1::/48"},
			},
		},
		{
			name: "floating IPs per family, hairpin key",
			in:   Desired{FloatingIPs: []FloatingNAT{fip("fd00:9::1", "fd00:1::5"), fip("192.0.2.10", "10.65.0.5")}},
			maps: map[string]map[string]string{
				"floating-dnat":       {"192.0.2.10": "10.65.0.5"},
				"floating-snat":       {"10.65.0.5": "192.0.2.10"},
				"floating-hairpin":    {"10.65.0.5 . 10.65.0.5": "192.0.2.10"},
				"floating-dnat-v6":    {"fd00:9::1": "fd00:1::5"},
				"floating-snat-v6":    {"fd00:1::5": "fd00:9::1"},
				"floating-hairpin-v6": {"fd00:1::5 . fd00:1::5": "fd00:9::1"},
			},
		},
		{
			name: "conflicts and bad input skipped",
			in: Desired{
				MasqPools: []netip.Prefix{{}},
				FloatingIPs: []FloatingNAT{
					fip("192.0.2.10", "10.65.0.5"),
					fip("192.0.2.10", "10.65.0.6"), // ext taken
					fip("192.0.2.11", "10.65.0.5"), // int already has one
					fip("192.0.2.12", "fd00::1"),   // family mismatch
					{Ext: netip.MustParseAddr("192.0.2.13")},
					fip("192.0.2.10", "10.65.0.5"), // exact duplicate: silently merged
				},
			},
			maps: map[string]map[string]string{"floating-dnat": {"192.0.2.10": "10.65.0.5"}},
			skippedSubs: []string{
				"invalid prefix", "192.0.2.10 already maps to 10.65.0.5",
				"10.65.0.5 already has floating IP 192.0.2.10", "address families differ", "invalid address",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPlan(tt.in)
			for name, want := range tt.sets {
				if got := p.Sets[name]; !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
					t.Errorf("set %s = %v, want %v", name, got, want)
				}
			}
			for name, want := range tt.maps {
				if got := p.Maps[name]; !reflect.DeepEqual(got, want) {
					t.Errorf("map %s = %v, want %v", name, got, want)
				}
			}
			if len(p.Skipped) != len(tt.skippedSubs) {
				t.Fatalf("skipped = %q, want %d entries", p.Skipped, len(tt.skippedSubs))
			}
			for i, sub := range tt.skippedSubs {
				if !strings.Contains(p.Skipped[i], sub) {
					t.Errorf("skipped[%d] = %q, want it to contain %q", i, p.Skipped[i], sub)
				}
			}
		})
	}
}

// countingNFT records the transactions run against a knftables.Interface.
type countingNFT struct {
	knftables.Interface
	txs []string
}

func (c *countingNFT) Run(ctx context.Context, tx *knftables.Transaction) error {
	c.txs = append(c.txs, tx.String())
	return c.Interface.Run(ctx, tx)
}

const golden = `add table inet calico-nat { comment "Calico NAT: natOutgoing masquerade and floating IPs (owned by calicoctl node)" ; }
add chain inet calico-nat output { type nat hook output priority -100 ; comment "floating IP DNAT for local traffic" ; }
add chain inet calico-nat postrouting { type nat hook postrouting priority 100 ; comment "floating IP SNAT and natOutgoing masquerade" ; }
add chain inet calico-nat prerouting { type nat hook prerouting priority -100 ; comment "floating IP DNAT" ; }
add set inet calico-nat all-pools { type ipv4_addr ; flags interval ; comment "all IP pools" ; }
add set inet calico-nat all-pools-v6 { type ipv6_addr ; flags interval ; comment "all IP pools" ; }
add set inet calico-nat masq-pools { type ipv4_addr ; flags interval ; comment "IP pools with natOutgoing" ; }
add set inet calico-nat masq-pools-v6 { type ipv6_addr ; flags interval ; comment "IP pools with natOutgoing" ; }
add map inet calico-nat floating-dnat { type ipv4_addr : ipv4_addr ; comment "floating IP -> workload IP" ; }
add map inet calico-nat floating-dnat-v6 { type ipv6_addr : ipv6_addr ; comment "floating IP -> workload IP" ; }
add map inet calico-nat floating-hairpin { type ipv4_addr . ipv4_addr : ipv4_addr ; comment "workload IP . workload IP -> floating IP" ; }
add map inet calico-nat floating-hairpin-v6 { type ipv6_addr . ipv6_addr : ipv6_addr ; comment "workload IP . workload IP -> floating IP" ; }
add map inet calico-nat floating-snat { type ipv4_addr : ipv4_addr ; comment "workload IP -> floating IP" ; }
add map inet calico-nat floating-snat-v6 { type ipv6_addr : ipv6_addr ; comment "workload IP -> floating IP" ; }
add rule inet calico-nat output dnat ip to ip daddr map @floating-dnat comment "floating IP to workload"
add rule inet calico-nat output dnat ip6 to ip6 daddr map @floating-dnat-v6 comment "floating IP to workload"
add rule inet calico-nat postrouting snat ip to ip saddr . ip daddr map @floating-hairpin comment "workload to its own floating IP"
add rule inet calico-nat postrouting ip daddr != @all-pools snat ip to ip saddr map @floating-snat comment "workload with a floating IP to outside the pools"
add rule inet calico-nat postrouting ip saddr @masq-pools ip daddr != @all-pools masquerade comment "natOutgoing: pool to outside the pools"
add rule inet calico-nat postrouting snat ip6 to ip6 saddr . ip6 daddr map @floating-hairpin-v6 comment "workload to its own floating IP"
add rule inet calico-nat postrouting ip6 daddr != @all-pools-v6 snat ip6 to ip6 saddr map @floating-snat-v6 comment "workload with a floating IP to outside the pools"
add rule inet calico-nat postrouting ip6 saddr @masq-pools-v6 ip6 daddr != @all-pools-v6 masquerade comment "natOutgoing: pool to outside the pools"
add rule inet calico-nat prerouting dnat ip to ip daddr map @floating-dnat comment "floating IP to workload"
add rule inet calico-nat prerouting dnat ip6 to ip6 daddr map @floating-dnat-v6 comment "floating IP to workload"
add element inet calico-nat all-pools { 10.65.0.0/16 }
add element inet calico-nat all-pools { 10.66.0.0/16 }
add element inet calico-nat all-pools-v6 { fd00::/48 }
add element inet calico-nat masq-pools { 10.65.0.0/16 }
add element inet calico-nat floating-dnat { 192.0.2.10 : 10.65.0.5 }
add element inet calico-nat floating-hairpin { 10.65.0.5 . 10.65.0.5 : 192.0.2.10 }
add element inet calico-nat floating-snat { 10.65.0.5 : 192.0.2.10 }
`

var desired1 = Desired{
	MasqPools:   pfx("10.65.0.0/16"),
	AllPools:    pfx("10.66.0.0/16", "fd00::/48"),
	FloatingIPs: []FloatingNAT{fip("192.0.2.10", "10.65.0.5")},
}

func newFakeSyncer(t *testing.T) (*Syncer, *knftables.Fake, *countingNFT) {
	t.Helper()
	fake := knftables.NewFake(knftables.InetFamily, TableName)
	cnt := &countingNFT{Interface: fake}
	s, err := NewSyncer(Config{}, WithInterface(cnt), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	return s, fake, cnt
}

func TestSyncerGoldenDump(t *testing.T) {
	s, fake, cnt := newFakeSyncer(t)
	if err := s.Apply(context.Background(), desired1); err != nil {
		t.Fatal(err)
	}
	if got := fake.Dump(); got != golden {
		t.Errorf("dump mismatch:\n%s\nwant:\n%s", got, golden)
	}
	if len(cnt.txs) != 1 {
		t.Errorf("transactions = %d, want 1", len(cnt.txs))
	}
}

func TestSyncerIncremental(t *testing.T) {
	steps := []struct {
		name     string
		d        Desired
		wantTxs  int      // transactions added by this step
		contains []string // in the step's transaction
		absent   []string
	}{
		{name: "initial", d: desired1, wantTxs: 1, contains: []string{"add rule", "flush chain"}},
		{name: "same again is a no-op", d: desired1, wantTxs: 0},
		{
			name: "pool change touches elements only",
			d: Desired{
				MasqPools:   pfx("10.65.0.0/16", "10.67.0.0/16"),
				AllPools:    pfx("fd00::/48"),
				FloatingIPs: []FloatingNAT{fip("192.0.2.10", "10.65.0.9")},
			},
			wantTxs: 1,
			contains: []string{
				"delete element inet calico-nat all-pools { 10.66.0.0/16 }",
				"add element inet calico-nat masq-pools { 10.67.0.0/16 }",
				"delete element inet calico-nat floating-dnat { 192.0.2.10 }",
				"add element inet calico-nat floating-dnat { 192.0.2.10 : 10.65.0.9 }",
				"delete element inet calico-nat floating-snat { 10.65.0.5 }",
			},
			absent: []string{"rule", "chain", "flush", "masq-pools { 10.65.0.0/16 }"},
		},
	}
	s, fake, cnt := newFakeSyncer(t)
	for _, st := range steps {
		before := len(cnt.txs)
		if err := s.Apply(context.Background(), st.d); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := len(cnt.txs) - before; got != st.wantTxs {
			t.Fatalf("%s: %d transactions, want %d", st.name, got, st.wantTxs)
		}
		if st.wantTxs == 0 {
			continue
		}
		tx := cnt.txs[len(cnt.txs)-1]
		for _, c := range st.contains {
			if !strings.Contains(tx, c) {
				t.Errorf("%s: transaction lacks %q:\n%s", st.name, c, tx)
			}
		}
		for _, a := range st.absent {
			if strings.Contains(tx, a) {
				t.Errorf("%s: transaction has %q:\n%s", st.name, a, tx)
			}
		}
	}
	// The result equals a fresh write of the final state.
	s2, fake2, _ := newFakeSyncer(t)
	if err := s2.Apply(context.Background(), steps[len(steps)-1].d); err != nil {
		t.Fatal(err)
	}
	if fake.Dump() != fake2.Dump() {
		t.Errorf("incremental result differs from a fresh write:\n%s\nvs\n%s", fake.Dump(), fake2.Dump())
	}
}

func TestSyncerAdoptsExistingTable(t *testing.T) {
	s, fake, cnt := newFakeSyncer(t)
	// A previous run left our table with an extra chain, an extra set, a
	// stale element and a stray rule.
	prev := golden + `add chain inet calico-nat old-chain
add set inet calico-nat old-set { type ipv4_addr ; }
add rule inet calico-nat old-chain ip saddr @old-set counter
add rule inet calico-nat postrouting counter
add element inet calico-nat masq-pools { 10.99.0.0/16 }
`
	if err := fake.ParseDump(prev); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(context.Background(), desired1); err != nil {
		t.Fatal(err)
	}
	if len(cnt.txs) != 1 {
		t.Fatalf("adoption took %d transactions, want 1", len(cnt.txs))
	}
	if got := fake.Dump(); got != golden {
		t.Errorf("after adoption:\n%s\nwant:\n%s", got, golden)
	}
}

func TestSyncerRecoversWhenTableVanished(t *testing.T) {
	s, fake, _ := newFakeSyncer(t)
	ctx := context.Background()
	if err := s.Apply(ctx, Desired{MasqPools: pfx("10.65.0.0/16")}); err != nil {
		t.Fatal(err)
	}
	// Someone deletes our table behind our back.
	tx := fake.NewTransaction()
	tx.Delete(&knftables.Table{})
	if err := fake.Run(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, desired1); err != nil {
		t.Fatal(err)
	}
	if got := fake.Dump(); got != golden {
		t.Errorf("after recovery:\n%s\nwant:\n%s", got, golden)
	}
}

func TestSyncerCleanup(t *testing.T) {
	s, fake, _ := newFakeSyncer(t)
	ctx := context.Background()
	for i, apply := range []bool{false, true} { // cleanup without and with a table
		if apply {
			if err := s.Apply(ctx, desired1); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Cleanup(ctx); err != nil {
			t.Fatalf("cleanup %d: %v", i, err)
		}
		if fake.Table != nil {
			t.Fatalf("cleanup %d: table still present:\n%s", i, fake.Dump())
		}
	}
	// After Cleanup the next Apply rewrites everything.
	if err := s.Apply(ctx, desired1); err != nil {
		t.Fatal(err)
	}
	if got := fake.Dump(); got != golden {
		t.Errorf("after cleanup+apply:\n%s", got)
	}
}
