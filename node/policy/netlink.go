package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/google/nftables"
)

// A change of set membership only (an endpoint relabelled, a remote
// endpoint added or removed) is written through netlink in one batch
// instead of the nft CLI: `nft -f` loads the cache of our whole table
// before it writes anything (tens of milliseconds in a big table), a
// netlink batch of a few elements takes well under one.

// setElementOp is the element changes of one set: deletions first, then
// additions (an interval set rejects an addition that overlaps an element
// it still has).
type setElementOp struct {
	set      Set
	del, add []string
}

// elementWriter writes set element changes to table inet TableName in one
// batch (all or nothing).
type elementWriter interface {
	WriteElements(ops []setElementOp) error
}

// setElementDiff returns the element changes that turn old into new, and
// false when anything else differs (a chain, a map, a set added, removed
// or redefined).
func setElementDiff(old, new Desired) ([]setElementOp, bool) {
	if len(old.Chains) != len(new.Chains) || len(old.Sets) != len(new.Sets) || len(old.Maps) != len(new.Maps) {
		return nil, false
	}
	for i := range new.Chains {
		o, n := old.Chains[i], new.Chains[i]
		if o.Name != n.Name || o.Hook != n.Hook || o.Priority != n.Priority || o.Comment != n.Comment || !slices.Equal(o.Rules, n.Rules) {
			return nil, false
		}
	}
	for i := range new.Maps {
		o, n := old.Maps[i], new.Maps[i]
		if o.Name != n.Name || o.Type != n.Type || o.Comment != n.Comment || !slices.Equal(o.Elements, n.Elements) {
			return nil, false
		}
	}
	var ops []setElementOp
	for i := range new.Sets {
		o, n := old.Sets[i], new.Sets[i]
		if o.Name != n.Name || o.Type != n.Type || o.Interval != n.Interval || o.Comment != n.Comment {
			return nil, false
		}
		if slices.Equal(o.Elements, n.Elements) {
			continue
		}
		op := setElementOp{set: n}
		was, is := elementSet(o.Elements), elementSet(n.Elements)
		for _, e := range o.Elements {
			if !is[e] {
				op.del = append(op.del, e)
			}
		}
		for _, e := range n.Elements {
			if !was[e] {
				op.add = append(op.add, e)
			}
		}
		ops = append(ops, op)
	}
	return ops, true
}

// netlinkElements is the elementWriter on a google/nftables connection.
type netlinkElements struct {
	conn  *nftables.Conn
	table *nftables.Table
	// broken: a batch failed to queue; the connection may hold part of
	// it, so it is not used again.
	broken bool
}

// newNetlinkElements opens a lasting netlink connection in the calling
// thread's network namespace.
func newNetlinkElements() (*netlinkElements, error) {
	conn, err := nftables.New(nftables.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("opening an nftables netlink connection: %w", err)
	}
	return &netlinkElements{conn: conn, table: &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}}, nil
}

// WriteElements encodes every change first (nothing is sent when one
// cannot be encoded), then sends them in one batch.
func (n *netlinkElements) WriteElements(ops []setElementOp) error {
	type batch struct {
		set      *nftables.Set
		del, add []nftables.SetElement
	}
	if n.broken {
		return errors.New("netlink connection unusable after a failed batch")
	}
	var batches []batch
	for _, op := range ops {
		del, err := encodeElements(op.set, op.del)
		if err != nil {
			return err
		}
		add, err := encodeElements(op.set, op.add)
		if err != nil {
			return err
		}
		batches = append(batches, batch{&nftables.Set{Table: n.table, Name: op.set.Name, Interval: op.set.Interval}, del, add})
	}
	for _, b := range batches {
		if len(b.del) > 0 {
			if err := n.conn.SetDeleteElements(b.set, b.del); err != nil {
				n.broken = true
				return fmt.Errorf("deleting elements of set %s: %w", b.set.Name, err)
			}
		}
	}
	for _, b := range batches {
		if len(b.add) > 0 {
			if err := n.conn.SetAddElements(b.set, b.add); err != nil {
				n.broken = true
				return fmt.Errorf("adding elements to set %s: %w", b.set.Name, err)
			}
		}
	}
	if err := n.conn.Flush(); err != nil {
		return fmt.Errorf("writing set elements of table inet %s through netlink: %w", TableName, err)
	}
	return nil
}

var errUnencodable = errors.New("element not encodable for netlink")

// encodeElements encodes elements (in Desired's syntax) of set s as the
// kernel keys nft would send.
func encodeElements(s Set, elems []string) ([]nftables.SetElement, error) {
	var out []nftables.SetElement
	for _, e := range elems {
		switch {
		case s.Interval && (s.Type == "ipv4_addr" || s.Type == "ipv6_addr"):
			start, end, err := intervalKeys(e, s.Type == "ipv6_addr")
			if err != nil {
				return nil, fmt.Errorf("set %s element %q: %w", s.Name, e, err)
			}
			out = append(out, nftables.SetElement{Key: start}, nftables.SetElement{Key: end, IntervalEnd: true})
		case !s.Interval && (s.Type == "ipv4_addr . inet_proto . inet_service" || s.Type == "ipv6_addr . inet_proto . inet_service"):
			key, err := namedPortKey(e, s.Type == "ipv6_addr . inet_proto . inet_service")
			if err != nil {
				return nil, fmt.Errorf("set %s element %q: %w", s.Name, e, err)
			}
			out = append(out, nftables.SetElement{Key: key})
		default:
			return nil, fmt.Errorf("set %s of type %q: %w", s.Name, s.Type, errUnencodable)
		}
	}
	return out, nil
}

// intervalKeys is the half-open range [start, end) of a prefix or single
// address: the start key and the key of the interval-end element. A range
// reaching the top of the address space has no end key in nft's encoding;
// it is left to the CLI.
func intervalKeys(e string, v6 bool) (start, end []byte, err error) {
	p, err := netip.ParsePrefix(e)
	if err != nil {
		a, err2 := netip.ParseAddr(e)
		if err2 != nil {
			return nil, nil, fmt.Errorf("%w: not a prefix or address", errUnencodable)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	p = p.Masked()
	if !p.IsValid() || p.Addr().Is6() != v6 || p.Addr().Is4In6() {
		return nil, nil, fmt.Errorf("%w: wrong family", errUnencodable)
	}
	first := p.Addr().AsSlice()
	last := slices.Clone(first)
	bits := p.Bits()
	for i := range last {
		// Set the host bits of byte i.
		hostBits := max(0, min(8, (i+1)*8-bits))
		last[i] |= byte(1<<hostBits - 1)
	}
	// end = last + 1
	endKey := slices.Clone(last)
	for i := len(endKey) - 1; i >= 0; i-- {
		endKey[i]++
		if endKey[i] != 0 {
			return first, endKey, nil
		}
	}
	return nil, nil, fmt.Errorf("%w: range ends at the top of the address space", errUnencodable)
}

// namedPortKey encodes "addr . proto . port" as a concatenation: each
// field padded to a multiple of 4 bytes (inet_proto 1 byte, inet_service
// 2 bytes big-endian).
func namedPortKey(e string, v6 bool) ([]byte, error) {
	parts := strings.Split(e, " . ")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: not addr . proto . port", errUnencodable)
	}
	a, err := netip.ParseAddr(parts[0])
	if err != nil || a.Is6() != v6 || a.Is4In6() {
		return nil, fmt.Errorf("%w: bad address", errUnencodable)
	}
	var proto uint8
	switch parts[1] {
	case "icmp":
		proto = 1
	case "tcp":
		proto = 6
	case "udp":
		proto = 17
	default:
		n, err := strconv.ParseUint(parts[1], 10, 8)
		if err != nil {
			return nil, fmt.Errorf("%w: bad protocol", errUnencodable)
		}
		proto = uint8(n)
	}
	port, err := strconv.ParseUint(parts[2], 10, 16)
	if err != nil {
		return nil, fmt.Errorf("%w: bad port", errUnencodable)
	}
	key := append(a.AsSlice(), proto, 0, 0, 0, byte(port>>8), byte(port), 0, 0)
	return key, nil
}
