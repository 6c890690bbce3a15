// Command kubectl is upstream kubectl, built from the Go module proxy so the
// tests can check that calicoctl works as a kubectl plugin (kubectl calico ...).
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
}
