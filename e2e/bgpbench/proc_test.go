package bgpbench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// helperProc is a helper process (helper_test.go) and its stdout lines.
type helperProc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan struct{}

	mu     sync.Mutex
	stderr strings.Builder
}

// startHelper re-executes the test binary in helper mode with env added.
func startHelper(b *testing.B, name string, env ...string) *helperProc {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	h := &helperProc{name: name, cmd: cmd, lines: make(chan string, 64), done: make(chan struct{})}
	h.stdin, err = cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.stderr.Len() < 64<<10 {
			h.stderr.Write(p)
		}
		return len(p), nil
	})
	if err := cmd.Start(); err != nil {
		b.Fatalf("start helper %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
	}()
	go func() { _ = cmd.Wait(); close(h.done) }()
	b.Cleanup(func() {
		_ = h.stdin.Close()
		select {
		case <-h.done:
		case <-time.After(15 * time.Second):
			_ = h.cmd.Process.Kill()
			<-h.done
		}
	})
	return h
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func (h *helperProc) pid() int { return h.cmd.Process.Pid }

// send writes one command line.
func (h *helperProc) send(line string) error {
	_, err := io.WriteString(h.stdin, line+"\n")
	return err
}

// expect waits for a line starting with prefix and returns the rest.
func (h *helperProc) expect(prefix string, deadline time.Time) (string, error) {
	timeout := time.NewTimer(time.Until(deadline))
	defer timeout.Stop()
	for {
		select {
		case l, ok := <-h.lines:
			if !ok {
				return "", fmt.Errorf("helper %s exited before %q: %s", h.name, prefix, h.errText())
			}
			if rest, found := strings.CutPrefix(l, prefix); found {
				return strings.TrimSpace(rest), nil
			}
		case <-timeout.C:
			text := h.errText()
			if len(text) > 1000 {
				text = "..." + text[len(text)-1000:]
			}
			return "", fmt.Errorf("helper %s: no %q by the deadline; its stderr:\n%s", h.name, prefix, text)
		}
	}
}

func (h *helperProc) errText() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stderr.String()
}

// quit asks the helper to end and returns the rest of its output.
func (h *helperProc) quit() []string {
	_ = h.send("quit")
	var rest []string
	timeout := time.After(15 * time.Second)
	for {
		select {
		case l, ok := <-h.lines:
			if !ok {
				return rest
			}
			rest = append(rest, l)
		case <-timeout:
			return rest
		}
	}
}
