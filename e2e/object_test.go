package e2e

import (
	"testing"

	"github.com/opencalico/calicoctl/e2e/clitest"
)

// object is a decoded YAML/JSON resource.
type object = clitest.Object

// getYAML reads one object with `get ... -o yaml`.
func (c *cluster) getYAML(t *testing.T, args ...string) (object, string) {
	t.Helper()
	out := c.mustRun(t, "", append(append([]string{"get"}, args...), "-o", "yaml")...)
	return clitest.ParseObject(t, out), out
}
