package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/opencalico/calicoctl/datastore"
)

// Every error below names the limit that was hit in one line, so a CNI
// failure or a CLI message tells the operator what to change. Match them with
// errors.As; the ones that are conflicts or missing objects also match the
// datastore sentinels with errors.Is.

// ErrInvalidArgument is wrapped by errors about malformed requests.
var ErrInvalidArgument = errors.New("invalid argument")

// PoolFullError: the eligible pools of one family cannot supply the request.
type PoolFullError struct {
	Family    int      // 4 or 6
	Pools     []string // "name (cidr)" of each pool searched
	Requested int
	Free      int // addresses that were free for this request
}

func (e *PoolFullError) Error() string {
	return fmt.Sprintf("IPv%d pools exhausted: requested %d address(es), only %d free (pools: %s)",
		e.Family, e.Requested, e.Free, joinOrNone(e.Pools))
}

// PoolDisabledError: an explicitly requested (or addressed) pool is disabled.
type PoolDisabledError struct {
	Pool string
	CIDR netip.Prefix
}

func (e *PoolDisabledError) Error() string {
	return fmt.Sprintf("IP pool %s (%s) is disabled", e.Pool, e.CIDR)
}

// PoolNotFoundError: an explicitly requested pool does not exist.
type PoolNotFoundError struct {
	CIDR netip.Prefix
}

func (e *PoolNotFoundError) Error() string {
	return fmt.Sprintf("requested IP pool %s does not exist", e.CIDR)
}

// Unwrap lets errors.Is(err, datastore.ErrNotFound) match.
func (e *PoolNotFoundError) Unwrap() error { return datastore.ErrNotFound }

// PoolUseError: a pool does not allow the intended use.
type PoolUseError struct {
	Pool string
	CIDR netip.Prefix
	Use  string
}

func (e *PoolUseError) Error() string {
	return fmt.Sprintf("IP pool %s (%s) does not allow use %s", e.Pool, e.CIDR, e.Use)
}

// NoMatchingPoolError: no enabled pool of the family is usable by the node.
type NoMatchingPoolError struct {
	Family int
	Node   string
	// Pools lists the pools considered and why each was skipped.
	Pools []string
}

func (e *NoMatchingPoolError) Error() string {
	if len(e.Pools) == 0 {
		return fmt.Sprintf("no IPv%d pool is configured for node %q", e.Family, e.Node)
	}
	return fmt.Sprintf("no IPv%d pool is usable by node %q (pools: %s)", e.Family, e.Node, strings.Join(e.Pools, "; "))
}

// MaxBlocksError: the host already holds as many blocks as it may.
// When Requested is set, the request was refused before anything was claimed
// (Blocks is then what the host holds, Available what it could get).
type MaxBlocksError struct {
	Host       string
	Blocks     int
	Max        int
	Requested  int
	Available  int
	Borrowable int // of Available, free addresses in other blocks
}

func (e *MaxBlocksError) Error() string {
	if e.Requested > 0 {
		return fmt.Sprintf("host %q may hold at most %d blocks (max blocks per host; it holds %d): requested %d address(es), only %d available (%d of them borrowable from other blocks)",
			e.Host, e.Max, e.Blocks, e.Requested, e.Available, e.Borrowable)
	}
	return fmt.Sprintf("host %q reached max blocks per host (%d of %d) and cannot borrow", e.Host, e.Blocks, e.Max)
}

// StrictAffinityError: the host's blocks are full and strict affinity forbids
// borrowing from other hosts' blocks.
// Requested and Available are set when the request was refused before
// anything was claimed.
type StrictAffinityError struct {
	Host      string
	Free      int // free addresses in blocks affine to other hosts
	Requested int
	Available int
}

func (e *StrictAffinityError) Error() string {
	if e.Requested > 0 {
		return fmt.Sprintf("strict affinity forbids borrowing: requested %d address(es) for host %q, only %d available in its blocks and the blocks it may claim (%d free in other hosts' blocks)",
			e.Requested, e.Host, e.Available, e.Free)
	}
	return fmt.Sprintf("strict affinity forbids borrowing: host %q has no free address in its blocks (%d free in other hosts' blocks)", e.Host, e.Free)
}

// NotInPoolError: the address lies outside every configured pool.
type NotInPoolError struct {
	IP netip.Addr
}

func (e *NotInPoolError) Error() string {
	return fmt.Sprintf("address %s is outside every IP pool", e.IP)
}

// AlreadyAssignedError: the address is taken.
type AlreadyAssignedError struct {
	IP     netip.Addr
	Handle string // "" when the allocation has no handle
}

func (e *AlreadyAssignedError) Error() string {
	if e.Handle == "" {
		return fmt.Sprintf("address %s is already assigned (no handle)", e.IP)
	}
	return fmt.Sprintf("address %s is already assigned to handle %q", e.IP, e.Handle)
}

// Unwrap lets errors.Is(err, datastore.ErrExists) match.
func (e *AlreadyAssignedError) Unwrap() error { return datastore.ErrExists }

// NotAssignedError: the address is not allocated.
type NotAssignedError struct {
	IP netip.Addr
}

func (e *NotAssignedError) Error() string {
	return fmt.Sprintf("IP address %s is not assigned", e.IP)
}

// Unwrap lets errors.Is(err, datastore.ErrNotFound) match.
func (e *NotAssignedError) Unwrap() error { return datastore.ErrNotFound }

// StaleReleaseError: the release names an allocation that no longer exists
// (the address was freed and handed out again since).
type StaleReleaseError struct {
	IP        netip.Addr
	Requested uint64
	Current   uint64
}

func (e *StaleReleaseError) Error() string {
	return fmt.Sprintf("release of %s refused: sequence number %d is stale (allocation has %d)", e.IP, e.Requested, e.Current)
}

// Unwrap lets errors.Is(err, datastore.ErrConflict) match.
func (e *StaleReleaseError) Unwrap() error { return datastore.ErrConflict }

// HandleMismatchError: the release names a different handle than the
// allocation's.
type HandleMismatchError struct {
	IP        netip.Addr
	Requested string
	Current   string
}

func (e *HandleMismatchError) Error() string {
	return fmt.Sprintf("release of %s refused: it belongs to handle %q, not %q", e.IP, e.Current, e.Requested)
}

// Unwrap lets errors.Is(err, datastore.ErrConflict) match.
func (e *HandleMismatchError) Unwrap() error { return datastore.ErrConflict }

// RetriesExhaustedError: a compare-and-swap kept losing races.
type RetriesExhaustedError struct {
	Op       string
	Attempts int
	Last     error
}

func (e *RetriesExhaustedError) Error() string {
	return fmt.Sprintf("%s: gave up after %d conflicting attempts: %v", e.Op, e.Attempts, e.Last)
}

// Unwrap exposes the last conflict.
func (e *RetriesExhaustedError) Unwrap() error { return e.Last }

func joinOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
