package guest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/e2e/nscluster"
)

// Paths inside the VM's initramfs (overridable to run on a host whose kernel
// has ipip).
var (
	binPath = envOr("CALICOCTL_BIN", "/bin/calicoctl")
	cniDir  = envOr("CNI_BIN_DIR", "/opt/cni/bin")
)

// failedFile collects the names of failed scenarios for /init's result line.
const failedFile = "/tmp/vm-failed"

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// requireGuest skips outside the VM and reports the scenario's verdict on
// the console (VM-SCENARIO: <name> PASS|FAIL) when it ends.
func requireGuest(t *testing.T) {
	t.Helper()
	if os.Getenv("CALICO_VM_GUEST") != "1" {
		t.Skip("runs inside the IPIP VM only (make e2e-vm); CALICO_VM_GUEST is not 1")
	}
	start := time.Now()
	t.Cleanup(func() {
		verdict := "PASS"
		if t.Failed() {
			verdict = "FAIL"
			if f, err := os.OpenFile(failedFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
				fmt.Fprintln(f, t.Name())
				f.Close()
			}
		}
		fmt.Printf("VM-SCENARIO: %s %s %.1fs\n", t.Name(), verdict, time.Since(start).Seconds())
	})
}

// Cluster is the shared namespace cluster (e2e/nscluster) with the VM's
// paths and the emulated machine's longer timeouts.
type Cluster struct {
	*nscluster.Cluster
	t *testing.T
}

// Pod is the shared harness's.
type Pod = nscluster.Pod

// NewCluster creates the hub and starts the datastore in it.
func NewCluster(t *testing.T) *Cluster {
	t.Helper()
	requireGuest(t)
	c := nscluster.New(t, nscluster.Config{Bin: binPath, CNIDir: cniDir, SyncInterval: "500ms",
		Datastore: 90 * time.Second, Agent: 120 * time.Second, Command: 60 * time.Second, Poll: 200 * time.Millisecond})
	return &Cluster{Cluster: c, t: t}
}
