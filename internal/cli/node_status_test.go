package cli

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/datastore/etcd"
	"github.com/opencalico/calicoctl/internal/config"
	"github.com/opencalico/calicoctl/internal/etcdserver"
	"github.com/opencalico/calicoctl/node/bgp/status"
	"github.com/opencalico/calicoctl/node/policy"
	"github.com/opencalico/calicoctl/resources"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files")

var statusNow = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "node_status", name+".golden")
	if *updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func statusReport() status.Report {
	return status.Report{Running: true, RouterID: "10.0.0.1", ASN: 64512, Peers: []status.Peer{
		{Name: "Global_192_168_1_1", Address: "192.168.1.1", Type: "global", State: "start", BGPState: "Active",
			LastError: "Socket: connect: connection refused", Since: statusNow.Add(-30 * time.Hour)},
		{Name: "Mesh_10_0_0_2", Address: "10.0.0.2", Type: "node-to-node mesh", State: "up", BGPState: "Established",
			Since: statusNow.Add(-90 * time.Minute)},
		{Name: "Node_10_0_0_3", Address: "10.0.0.3", Type: "node specific", State: "up", BGPState: "Established",
			Since: statusNow.Add(-time.Minute)},
		{Name: "Local_Workload_10_0_0_7", Address: "10.0.0.7", Type: "local workload", State: "up", BGPState: "Established"},
	}, Routes: []status.Route{
		{Prefix: "10.244.1.0/26", NextHop: "10.0.0.1", Local: true, Best: true, Communities: []string{"64512:100"}},
		{Prefix: "10.244.2.0/26", NextHop: "10.0.0.2", Peer: "10.0.0.2", Best: true},
	}}
}

func runNodeStatus(t *testing.T, o *NodeStatusOptions) (string, error) {
	t.Helper()
	var out bytes.Buffer
	o.f.Streams.Out = &out
	o.Geteuid = func() int { return 0 }
	o.Now = func() time.Time { return statusNow }
	if err := o.Complete(); err != nil {
		return "", err
	}
	if err := o.Validate(); err != nil {
		return "", err
	}
	err := o.Run(context.Background())
	return out.String(), err
}

func TestNodeStatusGolden(t *testing.T) {
	tests := []struct {
		name   string
		rep    status.Report
		routes bool
	}{
		{"peers", statusReport(), false},
		{"routes", statusReport(), true},
		{"no_peers", status.Report{Running: true}, false},
		{"bgp_off", status.Report{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var socket string
			o := &NodeStatusOptions{f: &Factory{Env: func(k string) (string, bool) {
				return "/tmp/x.sock", k == socketEnv
			}}, Routes: tt.routes, Fetch: func(_ context.Context, s string, withRoutes bool) (status.Report, error) {
				socket = s
				r := tt.rep
				if !withRoutes {
					r.Routes = nil
				}
				return r, nil
			}}
			out, err := runNodeStatus(t, o)
			if err != nil {
				t.Fatal(err)
			}
			if socket != "/tmp/x.sock" {
				t.Errorf("socket = %q, want the one from $%s", socket, socketEnv)
			}
			checkGolden(t, tt.name, []byte(out))
		})
	}
}

func TestNodeStatusNotRunning(t *testing.T) {
	o := &NodeStatusOptions{f: &Factory{}, Socket: filepath.Join(t.TempDir(), "none.sock"), Fetch: status.Fetch}
	if _, err := runNodeStatus(t, o); err == nil || err.Error() != "Calico process is not running." {
		t.Errorf("err = %v", err)
	}
	o = &NodeStatusOptions{f: &Factory{}, Fetch: status.Fetch}
	o.Geteuid = func() int { return 1000 }
	if err := o.Validate(); err != errNotRoot {
		t.Errorf("non-root: %v", err)
	}
}

func TestNodeStatusFromDatastore(t *testing.T) {
	srv := etcdserver.StartForTest(t)
	ctx := context.Background()
	ds, err := etcd.New(ctx, etcd.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	period := uint32(10)
	c := &resources.CalicoNodeStatus{ObjectMeta: metav1.ObjectMeta{Name: "n2-status"},
		Spec:   resources.CalicoNodeStatusSpec{Node: "n2", Classes: []string{"Agent", "BGP"}, UpdatePeriodSeconds: &period},
		Status: status.Build([]string{"Agent", "BGP"}, statusReport(), statusNow)}
	resources.SetTypeMeta(c)
	if _, err := ds.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	f := &Factory{NewDatastore: func(context.Context, *config.Resolved) (datastore.Interface, error) {
		return etcd.New(ctx, etcd.Config{Endpoints: srv.Endpoints()})
	}}
	o := &NodeStatusOptions{f: f, Node: "n2", Fetch: func(context.Context, string, bool) (status.Report, error) {
		t.Fatal("the local socket was asked")
		return status.Report{}, nil
	}}
	out, err := runNodeStatus(t, o)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "from_datastore", []byte(out))
	o.Node = "n3"
	if _, err := runNodeStatus(t, o); err == nil {
		t.Error("a node without CalicoNodeStatus: no error")
	}
}

func TestNodeStatusPolicyCounters(t *testing.T) {
	counters := func(context.Context) ([]policy.RuleCounter, error) {
		return []policy.RuleCounter{
			{Chain: "cali-pri-profile-database", Handle: 4, Comment: "profile profile-database ingress rule 0", Packets: 12, Bytes: 720},
			{Chain: "cali-tw-cali0ef24b3", Handle: 9, Comment: "Drop if no profiles matched", Packets: 3, Bytes: 180},
		}, nil
	}
	o := &NodeStatusOptions{f: &Factory{}, Policy: true, Counters: counters}
	out, err := runNodeStatus(t, o)
	if err != nil {
		t.Fatal(err)
	}
	want := "CHAIN                      PACKETS  BYTES  RULE\n" +
		"cali-pri-profile-database  12       720    profile profile-database ingress rule 0\n" +
		"cali-tw-cali0ef24b3        3        180    Drop if no profiles matched\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	o = &NodeStatusOptions{f: &Factory{}, Policy: true, Output: "json", Counters: counters}
	if out, err = runNodeStatus(t, o); err != nil || !strings.Contains(out, `"packets": 12`) {
		t.Errorf("json: %v\n%s", err, out)
	}
	o = &NodeStatusOptions{f: &Factory{}, Policy: true, Node: "n2", Counters: counters}
	if _, err := runNodeStatus(t, o); err == nil || !strings.Contains(err.Error(), "--policy") {
		t.Errorf("--policy with --node: %v", err)
	}
}
