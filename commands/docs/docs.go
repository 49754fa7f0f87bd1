// Package docs implements the hidden `socks docs`: man pages and a Markdown
// command reference generated from the cobra tree, so that neither is
// written by hand. `make docs` regenerates docs/commands/.
package docs

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/iostreams"
)

// Options are the inputs of `socks docs`.
type Options struct {
	IO       *iostreams.IOStreams
	Root     *cobra.Command
	Man      string
	Markdown string
	// Date is the man pages' date (default: SOURCE_DATE_EPOCH, which the
	// release sets to the commit's time, or else now).
	Date time.Time
}

// NewCmdDocs returns the hidden `socks docs`.
func NewCmdDocs(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:    "docs (--man DIR | --markdown DIR)",
		Short:  "Generate man pages or the Markdown command reference",
		Hidden: true,
		Long: `Write a man page (section 1) or a Markdown page for every command into DIR,
generated from the commands' own help. The Markdown reference lives in
docs/commands/ ('make docs' regenerates it); release archives carry the
man pages.`,
		Example: `  socks docs --markdown docs/commands
  socks docs --man dist/man`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Root = cmd.Root()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Man, "man", "", "write man pages into this directory")
	cmd.Flags().StringVar(&opts.Markdown, "markdown", "", "write Markdown pages into this directory")
	_ = cmd.MarkFlagDirname("man")
	_ = cmd.MarkFlagDirname("markdown")
	cmd.MarkFlagsOneRequired("man", "markdown")
	return cmd
}

// Appendix is the annotation of the root command whose text `socks
// --help` prints after the usage (the exit codes): the reference and the
// man page add it to the root's page.
const Appendix = "socks/docs-appendix"

// Run writes what opts asks for.
func Run(opts *Options) error {
	root := opts.Root
	// No "Auto generated on DATE" line: the committed reference must not
	// change when nothing else did.
	root.DisableAutoGenTag = true
	long, appendix := root.Long, root.Annotations[Appendix]
	defer func() { root.Long = long }()
	if opts.Markdown != "" {
		if appendix != "" {
			// Its title, then its indented lines as a code block, which
			// Markdown would otherwise run together into one paragraph.
			title, rest, _ := strings.Cut(appendix, "\n")
			root.Long = long + "\n\n" + title + "\n\n```\n" + rest + "\n```"
		}
		if err := os.MkdirAll(opts.Markdown, 0o755); err != nil {
			return fmt.Errorf("--markdown: %w", err)
		}
		if err := doc.GenMarkdownTree(root, opts.Markdown); err != nil {
			return fmt.Errorf("writing the Markdown reference: %w", err)
		}
		// The pages of the commands that refuse the global flags, again
		// without them (the names GenMarkdownTree gives its pages).
		err := rewrite(root, func(c *cobra.Command) error {
			return writePage(filepath.Join(opts.Markdown, strings.ReplaceAll(c.CommandPath(), " ", "_")+".md"), func(w io.Writer) error {
				return doc.GenMarkdown(c, w)
			})
		})
		if err != nil {
			return fmt.Errorf("writing the Markdown reference: %w", err)
		}
		fmt.Fprintf(opts.IO.ErrOut, "wrote the Markdown reference into %s\n", opts.Markdown)
	}
	if opts.Man != "" {
		if appendix != "" {
			root.Long = long + "\n\n" + appendix
		}
		if err := os.MkdirAll(opts.Man, 0o755); err != nil {
			return fmt.Errorf("--man: %w", err)
		}
		date := opts.Date
		if date.IsZero() {
			date = time.Now()
			if epoch := os.Getenv("SOURCE_DATE_EPOCH"); epoch != "" {
				sec, err := strconv.ParseInt(epoch, 10, 64)
				if err != nil {
					return fmt.Errorf("SOURCE_DATE_EPOCH %q is not a Unix time in seconds", epoch)
				}
				date = time.Unix(sec, 0).UTC()
			}
		}
		header := &doc.GenManHeader{Title: "SOCKS", Section: "1", Source: "socks", Manual: "socks manual", Date: &date}
		if err := doc.GenManTree(root, header, opts.Man); err != nil {
			return fmt.Errorf("writing the man pages: %w", err)
		}
		err := rewrite(root, func(c *cobra.Command) error {
			return writePage(filepath.Join(opts.Man, strings.ReplaceAll(c.CommandPath(), " ", "-")+"."+header.Section), func(w io.Writer) error {
				h := *header // as GenManTree: each page fills in a copy
				return doc.GenMan(c, &h, w)
			})
		})
		if err != nil {
			return fmt.Errorf("writing the man pages: %w", err)
		}
		fmt.Fprintf(opts.IO.ErrOut, "wrote the man pages into %s\n", opts.Man)
	}
	return nil
}

// rewrite calls write for each command under root that refuses the flags
// it inherits (cmdutil.RefusesInheritedFlags), with those flags hidden
// meanwhile, so that its page lists none of them, as its help does not.
// The flags are the parents' own, shown again after.
func rewrite(root *cobra.Command, write func(*cobra.Command) error) error {
	if !root.IsAvailableCommand() && root.HasParent() {
		return nil
	}
	for _, c := range root.Commands() {
		if err := rewrite(c, write); err != nil {
			return err
		}
	}
	if root.Annotations[cmdutil.RefusesInheritedFlags] == "" {
		return nil
	}
	var hidden []*pflag.Flag
	root.InheritedFlags().VisitAll(func(f *pflag.Flag) {
		if !f.Hidden {
			f.Hidden = true
			hidden = append(hidden, f)
		}
	})
	defer func() {
		for _, f := range hidden {
			f.Hidden = false
		}
	}()
	return write(root)
}

// writePage writes the page gen makes into the file name.
func writePage(name string, gen func(io.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := gen(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
