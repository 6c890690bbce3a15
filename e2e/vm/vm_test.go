// Package vm boots Debian's stock kernel (which has the ipip device type
// this machine's kernel lacks) under qemu with a small initramfs and runs
// the IPIP scenarios of e2e/vm/guest inside it. run.sh does the work; this
// test runs it and asserts on what the guest reports over the serial console.
package vm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// scenarios the guest must report as passed.
var scenarios = []string{"TestKernelHasIPIP", "TestIPIPAlways", "TestIPIPCrossSubnet", "TestVXLANToIPIPSwitch"}

// consoleReport is what the guest printed, by marker.
type consoleReport struct {
	tunl0     string            // VM-TUNL0: present|missing
	result    string            // the VM-RESULT line's text
	scenarios map[string]string // name -> PASS|FAIL
	modFails  []string          // VM-MODULE-FAIL lines
}

// parseConsole reads the marker lines out of the serial console log.
func parseConsole(log []byte) consoleReport {
	r := consoleReport{scenarios: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		// The serial console may put terminal escapes before a marker.
		if i := strings.Index(line, "VM-"); i > 0 {
			line = line[i:]
		}
		switch {
		case strings.HasPrefix(line, "VM-TUNL0: "):
			r.tunl0 = strings.TrimPrefix(line, "VM-TUNL0: ")
		case strings.HasPrefix(line, "VM-RESULT: "):
			r.result = strings.TrimPrefix(line, "VM-RESULT: ")
		case strings.HasPrefix(line, "VM-MODULE-FAIL: "):
			r.modFails = append(r.modFails, line)
		case strings.HasPrefix(line, "VM-SCENARIO: "):
			f := strings.Fields(strings.TrimPrefix(line, "VM-SCENARIO: "))
			if len(f) >= 2 {
				r.scenarios[f[0]] = f[1]
			}
		}
	}
	return r
}

func TestParseConsole(t *testing.T) {
	log := "VM-BOOTED: 1.2s\r\nVM-MODULE-FAIL: ipip: bad\n\x1b[2JVM-TUNL0: present\r\n=== RUN   TestIPIPAlways\n" +
		"VM-SCENARIO: TestIPIPAlways PASS 12.0s\r\nVM-SCENARIO: TestIPIPCrossSubnet FAIL 3.1s\nVM-RESULT: FAIL guest tests exited 1\r\n"
	tests := []struct {
		name, got, want string
	}{
		{"tunl0", parseConsole([]byte(log)).tunl0, "present"},
		{"result", parseConsole([]byte(log)).result, "FAIL guest tests exited 1"},
		{"pass", parseConsole([]byte(log)).scenarios["TestIPIPAlways"], "PASS"},
		{"fail", parseConsole([]byte(log)).scenarios["TestIPIPCrossSubnet"], "FAIL"},
		{"absent", parseConsole([]byte(log)).scenarios["TestVXLANToIPIPSwitch"], ""},
		{"modfail", strings.Join(parseConsole([]byte(log)).modFails, ";"), "VM-MODULE-FAIL: ipip: bad"},
		{"empty", parseConsole(nil).result, ""},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

// TestPrivilegedIPIPInVM builds the initramfs, boots the VM and checks that
// every IPIP scenario passed inside it. Skips when qemu, the Debian kernel or
// busybox-static are not installed, or when not root (the kernel image in
// /boot is readable by root only).
func TestPrivilegedIPIPInVM(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM (minutes); skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: reads /boot/vmlinuz-*")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 not installed (apt-get install qemu-system-x86); IPIP is not tested in a VM")
	}
	work := t.TempDir()
	logPath := filepath.Join(work, "console.log")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "./run.sh")
	cmd.Env = append(os.Environ(), "VM_WORK="+work, "VM_LOG="+logPath)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 2 {
		t.Skipf("VM prerequisites missing:\n%s", tail(out.String(), 2000))
	}
	log, _ := os.ReadFile(logPath)
	rep := parseConsole(log)
	t.Logf("VM run took %s; result %q", time.Since(start).Round(time.Second), rep.result)
	if err != nil || rep.result != "PASS" {
		keep := filepath.Join(os.TempDir(), "calicoctl-vm-console.log")
		_ = os.WriteFile(keep, out.Bytes(), 0o644)
		t.Errorf("VM run failed (%v); full output in %s:\n%s", err, keep, tail(out.String(), 30000))
	}
	if rep.tunl0 != "present" {
		t.Errorf("tunl0 in the VM: %q, want present", rep.tunl0)
	}
	for _, l := range rep.modFails {
		t.Errorf("module load failed: %s", l)
	}
	for _, s := range scenarios {
		if got := rep.scenarios[s]; got != "PASS" {
			t.Errorf("scenario %s: %q, want PASS", s, got)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
