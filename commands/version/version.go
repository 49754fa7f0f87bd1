// Package version implements `socks version`.
package version

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/internal/build"
	"github.com/socks-dev/socks/iostreams"
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

// Options are the inputs of `socks version`.
type Options struct {
	IO    *iostreams.IOStreams
	Build build.Info

	JSON bool
}

// NewCmdVersion returns `socks version`.
func NewCmdVersion(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Build: f.Build}
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the version of socks",
		Example: "  socks version\n  socks version --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return versionRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print as JSON")
	return cmd
}

// versionRun prints the version line, or the build info as JSON.
func versionRun(_ context.Context, opts *Options) error {
	if opts.JSON {
		return cmdutil.PrintJSON(opts.IO.Out, opts.Build)
	}
	_, err := fmt.Fprintln(opts.IO.Out, Line(opts.Build))
	return err
}
