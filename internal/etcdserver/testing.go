package etcdserver

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// StartForTest starts a throwaway server on free loopback ports with its
// data in a temporary directory, and stops it when the test ends. etcd's
// warnings go to the test log.
func StartForTest(t testing.TB) *Server {
	t.Helper()
	w := &testWriter{t: t}
	s, err := Start(context.Background(), Config{
		DataDir:       filepath.Join(t.TempDir(), "etcd"),
		ListenClient:  "127.0.0.1:0",
		ListenPeer:    "127.0.0.1:0",
		Name:          "test",
		Logger:        slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})),
		UnsafeNoFsync: true,
	})
	if err != nil {
		t.Fatalf("start embedded etcd: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("stop embedded etcd: %v", err)
		}
		w.done.Store(true)
	})
	return s
}

// testWriter sends log lines to t.Log until the server is closed; a stray
// line after that would make the testing package panic.
type testWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(string(p))
	}
	return len(p), nil
}
