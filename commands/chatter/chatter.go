// Package chatter implements `socks chatter issue|list|revoke`.
package chatter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
	"github.com/socks-dev/socks/ui"
)

// NewCmdChatter returns the `chatter` noun with its verbs.
func NewCmdChatter(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "chatter <command>",
		Short: "Issue, list and revoke chatter IDs (per-login connect secrets)",
		Long: `A chatter ID is a random secret for one geek (user). The browser presents it
when it connects: ?geek=NAME&id=CHATTER_ID. socks stores only its hash, so a
lost chatter ID cannot be shown again: issue a new one.`,
		Example: `  socks chatter issue --geek Friendless
  socks chatter list --geek Friendless
  socks chatter revoke --geek Friendless --all`,
	}
	cmd.AddCommand(newCmdIssue(f, nil), newCmdList(f, nil), newCmdRevoke(f, nil))
	return cmd
}

// IssueOptions are the inputs of `chatter issue`.
type IssueOptions struct {
	IO    *iostreams.IOStreams
	Store func(context.Context) (store.Store, error)
	Now   func() time.Time
	Geek  string
	TTL   time.Duration
	// Topics limits the topics the ID may follow (patterns; none: any).
	Topics []string
	// MaxLive bounds the geek's live chatter IDs.
	MaxLive int
	JSON    bool
}

func newCmdIssue(f *cmdutil.Factory, runF func(context.Context, *IssueOptions) error) *cobra.Command {
	opts := &IssueOptions{IO: f.IOStreams, Store: f.StackStore(cmdutil.NeedDir, "no chatter ID was issued"), Now: f.Now}
	cmd := &cobra.Command{
		Use:   "issue --geek NAME",
		Short: "Issue a fresh chatter ID and print it",
		Long: `Issue a fresh chatter ID for a geek and print it on standard output. It has
192 random bits, is URL-safe and is shown only this once.

With --topics, the ID may connect to and subscribe to only those topics: a
name, or a prefix ending in '*' ("entity:*"). Others are refused at the
upgrade (403) or with an error frame. Without it, any topic. Here '*' is
the wildcard, where elsewhere it is a character of a topic's name: it may
only end a pattern, and '*' alone is refused (leave --topics out).

On the local backend a state dir that does not exist (a mistyped
--state-dir) exits 3 and makes nothing: no socks serve would see the ID
there. socks serve --state-dir DIR makes it; a dir that exists is used.`,
		Example: `  socks chatter issue --geek Friendless
  socks chatter issue --geek Friendless --topics 'updates,entity:*'
  ID=$(socks chatter issue --geek Friendless --ttl 2h)
  socks chatter issue --geek Friendless --json | jq -r .id`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.NotEmpty(cmd, "topics"); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return issueRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Geek, "geek", "g", "", "the user the chatter ID is for (required)")
	cmd.Flags().DurationVar(&opts.TTL, "ttl", pubsub.DefaultChatterTTL, fmt.Sprintf("how long the chatter ID stays valid (%s to %s)", pubsub.MinChatterTTL, pubsub.MaxChatterTTL))
	cmd.Flags().IntVar(&opts.MaxLive, "max-live", store.DefaultMaxLiveChatterIDs, "refuse when the geek already holds this many live chatter IDs")
	cmd.Flags().StringSliceVar(&opts.Topics, "topics", nil, "limit the ID to these topics (comma-separated; a trailing '*' matches a prefix; default any)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print as JSON")
	_ = cmd.MarkFlagRequired("geek")
	return cmd
}

func issueRun(ctx context.Context, opts *IssueOptions) error {
	if err := pubsub.ValidateGeek(opts.Geek); err != nil {
		return &cmdutil.FlagError{Err: err}
	}
	if err := pubsub.ValidateTopicPatterns(opts.Topics); err != nil {
		return &cmdutil.FlagError{Err: err}
	}
	if err := pubsub.ValidateChatterTTL(opts.TTL); err != nil {
		return &cmdutil.FlagError{Err: err}
	}
	if opts.MaxLive < 1 {
		return cmdutil.FlagErrorf("--max-live must be at least 1")
	}
	s, err := opts.Store(ctx)
	if err != nil {
		return err
	}
	// The gateway judges the ID's expiry by the store's clock (on AWS,
	// the Lambda's), which this machine's may be set off from. A store
	// that cannot be read fails the issue in its own words (it names the
	// table the issue writes).
	now, _ := store.NowBy(ctx, s, opts.Now)
	secret, c, err := store.IssueChatterIDWithin(ctx, s, opts.Geek, opts.TTL, now, opts.MaxLive, opts.Topics...)
	if err != nil {
		if pubsub.IsInvalid(err) {
			return &cmdutil.FlagError{Err: err}
		}
		if le, ok := errors.AsType[*store.LiveChatterIDsError](err); ok {
			// --max-live set the bound, and raises it. A geek may hold
			// more than a lower bound allows (issued under a higher one).
			bound := "the most"
			if le.Live > le.Max {
				bound = "more than"
			}
			return fmt.Errorf("geek %s already holds %s, %s --max-live allows (%d): %s, let them expire, or pass a higher --max-live",
				le.Geek, text.Pluralize(le.Live, "live chatter ID"), bound, le.Max, le.RevokeSome())
		}
		return err
	}
	if opts.JSON {
		// chatter list's fields in its order, with the secret after the
		// geek. As there, no topics is an ID for every topic.
		return cmdutil.PrintJSON(opts.IO.Out, struct {
			Geek        string    `json:"geek"`
			ID          string    `json:"id"`
			IssuedAt    time.Time `json:"issuedAt"`
			ExpiresAt   time.Time `json:"expiresAt"`
			Topics      []string  `json:"topics,omitempty"`
			Fingerprint string    `json:"fingerprint"`
		}{c.Geek, secret, c.IssuedAt.UTC(), c.ExpiresAt.UTC(), c.Topics, c.Fingerprint()})
	}
	fmt.Fprintln(opts.IO.Out, secret)
	if opts.IO.IsStderrTTY() {
		u := cmdutil.ErrUI(opts.IO, opts.JSON)
		// How long from now, as the tables say it, and when, with the
		// zone (a local time alone reads as any zone's).
		fmt.Fprintf(opts.IO.ErrOut, "%s chatter ID for %s, fingerprint %s, expires %s (%s)\n",
			u.Good.Render("✓"), u.Accent.Render(u.Name(c.Geek)), c.Fingerprint(),
			ui.Relative(c.IssuedAt.Sub(c.ExpiresAt)), c.ExpiresAt.Local().Format(time.DateTime+" MST"))
	}
	return nil
}

// ListOptions are the inputs of `chatter list`.
type ListOptions struct {
	IO    *iostreams.IOStreams
	Store func(context.Context) (store.Store, error)
	Now   func() time.Time
	Geek  string
	JSON  bool
}

func newCmdList(f *cmdutil.Factory, runF func(context.Context, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, Store: f.ListStore, Now: f.Now}
	cmd := &cobra.Command{
		Use:   "list [--geek NAME]",
		Short: "List chatter IDs (fingerprints only, never secrets)",
		Long: `List issued chatter IDs by fingerprint (the first 12 hex digits of the
stored hash), with when they were issued and when they expire. Secrets are
never shown. An ID whose record $connect cannot honour as written (a
backend wrote its allowed topics as something other than a list of
strings) is listed as refused, with the reason on stderr (in --json, its
refused field). With none it says so on stderr and exits 0 (--json prints []).`,
		Example: `  socks chatter list
  socks chatter list --geek Friendless --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.NotEmpty(cmd, "geek"); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return listRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Geek, "geek", "g", "", "only this geek's chatter IDs")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print as JSON")
	return cmd
}

func listRun(ctx context.Context, opts *ListOptions) error {
	if opts.Geek != "" {
		if err := pubsub.ValidateGeek(opts.Geek); err != nil {
			return &cmdutil.FlagError{Err: err}
		}
	}
	var ids []store.ChatterID
	// Expiry is judged by the store's clock, as the gateway judges it
	// (on AWS, the Lambda's), which this machine's may be set off from.
	clock := &store.FollowedClock{Local: opts.Now}
	found, err := cmdutil.ReadWith(ctx, opts.Store, opts.IO.ErrOut, func(s store.Store) (err error) {
		if ids, err = s.ListChatterIDs(ctx, opts.Geek); err != nil {
			return err
		}
		clock.Follow(ctx, s)
		return nil
	})
	if err != nil {
		return err
	}
	now := clock.Now()
	if opts.JSON {
		type item struct {
			store.ChatterID
			Fingerprint string `json:"fingerprint"`
			Expired     bool   `json:"expired"`
		}
		items := make([]item, 0, len(ids))
		for _, c := range ids {
			items = append(items, item{ChatterID: c, Fingerprint: c.Fingerprint(), Expired: c.Expired(now)})
		}
		if err := cmdutil.PrintJSON(opts.IO.Out, items); err != nil {
			return err
		}
	} else {
		u := ui.New(opts.IO)
		u.SetNow(clock.Now)
		rows := make([][]string, 0, len(ids))
		var notes []string
		for _, c := range ids {
			state, style := "valid", u.Good
			switch {
			case c.Refused != "":
				// Whatever its expiry: it never connects.
				state, style = "refused", u.Bad
				// The item is another backend's: its geek and hash
				// too (text.Sanitize, SanitizeName).
				notes = append(notes, fmt.Sprintf("note: chatter ID %s of %s is refused at $connect: %s",
					text.SanitizeName(c.Fingerprint()), text.SanitizeName(c.Geek), text.Sanitize(c.Refused, false)))
			case c.Expired(now):
				state, style = "expired", u.Muted
			}
			if u.Styled() {
				state = style.Render(state)
			}
			// The topics the ID may follow (chatter issue --topics);
			// a refused one follows none.
			topics := "any"
			switch {
			case c.Refused != "":
				topics = "-"
			case len(c.Topics) > 0:
				shown := make([]string, len(c.Topics))
				for i, t := range c.Topics {
					shown[i] = u.Name(t)
				}
				topics = strings.Join(shown, ",")
			}
			rows = append(rows, []string{u.Name(c.Geek), u.Name(c.Fingerprint()), u.Time(c.IssuedAt), u.Time(c.ExpiresAt), topics, state})
		}
		if len(rows) > 0 {
			if err := u.Table([]string{"GEEK", "FINGERPRINT", "ISSUED", "EXPIRES", "TOPICS", "STATE"}, rows); err != nil {
				return err
			}
		}
		for _, n := range notes {
			fmt.Fprintln(opts.IO.ErrOut, n)
		}
	}
	if len(ids) == 0 && !opts.JSON && found {
		what := "no chatter IDs"
		if opts.Geek != "" {
			what += " for " + opts.Geek
		}
		fmt.Fprintln(opts.IO.ErrOut, what)
	}
	return nil
}

// RevokeOptions are the inputs of `chatter revoke`.
type RevokeOptions struct {
	IO    *iostreams.IOStreams
	Store func(context.Context) (store.Store, error)
	Geek  string
	IDs   []string
	// IDFile names a file ("-": standard input) holding the IDs, one a
	// line, so that secrets stay out of argv.
	IDFile string
	All    bool
	JSON   bool
}

func newCmdRevoke(f *cmdutil.Factory, runF func(context.Context, *RevokeOptions) error) *cobra.Command {
	opts := &RevokeOptions{IO: f.IOStreams, Store: f.ReadStore}
	cmd := &cobra.Command{
		Use:   "revoke --geek NAME (--id ID... | --id-file FILE | --all)",
		Short: "Revoke chatter IDs so they can no longer connect",
		Long: `Revoke chatter IDs of one geek: by the secret itself, by its fingerprint
(as 'chatter list' shows it), or all of them. Connections already open stay
open until they end; new connects with a revoked ID are refused with 403.
Exits 3, printing nothing on standard output, when no ID given matched
or, on the local backend, nothing has run with the state dir (a mistyped
--state-dir; nothing is made there); --all for a geek with none revokes
none and exits 0. A value that is neither a secret nor a fingerprint, or
one holding what no chatter ID does (a space, a control or non-ASCII
character, a no-break space at an end), is a usage error (exit 2) that
names that character and does not show the value; only ASCII spaces and
tabs around a value, and a line's end, are taken off it.

A secret given with --id shows in the process list and the shell history:
give secrets with --id-file FILE instead (one chatter ID or fingerprint a
line; "-" reads standard input, and on a terminal asks for one line).`,
		Example: `  socks chatter revoke --geek Friendless --id 3fa4c09b1e2d
  socks chatter revoke --geek Friendless --id-file ids.txt
  printf '%s\n' "$ID" | socks chatter revoke --geek Friendless --id-file -
  socks chatter revoke --geek Friendless --all`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// An empty --id would otherwise revoke every ID of the geek.
			if err := cmdutil.NotEmpty(cmd, "id", "id-file"); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return revokeRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Geek, "geek", "g", "", "whose chatter IDs to revoke (required)")
	cmd.Flags().StringSliceVar(&opts.IDs, "id", nil, "a chatter ID or its fingerprint (repeatable); a secret here shows in the process list, prefer --id-file")
	cmd.Flags().StringVar(&opts.IDFile, "id-file", "", "read chatter IDs or fingerprints, one a line, from this file (\"-\": standard input); keeps secrets out of argv")
	_ = cmd.MarkFlagFilename("id-file")
	cmd.Flags().BoolVar(&opts.All, "all", false, "revoke every chatter ID of the geek")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the result as JSON")
	_ = cmd.MarkFlagRequired("geek")
	cmd.MarkFlagsMutuallyExclusive("id", "id-file", "all")
	cmd.MarkFlagsOneRequired("id", "id-file", "all")
	return cmd
}

func revokeRun(ctx context.Context, opts *RevokeOptions) error {
	if err := pubsub.ValidateGeek(opts.Geek); err != nil {
		return &cmdutil.FlagError{Err: err}
	}
	var prefixes []string
	if !opts.All {
		what := func(i, n int) string { return fmt.Sprintf("--id value %d of %d", i, n) }
		if opts.IDFile != "" {
			ids, err := readIDFile(ctx, opts)
			if err != nil {
				return err
			}
			opts.IDs = ids
			what = func(i, _ int) string { return fmt.Sprintf("line %d of --id-file %s", i, opts.IDFile) }
		}
		if len(opts.IDs) == 0 {
			// No prefixes would mean every ID of the geek.
			return cmdutil.FlagErrorf("say which chatter IDs to revoke: --id or --id-file (see `socks chatter list`) or --all")
		}
		for i, id := range opts.IDs {
			id = cmdutil.TrimChatterID(id)
			if id == "" && opts.IDFile != "" {
				continue // a blank line of --id-file
			}
			// A secret holding what none does matches none: it is refused
			// as listen refuses it, not looked for; so is a fingerprint
			// (hex digits, of the same alphabet), naming what it holds.
			if err := cmdutil.CheckChatterIDAlphabet(id, what(i+1, len(opts.IDs))); err != nil {
				return err
			}
			switch {
			case pubsub.LooksLikeChatterID(id):
				prefixes = append(prefixes, pubsub.HashChatterID(id))
			case len(id) >= 8 && isHex(id):
				prefixes = append(prefixes, strings.ToLower(id))
			default:
				// The value is never echoed: it may be a mistyped secret.
				return cmdutil.FlagErrorf("%s is neither a chatter ID nor a fingerprint (at least 8 hex digits, as `socks chatter list` shows)", what(i+1, len(opts.IDs)))
			}
		}
	}
	s, err := opts.Store(ctx)
	if err != nil {
		return err
	}
	n, err := s.RevokeChatterIDs(ctx, opts.Geek, prefixes)
	if err != nil {
		return err
	}
	if n == 0 && !opts.All {
		// Not found prints no result, as `dlq show` of an unknown ID:
		// exit 3 and the error are the answer.
		return cmdutil.Exit(cmdutil.ExitNotFound, fmt.Errorf("no chatter ID of %s matched: `socks chatter list --geek %s` shows their fingerprints", opts.Geek, opts.Geek))
	}
	if opts.JSON {
		return cmdutil.PrintJSON(opts.IO.Out, map[string]any{"geek": opts.Geek, "revoked": n})
	}
	fmt.Fprintf(opts.IO.Out, "revoked %s for %s\n", text.Pluralize(n, "chatter ID"), opts.Geek)
	return nil
}

// maxIDFileBytes bounds what --id-file reads: some thousand IDs.
const maxIDFileBytes = 64 << 10

// readIDFile reads --id-file's IDs, one a line; blank lines are skipped
// but counted, so an error names the line in the file.
func readIDFile(ctx context.Context, opts *RevokeOptions) ([]string, error) {
	b, err := cmdutil.ReadSecretFile(ctx, opts.IO, "id-file", opts.IDFile, fmt.Sprintf("chatter ID or fingerprint of %s to revoke (then Enter): ", opts.Geek), maxIDFileBytes)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(b, "\n")
	if cmdutil.TrimChatterID(b) == "" {
		return nil, cmdutil.FlagErrorf("--id-file %s holds no chatter ID; put one a line, as `socks chatter issue` printed it or `socks chatter list` shows its fingerprint", opts.IDFile)
	}
	// Keep line numbers: a blank line becomes a skipped entry.
	ids := make([]string, 0, len(lines))
	for _, l := range lines {
		ids = append(ids, cmdutil.TrimChatterID(l))
	}
	return ids, nil
}

func isHex(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}
