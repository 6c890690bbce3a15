package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/opencalico/calicoctl/internal/ipam"
)

// The IPAM benchmarks run `calicoctl ipam show --show-blocks` and
// `calicoctl ipam check` over a cluster of ipamNodes nodes holding
// ipamBlocks /26 blocks from one /16 pool, with ipamPerBlock addresses
// allocated in each (50,000 in all), every one with its own handle and a
// WorkloadEndpoint using it, so the check finds no problems.
const (
	ipamNodes    = 100
	ipamBlocks   = 1000
	ipamPerBlock = 50
	ipamAddrs    = ipamBlocks * ipamPerBlock
	ipamPool     = "10.0.0.0/16"
	ipamNS       = 10
)

// ipamAddr is the address of allocation o (0 <= o < ipamPerBlock) in block i,
// and ipamBlock the block: blocks are laid out from the pool's start.
func ipamBlock(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i / 4), byte(i % 4 * 64)}), 26)
}

func ipamAddr(i, o int) netip.Addr {
	a := ipamBlock(i).Addr().As4()
	a[3] += byte(o)
	return netip.AddrFrom4(a)
}

// ipamOwner names allocation o of block i: its node, pod, namespace and handle.
func ipamOwner(i, o int) (node, pod, ns, handle string) {
	n := i*ipamPerBlock + o
	return fmt.Sprintf("node%d", i%ipamNodes), fmt.Sprintf("pod%d", n), fmt.Sprintf("ns%d", n%ipamNS),
		fmt.Sprintf("k8s-pod-network.%064x", n)
}

// ipamResources writes the pool, the nodes and one WorkloadEndpoint per
// allocation as one manifest for `calicoctl apply`.
func ipamResources(b *testing.B) string {
	b.Helper()
	var buf bytes.Buffer
	fmt.Fprintf(&buf, `apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: bench-pool}
spec: {cidr: %s, blockSize: 26, nodeSelector: all()}
`, ipamPool)
	for n := range ipamNodes {
		fmt.Fprintf(&buf, "---\napiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: node%d}\n", n)
	}
	for i := range ipamBlocks {
		for o := range ipamPerBlock {
			node, pod, ns, _ := ipamOwner(i, o)
			fmt.Fprintf(&buf, `---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: %[1]s-k8s-%[2]s-eth0, namespace: %[3]s}
spec: {orchestrator: k8s, node: %[1]s, pod: %[2]s, endpoint: eth0, interfaceName: cali%011[5]x, ipNetworks: [%[4]s/32]}
`, node, pod, ns, ipamAddr(i, o), i*ipamPerBlock+o)
		}
	}
	path := filepath.Join(b.TempDir(), "ipam.yaml")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// ipamKeys builds the IPAM keys in upstream's etcd encoding (the codec
// etcdstore uses): blocks with their allocations, a confirmed affinity per
// block and a handle per address.
func ipamKeys(b *testing.B) map[string][]byte {
	b.Helper()
	kvs := make(map[string][]byte, ipamBlocks*2+ipamAddrs)
	now := time.Now()
	for i := range ipamBlocks {
		cidr := ipamBlock(i)
		node, _, _, _ := ipamOwner(i, 0)
		blk := ipam.NewBlock(cidr, "host:"+node, now)
		for o := range ipamPerBlock {
			node, pod, ns, handle := ipamOwner(i, o)
			idx := len(blk.Attributes)
			blk.Allocations[o] = &idx
			blk.Attributes = append(blk.Attributes, ipam.AllocationAttribute{
				HandleID: &handle,
				ActiveOwnerAttrs: map[string]string{
					ipam.AttrNode: node, ipam.AttrPod: pod, ipam.AttrNamespace: ns,
					ipam.AttrTimestamp: now.UTC().Format("2006-01-02 15:04:05.999999999 -0700 MST"),
				},
			})
			blk.SequenceNumberForAllocation[ipam.OrdinalKey(o)] = blk.SequenceNumber
			h, err := ipam.EncodeHandle(&ipam.Handle{ID: handle, Block: map[string]int{cidr.String(): 1}})
			if err != nil {
				b.Fatal(err)
			}
			kvs[ipam.HandleKey(handle)] = h
		}
		blk.Unallocated = blk.Unallocated[ipamPerBlock:]
		blk.SequenceNumber++
		v, err := ipam.EncodeBlock(blk)
		if err != nil {
			b.Fatal(err)
		}
		kvs[ipam.BlockKey(cidr)] = v
		a, err := ipam.EncodeAffinity(&ipam.Affinity{Host: node, Type: "host", CIDR: cidr, State: ipam.StateConfirmed})
		if err != nil {
			b.Fatal(err)
		}
		kvs[ipam.AffinityKey(node, cidr)] = a
	}
	return kvs
}

// putAll writes kvs in transactions of up to 100 puts, 8 in flight.
func putAll(b *testing.B, endpoint string, kvs map[string][]byte) {
	b.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	var batches [][]clientv3.Op
	var cur []clientv3.Op
	for k, v := range kvs {
		cur = append(cur, clientv3.OpPut(k, string(v)))
		if len(cur) == 100 {
			batches, cur = append(batches, cur), nil
		}
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	work := make(chan []clientv3.Op)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ops := range work {
				if _, err := cli.Txn(context.Background()).Then(ops...).Commit(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for _, ops := range batches {
		select {
		case work <- ops:
		case err := <-errs:
			b.Fatalf("writing IPAM keys: %v", err)
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatalf("writing IPAM keys: %v", err)
	default:
	}
}

// ipamCluster starts etcd and fills it; it returns the endpoint.
func ipamCluster(b *testing.B) string {
	b.Helper()
	ep := startEtcd(b)
	begin := time.Now()
	out, _ := calicoctl(b, ep, "apply", "-f", ipamResources(b))
	if !strings.Contains(out, "Successfully applied") {
		b.Fatalf("apply: %q", out)
	}
	putAll(b, ep, ipamKeys(b))
	b.Logf("setup: %d blocks, %d addresses, %d WorkloadEndpoints in %s", ipamBlocks, ipamAddrs, ipamAddrs, time.Since(begin).Round(time.Millisecond))
	return ep
}

// BenchmarkIPAMShowBlocks: `calicoctl ipam show --show-blocks` over 1,000
// blocks and 50,000 addresses.
func BenchmarkIPAMShowBlocks(b *testing.B) {
	ep := ipamCluster(b)
	show := func() (string, float64) { return calicoctl(b, ep, "ipam", "show", "--show-blocks") }
	measure(b, show, func(out string) {
		if n := strings.Count(out, "| Block "); n != ipamBlocks {
			b.Fatalf("output has %d block rows, want %d:\n%.2000s", n, ipamBlocks, out)
		}
		if !strings.Contains(out, "50000 (76%)") {
			b.Fatalf("pool row does not show 50000 in use:\n%.1000s", out)
		}
	})
}

// BenchmarkIPAMCheck: `calicoctl ipam check` over the same cluster, where
// every allocation is used by a WorkloadEndpoint (no problems).
func BenchmarkIPAMCheck(b *testing.B) {
	ep := ipamCluster(b)
	check := func() (string, float64) { return calicoctl(b, ep, "ipam", "check") }
	measure(b, check, func(out string) {
		if !strings.Contains(out, fmt.Sprintf("IPAM blocks record %d allocations.", ipamAddrs)) ||
			!strings.Contains(out, "Check complete; found 0 problems.") {
			b.Fatalf("unexpected check output:\n%.3000s", out)
		}
	})
}
