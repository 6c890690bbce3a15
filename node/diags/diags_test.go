package diags

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/netnstest"
	"github.com/opencalico/calicoctl/resources"
)

// readTarball returns name -> content, and the names in archive order.
func readTarball(t *testing.T, path string) (map[string]string, []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string]string{}
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, names
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		files[h.Name] = string(b)
	}
}

// fakeDS serves one Node and one IPPool.
type fakeDS struct {
	datastore.Interface
	listErr error
}

func (fakeDS) Get(_ context.Context, k resources.Key) (resources.Resource, error) {
	if k.Kind != "Node" || k.Name != "node-a" {
		return nil, datastore.ErrNotFound
	}
	n := &resources.Node{}
	resources.SetTypeMeta(n)
	n.Name = "node-a"
	n.Spec.BGP = &resources.NodeBGPSpec{IPv4Address: "10.0.0.5/24"}
	return n, nil
}

func (d fakeDS) List(_ context.Context, o datastore.ListOptions) (*datastore.ListResult, error) {
	if d.listErr != nil {
		return nil, d.listErr
	}
	p := &resources.IPPool{}
	resources.SetTypeMeta(p)
	p.Name = "default-ipv4-ippool"
	p.Spec.CIDR = "10.244.0.0/16"
	return &datastore.ListResult{Items: []resources.Resource{p}}, nil
}

func fakeRunner(calls *[]string) Runner {
	return func(_ context.Context, name string, args ...string) ([]byte, error) {
		cmd := name + " " + strings.Join(args, " ")
		*calls = append(*calls, cmd)
		if name == "nft" {
			return nil, errors.New("nft is not installed")
		}
		return []byte("output of " + cmd + "\n"), nil
	}
}

func TestCollect(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log", "calico")
	if err := os.MkdirAll(filepath.Join(logDir, "felix"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(logDir, "felix", "current"), []byte("old line\nnew line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	agentLog := filepath.Join(dir, "agent.log")
	if err := os.WriteFile(agentLog, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 21, 9, 8, 7, 0, time.UTC)
	tests := []struct {
		name      string
		ds        datastore.Interface
		dsErr     error
		wantNode  string
		wantPools string
	}{
		{name: "datastore reachable", ds: fakeDS{}, wantNode: "ipv4Address: 10.0.0.5/24", wantPools: "cidr: 10.244.0.0/16"},
		{name: "datastore unreachable", dsErr: errors.New("connection refused"),
			wantNode: "# error: datastore not reachable: connection refused", wantPools: "# error: datastore not reachable: connection refused"},
		{name: "pools unreadable", ds: fakeDS{listErr: datastore.ErrUnavailable}, wantNode: "name: node-a", wantPools: "# error: listing IP pools: datastore unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls []string
			out := filepath.Join(t.TempDir(), "d.tar.gz")
			res, err := Collect(context.Background(), Config{
				Output: out, Run: fakeRunner(&calls), Datastore: tt.ds, DatastoreErr: tt.dsErr, NodeName: "node-a",
				Version: "Client Version: v3.32.1", Logs: []string{logDir, agentLog}, LogTail: 4,
				Now: func() time.Time { return now },
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Path != out {
				t.Errorf("path = %s", res.Path)
			}
			files, names := readTarball(t, out)
			want := []string{"d/", "d/logs/", "d/logs/calico/", "d/logs/calico/felix/",
				"d/version.txt", "d/date.txt", "d/ip-route-v4.txt", "d/ip-route-v6.txt", "d/ip-link.txt", "d/ip-addr.txt",
				"d/ip-neigh.txt", "d/bridge-fdb-vxlan.calico.txt", "d/bridge-fdb-vxlan-v6.calico.txt", "d/nft-ruleset.txt",
				"d/node.yaml", "d/ippools.yaml", "d/logs/calico/felix/current", "d/logs/agent.log"}
			if !slices.Equal(names, want) {
				t.Fatalf("tarball listing\n got %q\nwant %q", names, want)
			}
			if len(res.Entries) != len(want)-4 {
				t.Errorf("%d entries reported, want %d", len(res.Entries), len(want)-4)
			}
			checks := map[string]string{
				"d/version.txt":                 "Client Version: v3.32.1\n",
				"d/date.txt":                    "2026-11-21T09:08:07Z\n",
				"d/ip-route-v4.txt":             "output of ip -4 route show table all\n",
				"d/bridge-fdb-vxlan.calico.txt": "output of bridge fdb show dev vxlan.calico\n",
				"d/logs/calico/felix/current":   "ine\n",
				"d/logs/agent.log":              "6789",
			}
			for name, content := range checks {
				if files[name] != content {
					t.Errorf("%s = %q, want %q", name, files[name], content)
				}
			}
			if !strings.Contains(files["d/nft-ruleset.txt"], "# error: nft list ruleset: nft is not installed") {
				t.Errorf("nft file = %q", files["d/nft-ruleset.txt"])
			}
			if !strings.Contains(files["d/node.yaml"], tt.wantNode) || !strings.Contains(files["d/ippools.yaml"], tt.wantPools) {
				t.Errorf("node.yaml = %q\nippools.yaml = %q", files["d/node.yaml"], files["d/ippools.yaml"])
			}
			if len(calls) != len(Commands) {
				t.Errorf("ran %d commands, want %d: %q", len(calls), len(Commands), calls)
			}
		})
	}
}

func TestDefaultOutput(t *testing.T) {
	got := DefaultOutput(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if got != filepath.Join(os.TempDir(), "calico-diags-20260102_030405.tar.gz") {
		t.Fatalf("DefaultOutput = %s", got)
	}
}

func TestCollectUnwritableOutput(t *testing.T) {
	_, err := Collect(context.Background(), Config{Output: filepath.Join(t.TempDir(), "missing", "d.tar.gz"),
		Run: fakeRunner(new([]string))})
	if err == nil {
		t.Fatal("Collect into a missing directory succeeded")
	}
}

// TestPrivilegedCollectInNetns collects the real commands inside a scratch
// namespace holding a vxlan.calico device with one FDB entry and a route.
func TestPrivilegedCollectInNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	for _, bin := range []string{"ip", "bridge"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (iproute2)", bin)
		}
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ns := netnstest.NewNamed(t, "caldiags").Name
	run("ip", "-n", ns, "link", "add", "vxlan.calico", "type", "vxlan", "id", "4096", "dstport", "4789", "nolearning")
	run("ip", "-n", ns, "addr", "add", "10.244.0.1/32", "dev", "vxlan.calico")
	run("ip", "-n", ns, "link", "set", "vxlan.calico", "up")
	run("bridge", "-n", ns, "fdb", "append", "66:00:00:00:00:0b", "dev", "vxlan.calico", "dst", "10.0.0.6")
	run("ip", "-n", ns, "route", "add", "10.244.1.0/26", "via", "10.244.1.0", "dev", "vxlan.calico", "onlink", "proto", "80")

	inNS := func(ctx context.Context, name string, args ...string) ([]byte, error) {
		return ExecRunner(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
	}
	out := filepath.Join(t.TempDir(), "calico-diags-test.tar.gz")
	res, err := Collect(context.Background(), Config{Output: out, Run: inNS, DatastoreErr: errors.New("not configured"), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	files, _ := readTarball(t, res.Path)
	p := "calico-diags-test/"
	for name, want := range map[string]string{
		"ip-link.txt":                 "vxlan.calico",
		"ip-addr.txt":                 "10.244.0.1/32",
		"ip-route-v4.txt":             "10.244.1.0/26 via 10.244.1.0 dev vxlan.calico proto 80 onlink",
		"bridge-fdb-vxlan.calico.txt": "66:00:00:00:00:0b dst 10.0.0.6",
	} {
		if !strings.Contains(files[p+name], want) {
			t.Errorf("%s = %q, want it to contain %q", name, files[p+name], want)
		}
	}
	if _, err := exec.LookPath("nft"); err == nil {
		if strings.Contains(files[p+"nft-ruleset.txt"], "# error") {
			t.Errorf("nft ruleset in an empty netns failed: %q", files[p+"nft-ruleset.txt"])
		}
	}
	for _, e := range res.Entries {
		if e.Name == p+"ip-link.txt" && (e.Err != nil || e.Size == 0) {
			t.Errorf("ip-link entry = %+v", e)
		}
	}
}
