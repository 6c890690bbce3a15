package etcdserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecondStartOnSameDirRefused: a second server on a data directory in
// use fails at once, naming the directory and the holder's PID; after the
// first closes, the directory can be served again.
func TestSecondStartOnSameDirRefused(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	cfg := Config{DataDir: dir, ListenClient: "127.0.0.1:0", UnsafeNoFsync: true}
	first, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Start(context.Background(), cfg)
	if !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("second Start: %v, want ErrDataDirInUse", err)
	}
	for _, want := range []string{dir, fmt.Sprintf("process %d", os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	first.Close()
	again, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start after Close: %v", err)
	}
	again.Close()
}
