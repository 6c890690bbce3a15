// Command ociimage writes an OCI image layout tarball without Docker: one
// uncompressed layer holding the given files, a config with the entrypoint,
// and an index annotated with io.containerd.image.name so that
// `ctr -n k8s.io images import FILE` tags it. Standard library only. With
// -ldd a dynamically linked file (e.g. the nft CLI the node agent runs) comes
// with the shared libraries ldd lists.
//
//	go run ./cmd/ociimage -o calicoctl.tar -name docker.io/opencalico/calicoctl:dev \
//	    -file bin/calicoctl:/calicoctl -entrypoint /calicoctl
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Media types of the OCI image spec.
const (
	mediaIndex    = "application/vnd.oci.image.index.v1+json"
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar"
)

// File is one file of the layer: Src on this machine, Dst in the image.
type File struct {
	Src, Dst string
	Mode     int64
}

// Image describes the image to write.
type Image struct {
	// Name is the full reference, e.g. docker.io/opencalico/calicoctl:dev.
	Name       string
	Files      []File
	Entrypoint []string
	Cmd        []string
	Env        []string
	OS, Arch   string
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *platform         `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// epoch is every timestamp in the image, so the same inputs give the same digests.
var epoch = time.Unix(0, 0).UTC()

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("ociimage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output tarball (required)")
	name := fs.String("name", "", "image reference, e.g. docker.io/opencalico/calicoctl:dev (required)")
	var files, entry, cmd, env listFlag
	fs.Var(&files, "file", "SRC:DST, a file to put in the layer (repeatable)")
	fs.Var(&entry, "entrypoint", "entrypoint word (repeatable)")
	fs.Var(&cmd, "cmd", "default argument (repeatable)")
	fs.Var(&env, "env", "KEY=VALUE (repeatable)")
	withLibs := fs.Bool("ldd", false, "also add the shared libraries (and loader) each dynamically linked -file needs, as ldd lists them, at their paths on this machine")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || *name == "" || len(files) == 0 {
		return errors.New("-o, -name and at least one -file are required")
	}
	img := Image{Name: *name, Entrypoint: entry, Cmd: cmd, Env: env, OS: "linux", Arch: runtime.GOARCH}
	for _, f := range files {
		src, dst, ok := strings.Cut(f, ":")
		if !ok || src == "" || !strings.HasPrefix(dst, "/") {
			return fmt.Errorf("-file %q: want SRC:/DST", f)
		}
		img.Files = append(img.Files, File{Src: src, Dst: dst, Mode: 0o755})
	}
	if *withLibs {
		libs, err := sharedLibs(img.Files)
		if err != nil {
			return err
		}
		img.Files = append(img.Files, libs...)
	}
	w, err := os.Create(*out)
	if err != nil {
		return err
	}
	if err := Write(w, img); err != nil {
		w.Close()
		os.Remove(*out)
		return err
	}
	return w.Close()
}

// Write writes img as an OCI image layout tarball.
func Write(w io.Writer, img Image) error {
	layer, err := buildLayer(img.Files)
	if err != nil {
		return err
	}
	layerDesc := blobDescriptor(mediaLayer, layer)
	env := img.Env
	if len(env) == 0 {
		env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	config, err := json.Marshal(map[string]any{
		"created":      epoch.Format(time.RFC3339),
		"architecture": img.Arch,
		"os":           img.OS,
		"config":       map[string]any{"Entrypoint": img.Entrypoint, "Cmd": img.Cmd, "Env": env},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{layerDesc.Digest}},
		"history":      []map[string]any{{"created": epoch.Format(time.RFC3339), "created_by": "ociimage"}},
	})
	if err != nil {
		return err
	}
	configDesc := blobDescriptor(mediaConfig, config)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaManifest,
		"config":        configDesc,
		"layers":        []descriptor{layerDesc},
	})
	if err != nil {
		return err
	}
	manifestDesc := blobDescriptor(mediaManifest, manifest)
	manifestDesc.Platform = &platform{Architecture: img.Arch, OS: img.OS}
	manifestDesc.Annotations = map[string]string{"io.containerd.image.name": img.Name}
	if i := strings.LastIndex(img.Name, ":"); i > strings.LastIndex(img.Name, "/") {
		manifestDesc.Annotations["org.opencontainers.image.ref.name"] = img.Name[i+1:]
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaIndex,
		"manifests":     []descriptor{manifestDesc},
	})
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir}); err != nil {
			return err
		}
	}
	for _, b := range [][]byte{layer, config, manifest} {
		if err := add("blobs/sha256/"+hexDigest(b), b); err != nil {
			return err
		}
	}
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := add("index.json", index); err != nil {
		return err
	}
	return tw.Close()
}

// buildLayer is an uncompressed tar of files, with their parent directories.
func buildLayer(files []File) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	sorted := append([]File(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Dst < sorted[j].Dst })
	for _, f := range sorted {
		dst := strings.TrimPrefix(path.Clean(f.Dst), "/")
		if dst == "" || dst == "." {
			return nil, fmt.Errorf("bad destination %q", f.Dst)
		}
		var parents []string
		for d := path.Dir(dst); d != "."; d = path.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Name: d + "/", Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir}); err != nil {
				return nil, err
			}
		}
		data, err := os.ReadFile(f.Src)
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Name: dst, Mode: f.Mode, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// sharedLibs lists the libraries the files need (ldd's paths), once each,
// skipping those already in files. A static binary needs none.
func sharedLibs(files []File) ([]File, error) {
	have := map[string]bool{}
	for _, f := range files {
		have[path.Clean(f.Dst)] = true
	}
	var out []File
	for _, f := range files {
		o, err := exec.Command("ldd", f.Src).CombinedOutput()
		if err != nil {
			if strings.Contains(string(o), "not a dynamic executable") {
				continue
			}
			return nil, fmt.Errorf("ldd %s: %w: %s", f.Src, err, o)
		}
		for _, lib := range parseLDD(string(o)) {
			if !have[lib] {
				have[lib] = true
				out = append(out, File{Src: lib, Dst: lib, Mode: 0o755})
			}
		}
	}
	return out, nil
}

// parseLDD returns the absolute paths in ldd's output ("libx.so => /lib/libx.so (0x...)",
// "/lib64/ld-linux-x86-64.so.2 (0x...)"); the vDSO has none.
func parseLDD(out string) []string {
	var libs []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if _, after, ok := strings.Cut(line, "=> "); ok {
			line = after
		}
		if p, _, _ := strings.Cut(line, " "); strings.HasPrefix(p, "/") {
			libs = append(libs, path.Clean(p))
		}
	}
	return libs
}

func hexDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func blobDescriptor(mediaType string, b []byte) descriptor {
	return descriptor{MediaType: mediaType, Digest: "sha256:" + hexDigest(b), Size: int64(len(b))}
}
