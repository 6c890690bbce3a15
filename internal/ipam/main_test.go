package ipam_test

import (
	"os"
	"testing"

	"github.com/opencalico/calicoctl/internal/kubetest"
)

// TestMain lets the "kube" store kind share one kube-apiserver across the
// tests of this binary (started on first use, stopped when they finish).
func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }
