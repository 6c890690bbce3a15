package kubetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Start runs an API server for this test and closes it when the test ends;
// its log tail is printed if the test failed. With no binary available it
// fails the test, or skips it under -short (where it also does not build).
func Start(t testing.TB) *APIServer {
	t.Helper()
	s, err := New(context.Background(), Config{Build: !testing.Short(), Logf: t.Logf})
	if err != nil {
		if errors.Is(err, ErrNoBinary) && testing.Short() {
			t.Skipf("kubetest: %v", err)
		}
		t.Fatalf("start kube-apiserver: %v", err)
	}
	t.Logf("kubetest: kube-apiserver ready at %s in %s", s.URL, s.StartupTime.Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s (last 40 lines) ---\n%s", s.LogFile, s.LogTail(40))
		}
		if err := s.Close(); err != nil {
			t.Errorf("kubetest: %v", err)
		}
	})
	return s
}

// shared is the test binary's one shared API server.
var shared struct {
	mu      sync.Mutex
	main    bool
	started bool
	s       *APIServer
	err     error
}

// Main runs the tests and then stops the shared API server, printing its
// log tail if anything failed. Use it from TestMain when tests call Shared:
//
//	func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.main = true
	shared.mu.Unlock()

	code := m.Run()

	shared.mu.Lock()
	s := shared.s
	shared.mu.Unlock()
	if s != nil {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "--- %s (last 60 lines) ---\n%s\n", s.LogFile, s.LogTail(60))
		}
		if err := s.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "kubetest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// Shared returns the test binary's API server, starting it on first use;
// it lives until Main returns. A start failure fails (or, under -short with
// no binary, skips) every test that asks, without retrying. Objects persist
// between tests, so use distinct names.
func Shared(t testing.TB) *APIServer {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.main {
		t.Fatal("kubetest.Shared needs TestMain to call kubetest.Main(m)")
	}
	if !shared.started {
		shared.started = true
		shared.s, shared.err = New(context.Background(), Config{Build: !testing.Short(), Logf: t.Logf})
		if shared.err == nil {
			t.Logf("kubetest: shared kube-apiserver ready at %s in %s", shared.s.URL, shared.s.StartupTime.Round(time.Millisecond))
		}
	}
	if shared.err != nil {
		if errors.Is(shared.err, ErrNoBinary) && testing.Short() {
			t.Skipf("kubetest: %v", shared.err)
		}
		t.Fatalf("start shared kube-apiserver: %v", shared.err)
	}
	return shared.s
}

// RESTConfig is an admin client configuration.
func (s *APIServer) RESTConfig() *rest.Config { return s.restConfig(s.Token) }

// RESTConfigFor is a client configuration for user in groups (see TokenFor).
func (s *APIServer) RESTConfigFor(user string, groups ...string) *rest.Config {
	return s.restConfig(s.TokenFor(user, groups...))
}

func (s *APIServer) restConfig(token string) *rest.Config {
	return &rest.Config{
		Host:            s.URL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: append([]byte(nil), s.CAData...)},
		QPS:             100,
		Burst:           200,
	}
}

// TokenFor mints a bearer token that authenticates as user with the given
// groups (plus system:authenticated). The user has no RBAC rights until a
// test binds some.
func (s *APIServer) TokenFor(user string, groups ...string) string {
	return s.webhook.mint(user, groups)
}

// KubeconfigFor writes a kubeconfig for user in groups into the test's
// temporary directory and returns its path.
func (s *APIServer) KubeconfigFor(t testing.TB, user string, groups ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := writeKubeconfig(path, kubeconfig(s.URL, s.CAData, user, s.TokenFor(user, groups...))); err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	return path
}

// Clientset is an admin client-go clientset.
func (s *APIServer) Clientset(t testing.TB) kubernetes.Interface {
	t.Helper()
	return newClientset(t, s.RESTConfig())
}

// ClientsetFor is a clientset acting as user in groups.
func (s *APIServer) ClientsetFor(t testing.TB, user string, groups ...string) kubernetes.Interface {
	t.Helper()
	return newClientset(t, s.RESTConfigFor(user, groups...))
}

// admin is the helpers' shared admin clientset.
func (s *APIServer) admin(t testing.TB) kubernetes.Interface {
	t.Helper()
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	if s.adminCS == nil {
		s.adminCS = newClientset(t, s.RESTConfig())
	}
	return s.adminCS
}

func newClientset(t testing.TB, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("kubetest: clientset: %v", err)
	}
	return cs
}
