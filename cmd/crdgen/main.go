// Command crdgen regenerates the CustomResourceDefinition manifest
// (manifests/crds.yaml) and the field descriptions compiled into
// internal/crds (zz_generated_docs.go) from the Go types and their doc
// comments. Run it from the module root: `make manifests`.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencalico/calicoctl/internal/crds"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "crdgen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("crdgen", flag.ContinueOnError)
	root := fs.String("root", ".", "module root directory")
	out := fs.String("out", "manifests/crds.yaml", "manifest path, relative to -root")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dirs := make([]string, len(crds.DocSources))
	for i, d := range crds.DocSources {
		dirs[i] = filepath.Join(*root, d)
	}
	docs, err := crds.ParseDocs(dirs...)
	if err != nil {
		return err
	}
	src, err := crds.DocsSource(docs)
	if err != nil {
		return err
	}
	// Render with the docs just parsed, not the compiled-in ones, so one run
	// brings both files up to date.
	manifest, err := crds.Render(crds.Options{Docs: docs})
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(*root, "internal/crds/zz_generated_docs.go"), src); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(*root, *out), manifest); err != nil {
		return err
	}
	// The Helm chart installs the same CRDs from its crds/ directory.
	return writeFile(filepath.Join(*root, "charts/calico/crds/crds.yaml"), manifest)
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
