package state

import (
	"os"
	"testing"

	"github.com/opencalico/calicoctl/internal/kubetest"
)

// TestMain lets the Kubernetes-datastore tests share one kube-apiserver
// (started on first use); the etcd tests never start it.
func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }
