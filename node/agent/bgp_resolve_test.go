package agent

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/opencalico/calicoctl/node/bgp"
)

func TestResolveThrough(t *testing.T) {
	ipnet := func(s string) *net.IPNet {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	table := []netlink.Route{
		{Dst: nil, Gw: net.ParseIP("10.99.1.254")},                                               // default via the rack's switch
		{Dst: ipnet("10.99.1.0/24"), Scope: netlink.SCOPE_LINK},                                  // connected
		{Dst: ipnet("10.96.0.0/12"), Gw: net.ParseIP("10.99.1.12"), Protocol: bgp.RouteProtocol}, // learned service range over the node subnets
		{Dst: ipnet("10.98.0.0/16"), Gw: net.ParseIP("10.99.1.5"), Protocol: unix.RTPROT_STATIC}, // an operator's static route
		{Dst: ipnet("10.97.0.0/16"), Type: unix.RTN_BLACKHOLE},
		{Dst: ipnet("10.95.0.0/16"), MultiPath: []*netlink.NexthopInfo{{Gw: net.ParseIP("10.99.1.7")}, {Gw: net.ParseIP("10.99.1.8")}}},
		{Dst: ipnet("fd00::/64"), Scope: netlink.SCOPE_LINK},
	}
	for _, tc := range []struct {
		nh, want string
		ok       bool
	}{
		{"10.99.0.254", "10.99.1.254", true}, // not through the BGP-learned /12
		{"10.99.1.7", "10.99.1.7", true},     // on the link
		{"10.98.3.4", "10.99.1.5", true},     // static route
		{"10.97.0.1", "10.99.1.254", true},   // blackhole skipped: default
		{"10.95.0.9", "10.99.1.7", true},     // multipath: first hop
		{"fd00::9", "fd00::9", true},
		{"fd01::9", "", false}, // no v6 default
	} {
		got, ok := resolveThrough(table, netip.MustParseAddr(tc.nh))
		if ok != tc.ok || (ok && got.String() != tc.want) {
			t.Errorf("resolve %s: got %v %v, want %s %v", tc.nh, got, ok, tc.want, tc.ok)
		}
	}
}

// A kernel route change re-resolves the next hops of routes already
// programmed: the learned paths did not change, the way to them did.
func TestBGPLearnedRoutesFollowKernelRouteChanges(t *testing.T) {
	sp := newFakeSpeaker()
	sink := &sinkDataplane{fakeDataplane: &fakeDataplane{}}
	var mu sync.Mutex
	gw := netip.MustParseAddr("10.0.0.12")
	changes := make(chan struct{}, 1)
	b := newBGPRunner(bgpRunnerOptions{Node: "n1", Speaker: sp, Sink: sink, RouteChanges: changes,
		Resolver: func() NextHopResolver {
			mu.Lock()
			g := gw
			mu.Unlock()
			return func(netip.Addr) (netip.Addr, bool) { return g, true }
		}})
	b.mu.Lock()
	b.in, b.haveIn = bgp.RouteInput{NodeIPv4: netip.MustParsePrefix("10.0.0.5/24")}, true
	b.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.learnedLoop(ctx)
	sp.learn(bgp.Learned{Prefix: netip.MustParsePrefix("192.168.100.0/24"), NextHop: netip.MustParseAddr("10.1.0.254")})
	waitGw := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			sink.mu.Lock()
			rs := sink.routes[SourceBGP]
			sink.mu.Unlock()
			if len(rs) == 1 && rs[0].Gw.String() == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("BGP routes %v, want one via %s", rs, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitGw("10.0.0.12")
	mu.Lock()
	gw = netip.MustParseAddr("10.0.0.254")
	mu.Unlock()
	changes <- struct{}{}
	waitGw("10.0.0.254")
}
