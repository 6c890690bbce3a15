package ipam

// Address arithmetic on blocks and pools, for IPv4 and IPv6.

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"iter"
	"math/big"
	"math/rand" //nolint:gosec // Upstream's block order comes from math/rand seeded by the host name.
	"net/netip"
	"strconv"
	"time"
)

// MaxBlockHostBits bounds the size of a block: 2^16 addresses. Pools allow
// block sizes 20–32 (IPv4) and 116–128 (IPv6), at most 2^12 addresses.
const MaxBlockHostBits = 16

func hostBits(p netip.Prefix) int { return p.Addr().BitLen() - p.Bits() }

// capacityOf is the number of addresses in a block-sized CIDR; ok is false
// for invalid or larger-than-block prefixes.
func capacityOf(p netip.Prefix) (int, bool) {
	if !p.IsValid() {
		return 0, false
	}
	hb := hostBits(p)
	if hb > MaxBlockHostBits {
		return 0, false
	}
	return 1 << hb, true
}

// BlockCapacity is the number of addresses in the block cidr (0 when cidr is
// invalid or larger than 2^MaxBlockHostBits addresses).
func BlockCapacity(cidr netip.Prefix) int {
	n, _ := capacityOf(cidr)
	return n
}

// NewBlock returns an empty block: every ordinal free, Unallocated 0..N-1 in
// order, no attributes, SequenceNumber = now in Unix nanoseconds. A non-empty
// affinity ("host:<node>", "virtual:<name>") also records now as the claim
// time. cidr must be a valid block (at most 2^MaxBlockHostBits addresses);
// anything else is a programming error and panics.
func NewBlock(cidr netip.Prefix, affinity string, now time.Time) *Block {
	n, ok := capacityOf(cidr)
	if !ok {
		panic(fmt.Sprintf("ipam.NewBlock: %v is not a valid block CIDR", cidr))
	}
	b := &Block{
		CIDR:                        cidr.Masked(),
		Affinity:                    affinity,
		Allocations:                 make([]*int, n),
		Unallocated:                 make([]int, n),
		Attributes:                  []AllocationAttribute{},
		SequenceNumber:              uint64(now.UnixNano()),
		SequenceNumberForAllocation: map[string]uint64{},
	}
	for i := range b.Unallocated {
		b.Unallocated[i] = i
	}
	if affinity != "" {
		t := now.UTC()
		b.AffinityClaimTime = &t
	}
	return b
}

// addrWords splits a 16-byte address into two big-endian words.
func addrWords(a netip.Addr) (hi, lo uint64) {
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

// offsetIn returns how far ip lies past the network address of p (p at most
// 64 host bits).
func offsetIn(p netip.Prefix, ip netip.Addr) (uint64, bool) {
	ip = ip.Unmap()
	if !p.IsValid() || hostBits(p) > 64 || !p.Masked().Contains(ip) {
		return 0, false
	}
	if ip.Is4() {
		base, a := p.Masked().Addr().As4(), ip.As4()
		return uint64(binary.BigEndian.Uint32(a[:]) - binary.BigEndian.Uint32(base[:])), true
	}
	_, baseLo := addrWords(p.Masked().Addr())
	_, lo := addrWords(ip)
	return lo - baseLo, true
}

// addrAt is the address off addresses past the network address of p.
func addrAt(p netip.Prefix, off uint64) (netip.Addr, bool) {
	hb := hostBits(p)
	if !p.IsValid() || hb > 64 || (hb < 64 && off >= uint64(1)<<hb) {
		return netip.Addr{}, false
	}
	base := p.Masked().Addr()
	if base.Is4() {
		b := base.As4()
		binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(b[:])+uint32(off))
		return netip.AddrFrom4(b), true
	}
	// The host part fits the low word and starts at zero: no carry.
	b := base.As16()
	binary.BigEndian.PutUint64(b[8:], binary.BigEndian.Uint64(b[8:])+off)
	return netip.AddrFrom16(b), true
}

// OrdinalOf is ip's position in b (0 = the network address); false when ip
// lies outside the block.
func OrdinalOf(b *Block, ip netip.Addr) (int, bool) {
	n, ok := capacityOf(b.CIDR)
	if !ok {
		return 0, false
	}
	off, ok := offsetIn(b.CIDR, ip)
	if !ok || off >= uint64(n) {
		return 0, false
	}
	return int(off), true
}

// IPAt is the address at ordinal in b; false when ordinal is out of range.
func IPAt(b *Block, ordinal int) (netip.Addr, bool) {
	n, ok := capacityOf(b.CIDR)
	if !ok || ordinal < 0 || ordinal >= n {
		return netip.Addr{}, false
	}
	return addrAt(b.CIDR, uint64(ordinal))
}

// BlockFor is the block of size blockSize (prefix length) holding ip; the
// zero Prefix when blockSize does not fit ip's family.
func BlockFor(ip netip.Addr, blockSize int) netip.Prefix {
	ip = ip.Unmap()
	if !ip.IsValid() || blockSize < 0 || blockSize > ip.BitLen() {
		return netip.Prefix{}
	}
	return netip.PrefixFrom(ip, blockSize).Masked()
}

// BlockSeed is the seed of host's block order: FNV-1 (32-bit) of the name,
// as upstream seeds math/rand.
func BlockSeed(host string) int64 {
	h := fnv.New32()
	_, _ = h.Write([]byte(host)) // hash writes never fail
	return int64(h.Sum32())
}

// BlocksOf yields every block of size blockSize (prefix length) in pool,
// once each, starting at a pseudo-random block and wrapping around. The start
// is drawn the way upstream's allocator draws it (math/rand seeded with
// BlockSeed(host), big.Int.Rand over the block count), so one host walks a
// pool in the same order every time and different hosts start apart. Upstream
// seeds single-address blocks (/32, /128) from the clock instead; this keeps
// the host seed so the order is always reproducible. Nothing is yielded when
// blockSize is shorter than the pool's prefix or longer than the address.
func BlocksOf(pool netip.Prefix, blockSize int, host string) iter.Seq[netip.Prefix] {
	return func(yield func(netip.Prefix) bool) {
		if !pool.IsValid() || blockSize < pool.Bits() || blockSize > pool.Addr().BitLen() {
			return
		}
		pool = pool.Masked()
		numBlocks := new(big.Int).Lsh(big.NewInt(1), uint(blockSize-pool.Bits()))
		r := rand.New(rand.NewSource(BlockSeed(host))) //nolint:gosec // reproducible order, not secrecy
		i := new(big.Int).Rand(r, numBlocks)
		base := new(big.Int).SetBytes(pool.Addr().AsSlice())
		shift := uint(pool.Addr().BitLen() - blockSize)
		byteLen := pool.Addr().BitLen() / 8
		one := big.NewInt(1)
		for n := new(big.Int); n.Cmp(numBlocks) < 0; n.Add(n, one) {
			v := new(big.Int).Lsh(i, shift)
			v.Add(v, base)
			buf := v.FillBytes(make([]byte, byteLen))
			addr, _ := netip.AddrFromSlice(buf)
			if !yield(netip.PrefixFrom(addr, blockSize)) {
				return
			}
			if i.Add(i, one); i.Cmp(numBlocks) >= 0 {
				i.SetInt64(0)
			}
		}
	}
}

// FreeCount is the number of ordinals ready to be handed out.
func FreeCount(b *Block) int { return len(b.Unallocated) }

// UsedCount is the number of ordinals with an allocation, including
// released addresses still cooling down.
func UsedCount(b *Block) int {
	n := 0
	for _, a := range b.Allocations {
		if a != nil {
			n++
		}
	}
	return n
}

// OrdinalKey is an ordinal as a key of Block.SequenceNumberForAllocation.
func OrdinalKey(ordinal int) string { return strconv.Itoa(ordinal) }
