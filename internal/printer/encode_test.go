package printer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/opencalico/calicoctl/resources"
)

func mustKind(t testing.TB, word string) *resources.Kind {
	t.Helper()
	k, err := resources.Lookup(word)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// makeWEPs builds n realistic WorkloadEndpoints spread over namespaces.
func makeWEPs(n int) []resources.Resource {
	out := make([]resources.Resource, n)
	created := metav1.NewTime(time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC))
	for i := range out {
		ns := fmt.Sprintf("ns-%d", i%50)
		pod := fmt.Sprintf("frontend-7d9f8c6b5-%05d", i)
		w := &resources.WorkloadEndpoint{}
		w.APIVersion, w.Kind = resources.APIVersion, "WorkloadEndpoint"
		w.Name = fmt.Sprintf("node%d-k8s-%s-eth0", i%100, pod)
		w.Namespace = ns
		w.UID = types.UID(fmt.Sprintf("8f0e3c2a-1b2c-4d5e-8f90-%012d", i))
		w.ResourceVersion = fmt.Sprint(1000 + i)
		w.CreationTimestamp = created
		w.Labels = map[string]string{
			"app":                              "frontend",
			"pod-template-hash":                "7d9f8c6b5",
			"projectcalico.org/namespace":      ns,
			"projectcalico.org/orchestrator":   "k8s",
			"projectcalico.org/serviceaccount": "default",
		}
		w.Spec = resources.WorkloadEndpointSpec{
			Orchestrator:       "k8s",
			Node:               fmt.Sprintf("node%d", i%100),
			ContainerID:        fmt.Sprintf("%064x", i),
			Pod:                pod,
			Endpoint:           "eth0",
			ServiceAccountName: "default",
			IPNetworks:         []string{fmt.Sprintf("10.%d.%d.%d/32", i>>16&255, i>>8&255, i&255)},
			Profiles:           []string{"kns." + ns, "ksa." + ns + ".default"},
			InterfaceName:      fmt.Sprintf("cali%011x", i),
			MAC:                "ee:ee:ee:ee:ee:ee",
			Ports: []resources.WorkloadEndpointPort{
				{Name: "http", Protocol: resources.ProtocolFromString("TCP"), Port: 8080},
			},
		}
		out[i] = w
	}
	return out
}

// literalWEPs are WEPs whose YAML ends in a literal block for some items
// (spec.workload is their last key).
func literalWEPs(n int) []resources.Resource {
	weps := makeWEPs(n)
	for i, r := range weps {
		if i%3 != 1 {
			r.(*resources.WorkloadEndpoint).Spec.Workload = fmt.Sprintf("multi\nline %d\n", i)
		}
	}
	return weps
}

func printString(t testing.TB, format string, res Result) string {
	t.Helper()
	p, err := New(format, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := p.Print(&out, res); err != nil {
		t.Fatalf("Print: %v", err)
	}
	return out.String()
}

func samplePools() []resources.Resource {
	var out []resources.Resource
	for i, cidr := range []string{"192.168.0.0/16", "fd00::/108", "10.0.0.0/8"} {
		p := &resources.IPPool{}
		p.APIVersion, p.Kind = resources.APIVersion, "IPPool"
		p.Name = fmt.Sprintf("pool-%d", i)
		p.ResourceVersion = fmt.Sprint(10 + i)
		p.Annotations = map[string]string{"note": "it's: tricky #1", "empty": ""}
		p.Spec.CIDR = cidr
		p.Spec.IPIPMode = resources.EncapAlways
		p.Spec.NodeSelector = "!has(edge)"
		p.Spec.BlockSize = 26
		out = append(out, p)
	}
	return out
}

// TestStructuredOutputMatchesLibraries checks -o yaml and -o json against
// what sigs.k8s.io/yaml and json.MarshalIndent print for the same value:
// the <Kind>List for a list query, the object for one named result and an
// array for several.
func TestStructuredOutputMatchesLibraries(t *testing.T) {
	pool := mustKind(t, "ippool")
	wep := mustKind(t, "wep")
	pools := samplePools()
	cases := []struct {
		name string
		res  Result
		want any
	}{
		{"list", Result{Kind: pool, Items: pools, IsList: true, Revision: "42"}, NewList(Result{Kind: pool, Items: pools, Revision: "42"})},
		{"empty list", Result{Kind: pool, IsList: true, Revision: "7"}, NewList(Result{Kind: pool, Revision: "7"})},
		{"list without revision", Result{Kind: pool, Items: pools[:1], IsList: true}, NewList(Result{Kind: pool, Items: pools[:1]})},
		{"one named", Result{Kind: pool, Items: pools[:1]}, pools[0]},
		{"several named", Result{Kind: pool, Items: pools}, pools},
		{"wep list", Result{Kind: wep, Items: makeWEPs(30), IsList: true, Revision: "99"}, NewList(Result{Kind: wep, Items: makeWEPs(30), Revision: "99"})},
		// Enough items to be rendered in parallel batches, some ending in a
		// literal block so that batch boundaries fall after a finished line.
		{"big list", Result{Kind: wep, Items: literalWEPs(1500), IsList: true, Revision: "5"}, NewList(Result{Kind: wep, Items: literalWEPs(1500), Revision: "5"})},
		{"many named", Result{Kind: wep, Items: literalWEPs(700)}, literalWEPs(700)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantYAML, err := yaml.Marshal(c.want)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"yaml", "yml"} {
				if got := printString(t, f, c.res); got != string(wantYAML) {
					t.Errorf("-o %s:\n%s\nwant:\n%s", f, got, wantYAML)
				}
			}
			wantJSON, err := json.MarshalIndent(c.want, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if got := printString(t, "json", c.res); got != string(wantJSON) {
				t.Errorf("-o json:\n%s\nwant:\n%s", got, wantJSON)
			}
		})
	}
}

func TestYAMLListShape(t *testing.T) {
	got := printString(t, "yaml", Result{Kind: mustKind(t, "ippool"), Items: samplePools()[:1], IsList: true, Revision: "42"})
	want := `apiVersion: projectcalico.org/v3
items:
- apiVersion: projectcalico.org/v3
  kind: IPPool
  metadata:
    annotations:
      empty: ""
      note: 'it''s: tricky #1'
    name: pool-0
    resourceVersion: "10"
  spec:
    blockSize: 26
    cidr: 192.168.0.0/16
    ipipMode: Always
    nodeSelector: '!has(edge)'
kind: IPPoolList
metadata:
  resourceVersion: "42"
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestJSONHasNoTrailingNewline(t *testing.T) {
	for _, res := range []Result{
		{Kind: mustKind(t, "ippool"), Items: samplePools(), IsList: true},
		{Kind: mustKind(t, "ippool"), Items: samplePools()[:1]},
	} {
		got := printString(t, "json", res)
		if len(got) == 0 || got[len(got)-1] != '}' {
			t.Errorf("json output should end in '}', got %q", got[max(0, len(got)-10):])
		}
	}
}

func BenchmarkYAML10kWEPs(b *testing.B) {
	benchmarkPrint(b, "yaml")
}

func BenchmarkJSON10kWEPs(b *testing.B) {
	benchmarkPrint(b, "json")
}

func benchmarkPrint(b *testing.B, format string) {
	res := Result{Kind: mustKind(b, "wep"), Items: makeWEPs(10000), IsList: true, Revision: "123456"}
	p, err := New(format, Options{})
	if err != nil {
		b.Fatal(err)
	}
	var n countingWriter
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := p.Print(&n, res); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/float64(b.N), "bytes/op-output")
}

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

var _ io.Writer = (*countingWriter)(nil)
