// Package clientjs implements `socks client-js`: writes the browser client
// socks.js and its type declarations socks.d.ts for a site's build.
package clientjs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/internal/atomicfile"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/web"
)

// Options are the inputs of `socks client-js`.
type Options struct {
	IO  *iostreams.IOStreams
	Out string
}

// NewCmdClientJS returns `socks client-js`.
func NewCmdClientJS(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "client-js [--out DIR]",
		Short: "Write the browser client socks.js and socks.d.ts",
		Long: `Client-js writes socks.js, the browser client of socks (a dependency-free
ES module), and its TypeScript declarations socks.d.ts into DIR, for a
site's build. They are the same files 'socks serve' serves at /socks.js and
/socks.d.ts. Existing files of those names are replaced. The paths written
are printed on standard output.`,
		Example: `  socks client-js --out web/vendor
  socks client-js            # into the current directory`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Out, "out", ".", "directory to write into (created if missing)")
	_ = cmd.MarkFlagDirname("out")
	return cmd
}

// Run writes the client files into opts.Out.
func Run(_ context.Context, opts *Options) error {
	if opts.Out == "" {
		return cmdutil.FlagErrorf("--out needs a directory")
	}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return fmt.Errorf("cannot create %s: %w", opts.Out, err)
	}
	for _, name := range web.ClientFiles {
		body, err := web.ClientFile(name)
		if err != nil {
			return err
		}
		p := filepath.Join(opts.Out, name)
		// Replaced whole (a reader, a running dev server, never sees
		// half a file), readable by the web server that serves it.
		if err := atomicfile.Replace(p, body, 0o644, nil); err != nil {
			return fmt.Errorf("cannot write %s: %w", p, err)
		}
		fmt.Fprintln(opts.IO.Out, p)
	}
	return nil
}
