// Package dlq implements `socks dlq list|show|redrive|purge`: the messages
// the broker could not handle, kept with the reason.
package dlq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
	"github.com/socks-dev/socks/ui"
)

// NewCmdDLQ returns the `dlq` noun with its verbs.
func NewCmdDLQ(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq <command>",
		Short: "Inspect, redrive or purge dead letters",
		Long: `A message the broker could not handle (an envelope that does not parse, or
one whose deliveries kept failing) ends in the dead letters with the
reason, instead of being lost, and is kept there 14 days (as SQS keeps
socks's dead-letter queue on AWS). List them, look at one, put them back
on the queue once the cause is fixed, or purge them.`,
		Example: `  socks dlq list
  socks dlq show q-3f1c...
  socks dlq redrive --all
  socks dlq purge q-3f1c... --yes`,
	}
	cmd.AddCommand(NewCmdList(f, nil), NewCmdShow(f, nil), NewCmdRedrive(f, nil), NewCmdPurge(f, nil))
	return cmd
}

// letter is a dead letter as the --json outputs print it: the body as JSON
// when it is JSON, else as a string.
type letter struct {
	ID           string          `json:"id"`
	Reason       string          `json:"reason"`
	ReceiveCount int             `json:"receiveCount"`
	SentAt       time.Time       `json:"sentAt"`
	FailedAt     time.Time       `json:"failedAt"`
	ExpiresAt    time.Time       `json:"expiresAt"`
	Body         json.RawMessage `json:"body,omitempty"`
	BodyText     *string         `json:"bodyText,omitempty"`
}

func toLetter(d store.DeadLetter) letter {
	l := letter{ID: d.ID, Reason: d.Reason, ReceiveCount: d.ReceiveCount, SentAt: d.SentAt.UTC(), FailedAt: d.FailedAt.UTC(), ExpiresAt: d.ExpiresAt().UTC()}
	if json.Valid(d.Body) {
		l.Body = json.RawMessage(d.Body)
	} else {
		s := strings.ToValidUTF8(string(d.Body), "\uFFFD")
		l.BodyText = &s
	}
	return l
}

// ListOptions are the inputs of `dlq list`.
type ListOptions struct {
	IO    *iostreams.IOStreams
	Queue func(context.Context) (store.Queue, error)
	Now   func() time.Time
	Limit int
	JSON  bool
}

// NewCmdList returns `dlq list`.
func NewCmdList(f *cmdutil.Factory, runF func(context.Context, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, Queue: f.ListQueue, Now: f.Now}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead letters with why they failed",
		Long: `List the dead letters, oldest failure first: ID, when it failed, when it
expires, how often it was received, and the failure reason. A dead letter
is kept 14 days after it failed and then deleted: by SQS on AWS (the
dead-letter queue's retention), and on the local backend by a running
` + "`socks serve`" + ` (at start and hourly) or by ` + "`socks prune-stale`" + `. With none it
says so on stderr and exits 0 (--json prints []); so it does, with a
note, when nothing has run with the state dir (a mistyped --state-dir),
and creates nothing there. On AWS, the dead letters another command is
reading at that moment (a dlq list, show, redrive or purge, or doctor)
are hidden for up to 30 s: list shows the others and says on stderr how
many were held; run it again then to see them. A read of the dead
letters on AWS stops at the first 10,000 SQS hands out (in no order):
with more, list shows those and says on stderr that there are more
(--json too), exit 0; purge or redrive them, then run it again to see
the others.`,
		Example: `  socks dlq list
  socks dlq list --json | jq -r '.[] | [.id, .reason] | @tsv'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return listRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVar(&opts.Limit, "limit", 0, "list at most this many (0: all)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print as JSON")
	return cmd
}

func listRun(ctx context.Context, opts *ListOptions) error {
	if opts.Limit < 0 {
		return cmdutil.FlagErrorf("--limit must be 0 (all) or more")
	}
	var dls []store.DeadLetter
	// notes say why dead letters were not listed: another command held
	// them, or they are past those one read takes.
	var notes []error
	found, err := cmdutil.ReadWith(ctx, opts.Queue, opts.IO.ErrOut, func(q store.Queue) (err error) {
		if l, ok := q.(store.HeldDeadLetterLister); ok {
			dls, err = l.ListDeadLettersHeld(ctx, opts.Limit)
			notes, err = listNotes(err)
			return err
		}
		dls, err = q.ListDeadLetters(ctx, opts.Limit)
		return err
	})
	if err != nil {
		return err
	}
	if opts.JSON {
		out := make([]letter, len(dls))
		for i, d := range dls {
			out[i] = toLetter(d)
		}
		if err := cmdutil.PrintJSON(opts.IO.Out, out); err != nil {
			return err
		}
	} else if len(dls) > 0 {
		u := ui.New(opts.IO)
		u.SetNow(opts.Now)
		rows := make([][]string, len(dls))
		for i, d := range dls {
			// A dead letter's reason and body come from whoever sent
			// to the queue: on a terminal, what it would act on is
			// shown as text (\x1b); piped, they are exact.
			reason := u.Text(oneLine(d.Reason))
			id := u.Name(d.ID)
			if u.Styled() {
				reason = ui.Truncate(reason, max(20, opts.IO.Width()-80))
				id = u.Accent.Render(id)
			}
			rows[i] = []string{id, u.Time(d.FailedAt), u.Time(d.ExpiresAt()), strconv.Itoa(d.ReceiveCount), reason}
		}
		if err := u.Table([]string{"ID", "FAILED", "EXPIRES", "RECEIVES", "REASON"}, rows); err != nil {
			return err
		}
	}
	for _, n := range notes {
		if errors.Is(n, store.ErrDeadLettersHeld) {
			// A note, as for redrive --all: the count SQS gives of
			// them lags, so they may be gone already.
			cmdutil.Notef(opts.IO.ErrOut, "note: %v; not listed here: run it again then to see them\n", n)
		} else {
			// Past the first 10,000 on SQS: the error says what to do.
			cmdutil.Notef(opts.IO.ErrOut, "note: %v\n", n)
		}
	}
	if len(dls) == 0 && len(notes) == 0 && !opts.JSON && found {
		fmt.Fprintln(opts.IO.ErrOut, "no dead letters")
	}
	return nil
}

// listNotes splits the error of a listing (store.HeldDeadLetterLister)
// into the notes it holds, of dead letters left out (held by another
// command, store.ErrDeadLettersHeld, or past those one read takes,
// store.ErrDeadLettersUnread), and the error it is otherwise.
func listNotes(err error) (notes []error, _ error) {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		switch {
		case e == nil:
		case errors.Is(e, store.ErrDeadLettersHeld), errors.Is(e, store.ErrDeadLettersUnread):
			notes = append(notes, e)
		default:
			return nil, err
		}
	}
	return notes, nil
}

// ShowOptions are the inputs of `dlq show`.
type ShowOptions struct {
	IO    *iostreams.IOStreams
	Queue func(context.Context) (store.Queue, error)
	Now   func() time.Time
	ID    string
	JSON  bool
}

// NewCmdShow returns `dlq show`.
func NewCmdShow(f *cmdutil.Factory, runF func(context.Context, *ShowOptions) error) *cobra.Command {
	opts := &ShowOptions{IO: f.IOStreams, Queue: f.ListQueue, Now: f.Now}
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one dead letter: its reason and body",
		Long: `Show one dead letter in full: the failure reason, times (it expires 14 days
after it failed), receive count and the message body. Exits 3 when there is
no dead letter with that ID, or nothing has run with the state dir. On AWS,
the dead letters another command is reading at that moment (a dlq list,
show, redrive or purge, or doctor) are hidden for up to 30 s: when the ID
is not among the others and some were held, show says so and exits 1, as
redrive does, rather than calling it missing; run it again then. A read
of the dead letters on AWS stops at the first 10,000 SQS hands out (in no
order): past that many, an ID not among them is not called missing either
(exit 1); purge or redrive others first, or find it in the AWS console.`,
		Example: `  socks dlq show q-3f1c...
  socks dlq show q-3f1c... --json | jq .body`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if err := checkID(opts.ID); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return showRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print as JSON")
	return cmd
}

func showRun(ctx context.Context, opts *ShowOptions) error {
	q, err := opts.Queue(ctx)
	if err != nil {
		return err
	}
	d, err := find(ctx, q, opts.ID)
	if err != nil {
		return err
	}
	out := opts.IO.Out
	if opts.JSON {
		return cmdutil.PrintJSON(out, toLetter(d))
	}
	u := ui.New(opts.IO)
	u.SetNow(opts.Now)
	label := func(s string) string { return u.Label.Render(fmt.Sprintf("%-9s", s)) }
	fmt.Fprintf(out, "%s %s\n", label("id"), u.Name(d.ID))
	fmt.Fprintf(out, "%s %s\n", label("reason"), u.Text(d.Reason))
	fmt.Fprintf(out, "%s %s\n", label("failed"), u.Time(d.FailedAt))
	fmt.Fprintf(out, "%s %s\n", label("expires"), u.Time(d.ExpiresAt()))
	fmt.Fprintf(out, "%s %s\n", label("sent"), u.Time(d.SentAt))
	fmt.Fprintf(out, "%s %d\n", label("receives"), d.ReceiveCount)
	// Its value on the lines below: the label unpadded, so that no line
	// ends in spaces.
	fmt.Fprintf(out, "%s\n%s\n", u.Label.Render("body"), u.Block(prettyBody(d.Body)))
	return nil
}

// find returns the dead letter with id: by the Queue's lookup when it has
// one (SQS), which tells a dead letter another command holds (hidden while
// it reads it) from one that is not there; else from the list.
func find(ctx context.Context, q store.Queue, id string) (store.DeadLetter, error) {
	if f, ok := q.(store.DeadLetterFinder); ok {
		d, found, err := f.FindDeadLetter(ctx, id)
		switch {
		case found:
			return d, nil
		case errors.Is(err, store.ErrDeadLettersHeld):
			// Exit 1, as a redrive of it: it may well be there.
			return store.DeadLetter{}, fmt.Errorf("no dead letter %s among those not held: %w; it may be one of them: run it again then", id, err)
		case err != nil:
			// Exit 1 too when it may be past the dead letters a read
			// takes (store.ErrDeadLettersUnread): the error says how to
			// reach it.
			return store.DeadLetter{}, err
		}
		return store.DeadLetter{}, notFound(id)
	}
	dls, err := q.ListDeadLetters(ctx, 0)
	if err != nil {
		return store.DeadLetter{}, err
	}
	for _, d := range dls {
		if d.ID == id {
			return d, nil
		}
	}
	return store.DeadLetter{}, notFound(id)
}

// notFound is the error, exit 3, of a dead letter ID that is not one.
func notFound(id string) error {
	return cmdutil.Exit(cmdutil.ExitNotFound, fmt.Errorf("no dead letter %s: `socks dlq list` shows their IDs", id))
}

func prettyBody(b []byte) string {
	var buf bytes.Buffer
	if json.Valid(b) && json.Indent(&buf, b, "", "  ") == nil {
		return buf.String()
	}
	if utf8.Valid(b) {
		return string(b)
	}
	return fmt.Sprintf("(%d bytes, not text)", len(b))
}

// selection is the IDs given to redrive or purge, or --all.
type selection struct {
	IDs []string
	All bool
}

func (s selection) check(verb string) error {
	switch {
	case s.All && len(s.IDs) > 0:
		return cmdutil.FlagErrorf("give dead letter IDs or --all, not both")
	case !s.All && len(s.IDs) == 0:
		return cmdutil.FlagErrorf("say which dead letters to %s: their IDs (see `socks dlq list`) or --all", verb)
	}
	for _, id := range s.IDs {
		if err := checkID(id); err != nil {
			return err
		}
	}
	return nil
}

// checkID refuses an empty dead letter ID (an unset shell variable).
func checkID(id string) error {
	if strings.TrimSpace(id) == "" {
		return cmdutil.FlagErrorf("a dead letter ID is empty: give the IDs `socks dlq list` shows")
	}
	return nil
}

// ids is what the Queue methods take: nil for all.
func (s selection) ids() []string {
	if s.All {
		return nil
	}
	return slices.Compact(slices.Sorted(slices.Values(s.IDs)))
}

// RedriveOptions are the inputs of `dlq redrive`.
type RedriveOptions struct {
	IO    *iostreams.IOStreams
	Queue func(context.Context) (store.Queue, error)
	Now   func() time.Time
	selection
	JSON bool
}

// NewCmdRedrive returns `dlq redrive`.
func NewCmdRedrive(f *cmdutil.Factory, runF func(context.Context, *RedriveOptions) error) *cobra.Command {
	opts := &RedriveOptions{IO: f.IOStreams, Queue: f.ReadQueue, Now: f.Now}
	cmd := &cobra.Command{
		Use:   "redrive (ID... | --all)",
		Short: "Put dead letters back on the queue",
		Long: `Move dead letters back onto the main queue, with a fresh receive count, so
the broker handles them again; a follow-up (the connections a message did
not reach) also starts its attempts again. Fix what made them fail first
(see the reason in 'socks dlq list'). Exits 3, printing nothing on
standard output, when none of the IDs given is a dead letter, or nothing
has run with the state dir (a mistyped --state-dir); --all with no dead
letters redrives none and exits 0. A dead letter that the broker refuses
as it is (not an envelope, too many users) goes back all the same, and a
note on standard error names it, with why: it will be dead-lettered again
at once. One that fails part way prints how many it redrove and exits 1:
rerun it for the rest. On AWS, the dead letters another command is
reading at that moment (a dlq list, show, redrive or purge, or
doctor) are hidden for up to 30 s: a redrive of IDs among them says so and exits
1, rather than calling them missing; --all redrives the others and notes
them. A read of the dead letters on AWS stops at the first 10,000: past
that many, IDs not among them are not called missing either (exit 1),
and --all redrives those 10,000, prints how many (--json: with "more":
true) and exits 1 saying there are more: run it again for the others. It
reads once, as a second read could take back one it has just redriven
that failed again.`,
		Example: `  socks dlq redrive q-3f1c...
  socks dlq redrive --all`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.IDs = args
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return redriveRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "redrive every dead letter")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the result as JSON")
	return cmd
}

func redriveRun(ctx context.Context, opts *RedriveOptions) error {
	if err := opts.check("redrive"); err != nil {
		return err
	}
	q, err := opts.Queue(ctx)
	if err != nil {
		return err
	}
	// A redrive of thousands on SQS takes a while: on a terminal a
	// spinner counts them.
	spin := newCounter(opts.IO, opts.JSON, opts.Now, "redriving", "redriven")
	var refused []string
	var n int
	if each, ok := q.(store.EachRedriver); ok {
		moved := 0
		n, err = each.RedriveEach(ctx, opts.ids(), func(d store.DeadLetter) {
			if why := refusedToday(d.Body); why != "" {
				refused = append(refused, d.ID+": "+why)
			}
			moved++
			spin.count(moved)
		})
	} else {
		n, err = q.Redrive(ctx, opts.ids())
	}
	spin.stop()
	err = partial(opts.IO, opts.selection, err, n, func(failed bool) error {
		return report(opts.IO, opts.JSON, "redriven", n, opts.selection, "redrove %s onto the queue", failed, leftMore(opts.selection, err))
	})
	if len(refused) > 0 {
		fmt.Fprintf(opts.IO.ErrOut, "note: %d of them will be dead-lettered again at once, as the broker refuses them (`socks dlq purge ID` deletes them):\n", len(refused))
		// The reasons quote what the sender wrote: shown as text.
		// Ten at most: a pile of junk a sender published is thousands.
		u := ui.New(opts.IO)
		for _, r := range refused[:min(len(refused), maxNamed)] {
			fmt.Fprintf(opts.IO.ErrOut, "  %s\n", u.Text(oneLine(r)))
		}
		if more := len(refused) - maxNamed; more > 0 {
			fmt.Fprintf(opts.IO.ErrOut, "  and %d more (`socks dlq list` shows them)\n", more)
		}
	}
	return err
}

// maxNamed is how many of the dead letters the broker refuses a redrive
// names, as the error of those redriven but kept does.
const maxNamed = 10

// refusedToday says why the broker would dead-letter body again at once
// (it is no envelope it accepts), or "" when it may take it. An
// EventBridge event whose detail is not an envelope may be one a
// broker's mapping turns into one: it is not said to be refused.
func refusedToday(body []byte) string {
	_, err := pubsub.ParseMessage(pubsub.Redriven(body), nil)
	if err == nil || (pubsub.Shape(body) == pubsub.ShapeEventBridge && strings.Contains(err.Error(), "configure a mapping")) {
		return ""
	}
	return err.Error()
}

// partial returns err, a failure of a redrive or purge that had done n
// dead letters, after report has said so (a rerun does the rest); with no
// error it is report's answer. With --all, dead letters held by another
// command (store.ErrDeadLettersHeld) are a note, not a failure: the
// count SQS gives of them lags, so they may be gone already.
func partial(ios *iostreams.IOStreams, sel selection, err error, n int, report func(failed bool) error) error {
	// With --all, a queue's error that is store.ErrDeadLettersUnread says
	// more are left past those it took (and what to do), beside any held.
	held := errors.Is(err, store.ErrDeadLettersHeld) && !errors.Is(err, store.ErrDeadLettersUnread)
	switch {
	case err == nil:
		return report(false)
	case held && sel.All:
		if rerr := report(false); rerr != nil {
			return rerr
		}
		fmt.Fprintf(ios.ErrOut, "note: %v: run it again then for any of them still there\n", err)
		return nil
	case n > 0:
		_ = report(true)
	}
	switch {
	case held:
		return fmt.Errorf("%w: rerun it then", err)
	case errors.Is(err, store.ErrRedrivenButKept), errors.Is(err, store.ErrDeadLettersUnread):
		return err // it says what to do instead of a rerun
	}
	return fmt.Errorf("%w; rerun it to do the rest", err)
}

// report prints how many dead letters a verb affected; format has one %s,
// for "N dead letter(s)".
// IDs of which none was a dead letter print no count: exit 3 and the
// error are the answer, as for `dlq show` of an unknown ID. --all of none
// is a count of 0.
// After a failure (failed), it prints the count of those done only. more
// (--all that stopped with dead letters left past those one read takes)
// adds "more": true to the JSON; the error printed after it says so in
// words.
func report(ios *iostreams.IOStreams, asJSON bool, key string, n int, sel selection, format string, failed, more bool) error {
	switch ids := sel.ids(); {
	case failed:
	case n == 0 && sel.All:
		// Nothing to do is an empty list, not a thing not found.
	case n == 0 && len(ids) == 1:
		return cmdutil.Exit(cmdutil.ExitNotFound, fmt.Errorf("no dead letter %s: `socks dlq list` shows their IDs", ids[0]))
	case n == 0:
		return cmdutil.Exit(cmdutil.ExitNotFound, fmt.Errorf("none of the %d IDs given is a dead letter: `socks dlq list` shows their IDs", len(ids)))
	}
	if asJSON {
		out := map[string]any{key: n}
		if more {
			out["more"] = true
		}
		if err := cmdutil.PrintJSON(ios.Out, out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(ios.Out, format+"\n", text.Pluralize(n, "dead letter"))
	}
	if !sel.All && n < len(sel.ids()) && !failed {
		fmt.Fprintf(ios.ErrOut, "note: %d of the %d IDs given were not dead letters (`socks dlq list` shows them)\n", len(sel.ids())-n, len(sel.ids()))
	}
	return nil
}

// leftMore reports whether err, a redrive's or purge's of sel, says that
// --all stopped with more dead letters left past those one read takes.
func leftMore(sel selection, err error) bool {
	return sel.All && errors.Is(err, store.ErrDeadLettersUnread)
}

// PurgeOptions are the inputs of `dlq purge`.
type PurgeOptions struct {
	IO    *iostreams.IOStreams
	Queue func(context.Context) (store.Queue, error)
	Now   func() time.Time
	selection
	Yes  bool
	JSON bool
}

// NewCmdPurge returns `dlq purge`.
func NewCmdPurge(f *cmdutil.Factory, runF func(context.Context, *PurgeOptions) error) *cobra.Command {
	opts := &PurgeOptions{IO: f.IOStreams, Queue: f.ReadQueue, Now: f.Now}
	cmd := &cobra.Command{
		Use:   "purge (ID... | --all) [--yes]",
		Short: "Delete dead letters for good",
		Long: `Delete dead letters; they cannot be recovered. On a terminal it asks first
unless --yes; when standard input is not a terminal it refuses to run
without --yes. Exits 3, printing nothing on standard output, when none of
the IDs given is a dead letter, or nothing has run with the state dir (a
mistyped --state-dir); --all with no dead letters purges none and exits 0.
One that fails part way prints how many it purged and exits 1; on AWS,
dead letters another command is reading at that moment are said to be
held, and IDs past the first 10,000 read are not called missing, as by
redrive. --all reads the dead letters again, 10,000 at a time, until
none are left, up to 1,000,000 a run (past them it exits 1 saying to run
it again, --json with "more": true); on a terminal it counts them as it
goes.`,
		Example: `  socks dlq purge q-3f1c...
  socks dlq purge --all --yes`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.IDs = args
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return purgeRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "purge every dead letter")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the result as JSON")
	return cmd
}

func purgeRun(ctx context.Context, opts *PurgeOptions) error {
	if err := opts.check("purge"); err != nil {
		return err
	}
	if !opts.Yes && !opts.IO.IsStdinTTY() {
		return cmdutil.FlagErrorf("refusing to purge without --yes when standard input is not a terminal")
	}
	q, err := opts.Queue(ctx)
	if err != nil {
		return err
	}
	if !opts.Yes {
		what := text.Pluralize(len(opts.ids()), "dead letter")
		if opts.All {
			st, err := q.Stats(ctx)
			if err != nil {
				return err
			}
			if st.Dead == 0 {
				return report(opts.IO, opts.JSON, "purged", 0, opts.selection, "purged %s", false, false)
			}
			what = "all " + text.Pluralize(st.Dead, "dead letter")
		}
		if a := strings.ToLower(cmdutil.Ask(ctx, opts.IO, fmt.Sprintf("Purge %s for good? [y/N] ", what))); a != "y" && a != "yes" {
			return cmdutil.Exit(cmdutil.ExitError, errors.New("purge cancelled: nothing was deleted"))
		}
	}
	// A purge of thousands on SQS takes as long as a redrive of them:
	// the same spinner counts them.
	spin := newCounter(opts.IO, opts.JSON, opts.Now, "purging", "purged")
	var n int
	if each, ok := q.(store.EachPurger); ok {
		n, err = each.PurgeEach(ctx, opts.ids(), spin.count)
	} else {
		n, err = q.PurgeDeadLetters(ctx, opts.ids())
	}
	spin.stop()
	return partial(opts.IO, opts.selection, err, n, func(failed bool) error {
		return report(opts.IO, opts.JSON, "purged", n, opts.selection, "purged %s", failed, leftMore(opts.selection, err))
	})
}

// counter is the spinner of a redrive or purge on a terminal (none with
// --json or off a terminal, cmdutil.NewProgress): "redriving dead
// letters… 20 redriven".
type counter struct {
	prog        *cmdutil.Progress
	doing, done string
}

func newCounter(ios *iostreams.IOStreams, json bool, now func() time.Time, doing, done string) counter {
	c := counter{prog: cmdutil.NewProgress(ios, json, now), doing: doing, done: done}
	c.prog.Transient(doing + " dead letters")
	return c
}

// count says n dead letters are done so far.
func (c counter) count(n int) {
	if c.prog.Spinning() {
		c.prog.Transient(fmt.Sprintf("%s dead letters… %d %s", c.doing, n, c.done))
	}
}

func (c counter) stop() { c.prog.Stop() }

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
