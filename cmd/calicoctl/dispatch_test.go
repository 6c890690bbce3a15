package main

import "testing"

func TestDispatch(t *testing.T) {
	tests := []struct {
		argv0 string
		want  mode
	}{
		{"calicoctl", modeCLI},
		{"/usr/local/bin/calicoctl", modeCLI},
		{"/usr/local/bin/kubectl-calico", modeCLI},
		{"./bin/calicoctl-linux-amd64", modeCLI},
		{"/opt/cni/bin/calico", modeCNI},
		{"/opt/cni/bin/calico-ipam", modeCNIIPAM},
		{`C:\cni\calico.exe`, modeCLI}, // filepath.Base on Linux keeps the whole string
	}
	for _, tt := range tests {
		if got := dispatch(tt.argv0); got != tt.want {
			t.Errorf("dispatch(%q) = %s, want %s", tt.argv0, got, tt.want)
		}
	}
}
