package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/e2e/clitest"
	"github.com/opencalico/calicoctl/internal/etcdserver"
)

// dsProc is one `calicoctl datastore serve` process started by a test.
type dsProc struct {
	cmd    *exec.Cmd
	args   []string
	home   string
	url    string
	stdout *lineWatcher
	stderr bytes.Buffer
	done   chan error
	exited bool
}

// startServe starts `calicoctl datastore serve args...` in home; call wait
// to block until it serves. The process is killed when the test ends.
func startServe(t *testing.T, home string, args ...string) *dsProc {
	t.Helper()
	return startServeWith(t, home, append([]string{binPath, "datastore", "serve"}, args...))
}

// startServeWith starts argv (a serve command, possibly wrapped, e.g. by
// `ip netns exec`).
func startServeWith(t *testing.T, home string, argv []string) *dsProc {
	t.Helper()
	clitest.TrackSources(t)
	s := &dsProc{home: home, args: argv, done: make(chan error, 1)}
	s.stdout = &lineWatcher{prefix: "serving on ", found: make(chan string, 1)}
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Env = clitest.BaseEnv(home, nil)
	s.cmd.Dir = home
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, &s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start datastore: %v", err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// wait blocks until the server reports serving and returns its URL.
func (s *dsProc) wait(t *testing.T) string {
	t.Helper()
	select {
	case s.url = <-s.stdout.found:
		return s.url
	case err := <-s.done:
		s.exited = true
		t.Fatalf("datastore %v exited before serving (%v); stderr:\n%s", s.args, err, s.stderr.String())
	case <-time.After(clitest.CommandTimeout):
		t.Fatalf("datastore %v did not report serving within %s; stderr:\n%s", s.args, clitest.CommandTimeout, s.stderr.String())
	}
	return ""
}

// stop ends the server with SIGTERM (SIGKILL after a timeout).
func (s *dsProc) stop(t *testing.T) {
	if s.exited {
		return
	}
	s.exited = true
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(clitest.CommandTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Errorf("datastore %v did not stop within %s of SIGTERM", s.args, clitest.CommandTimeout)
	}
}

// kill ends the server abruptly, as a crash would.
func (s *dsProc) kill() {
	if s.exited {
		return
	}
	s.exited = true
	_ = s.cmd.Process.Kill()
	<-s.done
}

// exec runs calicoctl (not serve) in dir with e and fails the test unless
// it succeeds.
func mustExec(t *testing.T, home string, e env, stdin string, args ...string) string {
	t.Helper()
	r := clitest.Exec(t, binPath, home, e, stdin, args...)
	if r.Code != 0 {
		t.Fatalf("calicoctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// freePorts returns n free TCP ports on 127.0.0.1.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func tlsEnv(endpoints, ca, cert, key string) env {
	return env{"DATASTORE_TYPE": "etcdv3", "ETCD_ENDPOINTS": endpoints, "ETCD_CA_CERT_FILE": ca, "ETCD_CERT_FILE": cert, "ETCD_KEY_FILE": key}
}

func poolYAML(name, cidr string) string {
	return fmt.Sprintf("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: %s\nspec:\n  cidr: %s\n", name, cidr)
}

// TestDatastoreTLS: `serve --tls` creates a CA and certificates in the data
// directory, the CLI works with the printed ETCD_* settings, with the
// written calicoctl.cfg and with an issued node certificate; a client
// without a certificate, with one from another CA or with an expired one is
// refused with one line, quickly. A restart reuses the certificates.
func TestDatastoreTLS(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	data := filepath.Join(home, "data")
	args := []string{"--tls", "--data-dir", data, "--listen", "127.0.0.1:0", "--listen-peer", "127.0.0.1:0"}
	s := startServe(t, home, args...)
	url := s.wait(t)
	if !strings.HasPrefix(url, "https://127.0.0.1:") {
		t.Fatalf("endpoint %q, want https", url)
	}
	pki := filepath.Join(data, "pki")
	ca, cert, key := filepath.Join(pki, "ca.crt"), filepath.Join(pki, "client.crt"), filepath.Join(pki, "client.key")
	time.Sleep(100 * time.Millisecond) // the export lines follow the serving line
	clitest.WantContains(t, "serve output", s.stdout.String(),
		"export DATASTORE_TYPE=etcdv3 ETCD_ENDPOINTS="+url, "ETCD_CA_CERT_FILE="+ca, "ETCD_CERT_FILE="+cert, "ETCD_KEY_FILE="+key)
	for _, p := range []string{"ca.key", "server.key", "client.key"} {
		if st, err := os.Stat(filepath.Join(pki, p)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", p, st, err)
		}
	}
	e := tlsEnv(url, ca, cert, key)
	mustExec(t, home, e, poolYAML("tls-pool", "10.11.0.0/16"), "create", "-f", "-")
	clitest.WantContains(t, "get with env", mustExec(t, home, e, "", "get", "ippool", "tls-pool", "-o", "yaml"), "cidr: 10.11.0.0/16")
	// The written config file works alone.
	clitest.WantContains(t, "get with calicoctl.cfg",
		mustExec(t, home, nil, "", "--config", filepath.Join(data, "calicoctl.cfg"), "get", "ippool", "tls-pool"), "tls-pool")
	// So does a config file carrying the certificates inline (etcdCACert,
	// etcdCert, etcdKey as upstream's calicoctl.cfg allows).
	pemOf := func(f string) string {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", "\n    ")
	}
	inline := filepath.Join(home, "inline.cfg")
	if err := os.WriteFile(inline, []byte(fmt.Sprintf(`apiVersion: projectcalico.org/v3
kind: CalicoAPIConfig
metadata: {}
spec:
  datastoreType: etcdv3
  etcdEndpoints: %s
  etcdCACert: |
    %s
  etcdCert: |
    %s
  etcdKey: |
    %s
`, url, pemOf(ca), pemOf(cert), pemOf(key))), 0o600); err != nil {
		t.Fatal(err)
	}
	clitest.WantContains(t, "get with inline PEM in the config file",
		mustExec(t, home, nil, "", "--config", inline, "get", "ippool", "tls-pool"), "tls-pool")
	// A node certificate issued by the CA works.
	nodeDir := filepath.Join(home, "node-1")
	mustExec(t, home, nil, "", "datastore", "certs", "issue", "node-1", "--data-dir", data, "--out", nodeDir)
	mustExec(t, home, tlsEnv(url, filepath.Join(nodeDir, "ca.crt"), filepath.Join(nodeDir, "node-1.crt"), filepath.Join(nodeDir, "node-1.key")), "", "get", "ippool", "tls-pool")

	// Refused clients.
	other, _, err := etcdserver.InitCA(filepath.Join(home, "other-ca"), 0)
	if err != nil {
		t.Fatal(err)
	}
	foreignC, foreignK := filepath.Join(home, "foreign.crt"), filepath.Join(home, "foreign.key")
	if err := other.Issue(etcdserver.LeafSpec{CommonName: "foreign"}, foreignC, foreignK); err != nil {
		t.Fatal(err)
	}
	ownCA, err := etcdserver.LoadCA(pki)
	if err != nil {
		t.Fatal(err)
	}
	oldC, oldK := filepath.Join(home, "old.crt"), filepath.Join(home, "old.key")
	if err := ownCA.Issue(etcdserver.LeafSpec{CommonName: "old", NotBefore: time.Now().Add(-48 * time.Hour), Validity: 24 * time.Hour}, oldC, oldK); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		e    env
		want string
	}{
		{"no certificate", env{"DATASTORE_TYPE": "etcdv3", "ETCD_ENDPOINTS": url, "ETCD_CA_CERT_FILE": ca}, "certificate required"},
		{"other CA", tlsEnv(url, ca, foreignC, foreignK), "unknown certificate authority"},
		{"expired", tlsEnv(url, ca, oldC, oldK), "expired certificate"},
		{"server from another CA", tlsEnv(url, filepath.Join(home, "other-ca", "ca.crt"), cert, key), "certificate signed by unknown authority"},
		{"plain http", env{"DATASTORE_TYPE": "etcdv3", "ETCD_ENDPOINTS": strings.Replace(url, "https", "http", 1)}, "cannot reach etcd"},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			r := clitest.Exec(t, binPath, home, c.e, "", "get", "ippool", "tls-pool")
			if r.Code == 0 {
				t.Fatalf("get succeeded: %s", r.Stdout)
			}
			clitest.WantOneLine(t, "stderr", r.Stderr)
			clitest.WantContains(t, "stderr", r.Stderr, c.want)
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("refusal took %s", d)
			}
		})
	}

	// A restart reuses the CA and certificates.
	caBefore := clitest.ReadFile(t, ca)
	s.stop(t)
	s2 := startServe(t, home, args...)
	url2 := s2.wait(t)
	if clitest.ReadFile(t, ca) != caBefore {
		t.Error("restart created a new CA")
	}
	mustExec(t, home, tlsEnv(url2, ca, cert, key), "", "get", "ippool", "tls-pool")
}

// TestDatastoreSnapshot: objects written to a TLS datastore are in a
// snapshot taken with the usual ETCD_* settings; a datastore restored from
// it into a new directory serves them.
func TestDatastoreSnapshot(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	data := filepath.Join(home, "data")
	s := startServe(t, home, "--tls", "--data-dir", data, "--listen", "127.0.0.1:0", "--listen-peer", "127.0.0.1:0")
	url := s.wait(t)
	pki := filepath.Join(data, "pki")
	e := tlsEnv(url, filepath.Join(pki, "ca.crt"), filepath.Join(pki, "client.crt"), filepath.Join(pki, "client.key"))
	for i, cidr := range []string{"10.21.0.0/16", "10.22.0.0/16"} {
		mustExec(t, home, e, poolYAML(fmt.Sprintf("snap-%d", i), cidr), "create", "-f", "-")
	}
	want := mustExec(t, home, e, "", "get", "ippool", "-o", "wide")
	snap := filepath.Join(home, "backup.db")
	clitest.WantContains(t, "save", mustExec(t, home, e, "", "datastore", "snapshot", "save", snap), "Snapshot saved to "+snap)
	restored := filepath.Join(home, "restored")
	clitest.WantContains(t, "restore", mustExec(t, home, nil, "", "datastore", "snapshot", "restore", snap, "--data-dir", restored), "Restored")
	r := startServe(t, home, "--data-dir", restored, "--listen", "127.0.0.1:0", "--listen-peer", "127.0.0.1:0")
	rurl := r.wait(t)
	got := mustExec(t, home, env{"DATASTORE_TYPE": "etcdv3", "ETCD_ENDPOINTS": rurl}, "", "get", "ippool", "-o", "wide")
	clitest.WantExact(t, "restored pools", got, want)
	// Restoring over a datastore is refused.
	res := clitest.Exec(t, binPath, home, nil, "", "datastore", "snapshot", "restore", snap, "--data-dir", restored)
	if res.Code == 0 {
		t.Error("restore over an existing datastore succeeded")
	}
	clitest.WantOneLine(t, "restore over existing", res.Stderr)
	// Saving from an unreachable endpoint fails within the dial timeout.
	res = clitest.Exec(t, binPath, home, env{"ETCD_ENDPOINTS": "http://127.0.0.1:1"}, "", "datastore", "snapshot", "save", filepath.Join(home, "x.db"))
	if res.Code == 0 {
		t.Error("snapshot from a closed port succeeded")
	}
}

// String returns everything written so far.
func (w *lineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestDatastoreServeBadInput: each wrong setup ends `serve` with a non-zero
// exit and one line naming what is wrong, before etcd waits for anything.
func TestDatastoreServeBadInput(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	// A data directory with certificates, served once as member "a".
	good := filepath.Join(home, "good")
	s := startServe(t, home, "--tls", "--name", "a", "--data-dir", good, "--listen", "127.0.0.1:0", "--listen-peer", "127.0.0.1:0")
	s.wait(t)
	s.stop(t)
	ca, err := etcdserver.LoadCA(etcdserver.PKIDir(good))
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := etcdserver.InitCA(filepath.Join(home, "other-ca"), 0)
	if err != nil {
		t.Fatal(err)
	}
	// copyWith makes a copy of the good data directory's pki with the
	// server certificate replaced.
	copyWith := func(name string, issuer *etcdserver.CA, spec etcdserver.LeafSpec, swapKey bool) string {
		dir := filepath.Join(home, name)
		pki := etcdserver.FilesIn(etcdserver.PKIDir(dir))
		if err := os.MkdirAll(filepath.Dir(pki.CA), 0o700); err != nil {
			t.Fatal(err)
		}
		src := etcdserver.FilesIn(etcdserver.PKIDir(good))
		for from, to := range map[string]string{src.CA: pki.CA, src.ClientCert: pki.ClientCert, src.ClientKey: pki.ClientKey, src.ServerCert: pki.ServerCert, src.ServerKey: pki.ServerKey} {
			if err := os.WriteFile(to, []byte(clitest.ReadFile(t, from)), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if issuer != nil {
			spec.SANs = []string{"127.0.0.1"}
			spec.Server = true
			spec.CommonName = name
			if err := issuer.Issue(spec, pki.ServerCert, pki.ServerKey); err != nil {
				t.Fatal(err)
			}
		}
		if swapKey {
			if err := os.WriteFile(pki.ServerKey, []byte(clitest.ReadFile(t, src.ClientKey)), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	foreign := copyWith("foreign", other, etcdserver.LeafSpec{}, false)
	expired := copyWith("expired", ca, etcdserver.LeafSpec{NotBefore: time.Now().Add(-48 * time.Hour), Validity: time.Hour}, false)
	wrongKey := copyWith("wrongkey", nil, etcdserver.LeafSpec{}, true)
	ports := freePorts(t, 3)
	ic := fmt.Sprintf("m1=https://127.0.0.1:%d,m2=https://127.0.0.1:%d", ports[0], ports[1])
	local := []string{"--listen", "127.0.0.1:0", "--listen-peer", "127.0.0.1:0"}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"not in member list", []string{"--tls", "--data-dir", filepath.Join(home, "m4"), "--name", "m4", "--initial-cluster", ic}, `member "m4" is not in the initial cluster (members: m1, m2)`},
		{"data dir of another member", append([]string{"--tls", "--data-dir", good, "--name", "b"}, local...), `holds member "a", not "b"`},
		{"data dir of another cluster", append([]string{"--tls", "--data-dir", good, "--name", "a", "--initial-cluster-token", "prod-2"}, local...), `belongs to cluster "calico-datastore", not "prod-2"`},
		{"server certificate from another CA", append([]string{"--tls", "--data-dir", foreign}, local...), "is not signed by the CA in"},
		{"expired server certificate", append([]string{"--tls", "--data-dir", expired}, local...), "expired on"},
		{"key of another certificate", append([]string{"--tls", "--data-dir", wrongKey}, local...), "does not match certificate"},
		{"tls and insecure", append([]string{"--tls", "--insecure", "--data-dir", filepath.Join(home, "x")}, local...), "contradict"},
		{"http peer with tls", []string{"--tls", "--data-dir", filepath.Join(home, "y"), "--name", "m1", "--initial-cluster", strings.ReplaceAll(ic, "https", "http")}, "has a http URL but peers use https"},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			r := clitest.Exec(t, binPath, home, nil, "", append([]string{"datastore", "serve"}, c.args...)...)
			if r.Code == 0 {
				t.Fatalf("serve succeeded")
			}
			clitest.WantOneLine(t, "stderr", r.Stderr)
			clitest.WantContains(t, "stderr", r.Stderr, c.want)
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
	// A member whose peers never come up gives up after --start-timeout.
	t.Run("no quorum", func(t *testing.T) {
		start := time.Now()
		r := clitest.Exec(t, binPath, home, nil, "", "datastore", "serve", "--tls", "--data-dir", filepath.Join(home, "lonely"),
			"--name", "m1", "--listen", fmt.Sprintf("127.0.0.1:%d", ports[2]), "--initial-cluster", ic, "--start-timeout", "3s")
		if r.Code == 0 {
			t.Fatalf("serve succeeded")
		}
		lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
		clitest.WantContains(t, "last line", lines[len(lines)-1], "not ready after 3s")
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("took %s", d)
		}
	})
}

// TestDatastoreInsecureWarns: --insecure off loopback serves plain http and
// warns on stderr at every start.
func TestDatastoreInsecureWarns(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	args := []string{"--insecure", "--data-dir", filepath.Join(home, "data"), "--listen", "0.0.0.0:0", "--listen-peer", "127.0.0.1:0"}
	for start := range 2 {
		s := startServe(t, home, args...)
		url := s.wait(t)
		if !strings.HasPrefix(url, "http://") {
			t.Errorf("start %d: endpoint %s, want plain http", start, url)
		}
		s.stop(t) // stderr is complete once the process has exited
		clitest.WantContains(t, fmt.Sprintf("start %d stderr", start), s.stderr.String(), "WARNING: serving plain http off loopback (--insecure)")
	}
}
