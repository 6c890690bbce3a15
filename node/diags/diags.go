// Package diags is `calicoctl node diags`: it collects the node's routes,
// links, addresses, neighbours, VXLAN forwarding entries, nftables ruleset,
// its Node resource and IP pools, the version and recent agent logs into one
// tar.gz for a bug report. A collector that fails records its error in its
// file instead of its output; the tarball is always written.
package diags

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

// DefaultLogTail is how much of the end of each log file is kept.
const DefaultLogTail = 5 << 20

// Runner runs a command and returns its combined output.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// ExecRunner runs commands on this host (os/exec).
func ExecRunner(ctx context.Context, name string, args ...string) ([]byte, error) {
	if _, err := exec.LookPath(name); err != nil {
		return nil, fmt.Errorf("%s is not installed: %w", name, err)
	}
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}

// Config says what to collect and where to write it.
type Config struct {
	// Output is the tarball path; default DefaultOutput(Now()).
	Output string
	// Run runs the host commands; default ExecRunner.
	Run Runner
	// Datastore, when non-nil, supplies the Node and the IP pools;
	// otherwise DatastoreErr says why there is none.
	Datastore    datastore.Interface
	DatastoreErr error
	// NodeName is this node's name in the datastore.
	NodeName string
	// Version is the `calicoctl version` text.
	Version string
	// Logs are log files or directories (every regular file below is
	// taken); the last LogTail bytes of each are kept.
	Logs    []string
	LogTail int64
	Now     func() time.Time
}

// Entry is one file in the tarball.
type Entry struct {
	Name string // path inside the tarball
	Size int
	// Err is why the content is an error note instead of the data.
	Err error
}

// Result says where the tarball is and what it holds.
type Result struct {
	Path    string
	Entries []Entry
}

// DefaultOutput is /tmp/calico-diags-YYYYMMDD_HHMMSS.tar.gz.
func DefaultOutput(t time.Time) string {
	return filepath.Join(os.TempDir(), "calico-diags-"+t.Format("20060102_150405")+".tar.gz")
}

// Command is one host command and the file its output goes to.
type Command struct {
	File string
	Args []string
}

// Commands are the host commands collected, in order.
var Commands = []Command{
	{"ip-route-v4.txt", []string{"ip", "-4", "route", "show", "table", "all"}},
	{"ip-route-v6.txt", []string{"ip", "-6", "route", "show", "table", "all"}},
	{"ip-link.txt", []string{"ip", "-d", "link", "show"}},
	{"ip-addr.txt", []string{"ip", "addr", "show"}},
	{"ip-neigh.txt", []string{"ip", "neigh", "show"}},
	{"bridge-fdb-vxlan.calico.txt", []string{"bridge", "fdb", "show", "dev", "vxlan.calico"}},
	{"bridge-fdb-vxlan-v6.calico.txt", []string{"bridge", "fdb", "show", "dev", "vxlan-v6.calico"}},
	{"nft-ruleset.txt", []string{"nft", "list", "ruleset"}},
}

// Collect gathers everything and writes the tarball.
func Collect(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Run == nil {
		cfg.Run = ExecRunner
	}
	if cfg.LogTail <= 0 {
		cfg.LogTail = DefaultLogTail
	}
	now := cfg.Now()
	if cfg.Output == "" {
		cfg.Output = DefaultOutput(now)
	}
	dir := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(cfg.Output), ".gz"), ".tar")
	dir = strings.TrimSuffix(dir, ".tgz")

	var files []file
	add := func(name string, data []byte, err error) {
		if err != nil {
			data = append(data, []byte(fmt.Sprintf("\n# error: %v\n", err))...)
		}
		files = append(files, file{name: dir + "/" + name, data: data, err: err, mtime: now})
	}
	add("version.txt", []byte(cfg.Version+"\n"), nil)
	add("date.txt", []byte(now.UTC().Format(time.RFC3339)+"\n"), nil)
	for _, c := range Commands {
		out, err := cfg.Run(ctx, c.Args[0], c.Args[1:]...)
		if err != nil {
			err = fmt.Errorf("%s: %w", strings.Join(c.Args, " "), err)
		}
		add(c.File, out, err)
	}
	node, pools := datastoreFiles(ctx, cfg)
	add("node.yaml", node.data, node.err)
	add("ippools.yaml", pools.data, pools.err)
	for _, l := range collectLogs(cfg.Logs, cfg.LogTail) {
		add("logs/"+l.name, l.data, l.err)
	}

	if err := writeTarball(cfg.Output, files); err != nil {
		return nil, err
	}
	res := &Result{Path: cfg.Output}
	for _, f := range files {
		res.Entries = append(res.Entries, Entry{Name: f.name, Size: len(f.data), Err: f.err})
	}
	return res, nil
}

type file struct {
	name  string
	data  []byte
	err   error
	mtime time.Time
}

func datastoreFiles(ctx context.Context, cfg Config) (node, pools file) {
	if cfg.Datastore == nil {
		err := cfg.DatastoreErr
		if err == nil {
			err = errors.New("no datastore configured")
		}
		err = fmt.Errorf("datastore not reachable: %w", err)
		return file{err: err}, file{err: err}
	}
	if cfg.NodeName == "" {
		node.err = errors.New("node name unknown (set NODENAME or --name)")
	} else if r, err := cfg.Datastore.Get(ctx, resources.Key{Kind: "Node", Name: cfg.NodeName}); err != nil {
		node.err = fmt.Errorf("reading Node %s: %w", cfg.NodeName, err)
	} else {
		node.data, node.err = yaml.Marshal(r)
	}
	list, err := cfg.Datastore.List(ctx, datastore.ListOptions{Kind: "IPPool"})
	if err != nil {
		pools.err = fmt.Errorf("listing IP pools: %w", err)
		return node, pools
	}
	doc := map[string]any{"apiVersion": "projectcalico.org/v3", "kind": "IPPoolList", "items": list.Items}
	pools.data, pools.err = yaml.Marshal(doc)
	return node, pools
}

type logFile struct {
	name string
	data []byte
	err  error
}

// collectLogs reads the tail of each log file (directories are walked).
func collectLogs(paths []string, tail int64) []logFile {
	var out []logFile
	seen := map[string]bool{}
	addFile := func(path, name string) {
		if seen[name] {
			name = strings.ReplaceAll(strings.TrimPrefix(path, "/"), "/", "_")
		}
		seen[name] = true
		data, err := readTail(path, tail)
		out = append(out, logFile{name: name, data: data, err: err})
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			out = append(out, logFile{name: filepath.Base(p), err: err})
			continue
		}
		if !st.IsDir() {
			addFile(p, filepath.Base(p))
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			rel, _ := filepath.Rel(p, path)
			addFile(path, filepath.Join(filepath.Base(p), rel))
			return nil
		})
		if err != nil {
			out = append(out, logFile{name: filepath.Base(p), err: err})
		}
	}
	return out
}

func readTail(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > n {
		if _, err := f.Seek(st.Size()-n, io.SeekStart); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(io.LimitReader(f, n))
}

// writeTarball writes files to path atomically (temp file + rename).
func writeTarball(path string, files []file) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".diags-*.tmp")
	if err != nil {
		return fmt.Errorf("creating the diags tarball: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	gz := gzip.NewWriter(tmp)
	tw := tar.NewWriter(gz)
	dirs := map[string]bool{}
	for _, f := range files {
		for d := filepath.Dir(f.name); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	for _, d := range sortedDirs(dirs) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: files[0].mtime}); err != nil {
			return fmt.Errorf("writing the diags tarball: %w", err)
		}
	}
	for _, f := range files {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: f.mtime}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("writing the diags tarball: %w", err)
		}
		if _, err := io.Copy(tw, bytes.NewReader(f.data)); err != nil {
			return fmt.Errorf("writing the diags tarball: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing the diags tarball: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("writing the diags tarball: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("writing the diags tarball: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the diags tarball: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing the diags tarball: %w", err)
	}
	return nil
}

func sortedDirs(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for d := range m {
		out = append(out, d)
	}
	slices.Sort(out) // parents sort before their children
	return out
}
