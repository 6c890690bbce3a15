package policy

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/opencalico/calicoctl/internal/netnstest"
	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

// Issue 11, item 6: a cluster of 5,000 workload endpoints (100 of them on
// this node) and 1,000 policies. Results and commands: docs/benchmarks.md.
//
//	go test -run '^$' -bench . -benchmem ./node/policy/
//
// The Privileged benchmarks write to the kernel through the nft CLI in a
// scratch namespace and skip unless root.

const (
	benchNode       = "node-0"
	benchNamespaces = 50
	benchApps       = 20 // per namespace
	benchEndpoints  = 5000
	benchNPs        = 700
	benchGNPs       = 300
)

var benchTiers = []string{"frontend", "backend", "db"}

func benchApp(ns, app int) string { return fmt.Sprintf("app-%d-%d", ns, app) }

// benchEndpoint is endpoint i: namespace i%50, app (i/50)%20, replica
// i/1000; replica 0 of the apps with (ns+app)%10 == 0 is on this node (100
// endpoints over every namespace), the rest on 49 other nodes.
func benchEndpoint(i int) *state.Endpoint {
	ns, app, replica := i%benchNamespaces, (i/benchNamespaces)%benchApps, i/(benchNamespaces*benchApps)
	node := fmt.Sprintf("node-%d", 1+i%49)
	if replica == 0 && (ns+app)%10 == 0 {
		node = benchNode
	}
	nsName := fmt.Sprintf("ns-%d", ns)
	a := [4]byte{10, 64 + byte(i>>16), byte(i >> 8), byte(i)}
	return &state.Endpoint{
		Key:           resources.Key{Kind: "WorkloadEndpoint", Namespace: nsName, Name: fmt.Sprintf("%s-k8s-%s-%d-eth0", node, benchApp(ns, app), replica)},
		Node:          node,
		InterfaceName: fmt.Sprintf("cali%011x", i),
		Labels: map[string]string{
			"app":                            benchApp(ns, app),
			"tier":                           benchTiers[app%3],
			"projectcalico.org/orchestrator": "k8s",
		},
		Profiles: []string{"kns." + nsName},
		Networks: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4(a), 32)},
	}
}

// benchInput is the full cluster: 50 namespaces (kns profiles with a team
// label), 5,000 endpoints, 700 NetworkPolicies (one per app: ingress from
// the namespace's frontends and from one other app on a port of its own,
// egress to the namespace's databases) and 300 GlobalNetworkPolicies in a
// security tier and default (selectors on tier and app, namespace
// selectors on team, nets, a deny).
func benchInput() Input {
	in := Input{NodeName: benchNode, Tiers: []*resources.Tier{tier("security", 100, resources.ActionPass)}}
	for ns := range benchNamespaces {
		name := fmt.Sprintf("ns-%d", ns)
		in.Profiles = append(in.Profiles, profile("kns."+name, map[string]string{
			"pcns.projectcalico.org/name": name,
			"pcns.team":                   fmt.Sprintf("team-%d", ns%10),
		}, allowAll, allowAll))
	}
	for i := range benchEndpoints {
		in.Endpoints = append(in.Endpoints, benchEndpoint(i))
	}
	for k := range benchNPs {
		ns, app := k%benchNamespaces, k/benchNamespaces
		in.Policies = append(in.Policies, benchNP(ns, app, 8000+k%50))
	}
	for k := range benchGNPs {
		t := ""
		if k%3 == 0 {
			t = "security"
		}
		var sel string
		switch k % 4 {
		case 0:
			sel = fmt.Sprintf("tier == '%s'", benchTiers[k%3])
		case 1:
			sel = fmt.Sprintf("app == '%s'", benchApp(k%benchNamespaces, k%benchApps))
		case 2:
			sel = fmt.Sprintf("tier == '%s' && app in {'%s', '%s'}", benchTiers[k%3], benchApp(k%benchNamespaces, k%benchApps), benchApp((k+1)%benchNamespaces, k%benchApps))
		default:
			sel = fmt.Sprintf("has(app) && tier != '%s'", benchTiers[k%3])
		}
		in.GlobalPolicies = append(in.GlobalPolicies, gnp(fmt.Sprintf("gnp-%d", k), t, fptr(float64(k)), sel,
			[]resources.Rule{
				{Action: resources.ActionAllow, Protocol: proto("TCP"),
					Source: resources.EntityRule{
						NamespaceSelector: fmt.Sprintf("team == 'team-%d'", k%10),
						Selector:          fmt.Sprintf("tier == '%s'", benchTiers[(k+1)%3]),
					},
					Destination: resources.EntityRule{Ports: ports(fmt.Sprint(9000 + k%100))}},
				{Action: resources.ActionDeny, Source: resources.EntityRule{Nets: []string{fmt.Sprintf("192.0.%d.0/24", k%256)}}},
			},
			[]resources.Rule{
				{Action: resources.ActionAllow, Protocol: proto("UDP"), Destination: resources.EntityRule{Ports: ports("53")}},
				{Action: resources.ActionPass, Destination: resources.EntityRule{Selector: fmt.Sprintf("app == '%s'", benchApp((k+3)%benchNamespaces, k%benchApps))}},
			}))
	}
	return in
}

// benchNP is the NetworkPolicy of one app, admitting TCP port on ingress.
func benchNP(ns, app, port int) *resources.NetworkPolicy {
	return np(fmt.Sprintf("ns-%d", ns), "allow-"+benchApp(ns, app), fptr(float64(100+app)),
		fmt.Sprintf("app == '%s'", benchApp(ns, app)),
		[]resources.Rule{
			{Action: resources.ActionAllow, Protocol: proto("TCP"),
				Source:      resources.EntityRule{Selector: "tier == 'frontend'"},
				Destination: resources.EntityRule{Ports: ports(fmt.Sprint(port))}},
			{Action: resources.ActionAllow, Protocol: proto("TCP"),
				Source:      resources.EntityRule{Selector: fmt.Sprintf("app == '%s'", benchApp(ns, (app+1)%benchApps))},
				Destination: resources.EntityRule{Ports: ports("8443")}},
		},
		[]resources.Rule{
			{Action: resources.ActionAllow, Protocol: proto("TCP"),
				Destination: resources.EntityRule{Selector: "tier == 'db'", Ports: ports("5432")}},
		})
}

// reportSize reports the size of d: chains, rules, sets and set elements.
func reportSize(b *testing.B, d Desired) {
	rules, elems := 0, 0
	for _, c := range d.Chains {
		rules += len(c.Rules)
	}
	for _, s := range d.Sets {
		elems += len(s.Elements)
	}
	b.ReportMetric(float64(len(d.Chains)), "chains")
	b.ReportMetric(float64(rules), "rules")
	b.ReportMetric(float64(len(d.Sets)), "sets")
	b.ReportMetric(float64(elems), "elements")
}

// BenchmarkCompileFullSync compiles the whole cluster; retained-B is the
// heap the compiled Desired holds after a GC (what the writer keeps as its
// applied state).
func BenchmarkCompileFullSync(b *testing.B) {
	in := benchInput()
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	d := Compile(in)
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	retained := int64(ms1.HeapAlloc) - int64(ms0.HeapAlloc)
	runtime.KeepAlive(d)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d = Compile(in)
	}
	b.StopTimer()
	reportSize(b, d)
	b.ReportMetric(float64(retained), "retained-B")
}

// benchWriter runs fn with a Writer on the kernel (a scratch namespace)
// when privileged, else skips.
func benchKernel(b *testing.B, fn func(w *Writer)) {
	requirePrivileged(b)
	ns := netnstest.NewNamed(b, "calpolb").Name
	inNS(b, ns, func() {
		w, err := NewWriter(nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		fn(w)
	})
}

// BenchmarkPrivilegedFullSync compiles the cluster and writes it into an
// empty table (the table is deleted, untimed, before each iteration).
// compile-ms and apply-ms split the time.
func BenchmarkPrivilegedFullSync(b *testing.B) {
	in := benchInput()
	benchKernel(b, func(w *Writer) {
		ctx := context.Background()
		var compile, apply time.Duration
		var d Desired
		for b.Loop() {
			b.StopTimer()
			if err := w.Cleanup(ctx); err != nil && !knftables.IsNotFound(err) {
				b.Fatal(err)
			}
			b.StartTimer()
			t0 := time.Now()
			d = Compile(in)
			t1 := time.Now()
			if err := w.Apply(ctx, d); err != nil {
				b.Fatal(err)
			}
			compile, apply = compile+t1.Sub(t0), apply+time.Since(t1)
		}
		b.StopTimer()
		reportSize(b, d)
		b.ReportMetric(float64(w.LastOperations()), "ops")
		b.ReportMetric(ms(compile)/float64(b.N), "compile-ms")
		b.ReportMetric(ms(apply)/float64(b.N), "apply-ms")
	})
}

// BenchmarkPrivilegedPolicyChange changes one policy's port (alternating)
// and compiles and writes the result incrementally: one op is one change
// reaching the kernel. p50-ms and p99-ms are over the b.N changes (run with
// -benchtime 200x or more for a meaningful p99).
func BenchmarkPrivilegedPolicyChange(b *testing.B) {
	in := benchInput()
	// Policy 0 selects ns-0's app-0-0, which is on this node.
	benchIncremental(b, in, func(i int) { in.Policies[0] = benchNP(0, 0, 7000+i%2) })
}

// BenchmarkPrivilegedLabelChange relabels one remote endpoint (ns-0,
// tier backend) as a frontend and back: it enters and leaves ns-0's
// "tier == 'frontend'" set (and its app's sets keep it), so the write is
// one set element.
func BenchmarkPrivilegedLabelChange(b *testing.B) {
	in := benchInput()
	const idx = 1000 + 50*1 // ns-0, app-0-1 (tier backend), replica 1: remote
	orig := in.Endpoints[idx]
	if orig.Node == benchNode || orig.Labels["tier"] != "backend" {
		b.Fatalf("endpoint %d is not a remote backend: %+v", idx, orig)
	}
	benchIncremental(b, in, func(i int) {
		e := *orig
		e.Labels = maps.Clone(orig.Labels)
		if i%2 == 0 {
			e.Labels["tier"] = "frontend"
		}
		in.Endpoints[idx] = &e
	})
}

// benchIncremental full-syncs in, then times change(i) + Compile (a
// Compiler's, as the agent's) + Apply per op and reports the percentiles
// of the whole and of each part.
func benchIncremental(b *testing.B, in Input, change func(i int)) {
	benchKernel(b, func(w *Writer) {
		ctx := context.Background()
		k := NewCompiler()
		if err := w.Apply(ctx, k.Compile(in)); err != nil {
			b.Fatal(err)
		}
		var total, compile, apply []time.Duration
		opsSum := 0
		i := 0
		for b.Loop() {
			t0 := time.Now()
			change(i)
			d := k.Compile(in)
			t1 := time.Now()
			if err := w.Apply(ctx, d); err != nil {
				b.Fatal(err)
			}
			t2 := time.Now()
			total, compile, apply = append(total, t2.Sub(t0)), append(compile, t1.Sub(t0)), append(apply, t2.Sub(t1))
			opsSum += w.LastOperations()
			i++
		}
		b.StopTimer()
		b.ReportMetric(pct(total, 50), "p50-ms")
		b.ReportMetric(pct(total, 99), "p99-ms")
		b.ReportMetric(pct(compile, 50), "compile-p50-ms")
		b.ReportMetric(pct(apply, 50), "apply-p50-ms")
		b.ReportMetric(pct(apply, 99), "apply-p99-ms")
		b.ReportMetric(float64(opsSum)/float64(i), "nft-ops/op")
	})
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pct is the p-th percentile (nearest rank) of ds in milliseconds.
func pct(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	k := (len(s)*p + 99) / 100
	return ms(s[max(k-1, 0)])
}

// BenchmarkCompilerLabelChange is the compile half of
// BenchmarkPrivilegedLabelChange (no kernel needed).
func BenchmarkCompilerLabelChange(b *testing.B) {
	in := benchInput()
	const idx = 1000 + 50*1
	orig := in.Endpoints[idx]
	k := NewCompiler()
	k.Compile(in)
	i := 0
	for b.Loop() {
		e := *orig
		e.Labels = maps.Clone(orig.Labels)
		if i%2 == 0 {
			e.Labels["tier"] = "frontend"
		}
		in.Endpoints[idx] = &e
		k.Compile(in)
		i++
	}
}
