package kubetest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// Process is a child running in its own process group, killed with the
// group. If the test binary dies first, the kernel kills the child
// (Pdeathsig; nsenter keeps it across its exec), so a crashed or timed-out
// test run leaves no API server or kubelet behind.
type Process struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed once the child has been reaped
	waitErr error         // valid after exited is closed
	log     *os.File
	once    sync.Once
}

// StartProcess runs bin with its stdout and stderr appended to logPath
// and env added to this process's environment.
func StartProcess(bin string, args []string, logPath string, env ...string) (*Process, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &Process{cmd: cmd, exited: make(chan struct{}), log: log}

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

// Pid is the child's process ID (and its process group's).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is closed once the child has been reaped.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// HasExited says whether the child has been reaped.
func (p *Process) HasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Err is the child's exit status; call it only after Exited is closed.
func (p *Process) Err() error { return p.waitErr }

// Kill SIGKILLs the process group and waits until the child is reaped.
func (p *Process) Kill() { p.Stop(0) }

// Stop sends SIGTERM to the process group, SIGKILL after grace (at once
// when grace is 0), and waits until the child is reaped.
func (p *Process) Stop(grace time.Duration) {
	p.once.Do(func() {
		if !p.HasExited() {
			// Negative pid: the whole group (Setpgid made the child its leader).
			if grace > 0 {
				_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
				select {
				case <-p.exited:
				case <-time.After(grace):
				}
			}
			if !p.HasExited() {
				_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
			}
		}
		<-p.exited
		p.log.Close()
	})
}
