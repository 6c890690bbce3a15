package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/node/plan"
	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

// bigModel is a model of nodes nodes with one /26 block each and weps
// workload endpoints spread over them.
func bigModel(nodes, weps int) *state.Model {
	m := state.NewModel()
	for i := range nodes {
		n := &resources.Node{}
		n.Name = fmt.Sprintf("node-%05d", i)
		n.Spec.BGP = &resources.NodeBGPSpec{IPv4Address: fmt.Sprintf("10.%d.%d.%d/8", i>>16, (i>>8)&255, i&255)}
		n.Spec.IPv4VXLANTunnelAddr = fmt.Sprintf("100.126.%d.%d", i>>8, i&255)
		n.Spec.VXLANTunnelMACAddr = fmt.Sprintf("66:00:00:00:%02x:%02x", i>>8, i&255)
		m.SetNode(n)
		base := netip.AddrFrom4([4]byte{100, byte(64 + i>>10), byte(i >> 2), byte(i&3) << 6})
		m.SetBlock(&ipam.Block{CIDR: netip.PrefixFrom(base, 26), Affinity: "host:" + n.Name})
	}
	p := &resources.IPPool{}
	p.Name = "bench"
	p.Spec = resources.IPPoolSpec{CIDR: "100.64.0.0/10", VXLANMode: resources.EncapAlways}
	m.SetPool(p)
	for i := range weps {
		m.SetWorkloadEndpoint(bigModelWEP(i, nodes))
	}
	return m
}

// bigModelWEP is bigModel's workload endpoint i.
func bigModelWEP(i, nodes int) *resources.WorkloadEndpoint {
	node := i % nodes
	base := netip.AddrFrom4([4]byte{100, byte(64 + node>>10), byte(node >> 2), byte(node&3)<<6 | byte(1+i/nodes%60)})
	w := &resources.WorkloadEndpoint{}
	w.Namespace = "default"
	w.Name = fmt.Sprintf("node--%05d-k8s-pod--%06d-eth0", node, i)
	w.Spec = resources.WorkloadEndpointSpec{Node: fmt.Sprintf("node-%05d", node), Pod: fmt.Sprintf("pod-%06d", i),
		InterfaceName: fmt.Sprintf("cali%06d", i), IPNetworks: []string{base.String() + "/32"}}
	return w
}

// BenchmarkFollowOneChange: what one watch event costs an agent whose model
// holds 5,000 nodes and 50,000 workload endpoints: fold the event into the
// model (Event); rebuild the snapshot from the model (EventAndSnapshot, what
// the agent did before issue 9 item 5); fold the change into the
// incremental plan input and compute the plan, as the agent does
// (EventAndPlan); the same for a block appearing and going (BlockAndPlan,
// which looks for the endpoints inside it).
func BenchmarkFollowOneChange(b *testing.B) {
	m := bigModel(5000, 50000)
	w := bigModelWEP(42, 5000) // on node-00042
	alt := []string{"100.64.10.129/32", "100.64.10.130/32"}
	b.Run("Event", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			c := *w
			c.Spec.IPNetworks = alt[i%2 : i%2+1]
			m.SetWorkloadEndpoint(&c)
		}
	})
	b.Run("EventAndSnapshot", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			c := *w
			c.Spec.IPNetworks = alt[i%2 : i%2+1]
			m.SetWorkloadEndpoint(&c)
			if s := BuildSnapshot(m, "node-00001"); len(s.Routes.Blocks) != 5000 {
				b.Fatalf("%d blocks in the snapshot", len(s.Routes.Blocks))
			}
		}
	})
	in := newPlanInput("node-00001", FelixSettings{})
	facts := plan.HostFacts{NodeIP: netip.MustParseAddr("10.0.0.2"), HostMTU: 1500}
	in.update(m)
	if d := in.inc.Plan(facts); len(d.Routes.Routes) != 5010 {
		b.Fatalf("%d routes in the plan", len(d.Routes.Routes))
	}
	b.Run("EventAndPlan", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			c := *w
			c.Spec.IPNetworks = alt[i%2 : i%2+1]
			m.SetWorkloadEndpoint(&c)
			in.update(m)
			if d := in.inc.Plan(facts); len(d.Routes.Routes) != 5010 {
				b.Fatalf("%d routes in the plan", len(d.Routes.Routes))
			}
		}
	})
	b.Run("BlockAndPlan", func(b *testing.B) {
		b.ReportAllocs()
		cidr := netip.MustParsePrefix("100.127.0.0/26")
		for i := 0; b.Loop(); i++ {
			if i%2 == 0 {
				m.SetBlock(&ipam.Block{CIDR: cidr, Affinity: "host:node-00042"})
			} else {
				m.DeleteBlock(cidr)
			}
			in.update(m)
			if d := in.inc.Plan(facts); len(d.Routes.Routes) != 5010+1-i%2 {
				b.Fatalf("%d routes in the plan", len(d.Routes.Routes))
			}
		}
	})
	if in.rebuilds != 1 {
		b.Fatalf("%d rebuilds from the whole model", in.rebuilds)
	}
}

// BenchmarkBlockToSnapshot: from a block written to embedded etcd to the
// snapshot built from the follower's model carrying its route (the write,
// the watch event, the model update and BuildSnapshot). It reports the
// median and 99th percentile of that latency (p50-ms, p99-ms); run it with
// -benchtime 1000x or more for a meaningful p99.
func BenchmarkBlockToSnapshot(b *testing.B) {
	e := benchCluster(b, 100, 1)
	f, err := state.New(state.Config{Datastore: e.ds, Blocks: e.store, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go f.Run(ctx)
	for !f.Status().Synced {
		<-f.Changed()
	}
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		begin := time.Now()
		a := uint32(100)<<24 | uint32(100)<<16 + uint32(i)<<6 // 100.100.0.0 + i /26s
		cidr := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), 26)
		if _, err := e.store.CreateBlock(ctx, &ipam.Block{CIDR: cidr, Affinity: "host:node-0001",
			Allocations: make([]*int, 64), Unallocated: make([]int, 64)}); err != nil {
			b.Fatal(err)
		}
		for {
			var found bool
			f.Read(func(m *state.Model, _ uint64) {
				if m.Block(cidr) != nil {
					s := BuildSnapshot(m, "local")
					for _, bi := range s.Routes.Blocks {
						found = found || bi.CIDR == cidr
					}
				}
			})
			if found {
				break
			}
			<-f.Changed()
		}
		lat = append(lat, time.Since(begin))
	}
	reportPercentiles(b, lat)
}

// reportPercentiles reports the median and 99th percentile of lat in
// milliseconds.
func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
