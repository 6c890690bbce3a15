package speaker

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/node/bgp"
)

// An export filter added to an established session withdraws what it
// rejects (by resetting the session); removing it advertises the path
// again.
func TestExportFilterOnLiveSession(t *testing.T) {
	a1, a2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	p1, p2 := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.2")
	s1, s2 := newTestSpeaker(t), newTestSpeaker(t)
	ctx := context.Background()
	if err := s2.Apply(ctx, meshDesired(a2, a1, p2, p1, true)); err != nil {
		t.Fatal(err)
	}
	d := meshDesired(a1, a2, p1, p2, false, "10.244.1.0/26", "10.244.9.0/26")
	if err := s1.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both paths", 20*time.Second, func() bool {
		return hasLearned(s2, "10.244.9.0/26", a1) && hasLearned(s2, "10.244.1.0/26", a1)
	})
	d.Peers[0].Filters = []string{"f"}
	d.Filters = []bgp.PeerFilter{{Peer: a2, Filters: []bgp.Filter{{Name: "f",
		ExportV4: []bgp.FilterRule{{Action: "Reject", CIDR: netip.MustParsePrefix("10.244.9.0/26"), MatchOperator: "In", PrefixLenMin: 26, PrefixLenMax: 32}}}}}}
	if err := s1.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	// gobgp v3 cannot withdraw on a soft reset: the session is reset.
	waitFor(t, "the withdrawal, the other path kept", 20*time.Second, func() bool {
		return !hasLearned(s2, "10.244.9.0/26", netip.Addr{}) && hasLearned(s2, "10.244.1.0/26", a1)
	})
	d.Peers[0].Filters, d.Filters = nil, nil
	if err := s1.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the path again", 10*time.Second, func() bool { return hasLearned(s2, "10.244.9.0/26", a1) })
}
