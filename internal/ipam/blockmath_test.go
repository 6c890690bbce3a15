package ipam

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestNewBlock(t *testing.T) {
	now := time.Date(2024, 5, 1, 10, 0, 0, 7, time.UTC)
	tests := []struct {
		cidr     string
		affinity string
		size     int
	}{
		{"10.10.3.0/26", "host:n1", 64},
		{"10.10.3.7/26", "", 64}, // masked to the network
		{"10.16.0.0/20", "host:n1", 4096},
		{"10.0.0.5/32", "virtual:load-balancer", 1},
		{"fd00:1::/122", "host:n1", 64},
		{"fd00:1::9/128", "", 1},
		{"fd00:1::/116", "", 4096},
	}
	for _, tt := range tests {
		b := NewBlock(netip.MustParsePrefix(tt.cidr), tt.affinity, now)
		if b.CIDR != netip.MustParsePrefix(tt.cidr).Masked() || BlockCapacity(b.CIDR) != tt.size {
			t.Errorf("%s: cidr %v capacity %d", tt.cidr, b.CIDR, BlockCapacity(b.CIDR))
		}
		if len(b.Allocations) != tt.size || FreeCount(b) != tt.size || UsedCount(b) != 0 {
			t.Errorf("%s: %d allocations, %d free, %d used", tt.cidr, len(b.Allocations), FreeCount(b), UsedCount(b))
		}
		for i, o := range b.Unallocated {
			if o != i {
				t.Fatalf("%s: unallocated[%d] = %d", tt.cidr, i, o)
			}
		}
		if b.SequenceNumber != uint64(now.UnixNano()) || b.SequenceNumberForAllocation == nil {
			t.Errorf("%s: sequence %d %v", tt.cidr, b.SequenceNumber, b.SequenceNumberForAllocation)
		}
		if (b.AffinityClaimTime != nil) != (tt.affinity != "") || b.Affinity != tt.affinity {
			t.Errorf("%s: affinity %q claimed %v", tt.cidr, b.Affinity, b.AffinityClaimTime)
		}
	}
}

func TestNewBlockRejectsHugeCIDR(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewBlock(/8) did not panic")
		}
	}()
	NewBlock(netip.MustParsePrefix("10.0.0.0/8"), "", time.Now())
}

func TestOrdinals(t *testing.T) {
	tests := []struct {
		cidr    string
		ip      string
		ordinal int
		in      bool
	}{
		{"10.10.3.0/26", "10.10.3.0", 0, true},
		{"10.10.3.0/26", "10.10.3.63", 63, true},
		{"10.10.3.0/26", "10.10.3.64", 0, false},
		{"10.10.3.0/26", "10.10.2.255", 0, false},
		{"10.10.3.0/26", "::ffff:10.10.3.5", 5, true},
		{"10.16.0.0/20", "10.16.15.255", 4095, true},
		{"10.16.0.0/20", "10.16.1.2", 258, true},
		{"10.0.0.5/32", "10.0.0.5", 0, true},
		{"10.0.0.5/32", "10.0.0.6", 0, false},
		{"fd00:1::/122", "fd00:1::3f", 63, true},
		{"fd00:1::/122", "fd00:1::40", 0, false},
		{"fd00:1::/116", "fd00:1::fff", 4095, true},
		{"fd00:1::9/128", "fd00:1::9", 0, true},
		{"fd00:1::/122", "10.0.0.1", 0, false},
		{"10.10.3.0/26", "fd00:1::1", 0, false},
	}
	for _, tt := range tests {
		b := NewBlock(netip.MustParsePrefix(tt.cidr), "", time.Unix(0, 0))
		ip := netip.MustParseAddr(tt.ip)
		ord, ok := OrdinalOf(b, ip)
		if ok != tt.in || ord != tt.ordinal {
			t.Errorf("OrdinalOf(%s, %s) = %d, %v; want %d, %v", tt.cidr, tt.ip, ord, ok, tt.ordinal, tt.in)
		}
		if !tt.in {
			continue
		}
		back, ok := IPAt(b, ord)
		if !ok || back != ip.Unmap() {
			t.Errorf("IPAt(%s, %d) = %v, %v; want %v", tt.cidr, ord, back, ok, ip)
		}
	}
	b := NewBlock(netip.MustParsePrefix("10.10.3.0/30"), "", time.Unix(0, 0))
	for _, ord := range []int{-1, 4} {
		if ip, ok := IPAt(b, ord); ok {
			t.Errorf("IPAt(/30, %d) = %v, want out of range", ord, ip)
		}
	}
}

func TestBlockFor(t *testing.T) {
	tests := []struct {
		ip   string
		size int
		want string
	}{
		{"10.10.3.77", 26, "10.10.3.64/26"},
		{"10.10.3.77", 32, "10.10.3.77/32"},
		{"10.10.3.77", 20, "10.10.0.0/20"},
		{"fd00:1::1234", 122, "fd00:1::1200/122"},
		{"fd00:1::1234", 128, "fd00:1::1234/128"},
		{"::ffff:10.1.2.3", 24, "10.1.2.0/24"},
		{"10.1.2.3", 33, "invalid Prefix"},
	}
	for _, tt := range tests {
		if got := BlockFor(netip.MustParseAddr(tt.ip), tt.size).String(); got != tt.want {
			t.Errorf("BlockFor(%s, %d) = %s, want %s", tt.ip, tt.size, got, tt.want)
		}
	}
}

func TestBlocksOf(t *testing.T) {
	tests := []struct {
		pool  string
		size  int
		count int
	}{
		{"10.0.0.0/24", 26, 4},
		{"10.0.0.0/16", 26, 1024},
		{"10.0.0.0/20", 20, 1},
		{"10.0.0.0/30", 32, 4},
		{"fd00::/120", 122, 4},
		{"fd00::/112", 122, 1024},
		{"fd00::/126", 128, 4},
		{"10.0.0.0/26", 24, 0}, // the pool is smaller than a block
		{"10.0.0.0/24", 33, 0},
	}
	for _, tt := range tests {
		pool := netip.MustParsePrefix(tt.pool)
		var got []netip.Prefix
		for p := range BlocksOf(pool, tt.size, "node1") {
			got = append(got, p)
		}
		if len(got) != tt.count {
			t.Errorf("%s/%d: %d blocks, want %d", tt.pool, tt.size, len(got), tt.count)
			continue
		}
		seen := map[netip.Prefix]bool{}
		for i, p := range got {
			if p.Bits() != tt.size || !pool.Contains(p.Addr()) || p != p.Masked() || seen[p] {
				t.Fatalf("%s/%d: bad or repeated block %v", tt.pool, tt.size, p)
			}
			seen[p] = true
			// Consecutive blocks, wrapping from the last to the first.
			if i > 0 {
				prev := got[i-1]
				off, _ := offsetIn(pool, prev.Addr())
				next, ok := addrAt(pool, off+uint64(1)<<hostBits(prev))
				if !ok {
					next = pool.Addr()
				}
				if next != p.Addr() {
					t.Fatalf("%s/%d: %v follows %v", tt.pool, tt.size, p, prev)
				}
			}
		}
		// Same host, same order.
		again := slices.Collect(BlocksOf(pool, tt.size, "node1"))
		if !slices.Equal(got, again) {
			t.Errorf("%s/%d: order is not reproducible", tt.pool, tt.size)
		}
	}
}

func TestBlocksOfStartsDependOnHost(t *testing.T) {
	pool := netip.MustParsePrefix("10.0.0.0/16")
	starts := map[netip.Prefix]bool{}
	for _, host := range []string{"node1", "node2", "node3", "node4", "node5"} {
		for p := range BlocksOf(pool, 26, host) {
			starts[p] = true
			break
		}
	}
	if len(starts) < 4 {
		t.Errorf("5 hosts share %d start blocks in 1024", len(starts))
	}
	// A huge IPv6 pool is walked lazily.
	n := 0
	for p := range BlocksOf(netip.MustParsePrefix("fd00::/48"), 122, "node1") {
		if p.Bits() != 122 || !netip.MustParsePrefix("fd00::/48").Contains(p.Addr()) {
			t.Fatalf("bad block %v", p)
		}
		if n++; n == 3 {
			break
		}
	}
}

func TestBlockSeed(t *testing.T) {
	// FNV-1 32-bit: offset basis for the empty string, then a known value.
	tests := []struct {
		host string
		want int64
	}{
		{"", 0x811c9dc5},
		{"a", 0x050c5d7e},
	}
	for _, tt := range tests {
		if got := BlockSeed(tt.host); got != tt.want {
			t.Errorf("BlockSeed(%q) = %#x, want %#x", tt.host, got, tt.want)
		}
	}
}
