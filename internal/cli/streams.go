// Package cli holds the calicoctl command tree: the root command, its global
// flags, configuration resolution and one file per verb.
package cli

import (
	"errors"
	"io"
)

// IOStreams are the standard streams a command reads and writes; tests inject
// buffers.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// ErrSilent is returned by commands that already printed their errors: main
// exits 1 without printing anything more.
var ErrSilent = errors.New("error already reported")
