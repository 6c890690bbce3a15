package kubetest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// process is a child running in its own process group, killed with the
// group. If the test binary dies first, the kernel kills the child
// (Pdeathsig), so a crashed or timed-out test run leaves no API server behind.
type process struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed once the child has been reaped
	waitErr error         // valid after exited is closed
	log     *os.File
	once    sync.Once
}

// startProcess runs bin with its stdout and stderr appended to logPath.
func startProcess(bin string, args []string, logPath string) (*process, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &process{cmd: cmd, exited: make(chan struct{}), log: log}

	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the *thread* that forked the child exits.
		// Keep this goroutine on its thread until the child is reaped, so
		// the Go scheduler cannot retire that thread under the child.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	return p, nil
}

func (p *process) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// err is the child's exit status; call it only after exited is closed.
func (p *process) err() error { return p.waitErr }

// kill SIGKILLs the process group and waits until the child is reaped.
func (p *process) kill() {
	p.once.Do(func() {
		if !p.hasExited() {
			// Negative pid: the whole group (Setpgid made the child its leader).
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		}
		<-p.exited
		p.log.Close()
	})
}
