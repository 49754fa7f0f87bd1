// Package prune implements `socks prune-stale`.
package prune

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/ops"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// Options are the inputs of `socks prune-stale`.
type Options struct {
	IO    *iostreams.IOStreams
	Store func(context.Context) (store.Store, error)
	// Queue returns the queue whose dead letters past their retention
	// are deleted too (the local one; SQS deletes them by itself). Nil:
	// none.
	Queue func(context.Context) (store.Queue, error)
	// Pusher returns the Management API client, sized for concurrency, or
	// an error wrapping backend.ErrNoGateway when there is none to ask.
	Pusher func(ctx context.Context, concurrency int) (store.Pusher, error)
	Now    func() time.Time
	// Stopping records what the prune finishes after Ctrl-C, for Main to
	// say.
	Stopping *cmdutil.Stopping

	DryRun      bool
	MaxAge      time.Duration
	Concurrency int
	Segments    int
	Verbose     bool
	JSON        bool
}

// NewCmdPrune returns `socks prune-stale`.
func NewCmdPrune(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{
		IO:       f.IOStreams,
		Now:      f.Now,
		Store:    f.ReadStore,
		Queue:    f.ReadQueue,
		Pusher:   f.Pusher,
		Stopping: f.Stopping,
	}
	cmd := &cobra.Command{
		Use:   "prune-stale [--dry-run] [--max-age 2h]",
		Short: "Delete the records of connections that died without a $disconnect",
		Long: `Delete connection records whose connections are dead. API Gateway's
$disconnect is best-effort, so records of dead connections pile up; run
this from cron.

  - a record connected --max-age ago or longer (2h: API Gateway's maximum
    connection duration) is dead by definition and is deleted without
    asking the Management API; so is a record past its expiry that the
    table's TTL has not removed yet;
  - a younger record is checked with GET @connections/{id} and deleted only
    when the answer is 410 Gone. A live connection is never deleted; any
    other answer is counted as an error and the record is kept.

With no local gateway running there is nothing to ask: younger records are
reported as unchecked and kept. Expired chatter IDs are deleted too, and
on the local backend the dead letters that failed 14 days ago or more (as
SQS deletes them from the dead-letter queue on AWS).

Quiet for cron: a run that deleted nothing and hit no error prints nothing
at all. Otherwise it prints one summary line on standard output and exits
non-zero only when something failed. -v logs every decision on standard
error and --json always prints the summary. Runs at once are safe:
deletes are idempotent and each run counts only what it deleted itself. On
the AWS backend runs take turns (a lease in the connections table, held
while the run deletes in batches), so a second run waits for the first,
saying so on a terminal and with -v.

On the local backend, a state dir that nothing has run with (a mistyped
--state-dir in a cron line) is not an installation with nothing to prune:
prune-stale says so on standard error, creates nothing there, and exits 3.`,
		Example: `  socks prune-stale
  socks prune-stale --dry-run -v
  */15 * * * * socks prune-stale --json >> /var/log/socks-prune.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return pruneRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.DryRun, "dry-run", false, "decide and count, but delete nothing")
	fl.DurationVar(&opts.MaxAge, "max-age", pubsub.MaxConnectionDuration, "records connected this long ago are dead without a check")
	fl.IntVar(&opts.Concurrency, "concurrency", ops.DefaultConcurrency, "Management API checks in flight at once")
	fl.IntVar(&opts.Segments, "segments", ops.DefaultSegments, "parallel segments of the table scan")
	fl.BoolVarP(&opts.Verbose, "verbose", "v", false, "log every decision on standard error")
	fl.BoolVar(&opts.JSON, "json", false, "print the summary as JSON")
	return cmd
}

func pruneRun(ctx context.Context, opts *Options) error {
	switch {
	case opts.MaxAge <= 0:
		return cmdutil.FlagErrorf("--max-age must be above 0 (API Gateway closes connections after %s)", pubsub.MaxConnectionDuration)
	case opts.Concurrency < 1:
		return cmdutil.FlagErrorf("--concurrency must be at least 1")
	case opts.Segments < 1:
		return cmdutil.FlagErrorf("--segments must be at least 1")
	}
	errOut := opts.IO.ErrOut
	// On a terminal the warning comes first; from cron it goes with the
	// output of a run that has some, so that a quiet run stays quiet.
	warning := ""
	if opts.MaxAge < pubsub.MaxConnectionDuration {
		warning = fmt.Sprintf("warning: --max-age %s is below API Gateway's %s maximum connection duration: connections older than %s are deleted without a check, even live ones\n",
			opts.MaxAge, pubsub.MaxConnectionDuration, opts.MaxAge)
	}
	if warning != "" && (opts.IO.IsStderrTTY() || opts.Verbose) {
		fmt.Fprint(errOut, warning)
		warning = ""
	}
	s, err := opts.Store(ctx)
	if err != nil {
		return err
	}
	var q store.Queue
	if opts.Queue != nil {
		if q, err = opts.Queue(ctx); err != nil {
			return err
		}
	}
	pusher, err := opts.Pusher(ctx, opts.Concurrency)
	noGateway := errors.Is(err, backend.ErrNoGateway)
	if errors.Is(err, backend.ErrNoEndpoint) {
		return fmt.Errorf("checking connections needs the Management API: %w", err)
	}
	if err != nil && !noGateway {
		return fmt.Errorf("cannot reach the Management API to check connections: %w", err)
	}

	// Records are judged by the clock that wrote them: on AWS, AWS's.
	// Unread (a role that may not read it), this machine's, as before:
	// a store that cannot be reached fails the scan in its own words.
	now, clockErr := store.NowBy(ctx, s, opts.Now)
	if clockErr != nil && opts.Verbose {
		cmdutil.Notef(errOut, "note: %s; records are judged by this machine's clock\n", strings.ReplaceAll(clockErr.Error(), "\n", `\n`))
	}
	var logMu sync.Mutex
	po := ops.PruneOptions{
		Now: now, MaxAge: opts.MaxAge, Concurrency: opts.Concurrency,
		Segments: opts.Segments, DryRun: opts.DryRun, Queue: q,
	}
	if opts.Verbose {
		po.Log = func(line string) {
			logMu.Lock()
			defer logMu.Unlock()
			// A line names a record's ID and geek, which whoever
			// wrote it chose: shown escaped, one line each.
			cmdutil.Notef(errOut, "%s\n", strings.ReplaceAll(line, "\n", `\n`))
		}
	}
	// The spinner is for a person watching: not with -v (its lines are
	// the progress), nor with --json or off a terminal
	// (cmdutil.NewProgress).
	var prog *cmdutil.Progress
	if !opts.Verbose {
		if p := cmdutil.NewProgress(opts.IO, opts.JSON, opts.Now); p.Spinning() {
			prog = p
			po.Progress = func(n int) { prog.Transient(fmt.Sprintf("pruning… %d records checked", n)) }
		}
	}
	// Waiting for another run's lease (one that was killed holds it up to
	// a minute) is said where a person looks: a silent wait looked hung.
	po.Waiting = func() {
		switch {
		case prog != nil:
			prog.Wait("waiting for another prune-stale to finish")
		case opts.Verbose || opts.IO.IsStderrTTY():
			cmdutil.Notef(errOut, "note: another prune-stale holds the stack's prune lease: waiting for it to finish (the lease of one that was killed lapses within a minute)\n")
		}
	}
	// Recorded while the lease is held: not while waiting for another
	// prune's, when there is none to give up.
	po.Leased = func() func() {
		if prog != nil {
			prog.Wait("") // the pruning's time starts now
		}
		return opts.Stopping.Add(cmdutil.Work{
			What: "giving up the stack's prune lease",
			Left: "the stack's prune lease is not given up: it lapses within a minute, and a prune-stale started meanwhile waits for it",
		})
	}
	res, err := ops.Prune(ctx, s, pusher, po)
	if prog != nil {
		prog.Stop()
	}
	// Cron mails every line it sees: a run that changed nothing and hit
	// no error says nothing unless asked to.
	quiet := err == nil && res.Errors == 0 && res.Deleted.Total() == 0 && res.ChatterIDs == 0 && res.DeadLetters == 0 && !opts.Verbose && !opts.JSON
	if quiet {
		return nil
	}
	fmt.Fprint(errOut, warning)
	if perr := printResult(opts, res); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return fmt.Errorf("prune-stale stopped: %w", err)
	}
	if noGateway && res.Unchecked > 0 {
		fmt.Fprintf(errOut, "note: no local gateway is running, so %s younger than %s could not be checked and %s kept; start `socks serve` to check them\n",
			text.Pluralize(res.Unchecked, "record"), opts.MaxAge, text.WasWere(res.Unchecked))
	}
	if res.Errors > 0 {
		first := ""
		if len(res.ErrorSamples) > 0 {
			first = " (first: " + res.ErrorSamples[0] + ")"
		}
		return fmt.Errorf("%s failed and %s kept%s; run `socks doctor` to check the Management API", text.Pluralize(res.Errors, "connection check"), text.WasWere(res.Errors), first)
	}
	return nil
}

// Summary renders a result as the one line prune-stale prints: logfmt
// key=value pairs, the same on a terminal and off it.
func Summary(res ops.PruneResult) string {
	var b strings.Builder
	if res.DryRun {
		b.WriteString("dry_run=true ")
	}
	fmt.Fprintf(&b, "checked=%d deleted=%d too_old=%d expired=%d gone=%d vanished=%d kept=%d unchecked=%d errors=%d chatter_ids=%d dead_letters=%d",
		res.Checked, res.Deleted.Total(), res.Deleted.TooOld, res.Deleted.Expired, res.Deleted.Gone,
		res.Vanished, res.Kept, res.Unchecked, res.Errors, res.ChatterIDs, res.DeadLetters)
	return b.String()
}

func printResult(opts *Options, res ops.PruneResult) error {
	if opts.JSON {
		type out struct {
			ops.PruneResult
			DeletedTotal int `json:"deletedTotal"`
		}
		return cmdutil.PrintJSON(opts.IO.Out, out{res, res.Deleted.Total()})
	}
	_, err := fmt.Fprintln(opts.IO.Out, Summary(res))
	return err
}
