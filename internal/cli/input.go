package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/opencalico/calicoctl/resources"
)

// fileFlags are the input flags shared by create/apply/replace/delete/get.
type fileFlags struct {
	Filename  string
	Recursive bool
	SkipEmpty bool

	// compact keeps the documents as checked JSON until Document.Object is
	// called (bulk writes decode them a chunk at a time).
	compact bool
}

func (ff *fileFlags) decode(data []byte, name string) ([]resources.Document, error) {
	if ff.compact {
		return resources.DecodeCompact(data, name)
	}
	return resources.Decode(data, name)
}

func (ff *fileFlags) add(cmd *cobra.Command, required bool) {
	fl := cmd.Flags()
	fl.StringVarP(&ff.Filename, "filename", "f", "", "file or directory of resources (YAML or JSON); '-' reads stdin")
	fl.BoolVarP(&ff.Recursive, "recursive", "R", false, "process the directory given to -f recursively")
	fl.BoolVar(&ff.SkipEmpty, "skip-empty", false, "do not fail when the file or directory holds no resources")
	if required {
		_ = cmd.MarkFlagRequired("filename")
	}
}

// read loads every document named by -f.
func (ff *fileFlags) read(stdin io.Reader) ([]resources.Document, error) {
	if ff.Filename == "-" {
		data, err := resources.ReadInput(stdin, "stdin")
		if err != nil {
			return nil, err
		}
		docs, err := ff.decode(data, "stdin")
		if err != nil {
			return nil, err
		}
		if len(docs) == 0 && !ff.SkipEmpty {
			return nil, errors.New("no resources specified in file stdin")
		}
		return docs, nil
	}
	info, err := os.Stat(ff.Filename)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", ff.Filename, errors.Unwrap(err))
	}
	files := []string{ff.Filename}
	if info.IsDir() {
		files, err = listManifests(ff.Filename, ff.Recursive)
		if err != nil {
			return nil, err
		}
	}
	var all []resources.Document
	for _, name := range files {
		data, err := readFile(name)
		if err != nil {
			return nil, err
		}
		docs, err := ff.decode(data, name)
		if err != nil {
			return nil, err
		}
		if len(docs) == 0 && !ff.SkipEmpty && !info.IsDir() {
			return nil, fmt.Errorf("no resources specified in file %s", name)
		}
		all = append(all, docs...)
	}
	if len(all) == 0 && info.IsDir() && !ff.SkipEmpty {
		return nil, fmt.Errorf("no resources specified in directory %s", ff.Filename)
	}
	return all, nil
}

// readFile reads one manifest file within resources' input limits: a regular
// file too large is refused before reading, endless ones (/dev/zero, a FIFO)
// once a document passes the limit.
func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", name, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		if st.Size() > resources.MaxInputBytes {
			return nil, fmt.Errorf("%s: input larger than %d MiB, the limit for one input: %w", name, resources.MaxInputBytes>>20, resources.ErrTooLarge)
		}
		return resources.ReadInputSized(f, name, st.Size())
	}
	return resources.ReadInput(f, name)
}

func listManifests(dir string, recursive bool) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != dir && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".yaml", ".yml", ".json":
			files = append(files, path)
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

// applyNamespace enforces upstream's namespace rules on a document's object.
// ns is the -n flag value.
func applyNamespace(r resources.Resource, ns string) error {
	k := resources.KindOf(r)
	if !k.Namespaced {
		if r.GetNamespace() != "" {
			return fmt.Errorf("namespace should not be specified for a non-namespaced resource. %s is not a namespaced resource", k.Kind)
		}
		if ns != "" {
			return fmt.Errorf("%s is not namespaced", k.Kind)
		}
		return nil
	}
	switch {
	case r.GetNamespace() == "" && ns != "":
		r.SetNamespace(ns)
	case r.GetNamespace() == "":
		r.SetNamespace("default")
	case ns != "" && r.GetNamespace() != ns:
		return fmt.Errorf("resource namespace does not match client namespace. %s != %s", r.GetNamespace(), ns)
	}
	return nil
}
