package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrNotRunning is returned by Fetch when no agent serves the socket.
var ErrNotRunning = errors.New("the Calico node agent is not running (no BGP status socket)")

// Serve answers on the unix socket at path until ctx ends:
//
//	GET /status[?routes=1]  the Report as JSON
//	GET /metrics            Prometheus text metrics
//
// A stale socket file is replaced; the file is removed on return.
func Serve(ctx context.Context, path string, src Source, log *slog.Logger) error {
	if path == "" {
		path = DefaultSocket
	}
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("status socket directory: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale status socket: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", path, err)
	}
	defer os.Remove(path)
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return fmt.Errorf("status socket permissions: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		rep, err := src.Report(r.Context(), r.URL.Query().Get("routes") == "1")
		if err != nil {
			log.Warn("bgp status: report", "err", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rep)
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		if err := src.WriteMetrics(r.Context(), w); err != nil {
			log.Warn("bgp status: metrics", "err", err)
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	log.Info("bgp status: serving", "socket", path)
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
		return nil
	case err := <-done:
		return fmt.Errorf("status server: %w", err)
	}
}

// client is an HTTP client that dials the unix socket at path.
func client(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

// Fetch reads the report from the agent at path (DefaultSocket when
// empty). It fails with ErrNotRunning when nothing serves the socket.
func Fetch(ctx context.Context, path string, withRoutes bool) (Report, error) {
	if path == "" {
		path = DefaultSocket
	}
	url := "http://agent/status"
	if withRoutes {
		url += "?routes=1"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Report{}, err
	}
	resp, err := client(path).Do(req)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return Report{}, fmt.Errorf("%w: %s", ErrNotRunning, path)
		}
		return Report{}, fmt.Errorf("query %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return Report{}, fmt.Errorf("query %s: %s: %s", path, resp.Status, b)
	}
	var rep Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return Report{}, fmt.Errorf("decode status from %s: %w", path, err)
	}
	return rep, nil
}
