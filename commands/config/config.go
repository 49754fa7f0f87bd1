// Package config implements `socks config`: the effective configuration.
package config

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/ui"
)

// Options are the inputs of `socks config`.
type Options struct {
	IO     *iostreams.IOStreams
	Config func() (config.Config, error)
	JSON   bool
}

// NewCmdConfig returns `socks config`.
func NewCmdConfig(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Config: f.Config}
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the effective configuration",
		Long: `Print the configuration socks would use: the backend, where it came from
(flag, environment or default) and the local state directory.`,
		Example: "  socks config\n  SOCKS_STATE_DIR=/tmp/s socks config --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return configRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print as JSON")
	return cmd
}

func configRun(_ context.Context, opts *Options) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(cfg)
	}
	u := ui.New(opts.IO)
	rows := [][]string{
		{"backend", cfg.Backend, cfg.BackendSource},
		{"state dir", cfg.StateDir, ""},
		{"state file", cfg.StatePath(), ""},
	}
	if cfg.Backend == config.BackendAWS {
		rows = append(rows,
			[]string{"stack", cfg.AWS.Stack, ""},
			[]string{"region", orDash(cfg.AWS.Region), ""},
			[]string{"endpoint url", orDash(cfg.AWS.EndpointURL), ""},
		)
	}
	if !u.Styled() {
		for _, r := range rows {
			fmt.Fprintf(opts.IO.Out, "%s\t%s\n", r[0], r[1])
		}
		return nil
	}
	for _, r := range rows {
		line := fmt.Sprintf("%s %s", u.Label.Render(fmt.Sprintf("%-12s", r[0])), r[1])
		if r[2] != "" {
			line += " " + u.Muted.Render("("+r[2]+")")
		}
		fmt.Fprintln(opts.IO.Out, line)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
