package cli

import (
	"github.com/spf13/cobra"
)

func newConfigCommand(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect the client configuration",
	}
	var output string
	view := &cobra.Command{
		Use:   "view",
		Short: "Print the resolved configuration and where each value came from",
		Long: "Print every client setting after resolving flags, environment, the config file and defaults\n" +
			"(in that order of precedence), with the source of each value. Secrets are masked.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.Config()
			if err != nil {
				return err
			}
			return r.View(f.Streams.Out, output)
		},
	}
	view.Flags().StringVarP(&output, "output", "o", "table", "output format: table|yaml")
	cmd.AddCommand(view)
	return cmd
}
