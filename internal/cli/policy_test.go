package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/datastore/etcd"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/internal/config"
	"github.com/opencalico/calicoctl/internal/etcdserver"
	"github.com/opencalico/calicoctl/node/policy"
	"github.com/opencalico/calicoctl/resources"
)

// explainFactory starts an embedded etcd holding the given YAML files
// (node/policy/testdata) and returns a Factory on it.
func explainFactory(t *testing.T, files ...string) (*Factory, *client.Client) {
	t.Helper()
	srv := etcdserver.StartForTest(t)
	ctx := context.Background()
	newDS := func(context.Context, *config.Resolved) (datastore.Interface, error) {
		return etcd.New(ctx, etcd.Config{Endpoints: srv.Endpoints()})
	}
	ds, err := newDS(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	c := client.New(ds)
	if err := c.EnsureInitialized(ctx, client.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		applyFile(t, c, filepath.Join("..", "..", "node", "policy", "testdata", f))
	}
	f := &Factory{NewDatastore: newDS, Env: func(string) (string, bool) { return "", false }}
	f.Options.AllowVersionMismatch = true
	return f, c
}

func applyFile(t *testing.T, c *client.Client, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := resources.Decode(b, path)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		if _, err := c.Apply(context.Background(), d.Resource); err != nil {
			t.Fatalf("%s: %v", d.Source, err)
		}
	}
}

func runExplain(t *testing.T, f *Factory, o PolicyExplainOptions) (string, error) {
	t.Helper()
	var out bytes.Buffer
	f.Streams.Out = &out
	o.f = f
	if o.Protocol == "" {
		o.Protocol = "tcp"
	}
	if o.ICMPType == 0 && o.ICMPCode == 0 {
		o.ICMPType, o.ICMPCode = -1, -1
	}
	if err := o.Complete(); err != nil {
		return "", err
	}
	if err := o.Validate(); err != nil {
		return "", err
	}
	err := o.Run(context.Background())
	return out.String(), err
}

func checkExplainGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "policy_explain", name+".golden")
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestPolicyExplainGolden(t *testing.T) {
	f, c := explainFactory(t, "seed001.yaml")
	cases := []struct {
		name string
		o    PolicyExplainOptions
	}{
		{"allowed", PolicyExplainOptions{Namespace: "tenant", From: "frontend1", To: "database", Port: 3306}},
		{"other_port", PolicyExplainOptions{Namespace: "tenant", From: "frontend2", To: "database", Port: 80}},
		{"not_frontend", PolicyExplainOptions{From: "tenant/batch", To: "172.16.1.3", Port: 3306, SrcPort: 40000}},
		{"outside_ip", PolicyExplainOptions{From: "10.9.9.9", To: "tenant/slave2-k8s-database-eth0", Port: 3306}},
		{"icmp", PolicyExplainOptions{Namespace: "tenant", From: "frontend1", To: "database", Protocol: "icmp", ICMPType: 8, ICMPCode: 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runExplain(t, f, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			checkExplainGolden(t, tc.name, out)
		})
	}
	applyFile(t, c, filepath.Join("..", "..", "node", "policy", "testdata", "seed001-deny-first.yaml"))
	t.Run("deny_first", func(t *testing.T) {
		out, err := runExplain(t, f, PolicyExplainOptions{Namespace: "tenant", From: "frontend1", To: "database", Port: 3306})
		if err != nil {
			t.Fatal(err)
		}
		checkExplainGolden(t, "deny_first", out)
	})
	t.Run("json", func(t *testing.T) {
		out, err := runExplain(t, f, PolicyExplainOptions{Namespace: "tenant", From: "frontend1", To: "database", Port: 3306, Output: "json"})
		if err != nil {
			t.Fatal(err)
		}
		var v policy.Verdict
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if v.Action != policy.Deny || v.Ingress.Tiers[0].Policies[0].Name != "namespace-default" || v.Ingress.Tiers[0].Policies[0].Rule != 0 {
			t.Errorf("verdict %+v", v)
		}
	})
	t.Run("yaml", func(t *testing.T) {
		out, err := runExplain(t, f, PolicyExplainOptions{Namespace: "tenant", From: "frontend1", To: "database", Port: 3306, Output: "yaml"})
		if err != nil || !bytes.Contains([]byte(out), []byte("action: Deny")) {
			t.Errorf("yaml: %v\n%s", err, out)
		}
	})
}

func TestPolicyExplainErrors(t *testing.T) {
	f, _ := explainFactory(t, "seed001.yaml")
	for _, tc := range []struct {
		name string
		o    PolicyExplainOptions
		want string
	}{
		{"unknown source", PolicyExplainOptions{Namespace: "tenant", From: "frontend", To: "database", Port: 3306},
			`--from: WorkloadEndpoint "frontend" not found in namespace "tenant"`},
		{"default namespace", PolicyExplainOptions{From: "frontend1", To: "database"},
			`--from: WorkloadEndpoint "frontend1" not found in namespace "default"`},
		{"unknown destination", PolicyExplainOptions{From: "10.0.0.1", To: "prod/db"},
			`--to: WorkloadEndpoint "db" not found in namespace "prod"`},
		{"missing to", PolicyExplainOptions{From: "10.0.0.1"}, "both --from and --to are required"},
		{"bad protocol", PolicyExplainOptions{From: "a", To: "b", Protocol: "tcpx"}, `invalid --protocol: unknown protocol "tcpx": use tcp, udp, icmp, icmpv6, sctp, udplite or a number 1-255`},
		{"bad port", PolicyExplainOptions{From: "a", To: "b", Port: 70000}, "invalid --port 70000: must be 0-65535"},
		{"port without ports", PolicyExplainOptions{From: "a", To: "b", Protocol: "icmp", Port: 80}, "--port given, but protocol icmp has no ports"},
		{"icmp type on tcp", PolicyExplainOptions{From: "a", To: "b", ICMPType: 8, ICMPCode: -1}, "--icmp-type and --icmp-code need --protocol icmp or icmpv6, not tcp"},
		{"bad output", PolicyExplainOptions{From: "a", To: "b", Output: "wide"}, `unknown output format "wide": use text, json or yaml`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runExplain(t, f, tc.o)
			if err == nil || err.Error() != tc.want {
				t.Errorf("err = %v, want %s", err, tc.want)
			}
		})
	}
}
