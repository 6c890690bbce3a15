// Command kubelet is the upstream kubelet, built from the Go module proxy for
// the real-cluster e2e (e2e/k8s). See ../build.sh.
package main

import (
	"context"
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	os.Exit(cli.Run(app.NewKubeletCommand(context.Background())))
}
