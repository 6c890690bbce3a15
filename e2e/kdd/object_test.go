package kdd

import (
	"testing"

	"github.com/opencalico/calicoctl/e2e/clitest"
)

// object is a decoded YAML/JSON resource.
type object = clitest.Object

// getYAML reads one object with `get ... -o yaml`.
func (u *user) getYAML(t testing.TB, args ...string) (object, string) {
	t.Helper()
	out := u.mustRun(t, append(append([]string{"get"}, args...), "-o", "yaml")...)
	return clitest.ParseObject(t, out), out
}
