package cluster

// The test binary doubles as a tiny TCP tool run inside pod namespaces
// (`ip netns exec <pod> <test binary>` with CLUSTER_HELPER set):
//
//	serve   listen on CLUSTER_ADDR; on each connection write "peer <ip>\n"
//	        (the source address the server saw) and then echo every byte.
//	dial    connect to CLUSTER_ADDR, read the peer line, send CLUSTER_MSG,
//	        read it back; print "peer=<ip> echo=<msg>".
//	stream  connect to CLUSTER_ADDR and send a counter line every 20 ms
//	        until SIGTERM, checking every echo; print "recv <n>" every 10
//	        echoes and, at the end, "summary sent=.. recv=.. maxgap_ms=..
//	        err=..".

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	helperEnv  = "CLUSTER_HELPER"
	helperAddr = "CLUSTER_ADDR"
	helperMsg  = "CLUSTER_MSG"
	echoPort   = "7007"
)

func helperMain(mode string) int {
	addr := os.Getenv(helperAddr)
	var err error
	switch mode {
	case "serve":
		err = helperServe(addr)
	case "dial":
		err = helperDial(addr, os.Getenv(helperMsg))
	case "stream":
		err = helperStream(addr)
	default:
		err = fmt.Errorf("unknown helper mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

func helperServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println("listening", ln.Addr())
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer conn.Close()
			host, _, _ := net.SplitHostPort(conn.RemoteAddr().String())
			if _, err := fmt.Fprintf(conn, "peer %s\n", host); err != nil {
				return
			}
			_, _ = io.Copy(conn, conn)
		}()
	}
}

func helperDial(addr, msg string) error {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	r := bufio.NewReader(conn)
	peer, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading the peer line: %w", err)
	}
	if _, err := fmt.Fprintf(conn, "%s\n", msg); err != nil {
		return err
	}
	echo, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	fmt.Printf("peer=%s echo=%s\n", strings.TrimPrefix(strings.TrimSpace(peer), "peer "), strings.TrimSpace(echo))
	return nil
}

func helperStream(addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	if _, err := r.ReadString('\n'); err != nil {
		return fmt.Errorf("reading the peer line: %w", err)
	}
	var (
		mu       sync.Mutex
		sent     int
		recv     int
		maxGap   time.Duration
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil && ctx.Err() == nil {
			firstErr = err
			fmt.Println("error", err)
		}
	}
	go func() {
		last := time.Now()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				fail(fmt.Errorf("read: %w", err))
				return
			}
			now := time.Now()
			mu.Lock()
			if gap := now.Sub(last); gap > maxGap {
				maxGap = gap
			}
			last = now
			if got, _ := strconv.Atoi(strings.TrimSpace(line)); got != recv {
				if firstErr == nil {
					firstErr = fmt.Errorf("echo %d, want %d", got, recv)
				}
			}
			recv++
			n := recv
			mu.Unlock()
			if n%10 == 0 {
				fmt.Println("recv", n)
			}
		}
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			mu.Lock()
			fmt.Printf("summary sent=%d recv=%d maxgap_ms=%d err=%v\n", sent, recv, maxGap.Milliseconds(), firstErr)
			mu.Unlock()
			return nil
		case <-tick.C:
		}
		mu.Lock()
		n := sent
		sent++
		mu.Unlock()
		_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprintf(conn, "%d\n", n); err != nil {
			fail(fmt.Errorf("write: %w", err))
		}
	}
}

// helperCmd runs the test binary in ns in the given helper mode.
func helperCmd(ctx context.Context, ns, mode, addr, msg string) *exec.Cmd {
	self, _ := os.Executable()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, self)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), helperEnv + "=" + mode, helperAddr + "=" + addr, helperMsg + "=" + msg}
	return cmd
}

// Helper is a background helper process and its output file.
type Helper struct {
	cmd *exec.Cmd
	out string
}

// Output is what the helper printed so far.
func (h *Helper) Output() string {
	b, _ := os.ReadFile(h.out)
	return string(b)
}

// Stop sends SIGTERM and waits for the helper to exit.
func (h *Helper) Stop() {
	if h.cmd.ProcessState != nil {
		return
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	_ = h.cmd.Wait()
}

// startHelper starts a helper in the background; the cluster stops it.
func (c *Cluster) startHelper(name, ns, mode, addr string) *Helper {
	c.t.Helper()
	h := &Helper{cmd: helperCmd(context.Background(), ns, mode, addr, ""), out: filepath.Join(c.Dir(), name+".log")}
	f, err := os.Create(h.out)
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	h.cmd.Stdout, h.cmd.Stderr = f, f
	if err := h.cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", name, err)
	}
	c.Track(h.cmd)
	return h
}

// EchoServer starts a TCP echo server on the pod's address.
func (c *Cluster) EchoServer(p *Pod) *Helper {
	c.t.Helper()
	h := c.startHelper("echo-"+p.Name, p.NS, "serve", net.JoinHostPort(p.IP, echoPort))
	c.WaitFor("echo server in "+p.Name, 10*time.Second, func() bool {
		return strings.Contains(h.Output(), "listening")
	})
	return h
}

// Dial connects from ns to the echo server at ip, retrying until timeout
// (routes converge asynchronously), and returns the source address the
// server saw.
func (c *Cluster) Dial(fromNS, ip string, timeout time.Duration) (peer string, err error) {
	deadline := time.Now().Add(timeout)
	msg := "hello-" + c.ID()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, derr := helperCmd(ctx, fromNS, "dial", net.JoinHostPort(ip, echoPort), msg).CombinedOutput()
		cancel()
		if derr == nil {
			m := dialRE.FindStringSubmatch(string(out))
			if m != nil && m[2] == msg {
				return m[1], nil
			}
			derr = fmt.Errorf("unexpected output")
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("TCP echo %s from %s: %v\n%s", ip, fromNS, derr, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var (
	dialRE    = regexp.MustCompile(`peer=(\S+) echo=(\S+)`)
	recvRE    = regexp.MustCompile(`(?m)^recv (\d+)$`)
	summaryRE = regexp.MustCompile(`summary sent=(\d+) recv=(\d+) maxgap_ms=(\d+) err=(.*)`)
)

// StreamProgress is the highest echo count a stream helper reported.
func StreamProgress(h *Helper) int {
	n := 0
	for _, m := range recvRE.FindAllStringSubmatch(h.Output(), -1) {
		if v, _ := strconv.Atoi(m[1]); v > n {
			n = v
		}
	}
	return n
}

// StreamSummary is a stream helper's final report.
type StreamSummary struct {
	Sent, Recv int
	MaxGap     time.Duration
	Err        string
}

// StopStream stops a stream helper and parses its summary.
func StopStream(h *Helper) (StreamSummary, error) {
	h.Stop()
	m := summaryRE.FindStringSubmatch(h.Output())
	if m == nil {
		return StreamSummary{}, fmt.Errorf("no summary from the stream client:\n%s", h.Output())
	}
	var s StreamSummary
	s.Sent, _ = strconv.Atoi(m[1])
	s.Recv, _ = strconv.Atoi(m[2])
	gap, _ := strconv.Atoi(m[3])
	s.MaxGap = time.Duration(gap) * time.Millisecond
	s.Err = strings.TrimSpace(m[4])
	return s, nil
}
