// Command calicoctl is Calico's command-line tool. The same binary answers as
// kubectl-calico (a kubectl plugin).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/opencalico/calicoctl/internal/cli"
)

func main() {
	os.Exit(run(os.Args, cli.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}))
}

// run executes the program and returns its exit code.
func run(args []string, streams cli.IOStreams) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch mode := dispatch(args[0]); mode {
	case modeCLI:
		root := cli.NewRootCommand(cli.ProgramName(args[0]), streams, nil)
		root.SetArgs(args[1:])
		return exitCode(streams, root.ExecuteContext(ctx))
	default:
		return runPlugin(ctx, mode, streams)
	}
}

// exitCode prints err (unless already reported) and maps it to an exit code.
func exitCode(streams cli.IOStreams, err error) int {
	if err == nil {
		return 0
	}
	if !errors.Is(err, cli.ErrSilent) {
		fmt.Fprintln(streams.ErrOut, err)
	}
	return 1
}
