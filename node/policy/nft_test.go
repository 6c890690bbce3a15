package policy

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestCompileGolden compares the rendered table of each case with
// testdata/<case>.golden (go test ./node/policy -run Golden -update
// rewrites them).
func TestCompileGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			d := Compile(tc.in())
			got, err := Dump(d)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range d.Notes {
				got += "# note: " + n + "\n"
			}
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs (run with -update to accept):\n%s", path, got)
			}
			// Deterministic: a second compile renders the same text.
			again, _ := Dump(Compile(tc.in()))
			for _, n := range d.Notes {
				again += "# note: " + n + "\n"
			}
			if again != got {
				t.Errorf("second compile differs")
			}
		})
	}
}
