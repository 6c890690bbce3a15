package etcdserver

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the file in the data directory that a running server holds
// locked (flock) and that names its process.
const LockFile = "calicoctl-serve.lock"

// ErrDataDirInUse is wrapped by Start's error when another process serves
// the data directory.
var ErrDataDirInUse = errors.New("data directory in use")

// dirLock is a held lock on a data directory.
type dirLock struct{ f *os.File }

// lockDataDir takes the data directory for this process, without waiting:
// if another calicoctl (our lock file) or another etcd (bbolt's lock on
// member/snap/db) holds it, the error names the directory and the process.
func lockDataDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := strings.TrimSpace(readSmall(f))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if holder == "" {
				holder = "another process"
			} else {
				holder = "process " + holder
			}
			return nil, fmt.Errorf("%w: %s is used by %s (it holds %s); stop it or use another --data-dir", ErrDataDirInUse, dir, holder, path)
		}
		return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	// Another etcd (not started by calicoctl) keeps bbolt's database locked.
	db := filepath.Join(dir, "member", "snap", "db")
	if dbf, err := os.Open(db); err == nil {
		lerr := syscall.Flock(int(dbf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if lerr == nil {
			_ = syscall.Flock(int(dbf.Fd()), syscall.LOCK_UN)
		}
		pid := lockHolder(dbf)
		dbf.Close()
		if errors.Is(lerr, syscall.EWOULDBLOCK) {
			f.Close()
			holder := "another process"
			if pid > 0 {
				holder = fmt.Sprintf("process %d", pid)
			}
			return nil, fmt.Errorf("%w: %s is used by %s (it holds %s); stop it or use another --data-dir", ErrDataDirInUse, dir, holder, db)
		}
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f}, nil
}

// release drops the lock (closing the file releases the flock).
func (l *dirLock) release() {
	if l != nil && l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
}

func readSmall(f *os.File) string {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	return string(b[:n])
}

// lockHolder finds the process holding a flock on f in /proc/locks (0 when
// it cannot tell).
func lockHolder(f *os.File) int {
	st, err := f.Stat()
	if err != nil {
		return 0
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0
	}
	locks, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer locks.Close()
	suffix := ":" + strconv.FormatUint(sys.Ino, 10)
	sc := bufio.NewScanner(locks)
	for sc.Scan() {
		// e.g. "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] != "FLOCK" || !strings.HasSuffix(fields[5], suffix) {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil && pid != os.Getpid() {
			return pid
		}
	}
	return 0
}
