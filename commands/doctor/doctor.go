// Package doctor implements `socks doctor`: one screen of health checks,
// each with what to do about a problem.
package doctor

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/ops"
	"github.com/socks-dev/socks/ui"
)

// Options are the inputs of `socks doctor`.
type Options struct {
	IO  *iostreams.IOStreams
	Now func() time.Time
	// Env gathers what the checks look at.
	Env func(ctx context.Context) (*ops.Env, error)
	// Checks returns the checks to run for a backend (default ops.Checks).
	Checks func(backend string) []ops.Check
	JSON   bool
	// BrokerTimeout is the one the AWS stack was provisioned with (0: the
	// default): the main queue's visibility timeout must be six times it.
	BrokerTimeout time.Duration
}

// NewCmdDoctor returns `socks doctor`.
func NewCmdDoctor(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Now: f.Now, Checks: ops.Checks}
	opts.Env = func(ctx context.Context) (*ops.Env, error) {
		cfg, err := f.Config()
		if err != nil {
			return nil, err
		}
		env := ops.GatherEnv(ctx, cfg, f.Backend, f.ReadOnlyBackend, f.Now())
		if env.AWS != nil {
			env.AWS.Settings.BrokerTimeout = opts.BrokerTimeout
		}
		return env, nil
	}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check that the stack is healthy and say how to fix what is not",
		Long: `Run every health check and print one line each, ok, warn or fail, with
what to do about a problem:

  backend         the backend and configuration in effect
  state file      the local state file exists, is not damaged (SQLite's
                  quick check) and its schema is readable; one this user
                  may read but not write is checked read-only, with a
                  warning ('socks serve' and 'socks publish' cannot run)
  queue           how many messages wait and how many are in flight
  dead letters    messages that failed, and how old the oldest is
  connections     open connections, the oldest, and stale records (on
                  AWS it reads at most 2,000 of them, and says so when it
                  stopped early)
  local gateway   'socks serve' is running for this state dir, and a broker
                  with it (its own, or 'socks broker' beside
                  'socks serve --no-broker'); a warning when what answers
                  at its recorded address is not that serve
  management API  GET @connections on a made-up connection answers 410 Gone
                  (403: wrong stage, credentials or permissions; 404: wrong
                  endpoint; connection refused: the gateway is down)

On the AWS backend (--backend aws), instead of the state file and the
local gateway:

  endpoints       where DynamoDB, SQS and Management API calls go
  credentials     the SDK can retrieve credentials, and when they expire
  identity        who they belong to (STS GetCallerIdentity; skipped when
                  an endpoint override points at an emulator)
  tables          the stack's tables exist with the keys and index
                  'socks provision' creates
  time to live    TTL is on for each table
  queues          the queue and its dead-letter queue exist, with the
                  redrive policy and visibility timeout provision sets
                  (--broker-timeout: the one provision was given)
  deployed stack  what 'socks deploy' made is as deploy makes it
  migration       connection records an earlier socks wrote (or its
                  Lambda function, still running after an upgrade) that
                  'socks provision' still has to migrate: a fan-out to
                  users may miss them. It reads at most 2,000 items of the
                  connections table, for at most the check's 10 s, and
                  says so when it stopped early

and the management API check asks --callback-url (SOCKS_CALLBACK_URL); it
warns when none is set.

Exits 1 when any check fails; warnings alone exit 0.`,
		Example: `  socks doctor
  socks doctor --json | jq '.checks[] | select(.status != "ok")'
  socks doctor --backend aws --stack prod --callback-url https://abc.execute-api.eu-west-1.amazonaws.com/prod`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return doctorRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print as JSON")
	cmd.Flags().DurationVar(&opts.BrokerTimeout, "broker-timeout", awsops.DefaultBrokerTimeout, "AWS: the --broker-timeout the stack was provisioned with")
	return cmd
}

func doctorRun(ctx context.Context, opts *Options) error {
	if opts.BrokerTimeout != 0 && (opts.BrokerTimeout < time.Second || opts.BrokerTimeout > 15*time.Minute) {
		return cmdutil.FlagErrorf("--broker-timeout must be between 1s and 15m (Lambda's longest timeout)")
	}
	env, err := opts.Env(ctx)
	if err != nil {
		return err
	}
	checks := opts.Checks
	if checks == nil {
		checks = ops.Checks
	}
	rep := ops.RunChecks(ctx, env, checks(env.Config.Backend))
	if err := ctx.Err(); err != nil {
		// Checks cut short by Ctrl-C would report made-up problems.
		return err
	}
	if opts.JSON {
		if err := cmdutil.PrintJSON(opts.IO.Out, rep); err != nil {
			return err
		}
	} else {
		u := ui.New(opts.IO)
		u.SetNow(opts.Now)
		if err := Render(opts.IO.Out, u, rep); err != nil {
			return err
		}
	}
	if !rep.OK {
		where := "see the fixes above"
		if opts.JSON {
			where = `see the "fix" of each failed check`
		}
		return cmdutil.Exit(cmdutil.ExitError, fmt.Errorf("doctor found %s: %s", text.Pluralize(rep.Failed, "problem"), where))
	}
	return nil
}

// Render prints the report: a styled screen when u is styled, else one
// tab-separated line per check (status, check, detail, and the fix when
// there is one: a line without a fix does not end in an empty column).
func Render(w io.Writer, u *ui.UI, rep ops.Report) error {
	var b strings.Builder
	if !u.Styled() {
		for _, r := range rep.Checks {
			fmt.Fprintf(&b, "%s\t%s\t%s", r.Status, r.Name, detail(u, r))
			if r.Fix != "" {
				fmt.Fprintf(&b, "\t%s", u.Text(r.Fix))
			}
			b.WriteByte('\n')
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	width := 0
	for _, r := range rep.Checks {
		width = max(width, len(r.Name))
	}
	fmt.Fprintf(&b, "%s %s\n\n", u.Title.Render("socks doctor"), u.Muted.Render("· "+rep.Backend+" backend"))
	for _, r := range rep.Checks {
		name := fmt.Sprintf("%-*s", width, r.Name)
		d := detail(u, r)
		if r.Status == ops.StatusSkip {
			d = u.Muted.Render(d)
		}
		fmt.Fprintf(&b, "%s %s  %s\n", mark(u, r.Status), u.Label.Render(name), d)
		if r.Fix != "" && (r.Status == ops.StatusWarn || r.Status == ops.StatusFail) {
			fmt.Fprintf(&b, "  %s  %s %s\n", strings.Repeat(" ", width), u.Accent.Render("→"), u.Text(r.Fix))
		}
	}
	b.WriteByte('\n')
	switch {
	case rep.Failed > 0:
		fmt.Fprintln(&b, u.Bad.Render(text.Pluralize(rep.Failed, "problem")+" to fix"))
	case rep.Warned > 0:
		fmt.Fprintln(&b, u.Warn.Render("healthy, with "+text.Pluralize(rep.Warned, "warning")))
	default:
		fmt.Fprintln(&b, u.Good.Render("all healthy"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// detail is r's detail with its time. It and the fix quote what AWS, an
// emulator or a gateway answered: u.Text shows them.
func detail(u *ui.UI, r ops.Result) string {
	if r.Time.IsZero() {
		return u.Text(r.Detail)
	}
	return fmt.Sprintf("%s, %s %s", u.Text(r.Detail), r.TimeLabel, u.Time(r.Time))
}

func mark(u *ui.UI, s ops.Status) string {
	switch s {
	case ops.StatusOK:
		return u.Good.Render("✓")
	case ops.StatusWarn:
		return u.Warn.Render("!")
	case ops.StatusFail:
		return u.Bad.Render("✗")
	}
	return u.Muted.Render("-")
}
