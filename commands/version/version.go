// Package version implements `socks version`.
package version

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/internal/build"
)

// Line is the version as `socks version` and `socks --version` print it:
// "socks v1.2.0 (3f1c0a9e, 2026-11-30) go1.26.8".
func Line(b build.Info) string {
	s := "socks " + b.Version
	if b.Commit != "" {
		s += " (" + b.Commit
		if b.Date != "" {
			s += ", " + b.Date
		}
		s += ")"
	}
	if b.Go != "" {
		s += " " + b.Go
	}
	return s
}

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
			_, err := fmt.Fprintln(out, Line(b))
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}
