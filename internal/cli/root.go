package cli

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// Options are the global flags shared by every command.
type Options struct {
	LogLevel             string
	Context              string
	AllowVersionMismatch bool
	ConfigFile           string
	Kubeconfig           string
	// configFileSet reports whether -c/--config was given explicitly.
	configFileSet bool
}

// NewRootCommand builds the calicoctl command tree. name is the program name
// shown in help ("calicoctl" or "kubectl calico").
func NewRootCommand(name string, streams IOStreams, env func(string) (string, bool)) *cobra.Command {
	if env == nil {
		env = os.LookupEnv
	}
	f := &Factory{Streams: streams, Env: env}
	root := &cobra.Command{
		Use:           "calicoctl",
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: name},
		Short:         "Manage Calico network and security resources",
		Long:          "calicoctl manages Calico resources (IP pools, policies, BGP, nodes...) in an etcd v3 or Kubernetes datastore.",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			f.Options.configFileSet = cmd.Flags().Changed("config")
			setupLogging(streams, f.Options.LogLevel)
			return nil
		},
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	pf := root.PersistentFlags()
	pf.StringVarP(&f.Options.LogLevel, "log-level", "l", "panic", "log level: panic|fatal|error|warn|info|debug")
	pf.StringVar(&f.Options.Context, "context", "", "the Kubernetes context to use")
	pf.BoolVar(&f.Options.AllowVersionMismatch, "allow-version-mismatch", false, "allow a client/cluster Calico version mismatch")
	pf.StringVarP(&f.Options.ConfigFile, "config", "c", DefaultConfigFile, "path to the client configuration file")
	pf.StringVar(&f.Options.Kubeconfig, "kubeconfig", "", "path to a kubeconfig file (Kubernetes datastore; as kubectl's --kubeconfig)")

	root.AddCommand(
		newCreateCommand(f),
		newApplyCommand(f),
		newReplaceCommand(f),
		newDeleteCommand(f),
		newGetCommand(f),
		newPatchCommand(f),
		newLabelCommand(f),
		newVersionCommand(f),
		newConfigCommand(f),
		newDatastoreCommand(f),
		newPauseCommand(f),
		newIPAMCommand(f),
		newNodeCommand(f),
		newPolicyCommand(f),
	)
	return root
}

// DefaultConfigFile is where calicoctl looks for its configuration.
const DefaultConfigFile = "/etc/calico/calicoctl.cfg"

func setupLogging(streams IOStreams, level string) {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "info":
		l = slog.LevelInfo
	case "warn", "warning":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default: // panic, fatal: effectively silent
		l = slog.LevelError + 8
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(streams.ErrOut, &slog.HandlerOptions{Level: l})))
}

// ProgramName returns how help text should call the binary, from argv[0].
func ProgramName(argv0 string) string {
	if strings.HasPrefix(filepath.Base(argv0), "kubectl-calico") {
		return "kubectl calico"
	}
	return "calicoctl"
}
