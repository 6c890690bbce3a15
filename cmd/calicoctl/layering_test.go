package main

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// layers lists, for each group of packages, the module packages none of them
// may depend on (directly or not): dependencies point one way, CLI -> agent
// and CNI -> domain (client, IPAM) -> datastore -> resources, and nothing
// outside the tests depends on e2e/.
var layers = []struct {
	pkgs      string   // a `go list` pattern
	forbidden []string // package path prefixes, relative to the module
}{
	{"./node/...", []string{"internal/cli", "e2e/"}},
	{"./internal/cni/...", []string{"internal/cli", "node/", "e2e/"}},
	{"./internal/client/...", []string{"internal/cli", "internal/cni", "node/", "e2e/"}},
	{"./internal/ipam/...", []string{"internal/cli", "internal/cni", "node/", "e2e/"}},
	{"./datastore/...", []string{"internal/cli", "internal/cni", "internal/client", "internal/ipam", "node/", "e2e/"}},
	{"./resources/...", []string{"datastore", "internal/", "node/", "e2e/"}},
}

const modulePath = "github.com/opencalico/calicoctl/"

// TestLayering fails when a package imports, directly or through others, a
// package of a layer above it.
func TestLayering(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	for _, l := range layers {
		// -test: a package's tests count too (lower layers' tests must not
		// reach into e2e/ either).
		cmd := exec.Command("go", "list", "-test", "-json=ImportPath,Deps", l.pkgs)
		cmd.Dir = "../.." // the module root
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("go list %s: %v\n%s", l.pkgs, err, ee.Stderr)
			}
			t.Fatalf("go list %s: %v", l.pkgs, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(out)))
		n := 0
		for {
			var p struct {
				ImportPath string
				Deps       []string
			}
			if err := dec.Decode(&p); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			n++
			for _, d := range p.Deps {
				rel, ok := strings.CutPrefix(d, modulePath)
				if !ok {
					continue
				}
				for _, f := range l.forbidden {
					if rel == strings.TrimSuffix(f, "/") || strings.HasPrefix(rel, strings.TrimSuffix(f, "/")+"/") {
						t.Errorf("%s depends on %s (layer %s may not depend on %s)", p.ImportPath, d, l.pkgs, f)
					}
				}
			}
		}
		if n == 0 {
			t.Errorf("go list %s matched no package", l.pkgs)
		}
	}
}
