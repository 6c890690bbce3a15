// Command kube-controller-manager is the upstream controller manager, built
// from the Go module proxy for the real-cluster e2e (e2e/k8s). See ../build.sh.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
