package etcdserver

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestCheckLeaf(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, _, err := InitCA(filepath.Join(dir, "ca"), 0)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := InitCA(filepath.Join(dir, "other"), 0)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(ca *CA, name string, spec LeafSpec) (string, string) {
		t.Helper()
		spec.CommonName = name
		c, k := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		if err := ca.Issue(spec, c, k); err != nil {
			t.Fatal(err)
		}
		return c, k
	}
	goodC, goodK := issue(ca, "good", LeafSpec{})
	oldC, oldK := issue(ca, "old", LeafSpec{NotBefore: time.Now().Add(-48 * time.Hour), Validity: 24 * time.Hour})
	otherC, otherK := issue(other, "foreign", LeafSpec{})
	caPath := filepath.Join(dir, "ca", CACertFile)
	for _, tc := range []struct {
		name, cert, key, want string
	}{
		{"valid", goodC, goodK, ""},
		{"expired", oldC, oldK, "expired on"},
		{"other CA", otherC, otherK, "not signed by the CA"},
		{"key mismatch", goodC, oldK, "does not match certificate"},
		{"missing", filepath.Join(dir, "nope.crt"), goodK, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CheckLeaf(caPath, tc.cert, tc.key, time.Now())
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckLeaf: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("CheckLeaf: %v, want one line containing %q", err, tc.want)
			}
		})
	}
}

func TestEnsureMemberPKIReusesAndExtends(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "pki")
	logf := func(string, ...any) {}
	files, err := EnsureMemberPKI(dir, []string{"10.0.0.1"}, []string{"127.0.0.1", "localhost"}, logf)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{files.ServerKey, files.ClientKey, filepath.Join(dir, CAKeyFile)} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", p, st.Mode().Perm(), err)
		}
	}
	before, _ := os.ReadFile(files.ServerCert)
	caBefore, _ := os.ReadFile(files.CA)
	if _, err := EnsureMemberPKI(dir, []string{"10.0.0.1"}, nil, logf); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(files.ServerCert)
	if !bytes.Equal(before, after) {
		t.Error("second start reissued the server certificate")
	}
	// A new address is added to the server certificate, same CA.
	if _, err := EnsureMemberPKI(dir, []string{"10.0.0.2"}, nil, logf); err != nil {
		t.Fatal(err)
	}
	cert, err := CheckLeaf(files.CA, files.ServerCert, files.ServerKey, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if m := missingSANs(cert, []string{"10.0.0.1", "10.0.0.2", "127.0.0.1", "localhost"}); len(m) > 0 {
		t.Errorf("server certificate lacks %v", m)
	}
	if caAfter, _ := os.ReadFile(files.CA); !bytes.Equal(caBefore, caAfter) {
		t.Error("CA changed")
	}
	// Without the CA key a missing required name is an error, not a reissue.
	if err := os.Remove(filepath.Join(dir, CAKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureMemberPKI(dir, []string{"10.0.0.1"}, []string{"some-host"}, logf); err != nil {
		t.Fatalf("optional names without CA key: %v", err)
	}
	_, err = EnsureMemberPKI(dir, []string{"10.0.0.9"}, nil, logf)
	if err == nil || !strings.Contains(err.Error(), "does not cover 10.0.0.9") {
		t.Fatalf("missing required name without CA key: %v", err)
	}
}

func TestMemberPeerURL(t *testing.T) {
	t.Parallel()
	const ic = "m1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380"
	for _, tc := range []struct {
		name, cluster, member, want, wantErr string
	}{
		{"listed", ic, "m2", "https://10.0.0.2:2380", ""},
		{"not listed", ic, "m3", "", `member "m3" is not in the initial cluster (members: m1, m2)`},
		{"no url", "m1", "m1", "", "want name=https://host:port"},
		{"no port", "m1=https://10.0.0.1", "m1", "", "want name=https://host:port"},
		{"twice", "m1=https://a:1,m1=https://b:1", "m1", "", "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := MemberPeerURL(tc.cluster, tc.member)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || u.String() != tc.want {
				t.Fatalf("got %v, %v; want %s", u, err, tc.want)
			}
		})
	}
}

// TestDataDirOfAnotherMemberRefused: a directory recorded for member "a" is
// refused for member "b" and for another cluster token, before etcd starts.
func TestDataDirOfAnotherMemberRefused(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	cfg := Config{DataDir: dir, ListenClient: "127.0.0.1:0", Name: "a", UnsafeNoFsync: true}
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, c := range []struct {
		name, token, want string
	}{
		{"b", "", `holds member "a", not "b"`},
		{"a", "other", `belongs to cluster "calico-datastore", not "other"`},
	} {
		cfg.Name, cfg.ClusterToken = c.name, c.token
		_, err := Start(context.Background(), cfg)
		if !errors.Is(err, ErrOtherCluster) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Start(name %s, token %q): %v, want %q", c.name, c.token, err, c.want)
		}
	}
}

// TestSnapshotRestore: keys written before a snapshot are served by a
// datastore restored from it; deleted keys stay deleted.
func TestSnapshotRestore(t *testing.T) {
	t.Parallel()
	src := StartForTest(t)
	c := newClient(t, src.Endpoints())
	ctx := context.Background()
	for _, kv := range [][2]string{{"/calico/a", "1"}, {"/calico/b", "2"}, {"/calico/gone", "3"}, {"/calico/a", "4"}} {
		if _, err := c.Put(ctx, kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Delete(ctx, "/calico/gone"); err != nil {
		t.Fatal(err)
	}
	rc, err := c.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	snap := filepath.Join(t.TempDir(), "snap.db")
	if err := os.WriteFile(snap, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	n, err := Restore(ctx, RestoreConfig{SnapshotPath: snap, DataDir: dir, Name: "r"})
	if err != nil || n != 2 {
		t.Fatalf("Restore: %d keys, %v; want 2", n, err)
	}
	if _, err := Restore(ctx, RestoreConfig{SnapshotPath: snap, DataDir: dir, Name: "r"}); err == nil {
		t.Error("restore over an existing datastore succeeded")
	}
	dst, err := Start(ctx, Config{DataDir: dir, ListenClient: "127.0.0.1:0", Name: "r", UnsafeNoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	resp, err := newClient(t, dst.Endpoints()).Get(ctx, "/calico/", withPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, kv := range resp.Kvs {
		got = append(got, string(kv.Key)+"="+string(kv.Value))
	}
	if strings.Join(got, " ") != "/calico/a=4 /calico/b=2" {
		t.Errorf("restored keys %v", got)
	}
	// A truncated or altered snapshot is refused with one line.
	bad := filepath.Join(t.TempDir(), "bad.db")
	data := append([]byte(nil), buf.Bytes()...)
	data[100] ^= 0xff
	if err := os.WriteFile(bad, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSnapshot(bad); err == nil || !strings.Contains(err.Error(), "sha256 mismatch") {
		t.Errorf("corrupt snapshot: %v", err)
	}
}

func withPrefix() clientv3.OpOption { return clientv3.WithPrefix() }
