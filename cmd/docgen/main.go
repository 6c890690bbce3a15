// Command docgen writes the calicoctl command reference (Markdown) from the
// cobra command tree: `go run ./cmd/docgen docs/reference`.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra/doc"

	"github.com/opencalico/calicoctl/internal/cli"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string) error {
	dir := "docs/reference"
	if len(args) > 0 {
		dir = args[0]
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root := cli.NewRootCommand("calicoctl", cli.IOStreams{In: os.Stdin, Out: io.Discard, ErrOut: io.Discard}, nil)
	root.DisableAutoGenTag = true
	return doc.GenMarkdownTree(root, dir)
}
