// Package version implements `socks version`.
package version

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/commands/cmdutil"
)

// NewCmdVersion returns `socks version`.
func NewCmdVersion(f *cmdutil.Factory) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the version of socks",
		Example: "  socks version\n  socks version --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := f.IOStreams.Out
			b := f.Build
			if asJSON {
				enc := json.NewEncoder(out)
				return enc.Encode(b)
			}
			fmt.Fprintf(out, "socks %s", b.Version)
			if b.Commit != "" {
				fmt.Fprintf(out, " (%s", b.Commit)
				if b.Date != "" {
					fmt.Fprintf(out, ", %s", b.Date)
				}
				fmt.Fprint(out, ")")
			}
			if b.Go != "" {
				fmt.Fprintf(out, " %s", b.Go)
			}
			fmt.Fprintln(out)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}
