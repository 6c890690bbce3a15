package version

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"v3.30.2", "3.30.2"},
		{"3.30.2", "3.30.2"},
		{"v3.30.2-0.dev-12-gabc", "3.30.2"},
		{" v3.30.2\n", "3.30.2"},
		{"vv3.1.0", "v3.1.0"}, // only one leading v
		{"master", "master"},
		{"", ""},
		{"-dev", ""},
	}
	for _, tt := range tests {
		if got := Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCheck(t *testing.T) {
	mismatch := func(client, cluster string) string {
		return "version mismatch.\nClient Version:   " + client + "\nCluster Version:  " + cluster +
			"\nUse --allow-version-mismatch to override"
	}
	tests := []struct {
		name, client, cluster string
		wantWarn              string
		wantErr               string
	}{
		{name: "equal", client: "v3.30.2", cluster: "v3.30.2"},
		{name: "equal after trimming", client: "v3.30.2-12-gabc", cluster: "3.30.2"},
		{name: "equal numerically", client: "v3.30.02", cluster: "v3.30.2"},
		{name: "two-part cluster", client: "v3.30.0", cluster: "v3.30"},
		{name: "empty cluster", client: "v3.30.2", cluster: ""},
		{name: "blank cluster", client: "v3.30.2", cluster: "  "},
		{name: "patch differs", client: "v3.30.1", cluster: "v3.30.2-dirty",
			wantWarn: "Warning: client version v3.30.1 and cluster version 3.30.2 differ in patch level"},
		{name: "minor differs", client: "v3.29.0", cluster: "v3.30.0", wantErr: mismatch("v3.29.0", "3.30.0")},
		{name: "major differs", client: "v4.30.0", cluster: "v3.30.0", wantErr: mismatch("v4.30.0", "3.30.0")},
		{name: "dev client", client: "v0.0.0-dev", cluster: "v3.30.0", wantErr: mismatch("v0.0.0-dev", "3.30.0")},
		{name: "unparsable equal strings", client: "vmaster-abc", cluster: "master"},
		{name: "unparsable different", client: "master", cluster: "v3.30.0", wantErr: mismatch("master", "3.30.0")},
		{name: "unparsable cluster", client: "v3.30.0", cluster: "3.30.x", wantErr: mismatch("v3.30.0", "3.30.x")},
		{name: "signed part is not a number", client: "v3.30.+1", cluster: "v3.30.1", wantErr: mismatch("v3.30.+1", "3.30.1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			warn, err := Check(tt.client, tt.cluster)
			if warn != tt.wantWarn {
				t.Errorf("warning = %q, want %q", warn, tt.wantWarn)
			}
			if strings.Contains(warn, "\n") {
				t.Errorf("warning spans lines: %q", warn)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("error = %v, want none", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.wantErr)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error =\n%s\nwant\n%s", err, tt.wantErr)
			}
			if !errors.Is(err, ErrMismatch) {
				t.Errorf("errors.Is(err, ErrMismatch) = false")
			}
		})
	}
}

func TestAllowMismatchFromEnv(t *testing.T) {
	tests := []struct {
		val  string
		set  bool
		want bool
	}{
		{"", false, false},
		{"true", true, true},
		{"TRUE", true, true},
		{"1", true, true},
		{"yes", true, true},
		{" Yes ", true, true},
		{"false", true, false},
		{"0", true, false},
		{"no", true, false},
		{"", true, false},
		{"on", true, false},
	}
	for _, tt := range tests {
		env := func(k string) (string, bool) {
			if k != "CALICO_ALLOW_VERSION_MISMATCH" {
				t.Errorf("looked up %q", k)
			}
			return tt.val, tt.set
		}
		if got := AllowMismatchFromEnv(env); got != tt.want {
			t.Errorf("AllowMismatchFromEnv(%q set=%v) = %v, want %v", tt.val, tt.set, got, tt.want)
		}
	}
}

func TestWriteVersion(t *testing.T) {
	savedV, savedC := Version, GitCommit
	t.Cleanup(func() { Version, GitCommit = savedV, savedC })
	Version, GitCommit = "v9.8.7", "feedface"
	tests := []struct {
		name string
		info Info
		want string
	}{
		{
			name: "full",
			info: Info{ClientVersion: "v3.32.1", GitCommit: "abc123", ClusterVersion: "v3.32.1", ClusterType: "k8s,bgp,kubeadm"},
			want: "Client Version:    v3.32.1\n" +
				"Git commit:        abc123\n" +
				"Cluster Version:   v3.32.1\n" +
				"Cluster Type:      k8s,bgp,kubeadm\n",
		},
		{
			name: "empty cluster type",
			info: Info{ClientVersion: "v3.32.1", GitCommit: "abc123", ClusterVersion: "v3.31.0"},
			want: "Client Version:    v3.32.1\n" +
				"Git commit:        abc123\n" +
				"Cluster Version:   v3.31.0\n" +
				"Cluster Type:      unknown\n",
		},
		{
			name: "client only",
			info: Info{ClientVersion: "v3.32.1", GitCommit: "abc123", ClientOnly: true, ClusterVersion: "x"},
			want: "Client Version:    v3.32.1\n" +
				"Git commit:        abc123\n",
		},
		{
			name: "client fields default to this build",
			info: Info{ClientOnly: true},
			want: "Client Version:    v9.8.7\n" +
				"Git commit:        feedface\n",
		},
		{
			name: "cluster unreadable",
			info: Info{ClientVersion: "v3.32.1", GitCommit: "abc123", ClusterErr: errors.New("connection refused")},
			want: "Client Version:    v3.32.1\n" +
				"Git commit:        abc123\n" +
				"Unable to detect installed Calico version\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			WriteVersion(&buf, tt.info)
			if buf.String() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", buf.String(), tt.want)
			}
			for _, l := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
				if strings.HasSuffix(l, ":") || strings.HasPrefix(l, "Unable") {
					continue
				}
				if i := strings.Index(l, ": "); i >= 0 && strings.TrimLeft(l[i+1:], " ") != "" {
					col := len(l) - len(strings.TrimLeft(l[i+1:], " ")) + 1
					if col != 20 {
						t.Errorf("value of %q starts at column %d, want 20", l, col)
					}
				}
			}
		})
	}
}

func TestCurrent(t *testing.T) {
	saved := GitCommit
	t.Cleanup(func() { GitCommit = saved })
	GitCommit = "deadbeef"
	got := Current()
	if got.ClientVersion != Version || got.GitCommit != "deadbeef" {
		t.Errorf("Current() = %+v", got)
	}
	GitCommit = ""
	if Commit() == "" {
		t.Error("Commit() is empty without GitCommit; want a revision or \"unknown\"")
	}
}
