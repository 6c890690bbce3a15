package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The scale benchmarks run etcd (and etcd grpc-proxy) as separate
// processes, the distribution's etcd binary, so that the datastore's CPU
// time can be read from /proc/<pid>/stat apart from the followers' and
// the followers' memory apart from etcd's. They skip when it is missing.

// etcdBinary is the etcd executable ($ETCD_BIN, else etcd on PATH).
func etcdBinary(b *testing.B) string {
	b.Helper()
	if p := os.Getenv("ETCD_BIN"); p != "" {
		return p
	}
	p, err := exec.LookPath("etcd")
	if err != nil {
		b.Skip("no etcd binary (install Debian's etcd-server or set ETCD_BIN): the scale benchmarks run etcd as a separate process")
	}
	return p
}

// etcdProcess is a separately running etcd or grpc-proxy.
type etcdProcess struct {
	Endpoint string
	cmd      *exec.Cmd
}

// Pid is the process id.
func (p *etcdProcess) Pid() int { return p.cmd.Process.Pid }

func freeAddr(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// runProcess starts bin with args in its own process group, killed with
// the benchmark (and, through Pdeathsig, if the benchmark dies).
func runProcess(b *testing.B, bin string, args ...string) *exec.Cmd {
	b.Helper()
	log, err := os.Create(filepath.Join(b.TempDir(), filepath.Base(bin)+".log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", bin, err)
	}
	b.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		log.Close()
	})
	return cmd
}

// startSystemEtcd runs etcd (fsync on, as in production) on free loopback
// ports and waits until it answers.
func startSystemEtcd(b *testing.B) *etcdProcess {
	b.Helper()
	bin := etcdBinary(b)
	client, peer := "http://"+freeAddr(b), "http://"+freeAddr(b)
	cmd := runProcess(b, bin, "--name", "scale", "--data-dir", filepath.Join(b.TempDir(), "etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "scale="+peer, "--quota-backend-bytes", strconv.Itoa(8<<30),
		"--logger", "zap", "--log-level", "warn")
	p := &etcdProcess{Endpoint: client, cmd: cmd}
	waitHTTP(b, client+"/health")
	return p
}

// startGRPCProxy runs `etcd grpc-proxy start` in front of the endpoint.
func startGRPCProxy(b *testing.B, endpoint string) *etcdProcess {
	b.Helper()
	bin := etcdBinary(b)
	listen := freeAddr(b)
	cmd := runProcess(b, bin, "grpc-proxy", "start", "--endpoints", strings.TrimPrefix(endpoint, "http://"),
		"--listen-addr", listen, "--advertise-client-url", listen)
	p := &etcdProcess{Endpoint: "http://" + listen, cmd: cmd}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{p.Endpoint}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Get(ctx, "probe")
		cancel()
		if err == nil {
			return p
		}
		if time.Now().After(deadline) {
			b.Fatalf("etcd grpc-proxy on %s never answered: %v", listen, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitHTTP(b *testing.B, url string) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s never answered 200: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// etcdGauge reads one unlabelled gauge or counter from etcd's /metrics.
func etcdGauge(b *testing.B, endpoint, name string) float64 {
	b.Helper()
	resp, err := http.Get(endpoint + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				b.Fatalf("metric %q: %v", line, err)
			}
			return f
		}
	}
	b.Fatalf("no %s in etcd's metrics", name)
	return 0
}

// cpuSeconds is the user plus system CPU time a process has used, from
// /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s).
func cpuSeconds(b *testing.B, pid int) float64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The command name may hold spaces; the fields follow its ')'.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("parse /proc/%d/stat: %q", pid, s)
	}
	return (ut + st) / 100
}
