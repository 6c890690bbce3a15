// Command kube-apiserver is the upstream Kubernetes API server, built from the
// Go module proxy so the tests can run the Kubernetes datastore against a real
// API server. It lives in its own module so the main module does not depend
// on k8s.io/kubernetes. See build.sh.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
