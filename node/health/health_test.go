package health

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestServer(t *testing.T) (*Server, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, err := NewServer(Config{Addr: "127.0.0.1:0"}, WithClock(clk.now), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	return s, clk
}

func get(t *testing.T, h http.Handler, method, target string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec.Code, rec.Body.String()
}

func TestProbes(t *testing.T) {
	type step struct {
		setup          func(s *Server, clk *fakeClock)
		path           string
		wantCode       int
		wantBody       []string // substrings
		wantBodyAbsent []string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "no components: 204 on both", steps: []step{
			{path: "/liveness", wantCode: 204},
			{path: "/readiness", wantCode: 204},
		}},
		{name: "registered but not reported: 503 not yet reported", steps: []step{
			{setup: func(s *Server, _ *fakeClock) { s.Register("routes", Reports{Live: true, Ready: true}, 0) },
				path: "/readiness", wantCode: 503, wantBody: []string{"routes", "bad", "not yet reported"}},
			{path: "/liveness", wantCode: 503, wantBody: []string{"not yet reported"}},
		}},
		{name: "all good: 200 with detail", steps: []step{
			{setup: func(s *Server, _ *fakeClock) {
				s.Register("routes", Reports{Live: true, Ready: true}, 10*time.Second).Report(State{Live: true, Ready: true, Detail: "in sync"})
				s.Register("tunnel", Reports{Ready: true}, 0).Report(State{Ready: true, Detail: "ipip device type unsupported by this kernel"})
			}, path: "/readiness", wantCode: 200, wantBody: []string{"COMPONENT", "READINESS", "routes", "10s", "in sync", "ipip device type unsupported"}},
			{path: "/liveness", wantCode: 200, wantBody: []string{"LIVENESS", "routes"}, wantBodyAbsent: []string{"tunnel"}},
		}},
		{name: "readiness gated on sync, liveness unaffected", steps: []step{
			{setup: func(s *Server, _ *fakeClock) {
				s.Register("datastore", Reports{Live: true, Ready: true}, 0).Report(State{Live: true, Ready: false, Detail: "syncing"})
			}, path: "/readiness", wantCode: 503, wantBody: []string{"datastore", "reported not ready: syncing"}},
			{path: "/liveness", wantCode: 200, wantBody: []string{"datastore", "ok"}},
		}},
		{name: "stale report fails, fresh report recovers", steps: []step{
			{setup: func(s *Server, clk *fakeClock) {
				r := s.Register("nat", Reports{Live: true}, 5*time.Second)
				r.Report(State{Live: true})
				clk.t = clk.t.Add(6 * time.Second)
			}, path: "/liveness", wantCode: 503, wantBody: []string{"nat", "no report for 6s (timeout 5s)"}},
			{path: "/readiness", wantCode: 204},
			{setup: func(s *Server, _ *fakeClock) {
				s.Register("nat", Reports{Live: true}, 5*time.Second).Report(State{Live: true})
			}, path: "/liveness", wantCode: 200, wantBodyAbsent: []string{"no report"}},
		}},
		{name: "one bad component among good ones", steps: []step{
			{setup: func(s *Server, _ *fakeClock) {
				s.Register("a", Reports{Live: true}, 0).Report(State{Live: true})
				s.Register("b", Reports{Live: true}, 0).Report(State{Live: false, Detail: "watch loop stuck"})
			}, path: "/liveness", wantCode: 503, wantBody: []string{"b ", "reported not live: watch loop stuck"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clk := newTestServer(t)
			h := s.Handler()
			for i, st := range tt.steps {
				if st.setup != nil {
					st.setup(s, clk)
				}
				code, body := get(t, h, http.MethodGet, st.path)
				if code != st.wantCode {
					t.Fatalf("step %d %s: code %d, want %d; body:\n%s", i, st.path, code, st.wantCode, body)
				}
				if code == 204 && body != "" {
					t.Errorf("step %d: 204 with body %q", i, body)
				}
				for _, w := range st.wantBody {
					if !strings.Contains(body, w) {
						t.Errorf("step %d %s: body lacks %q:\n%s", i, st.path, w, body)
					}
				}
				for _, w := range st.wantBodyAbsent {
					if strings.Contains(body, w) {
						t.Errorf("step %d %s: body has %q:\n%s", i, st.path, w, body)
					}
				}
			}
		})
	}
}

func TestJSONAndMethods(t *testing.T) {
	s, _ := newTestServer(t)
	s.Register("routes", Reports{Live: true, Ready: true}, 0).Report(State{Live: true, Ready: false, Detail: "syncing"})
	h := s.Handler()

	code, body := get(t, h, http.MethodGet, "/readiness?format=json")
	if code != 503 {
		t.Fatalf("code %d", code)
	}
	var sum Summary
	if err := json.Unmarshal([]byte(body), &sum); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, body)
	}
	if sum.Ready || !sum.Live || len(sum.Components) != 1 || sum.Components[0].Reason != "reported not ready" {
		t.Errorf("summary = %+v", sum)
	}

	for _, c := range []struct {
		method string
		want   int
	}{{http.MethodHead, 503}, {http.MethodPost, 405}, {http.MethodDelete, 405}} {
		if code, _ := get(t, h, c.method, "/readiness"); code != c.want {
			t.Errorf("%s: code %d, want %d", c.method, code, c.want)
		}
	}
	if code, _ := get(t, h, http.MethodGet, "/other"); code != 404 {
		t.Errorf("/other: code %d, want 404", code)
	}
}

func TestNewServerConfig(t *testing.T) {
	tests := []struct {
		addr, want string
		wantErr    bool
	}{
		{addr: "", want: DefaultAddr},
		{addr: "0.0.0.0:9199", want: "0.0.0.0:9199"},
		{addr: "no-port", wantErr: true},
	}
	for _, tt := range tests {
		s, err := NewServer(Config{Addr: tt.addr})
		if (err != nil) != tt.wantErr {
			t.Fatalf("%q: err = %v, wantErr %v", tt.addr, err, tt.wantErr)
		}
		if err == nil && s.addr != tt.want {
			t.Errorf("%q: addr = %q, want %q", tt.addr, s.addr, tt.want)
		}
	}
}

func TestServeRealListener(t *testing.T) {
	s, _ := newTestServer(t)
	r := s.Register("agent", Reports{Live: true, Ready: true}, 0)
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()

	fetch := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := fetch("/readiness"); code != 503 || !strings.Contains(body, "not yet reported") {
		t.Errorf("before report: %d %q", code, body)
	}
	r.Report(State{Live: true, Ready: true})
	if code, _ := fetch("/readiness"); code != 200 {
		t.Errorf("after report: %d", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve returned %v after cancel", err)
	}
	if _, err := http.Get(base + "/liveness"); err == nil {
		t.Errorf("server still answering after shutdown")
	}
}
