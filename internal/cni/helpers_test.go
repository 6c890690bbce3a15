package cni

import (
	"testing"

	"github.com/opencalico/calicoctl/resources"
)

func mustName(t *testing.T, ids resources.WEPIdentifiers) string {
	t.Helper()
	n, err := ids.Name()
	if err != nil {
		t.Fatal(err)
	}
	return n
}
