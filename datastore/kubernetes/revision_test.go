package kubernetes

import (
	"strconv"
	"testing"
)

// Revision moves with any write in the cluster, native objects included, so
// the node agent can skip a round while it stands still.
func TestRevisionMovesOnAnyWrite(t *testing.T) {
	srv := server(t)
	b := backendFor(t, srv)
	ctx := testCtx(t)
	rev := func() int64 {
		t.Helper()
		r, err := b.Revision(ctx)
		if err != nil {
			t.Fatalf("Revision: %v", err)
		}
		n, err := strconv.ParseInt(r, 10, 64)
		if err != nil {
			t.Fatalf("revision %q is not a number", r)
		}
		return n
	}
	r0 := rev()
	if again := rev(); again != r0 {
		t.Errorf("revision moved without a write: %d -> %d", r0, again)
	}
	srv.CreateNamespace(t, "rev-probe", nil)
	r1 := rev()
	if r1 <= r0 {
		t.Errorf("revision did not move after a Namespace was created: %d -> %d", r0, r1)
	}
	srv.CreateNode(t, "rev-probe-node", nil)
	if r2 := rev(); r2 <= r1 {
		t.Errorf("revision did not move after a Node was created: %d -> %d", r1, r2)
	}
}
