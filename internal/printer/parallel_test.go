package printer

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestRenderInOrder(t *testing.T) {
	errBoom := errors.New("boom")
	cases := []struct {
		name      string
		n         int
		failAt    int // batch start that fails in render; -1 for none
		emitFail  int // batch start that fails in emit; -1 for none
		wantErr   error
		wantItems int
	}{
		{"empty", 0, -1, -1, nil, 0},
		{"one batch", 10, -1, -1, nil, 10},
		{"many batches", 5000, -1, -1, nil, 5000},
		{"render fails", 5000, 3 * renderBatch, -1, errBoom, 3 * renderBatch},
		{"emit fails", 5000, -1, 2 * renderBatch, errBoom, 2 * renderBatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got strings.Builder
			render := func(lo, hi int, out *bytes.Buffer) (int, error) {
				if lo == c.failAt {
					return 0, errBoom
				}
				for i := lo; i < hi; i++ {
					fmt.Fprintf(out, "%d,", i)
				}
				return lo, nil
			}
			emit := func(out []byte, lo int) error {
				if lo == c.emitFail {
					return errBoom
				}
				got.Write(out)
				return nil
			}
			err := renderInOrder(c.n, render, emit)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			var want strings.Builder
			for i := range c.wantItems {
				fmt.Fprintf(&want, "%d,", i)
			}
			if got.String() != want.String() {
				t.Errorf("emitted %d bytes, want %d (items out of order or missing)", got.Len(), want.Len())
			}
		})
	}
}
