package kubetest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLocateBinary(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "kas")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")
	if err := os.MkdirAll(filepath.Join(cache, "calicoctl"), 0o755); err != nil {
		t.Fatal(err)
	}
	cached := filepath.Join(cache, "calicoctl", "kube-apiserver-"+DefaultVersion)
	if err := os.WriteFile(cached, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		env       map[string]string
		wantPath  string
		wantFound bool
		wantErr   bool
	}{
		{"explicit binary", map[string]string{envBinary: exe, "HOME": dir}, exe, true, false},
		{"explicit binary missing", map[string]string{envBinary: filepath.Join(dir, "nope"), "HOME": dir}, "", false, true},
		{"explicit binary not executable", map[string]string{envBinary: plain, "HOME": dir}, "", false, true},
		{"xdg cache hit", map[string]string{"XDG_CACHE_HOME": cache, "HOME": "/nonexistent"}, cached, true, false},
		{"home cache miss", map[string]string{"HOME": dir}, filepath.Join(dir, ".cache", "calicoctl", "kube-apiserver-"+DefaultVersion), false, false},
		{"CACHE_DIR and KUBE_VERSION", map[string]string{envCache: filepath.Join(cache, "calicoctl"), envVersion: "v9.9.9"}, filepath.Join(cache, "calicoctl", "kube-apiserver-v9.9.9"), false, false},
		{"no home at all", map[string]string{}, "", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, found, err := locateBinary(func(k string) string { return tc.env[k] })
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if got != tc.wantPath || found != tc.wantFound {
				t.Errorf("got (%q, %v), want (%q, %v)", got, found, tc.wantPath, tc.wantFound)
			}
		})
	}
}

func TestBuildScriptExists(t *testing.T) {
	p, err := buildScript()
	if err != nil {
		t.Fatal(err)
	}
	if err := checkExecutable(p); err != nil {
		t.Errorf("build.sh: %v", err)
	}
}

func TestTail(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb", 5, "a\nb"},
		{"", 3, ""},
	}
	for _, tc := range tests {
		if got := tail(tc.in, tc.n); got != tc.want {
			t.Errorf("tail(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
