// Package health serves the node agent's /liveness and /readiness endpoints
// (Felix's healthHost:healthPort, default localhost:9099).
//
// Components Register and then Report their state. A probe answers
//
//   - 503 when any component taking part in it is bad, has not reported yet,
//     or has not reported within its timeout (the body says which and why);
//   - 200 with a text table (or JSON with ?format=json or Accept:
//     application/json) of the components when all are good;
//   - 204 with no body when no component takes part in the probe.
//
// Readiness is gated on components reporting Ready, which components only do
// once they are in sync with the datastore.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// DefaultAddr is the default listen address (Felix healthHost:healthPort).
const DefaultAddr = "localhost:9099"

// Config configures a Server.
type Config struct {
	// Addr is host:port to listen on; default DefaultAddr.
	Addr string
}

// Option adjusts a Server.
type Option func(*Server)

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// Server aggregates component reports and serves them over HTTP.
type Server struct {
	addr string
	now  func() time.Time
	log  *slog.Logger

	mu         sync.Mutex
	components map[string]*component
}

type component struct {
	name    string
	reports Reports
	timeout time.Duration
	last    time.Time // zero until the first report
	state   State
}

// Reports says which probes a component takes part in.
type Reports struct {
	Live  bool
	Ready bool
}

// State is what a component last reported.
type State struct {
	Live   bool
	Ready  bool
	Detail string
}

// Reporter is a registered component's handle.
type Reporter struct {
	s    *Server
	name string
}

// NewServer returns a Server; it does not listen until Run or Serve.
func NewServer(cfg Config, opts ...Option) (*Server, error) {
	s := &Server{addr: cfg.Addr, now: time.Now, log: slog.Default(), components: map[string]*component{}}
	if s.addr == "" {
		s.addr = DefaultAddr
	}
	if _, _, err := net.SplitHostPort(s.addr); err != nil {
		return nil, fmt.Errorf("health listen address %q: %w", s.addr, err)
	}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Register adds a component. A component with timeout > 0 that has not
// reported for longer than timeout is stale and fails its probes. Registering
// a name twice replaces the earlier registration.
func (s *Server) Register(name string, reports Reports, timeout time.Duration) *Reporter {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.components[name] = &component{name: name, reports: reports, timeout: timeout}
	return &Reporter{s: s, name: name}
}

// Report records the component's current state and refreshes its timeout.
func (r *Reporter) Report(st State) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if c, ok := r.s.components[r.name]; ok {
		c.state, c.last = st, r.s.now()
	}
}

// ComponentStatus is one component's contribution to a probe.
type ComponentStatus struct {
	Name    string `json:"name"`
	Timeout string `json:"timeout,omitempty"`
	Live    *bool  `json:"live,omitempty"`
	Ready   *bool  `json:"ready,omitempty"`
	Detail  string `json:"detail,omitempty"`
	// Reason explains a failure (not yet reported, stale, reported bad).
	Reason string `json:"reason,omitempty"`
}

// Summary is the aggregated state.
type Summary struct {
	Live       bool              `json:"live"`
	Ready      bool              `json:"ready"`
	Components []ComponentStatus `json:"components"`
}

// Summary aggregates the components' reports as of now.
func (s *Server) Summary() Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	sum := Summary{Live: true, Ready: true}
	for _, name := range sortedKeys(s.components) {
		c := s.components[name]
		cs := ComponentStatus{Name: name, Detail: c.state.Detail}
		if c.timeout > 0 {
			cs.Timeout = c.timeout.String()
		}
		var reasons []string
		stale := ""
		switch {
		case c.last.IsZero():
			stale = "not yet reported"
		case c.timeout > 0 && now.Sub(c.last) > c.timeout:
			stale = fmt.Sprintf("no report for %s (timeout %s)", now.Sub(c.last).Round(time.Millisecond), c.timeout)
		}
		if stale != "" {
			reasons = append(reasons, stale)
		}
		if c.reports.Live {
			ok := stale == "" && c.state.Live
			cs.Live = &ok
			if stale == "" && !ok {
				reasons = append(reasons, "reported not live")
			}
			sum.Live = sum.Live && ok
		}
		if c.reports.Ready {
			ok := stale == "" && c.state.Ready
			cs.Ready = &ok
			if stale == "" && !ok {
				reasons = append(reasons, "reported not ready")
			}
			sum.Ready = sum.Ready && ok
		}
		cs.Reason = strings.Join(reasons, "; ")
		sum.Components = append(sum.Components, cs)
	}
	return sum
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Handler serves /liveness and /readiness.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/liveness", func(w http.ResponseWriter, r *http.Request) { s.serveProbe(w, r, true) })
	mux.HandleFunc("/readiness", func(w http.ResponseWriter, r *http.Request) { s.serveProbe(w, r, false) })
	return mux
}

func (s *Server) serveProbe(w http.ResponseWriter, r *http.Request, live bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	sum := s.Summary()
	// Keep only the components taking part in this probe.
	var parts []ComponentStatus
	for _, c := range sum.Components {
		if (live && c.Live != nil) || (!live && c.Ready != nil) {
			parts = append(parts, c)
		}
	}
	good := sum.Ready
	if live {
		good = sum.Live
	}
	if len(parts) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	code := http.StatusOK
	if !good {
		code = http.StatusServiceUnavailable
	}
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(Summary{Live: sum.Live, Ready: sum.Ready, Components: parts})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(renderText(parts, live)))
}

func wantsJSON(r *http.Request) bool {
	return r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json")
}

// renderText renders one probe's components as an aligned table.
func renderText(parts []ComponentStatus, live bool) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	probe := "READINESS"
	if live {
		probe = "LIVENESS"
	}
	fmt.Fprintf(tw, "COMPONENT\tTIMEOUT\t%s\tDETAIL\n", probe)
	for _, c := range parts {
		ok := c.Ready
		if live {
			ok = c.Live
		}
		verdict := "ok"
		if !*ok {
			verdict = "bad"
		}
		detail := c.Detail
		if !*ok && c.Reason != "" {
			detail = c.Reason
			if c.Detail != "" {
				detail += ": " + c.Detail
			}
		}
		timeout := c.Timeout
		if timeout == "" {
			timeout = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, timeout, verdict, detail)
	}
	_ = tw.Flush()
	return b.String()
}

// Listen opens the configured address.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return nil, fmt.Errorf("health server: %w", err)
	}
	return ln, nil
}

// Serve serves on ln until ctx is done, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("health server listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("health server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("health server shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("health server: %w", err)
	}
	return nil
}

// Run listens on the configured address and serves until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	ln, err := s.Listen()
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}
