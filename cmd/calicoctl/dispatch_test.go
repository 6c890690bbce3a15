package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/internal/cli"
	"github.com/opencalico/calicoctl/internal/cni"
)

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

func TestPluginModesAreCNIPluginNames(t *testing.T) {
	if string(modeCNI) != cni.PluginCalico || string(modeCNIIPAM) != cni.PluginIPAM {
		t.Fatalf("modes %q/%q do not name the CNI plugins %q/%q", modeCNI, modeCNIIPAM, cni.PluginCalico, cni.PluginIPAM)
	}
}

func TestRunPluginVersion(t *testing.T) {
	tests := []struct {
		mode mode
		env  string
		want string
		code int
	}{
		{modeCNI, "VERSION", `"supportedVersions"`, 0},
		{modeCNIIPAM, "VERSION", `"1.0.0"`, 0},
		{modeCNI, "BOGUS", `"code": 4`, 1},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode)+"/"+tt.env, func(t *testing.T) {
			t.Setenv("CNI_COMMAND", tt.env)
			var out, errOut bytes.Buffer
			code := runPlugin(context.Background(), tt.mode, cli.IOStreams{In: strings.NewReader(`{"cniVersion":"1.0.0"}`), Out: &out, ErrOut: &errOut})
			if code != tt.code || !strings.Contains(out.String(), tt.want) {
				t.Fatalf("exit %d, stdout %q; want exit %d and %s", code, out.String(), tt.code, tt.want)
			}
		})
	}
}
