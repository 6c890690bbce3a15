package kubetest

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestProcessKillsGroup checks that kill takes down the child's own
// children too (the process group), and reaps the child.
func TestProcessKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "grandchild.pid")
	p, err := StartProcess("/bin/sh", []string{"-c", "sleep 300 & echo $! > " + pidFile + "; wait"}, filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	var grandchild int
	if err := eventually(t.Context(), func() error {
		data, err := os.ReadFile(pidFile)
		if err != nil {
			return err
		}
		grandchild, err = strconv.Atoi(strings.TrimSpace(string(data)))
		return err
	}); err != nil {
		p.Kill()
		t.Fatalf("grandchild pid: %v", err)
	}
	if p.HasExited() {
		t.Fatal("child exited on its own")
	}
	p.Kill()
	if !p.HasExited() {
		t.Fatal("kill returned before the child was reaped")
	}
	// The grandchild was re-parented when sh died; once killed, it is a
	// zombie or gone. Either way it is not running.
	if err := eventually(t.Context(), func() error {
		if running(grandchild) {
			return errors.New("still running")
		}
		return nil
	}); err != nil {
		t.Errorf("grandchild %d: %v", grandchild, err)
	}
	p.Kill() // idempotent
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// Field 3 is the state; the command name in field 2 is parenthesised.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || !strings.HasPrefix(s[i+1:], " Z")
}

// TestNewReportsEarlyExit runs a "kube-apiserver" that exits at once: New
// must fail with its output, without waiting for the ready timeout, and
// leave no directory behind.
func TestNewReportsEarlyExit(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "fake-apiserver")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho 'fake: refusing to start' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	s, err := New(t.Context(), Config{Binary: bin, ReadyTimeout: time.Minute, Logf: t.Logf})
	if err == nil {
		s.Close()
		t.Fatal("New succeeded with a binary that exits")
	}
	for _, want := range []string{"exited", "exit status 3", "fake: refusing to start"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// "exited" (not a deadline) shows New noticed the exit rather than
	// waiting out ReadyTimeout.
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		if strings.HasPrefix(e.Name(), "kubetest-") {
			t.Errorf("New left %s behind", e.Name())
		}
	}
}
