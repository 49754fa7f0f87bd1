package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/iostreams"
)

// TeardownOptions are the inputs of `socks teardown`.
type TeardownOptions struct {
	IO     *iostreams.IOStreams
	Target TargetFunc
	Now    func() time.Time

	Yes    bool
	DryRun bool
	JSON   bool
	Wait   time.Duration

	cmdutil.ProducerFlags
}

// NewCmdTeardown returns `socks teardown`.
func NewCmdTeardown(f *cmdutil.Factory, runF func(context.Context, *TeardownOptions) error) *cobra.Command {
	opts := &TeardownOptions{IO: f.IOStreams, Target: targetFunc(f, "teardown"), Now: f.Now}
	cmd := &cobra.Command{
		Use:   "teardown [--yes | --dry-run] [--json]",
		Short: "Delete the stack's DynamoDB tables and SQS queues, and everything in them",
		Long: `Teardown deletes the tables and queues that 'socks provision' creates for
--stack, with every connection record, chatter ID, queued message and dead
letter in them. It cannot be undone.

It lists what exists and asks you to type the stack name, unless --yes is
given; when standard input is not a terminal it refuses to run without
--yes. It waits (bounded by --wait) until the tables are gone. What it is
doing goes to standard error: a spinner on a terminal; piped, and with
--json also on a terminal, a plain line per step.

--dry-run does every read teardown does and prints the plan, a line "would
delete ..." per thing (with --json, "deleted" and "dryRun": true), then
stops: it asks nothing, needs no --yes and no terminal, and deletes
nothing. What teardown would refuse (a table of another stack), the dry
run refuses too, with the same exit code.

The stack's EventBridge rule (STACK-envelopes on --event-bus, made by
provision or deploy with --eventbridge-rule) is deleted too when it sends to
the stack's queue; --eventbridge-rule deletes it whatever its target. The
queue's SNS subscriptions are removed before the queue: teardown finds their
topics in the statements provision writes in the queue's policy, and
--sns-topic ARN adds a topic. Only subscriptions of protocol sqs whose
endpoint is the queue are removed. Those of a queue that is already gone
are found among the account's subscriptions by the ARN the queue had: on a
large account a search of minutes, which the spinner counts on a terminal
(not with --json). A
topic whose subscriptions cannot be listed (another account's, access
denied) is a warning saying what to run, and teardown carries on.

Only the stack's tables and queues are deleted: those tagged app=socks
and socks:stack=STACK, or app=socks alone (made by a socks from before
stacks were tagged; provision and deploy add the stack tag). One without
app=socks (yours, through a typo or a shared name) is left alone, and
teardown says so. One tagged as another stack's makes teardown delete
nothing and exit 1, naming that stack. DynamoDB Local keeps no tags: there
a table counts as the stack's when it has the keys provision gives it.

Teardown stops at the first thing it cannot delete, and says what it
deleted and what is left; a second run finishes the job.`,
		Example: `  socks teardown --backend aws --stack test
  socks teardown --backend aws --stack test --dry-run
  socks teardown --backend aws --stack ci-1234 --dry-run --json
  socks teardown --backend aws --stack ci-1234 --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return teardownRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "say what would be deleted, without asking or deleting anything")
	fl.BoolVar(&opts.JSON, "json", false, "print what was deleted (with --dry-run: would be) as JSON")
	fl.DurationVar(&opts.Wait, "wait", awsops.DefaultCreateWait, "how long to wait for the tables to be gone")
	opts.ProducerFlags.Bind(cmd, false)
	return cmd
}

// TeardownResult is what teardown prints with --json.
type TeardownResult struct {
	Stack  string `json:"stack"`
	DryRun bool   `json:"dryRun"`
	// Deleted are the resources deleted (with --dry-run: to delete).
	Deleted []awsops.Change `json:"deleted"`
	// Skipped are tables and queues of the stack's names that socks did
	// not make (no app=socks tag): teardown leaves them alone.
	Skipped []awsops.Foreign `json:"skipped"`
	// UnreadableTopics are SNS topics the queue may be subscribed to whose
	// subscriptions could not be listed: a subscription to one outlives
	// the queue; each says what to run.
	UnreadableTopics []awsops.UnreadableTopic `json:"unreadableTopics"`
	// Notes are the warnings teardown wrote on standard error, in words
	// (without "warning: "), those of UnreadableTopics too.
	Notes []string `json:"notes"`
}

// teardownOutput is what teardown prints with --json: the result and,
// when it failed, the error, with what is left when it stopped part of
// the way.
type teardownOutput struct {
	TeardownResult
	Left  []awsops.Change `json:"left,omitempty"`
	Error string          `json:"error,omitempty"`
}

func teardownRun(ctx context.Context, opts *TeardownOptions) (err error) {
	// res is what teardown found and did, and left what it did not delete
	// when it stopped part of the way: with --json they are printed once,
	// at the end, with the error when it failed, also before it found
	// anything (cmdutil.EndJSON).
	res := TeardownResult{DryRun: opts.DryRun, Deleted: []awsops.Change{}, Skipped: []awsops.Foreign{}, UnreadableTopics: []awsops.UnreadableTopic{}, Notes: []string{}}
	var left []awsops.Change
	if opts.JSON {
		defer func() {
			err = cmdutil.EndJSON(opts.IO.Out, err, func(why string) any {
				return teardownOutput{TeardownResult: res, Left: left, Error: why}
			})
		}()
	}
	if opts.Wait <= 0 {
		return cmdutil.FlagErrorf("--wait must be above 0")
	}
	if !opts.Yes && !opts.DryRun && !opts.IO.IsStdinTTY() {
		return cmdutil.FlagErrorf("refusing to delete the stack's tables and queues without --yes when standard input is not a terminal (--dry-run shows what it would delete)")
	}
	tgt, err := opts.Target(ctx)
	if err != nil {
		return err
	}
	res.Stack = tgt.Stack
	producers, err := opts.Producers(tgt.Stack)
	if err != nil {
		return err
	}
	if err := tgt.checkProducerEndpoints(producers); err != nil {
		return err
	}
	drifts, err := awsops.CheckDrift(ctx, tgt.DB, tgt.SQS, tgt.Tables, tgt.Queues, awsops.QueueSettings{})
	if err != nil {
		return err
	}
	// Only what socks made goes: a table or queue of the same name that
	// lacks socks's tag is the user's (a typo, a shared name).
	ownTables, foreignTables, err := awsops.OwnTables(ctx, tgt.DB, tgt.Tables)
	if err != nil {
		return err
	}
	ownQueues, foreignQueues, err := awsops.OwnQueues(ctx, tgt.SQS, tgt.Queues)
	if err != nil {
		return err
	}
	skipped := append(append([]awsops.Foreign{}, foreignTables...), foreignQueues...)
	res.Skipped = append(res.Skipped, skipped...)
	if err := refuseOtherStacks(tgt, skipped); err != nil {
		return err
	}
	existing := slices.DeleteFunc(inPlace(tgt, awsops.PlanChanges(drifts)), func(c awsops.Change) bool {
		return slices.ContainsFunc(skipped, func(f awsops.Foreign) bool { return f.Kind == c.Kind && f.Name == c.Name })
	})
	for _, f := range skipped {
		cmdutil.Notef(opts.IO.ErrOut, "leaving %s alone: %s\n", f.Kind+" "+f.Name, f.Reason)
	}
	var deployed []awsops.DeployStep
	if tgt.Deployer != nil {
		deployed, err = tgt.Deployer.Deployed(ctx)
		if err != nil {
			return fmt.Errorf("looking for what `socks deploy` made: %w", err)
		}
	}
	// warn writes a warning on standard error, and keeps it for --json.
	warn := func(format string, args ...any) {
		cmdutil.Notef(opts.IO.ErrOut, "warning: "+format+"\n", args...)
		res.Notes = append(res.Notes, fmt.Sprintf(format, args...))
	}
	if r := producers.Rule; r != nil && tgt.Events != nil {
		// The rule of --eventbridge-rule is planned, confirmed and, if
		// teardown stops, left only when it exists.
		ok, err := awsops.RuleExists(ctx, tgt.Events, *r)
		if err != nil {
			return err
		}
		if !ok {
			warn("EventBridge rule %s given by --eventbridge-rule does not exist; check --event-bus", r.Change().Name)
			producers.Rule = nil
		}
	}
	if producers.Rule == nil && tgt.Deployer != nil && tgt.Events != nil {
		// The stack's rule, made by provision or deploy with
		// --eventbridge-rule, goes too: it would send to a queue that is
		// gone. (Not with emulator endpoints: EventBridge is not there.)
		r, err := awsops.StackRule(ctx, tgt.Events, tgt.SQS, tgt.Queues, tgt.Stack, opts.EventBus)
		if err != nil {
			warn("could not look for EventBridge rule %s (%v); pass --eventbridge-rule to delete it", awsops.RuleFor(tgt.Stack), err)
		}
		producers.Rule = r
	}
	// The queue's SNS subscriptions: to the topics of --sns-topic and to
	// those socks's own statements in the queue's policy name (provision
	// writes one per topic). Of a queue that is gone (deleted by hand, or
	// by a teardown that did not remove them first), those whose endpoint
	// is the ARN it had: SNS keeps them.
	var subs []awsops.Subscription
	mainQueue := func(c awsops.Change) bool { return c == awsops.Change{Kind: awsops.KindQueue, Name: tgt.Queues.Main} }
	queueGone := !slices.ContainsFunc(existing, mainQueue) &&
		!slices.ContainsFunc(skipped, func(f awsops.Foreign) bool { return mainQueue(awsops.Change{Kind: f.Kind, Name: f.Name}) })
	var unreadable []awsops.UnreadableTopic
	var missing []string
	switch {
	case tgt.SNS == nil:
	case slices.ContainsFunc(existing, mainQueue):
		topics := producers.Topics
		if awsops.RefuseHalfEmulated(tgt.Endpoints) == nil {
			// (Not when SNS calls would go to AWS while the queue is on an
			// emulator.)
			found, err := awsops.PolicyTopics(ctx, tgt.SQS, tgt.Queues)
			if err != nil {
				warn("could not read the SNS topics in the policy of queue %s (%v); pass each topic with --sns-topic to remove the queue's subscription to it", tgt.Queues.Main, err)
			}
			for _, t := range found {
				if !slices.Contains(topics, t) {
					topics = append(topics, t)
				}
			}
		}
		subs, unreadable, missing, err = awsops.QueueSubscriptions(ctx, tgt.SNS, tgt.SQS, tgt.Queues, topics)
		if err != nil {
			return err
		}
	case queueGone && tgt.Deployer != nil && awsops.RefuseHalfEmulated(tgt.Endpoints) == nil:
		// (The account is learned through the control plane, which is
		// not asked when the data plane is on emulators of its own.)
		arn, err := tgt.Deployer.CP.QueueARN(ctx, tgt.Region, tgt.Queues.Main)
		if err != nil {
			warn("could not look for the SNS subscriptions of queue %s, which is gone (%v); a subscription of it, if any, sends to nowhere: remove it with `aws sns unsubscribe`", tgt.Queues.Main, err)
			break
		}
		// The account's subscriptions come page by page, for minutes on
		// a large account: on a terminal the spinner says how far the
		// search is (not with --json or off a terminal,
		// cmdutil.NewProgress, as prune's).
		var searched func(pages, read int)
		search := cmdutil.NewProgress(opts.IO, opts.JSON, opts.Now)
		if search.Spinning() {
			doing := "looking through the account's SNS subscriptions for those of queue " + tgt.Queues.Main + ", which is gone"
			search.Transient(doing)
			searched = func(pages, read int) {
				search.Transient(fmt.Sprintf("%s… %s, %s read", doing, text.Pluralize(pages, "page"), text.Pluralize(read, "subscription")))
			}
		}
		var lerr error
		subs, unreadable, missing, lerr = awsops.GoneQueueSubscriptions(ctx, tgt.SNS, arn, producers.Topics, searched)
		search.Stop()
		if lerr != nil {
			warn("%v", lerr)
		}
	}
	for _, m := range missing {
		if slices.Contains(producers.Topics, m) {
			// (A topic of the policy that is gone took its
			// subscriptions with it: nothing to say.)
			warn("SNS topic %s given to --sns-topic does not exist, so no queue is subscribed to it; check the ARN", m)
		}
	}
	for _, u := range unreadable {
		warn("could not list the subscriptions of SNS topic %s (%s): the queue's subscription to it, if any, will outlive the queue; %s", u.Topic, u.Error, u.Fix)
	}
	res.UnreadableTopics = append(res.UnreadableTopics, unreadable...)
	producers.Topics = nil // the subscriptions go through subs
	if len(existing) == 0 && len(deployed) == 0 && producers.Empty() && len(subs) == 0 {
		if opts.JSON {
			return nil // res is printed
		}
		if len(skipped) > 0 {
			fmt.Fprintf(opts.IO.Out, "nothing to delete: no table or queue of %s that socks made exists\n", tgt.where())
			return nil
		}
		fmt.Fprintf(opts.IO.Out, "nothing to delete: no table or queue of %s exists\n", tgt.where())
		return nil
	}
	existing = inDeletionOrder(tgt, existing, deployed)
	// planned is everything teardown is about to delete, in the order it
	// deletes it (below): the rule and the subscriptions first, which
	// would send to a queue that is gone, then existing. The
	// confirmation, a dry run, the "deleted" lines and --json's "left" so
	// list the same sequence.
	var planned []awsops.Change
	if producers.Rule != nil {
		planned = append(planned, producers.Rule.Change())
	}
	for _, s := range subs {
		planned = append(planned, s.Change())
	}
	planned = append(planned, existing...)
	if opts.DryRun {
		res.Deleted = planned
		if opts.JSON {
			return nil // res is printed
		}
		for _, c := range planned {
			fmt.Fprintf(opts.IO.Out, "would delete %s\n", c)
		}
		return nil
	}
	if !opts.Yes {
		if !confirmStack(ctx, opts.IO, tgt, planned) {
			return cmdutil.Exit(cmdutil.ExitError, errors.New("teardown cancelled: nothing was deleted"))
		}
	}

	prog := cmdutil.NewProgress(opts.IO, opts.JSON, opts.Now)
	// done is what is gone so far, for --json when teardown stops; what
	// of planned is not in it is left.
	done := []awsops.Change{}
	stopped := func(err error) error {
		prog.Stop()
		left = []awsops.Change{}
		var names []string
		for _, c := range planned {
			if !slices.Contains(done, c) {
				left = append(left, c)
				names = append(names, c.String())
			}
		}
		if len(names) == 0 {
			// Everything was deleted, but not yet seen gone (the wait).
			err = fmt.Errorf("teardown stopped before it saw every table gone; run it again to finish: %w", err)
		} else {
			err = fmt.Errorf("teardown stopped, so %s %s still there; put right what stopped it and run teardown again to finish: %w",
				strings.Join(names, ", "), isAre(len(names)), err)
		}
		res.Deleted = done
		return err
	}
	// gone records a table or queue as deleted.
	gone := func(kind string) func(string) {
		return func(name string) {
			if c := (awsops.Change{Kind: kind, Name: name}); slices.Contains(existing, c) && !slices.Contains(done, c) {
				done = append(done, c)
			}
		}
	}
	if !producers.Empty() {
		prog.Status("deleting the producers of " + tgt.where())
		removed, perr := awsops.DeleteProducers(ctx, tgt.Events, tgt.SNS, tgt.SQS, tgt.Queues, producers)
		res.Deleted = append(res.Deleted, removed...)
		done = append(done, removed...)
		if perr != nil {
			return stopped(perr)
		}
	}
	if len(subs) > 0 {
		prog.Status("unsubscribing queue " + tgt.Queues.Main + " from its SNS topics")
		removed, uerr := awsops.Unsubscribe(ctx, tgt.SNS, subs)
		res.Deleted = append(res.Deleted, removed...)
		done = append(done, removed...)
		if uerr != nil {
			return stopped(uerr)
		}
	}
	if len(deployed) > 0 {
		prog.Status("deleting the function, API, role and log group of " + tgt.where())
		tgt.Deployer.Progress = func(s awsops.DeployStep, _ bool) { done = append(done, awsops.Change{Kind: s.Kind, Name: s.Name}) }
		if err := tgt.Deployer.Undeploy(ctx, deployed); err != nil {
			return stopped(err)
		}
	}
	prog.Status("deleting " + tallies(existing) + " of " + tgt.where())
	if err := awsops.DeleteQueuesReporting(ctx, tgt.SQS, ownQueues, gone(awsops.KindQueue)); err != nil {
		return stopped(err)
	}
	prog.Status("deleting the tables and waiting for them to be gone")
	if err := awsops.DeleteTablesReporting(ctx, tgt.DB, ownTables, opts.Wait, gone(awsops.KindTable)); err != nil {
		return stopped(err)
	}
	prog.Stop()
	res.Deleted = append(res.Deleted, existing...)
	if opts.JSON {
		return nil // res is printed
	}
	for _, c := range res.Deleted {
		fmt.Fprintf(opts.IO.Out, "deleted %s\n", c)
	}
	return nil
}

// inDeletionOrder is the stack's tables and queues (existing) and what
// deploy made (deployed) in the order teardownRun deletes them: what
// deploy made first, in Undeploy's order (the mapping, which reads the
// queue, before all), then the queues (Queues.DeletionOrder), then the
// tables (DeleteTables, in Tables.Names's order).
func inDeletionOrder(tgt *Target, existing []awsops.Change, deployed []awsops.DeployStep) []awsops.Change {
	out := make([]awsops.Change, 0, len(existing)+len(deployed))
	for _, s := range deployed {
		out = append(out, awsops.Change{Kind: s.Kind, Name: s.Name})
	}
	for _, c := range []struct {
		kind  string
		names []string
	}{{awsops.KindQueue, tgt.Queues.DeletionOrder()}, {awsops.KindTable, tgt.Tables.Names()}} {
		for _, n := range c.names {
			if ch := (awsops.Change{Kind: c.kind, Name: n}); slices.Contains(existing, ch) {
				out = append(out, ch)
			}
		}
	}
	return out
}

// confirmStack lists what would be deleted on stderr and asks for the stack
// name on stdin.
func confirmStack(ctx context.Context, ios *iostreams.IOStreams, tgt *Target, existing []awsops.Change) bool {
	w := ios.ErrOut
	fmt.Fprintf(w, "This deletes %s of %s, and every record and message in them:\n", tallies(existing), tgt.where())
	for _, c := range existing {
		fmt.Fprintf(w, "  %s\n", c)
	}
	return cmdutil.Ask(ctx, ios, fmt.Sprintf("Type the stack name (%s) to delete them: ", tgt.Stack)) == tgt.Stack
}

// refuseOtherStacks stops teardown, before anything is deleted, when a
// table or queue of the stack's names is tagged as another stack's: the
// names or the tags are not what they should be, and a person should look.
func refuseOtherStacks(tgt *Target, foreign []awsops.Foreign) error {
	var lines []string
	for _, f := range foreign {
		if f.Stack != "" {
			lines = append(lines, fmt.Sprintf("%s %s is tagged %s=%s, so it is stack %s's", f.Kind, f.Name, awsops.TagStack, f.Stack, f.Stack))
		}
	}
	if len(lines) == 0 {
		return nil
	}
	return cmdutil.Exit(cmdutil.ExitError, fmt.Errorf("teardown of %s deleted nothing: %s. Tear that stack down with its own --stack, or, if it truly is stack %s's, tag it %s=%s and run teardown again",
		tgt.where(), strings.Join(lines, "; "), tgt.Stack, awsops.TagStack, tgt.Stack))
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}
