package main

import (
	"path/filepath"
	"strings"
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
