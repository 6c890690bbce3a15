package etcdserver

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func newClient(t *testing.T, endpoints []string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestStartForTestPicksDistinctFreePorts(t *testing.T) {
	t.Parallel()
	a, b := StartForTest(t), StartForTest(t)
	for _, s := range []*Server{a, b} {
		eps := s.Endpoints()
		if len(eps) != 1 || !strings.HasPrefix(eps[0], "http://127.0.0.1:") || strings.HasSuffix(eps[0], ":0") {
			t.Fatalf("endpoints = %v, want one bound http://127.0.0.1:<port>", eps)
		}
	}
	if a.Endpoints()[0] == b.Endpoints()[0] {
		t.Fatalf("two servers share endpoint %s", a.Endpoints()[0])
	}
	ctx := context.Background()
	if _, err := newClient(t, a.Endpoints()).Put(ctx, "/k", "a"); err != nil {
		t.Fatalf("put: %v", err)
	}
	resp, err := newClient(t, b.Endpoints()).Get(ctx, "/k")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if len(resp.Kvs) != 0 {
		t.Fatalf("server b sees server a's key")
	}
}

func TestCloseKeepsDataAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	var logs bytes.Buffer
	cfg := Config{DataDir: dir, ListenClient: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	ctx := context.Background()

	s, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	c := newClient(t, s.Endpoints())
	for i := range 50 {
		if _, err := c.Put(ctx, "/calico/k"+string(rune('a'+i%26))+string(rune('0'+i/26)), "v"); err != nil {
			t.Fatalf("put: %v", err)
		}
	}
	_ = c.Close()
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}

	s2, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(func() { _ = s2.Close() })
	resp, err := newClient(t, s2.Endpoints()).Get(ctx, "/calico/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if resp.Count != 50 {
		t.Fatalf("after restart count = %d, want 50", resp.Count)
	}
	if err := s2.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if logs.Len() != 0 {
		t.Fatalf("a clean start, restart and shutdown logged warnings:\n%s", logs.String())
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no data dir", Config{}, "DataDir is required"},
		{"bad client address", Config{DataDir: t.TempDir(), ListenClient: "nope"}, "client address"},
		{"bad peer address", Config{DataDir: t.TempDir(), ListenClient: "127.0.0.1:0", ListenPeer: "x"}, "peer address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Start(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want containing %q", err, tc.want)
			}
		})
	}
}

func TestSlogCoreForwardsAtOrAboveMinimum(t *testing.T) {
	t.Parallel()
	tests := []struct {
		level zapcore.Level
		want  bool
	}{
		{zapcore.DebugLevel, false},
		{zapcore.InfoLevel, false},
		{zapcore.WarnLevel, true},
		{zapcore.ErrorLevel, true},
	}
	for _, tc := range tests {
		t.Run(tc.level.String(), func(t *testing.T) {
			var buf bytes.Buffer
			l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			zl := zap.New(newSlogCore(l, zapcore.WarnLevel, nil)).With(zap.String("member", "m1"))
			zl.Check(tc.level, "hello").Write(zap.Int("n", 7))
			got := buf.String()
			if tc.want != strings.Contains(got, "msg=hello") {
				t.Fatalf("level %s: output %q, want forwarded=%v", tc.level, got, tc.want)
			}
			if tc.want && (!strings.Contains(got, "n=7") || !strings.Contains(got, "member=m1") || !strings.Contains(got, "component=etcd")) {
				t.Fatalf("fields missing from %q", got)
			}
		})
	}
}
