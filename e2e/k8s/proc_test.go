package k8s

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/opencalico/calicoctl/internal/kubetest"
)

// proc is a long-running child (kubetest.Process: its own process group,
// killed by the kernel if the test binary dies) with its output in a log
// file.
type proc struct {
	*kubetest.Process
	name    string
	logPath string
}

func startProc(name, logPath string, env []string, bin string, args ...string) (*proc, error) {
	p, err := kubetest.StartProcess(bin, args, logPath, env...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &proc{Process: p, name: name, logPath: logPath}, nil
}

func (p *proc) pid() int { return p.Pid() }

// stop sends SIGTERM to the group, then SIGKILL after grace, and waits.
func (p *proc) stop(grace time.Duration) { p.Stop(grace) }

// logTail is the last n lines of the process's log.
func (p *proc) logTail(n int) string { return fileTail(p.logPath, n) }

func fileTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// run executes a short command and returns its combined output.
func run(bin string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\n%s", bin, strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}
