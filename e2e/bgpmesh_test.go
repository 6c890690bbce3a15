package e2e

import (
	"strings"
	"testing"
)

// Disabling the node-to-node mesh before any reflector or peer exists
// leaves every node without BGP routes: apply and patch say so on stderr
// (and still succeed); once a reflector exists they are quiet.
func TestMeshOffWarning(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	const meshOff = "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  nodeToNodeMeshEnabled: false\n  asNumber: 64512\n"
	out, errOut, code := c.run(t, meshOff, "apply", "-f", "-")
	if code != 0 || !strings.Contains(out, "Successfully applied 1 'BGPConfiguration' resource(s)") {
		t.Fatalf("apply: code %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "node-to-node BGP mesh is disabled") || !strings.Contains(errOut, "no node is a route reflector") {
		t.Errorf("apply of mesh off with no reflector: stderr %q, want the warning", errOut)
	}
	_, errOut, code = c.run(t, "", "patch", "bgpconfiguration", "default", "-p", `{"spec":{"logSeverityScreen":"Info"}}`)
	if code != 0 || !strings.Contains(errOut, "node-to-node BGP mesh is disabled") {
		t.Errorf("patch: code %d, stderr %q, want the warning", code, errOut)
	}

	// A BGPPeer replaces the mesh: no warning.
	c.mustRun(t, "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: tor\nspec:\n  peerIP: 192.168.83.1\n  asNumber: 64512\n", "apply", "-f", "-")
	_, errOut, code = c.run(t, meshOff, "apply", "-f", "-")
	if code != 0 || strings.Contains(errOut, "mesh is disabled") {
		t.Errorf("apply with a BGPPeer: code %d, stderr %q, want no warning", code, errOut)
	}
	// Mesh on: no warning.
	_, errOut, _ = c.run(t, strings.Replace(meshOff, "false", "true", 1), "apply", "-f", "-")
	if strings.Contains(errOut, "mesh is disabled") {
		t.Errorf("mesh on: stderr %q", errOut)
	}
}
