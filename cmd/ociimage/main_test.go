package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readTar returns a tarball's regular files by name.
func readTar(t *testing.T, r io.Reader) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			files[h.Name] = b
		} else {
			files[h.Name] = nil
		}
	}
}

func TestWriteIsAValidImageLayout(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "calicoctl")
	if err := os.WriteFile(bin, []byte("\x7fELF static"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "img.tar")
	err := run([]string{"-o", out, "-name", "docker.io/opencalico/calicoctl:e2e", "-file", bin + ":/calicoctl",
		"-file", bin + ":/usr/bin/tool", "-entrypoint", "/calicoctl", "-cmd", "pause"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := readTar(t, f)
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %s", files["oci-layout"])
	}
	blob := func(d descriptor) []byte {
		t.Helper()
		b, ok := files["blobs/sha256/"+strings.TrimPrefix(d.Digest, "sha256:")]
		if !ok {
			t.Fatalf("blob %s missing", d.Digest)
		}
		sum := sha256.Sum256(b)
		if "sha256:"+hex.EncodeToString(sum[:]) != d.Digest || int64(len(b)) != d.Size {
			t.Fatalf("blob %s: digest or size mismatch", d.Digest)
		}
		return b
	}
	var index struct {
		Manifests []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v %s", err, files["index.json"])
	}
	m := index.Manifests[0]
	if m.Annotations["io.containerd.image.name"] != "docker.io/opencalico/calicoctl:e2e" ||
		m.Annotations["org.opencontainers.image.ref.name"] != "e2e" || m.Platform == nil || m.Platform.OS != "linux" {
		t.Errorf("manifest descriptor = %+v", m)
	}
	var manifest struct {
		Config descriptor   `json:"config"`
		Layers []descriptor `json:"layers"`
	}
	if err := json.Unmarshal(blob(m), &manifest); err != nil || len(manifest.Layers) != 1 {
		t.Fatalf("manifest: %v", err)
	}
	if manifest.Layers[0].MediaType != mediaLayer {
		t.Errorf("layer media type %s", manifest.Layers[0].MediaType)
	}
	var config struct {
		Config struct{ Entrypoint, Cmd []string }
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(blob(manifest.Config), &config); err != nil {
		t.Fatal(err)
	}
	if strings.Join(config.Config.Entrypoint, " ") != "/calicoctl" || strings.Join(config.Config.Cmd, " ") != "pause" {
		t.Errorf("config = %+v", config.Config)
	}
	if len(config.RootFS.DiffIDs) != 1 || config.RootFS.DiffIDs[0] != manifest.Layers[0].Digest {
		t.Errorf("diff_ids %v, layer %s (uncompressed: must be equal)", config.RootFS.DiffIDs, manifest.Layers[0].Digest)
	}
	layer := readTar(t, bytes.NewReader(blob(manifest.Layers[0])))
	if string(layer["calicoctl"]) != "\x7fELF static" || string(layer["usr/bin/tool"]) != "\x7fELF static" {
		t.Errorf("layer files: %v", layer)
	}
	if _, ok := layer["usr/"]; !ok {
		t.Errorf("layer lacks the parent directory usr/")
	}
}

func TestWriteIsReproducible(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "x")
	os.WriteFile(bin, []byte("x"), 0o755)
	var a, b bytes.Buffer
	img := Image{Name: "example.com/x:1", Files: []File{{Src: bin, Dst: "/x", Mode: 0o755}}, OS: "linux", Arch: "amd64"}
	if err := Write(&a, img); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, img); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two writes of the same image differ")
	}
}

func TestRunRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-name", "x:1", "-file", "a:/a"},
		{"-o", "x.tar", "-name", "x:1", "-file", "a:relative"},
	} {
		if err := run(args, io.Discard); err == nil {
			t.Errorf("run(%v) succeeded", args)
		}
	}
}

func TestParseLDD(t *testing.T) {
	out := "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibnftables.so.1 => /lib/x86_64-linux-gnu/libnftables.so.1 (0x00007f)\n" +
		"\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n"
	got := strings.Join(parseLDD(out), " ")
	want := "/lib/x86_64-linux-gnu/libnftables.so.1 /lib/x86_64-linux-gnu/libc.so.6 /lib64/ld-linux-x86-64.so.2"
	if got != want {
		t.Errorf("parseLDD = %q, want %q", got, want)
	}
}

func TestLDDAddsLibrariesOfDynamicFiles(t *testing.T) {
	sh := "/bin/sh"
	if _, err := os.Stat(sh); err != nil {
		t.Skip("no /bin/sh")
	}
	libs, err := sharedLibs([]File{{Src: sh, Dst: "/bin/sh"}})
	if err != nil {
		t.Skipf("ldd: %v", err)
	}
	var libc bool
	for _, l := range libs {
		libc = libc || strings.Contains(l.Dst, "libc.so")
	}
	if !libc {
		t.Errorf("libraries of /bin/sh: %v", libs)
	}
}
