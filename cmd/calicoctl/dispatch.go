package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencalico/calicoctl/internal/cli"
	"github.com/opencalico/calicoctl/internal/cni"
)

// mode is what the binary acts as, chosen from the name it was invoked by.
type mode string

const (
	modeCLI     mode = "calicoctl"
	modeCNI     mode = "calico"
	modeCNIIPAM mode = "calico-ipam"
)

// dispatch picks the mode from argv[0]: calicoctl and kubectl-calico run the
// CLI; calico and calico-ipam (CNI plugin names) run the CNI plugin.
func dispatch(argv0 string) mode {
	base := strings.TrimSuffix(filepath.Base(argv0), ".exe")
	switch base {
	case "calico":
		return modeCNI
	case "calico-ipam":
		return modeCNIIPAM
	default:
		return modeCLI
	}
}

// runPlugin runs the CNI plugin the mode names; the CNI_* variables come from
// the process environment, as a container runtime sets them.
func runPlugin(ctx context.Context, m mode, streams cli.IOStreams) int {
	return cni.Main(ctx, string(m), os.Getenv, streams.In, streams.Out, streams.ErrOut)
}
