package resources

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// endless yields its pattern forever.
type endless struct{ pattern []byte }

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = e.pattern[i%len(e.pattern)]
	}
	return len(p) - len(p)%len(e.pattern), nil
}

func TestReadInputLimits(t *testing.T) {
	tests := []struct {
		name    string
		in      io.Reader
		wantErr string // "" = success
	}{
		{"zeros", endless{[]byte{0}}, "stdin: the document starting at line 1 is larger than 1 MiB, the limit for one document"},
		{"yes", endless{[]byte("y\n")}, "stdin: the document starting at line 1 is larger than 1 MiB"},
		{"endless small documents", endless{[]byte("---\nkind: X\n")}, "stdin: input larger than 4 MiB, the limit for one input"},
		{"document after separators", strings.NewReader("---\na: 1\n---\n" + strings.Repeat("b: 2\n", 300000)), "the document starting at line 4 is larger than 1 MiB"},
		{"many small documents", strings.NewReader(strings.Repeat("---\nkind: X\nmetadata: {name: a}\n", 50000)), ""},
		{"no trailing newline", strings.NewReader("a: 1\n---\nb: 2"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readInput(tt.in, "stdin", 1<<20, 4<<20, 0)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err %v, want %q (ErrTooLarge); read %d bytes", err, tt.wantErr, len(got))
			}
		})
	}
}

func TestReadInputKeepsContent(t *testing.T) {
	var b strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&b, "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  name: s-%d\nspec:\n  nets: [10.0.0.0/24]\n", i)
	}
	got, err := ReadInput(strings.NewReader(b.String()), "bulk.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != b.String() {
		t.Fatal("content changed")
	}
	docs, err := Decode(got, "bulk.yaml")
	if err != nil || len(docs) != 10000 {
		t.Fatalf("decoded %d documents, err %v", len(docs), err)
	}
}
