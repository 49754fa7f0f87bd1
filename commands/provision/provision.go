// Package provision implements `socks provision` and `socks teardown`: the
// DynamoDB tables and SQS queues of an AWS stack, created idempotently,
// checked for drift, and deleted only when confirmed.
package provision

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/iostreams"
)

// Target is the stack the commands work on: its names and the admin
// clients to reach them.
type Target struct {
	Tables awsops.Tables
	Queues awsops.Queues
	DB     awsops.TableAdminAPI
	SQS    awsops.QueueAdminAPI
	// Data reads and writes the items of the tables, for the migration of
	// an existing connections table (awsops.DynamoStore.MigrateGeekItems);
	// nil skips it.
	Data awsops.DynamoDBAPI
	// Events and SNS set up the producers (--eventbridge-rule,
	// --sns-topic); they go to the common endpoint URL.
	Events awsops.EventsAPI
	SNS    awsops.TopicsAPI
	// Stack, Region and Endpoint describe where, for messages.
	Stack, Region, Endpoint string
	// Endpoints are where the calls of DynamoDB, SQS, EventBridge and SNS
	// go (nil in tests: not checked).
	Endpoints []awsops.ServiceEndpoint
	// Deployer reaches what `socks deploy` made besides the tables and
	// queues. It is nil when DynamoDB or SQS has an endpoint of its own
	// (--dynamodb-endpoint-url, --sqs-endpoint-url): the data plane is
	// then on emulators, and the control plane is not asked.
	Deployer *awsops.Deployer
}

// where describes the target for a prompt or a message.
func (t *Target) where() string {
	s := "stack " + t.Stack
	if t.Region != "" {
		s += " in " + t.Region
	}
	if t.Endpoint != "" {
		s += " at " + t.Endpoint
	}
	return s
}

// TargetFunc opens the target (tests substitute fakes).
type TargetFunc func(ctx context.Context) (*Target, error)

// targetFunc opens the AWS backend and builds the admin clients on its
// configuration and endpoints.
func targetFunc(f *cmdutil.Factory, verb string) TargetFunc {
	return func(ctx context.Context) (*Target, error) {
		b, err := f.AWSBackend(ctx, verb)
		if err != nil {
			return nil, err
		}
		return NewTarget(b), nil
	}
}

// NewTarget returns the target of an opened AWS backend.
func NewTarget(b *backend.Backend) *Target {
	a := b.Config.AWS
	endpoint := a.DynamoDBEndpoint()
	if s := a.SQSEndpoint(); s != endpoint {
		var parts []string
		if endpoint != "" {
			parts = append(parts, "DynamoDB "+endpoint)
		}
		if s != "" {
			parts = append(parts, "SQS "+s)
		}
		endpoint = strings.Join(parts, " and ")
	}
	var deployer *awsops.Deployer
	if cp, err := awsops.StackControlPlane(*b.AWS, a); cp != nil && err == nil {
		deployer = &awsops.Deployer{CP: cp, Spec: awsops.DeploySpec{Stack: a.Stack, Region: b.AWS.Region}}
	}
	db := awsops.NewDynamoDB(*b.AWS, a.DynamoDBEndpoint())
	sq := awsops.NewSQS(*b.AWS, a.SQSEndpoint())
	ev := awsops.NewEventBridge(*b.AWS, a.EndpointURL)
	sn := awsops.NewSNS(*b.AWS, a.EndpointURL)
	at := func(u *string) string { return aws.ToString(u) }
	return &Target{
		Deployer: deployer,
		Tables:   awsops.TablesFor(a.Stack),
		Queues:   awsops.QueuesFor(a.Stack),
		DB:       awsops.QuietNotFound(db),
		Data:     db,
		SQS:      sq,
		Events:   ev,
		SNS:      sn,
		Stack:    a.Stack,
		Region:   b.AWS.Region,
		Endpoint: endpoint,
		Endpoints: []awsops.ServiceEndpoint{
			{Service: "DynamoDB", URL: at(db.Options().BaseEndpoint)},
			{Service: "SQS", URL: at(sq.Options().BaseEndpoint)},
			{Service: "EventBridge", URL: at(ev.Options().BaseEndpoint)},
			{Service: "SNS", URL: at(sn.Options().BaseEndpoint)},
		},
	}
}

// checkProducerEndpoints refuses producers (EventBridge, SNS) whose calls
// would go to AWS itself while DynamoDB and SQS are on emulators on this
// machine, or the other way round, before anything is called.
func (t *Target) checkProducerEndpoints(p awsops.Producers) error {
	if p.Empty() {
		return nil
	}
	return awsops.RefuseHalfEmulated(t.Endpoints)
}

// Options are the inputs of `socks provision`.
type Options struct {
	IO     *iostreams.IOStreams
	Target TargetFunc
	Now    func() time.Time

	DryRun        bool
	JSON          bool
	Wait          time.Duration
	BrokerTimeout time.Duration

	cmdutil.ProducerFlags
}

// NewCmdProvision returns `socks provision`.
func NewCmdProvision(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Target: targetFunc(f, "provision"), Now: f.Now}
	cmd := &cobra.Command{
		Use:   "provision [--dry-run] [--json]",
		Short: "Create the stack's DynamoDB tables and SQS queues, or check them",
		Long: `Provision creates what the AWS backend needs, named after --stack:

  STACK-connections    connections and subscriptions, with the by-geek index
  STACK-chatter        chatter-ID hashes
  STACK-reports        the broker's delivery reports
  STACK-envelopes      the envelope queue, with a redrive policy to:
  STACK-envelopes-dlq  the dead letters

Tables are on-demand with TTL on expiresAt; the queue's visibility timeout is
six times --broker-timeout (the broker's Lambda function timeout). It waits
for new tables to become active (bounded by --wait). What it is doing goes
to standard error: a spinner on a terminal; piped, and with --json also on
a terminal, a plain line per step.

It is idempotent: what exists is left alone, and a second run says there is
nothing to do. Everything it makes is tagged app=socks and
socks:stack=STACK; a table or queue an earlier socks made without the stack
tag is tagged (a repair, listed in "repaired" with --json: tagging changes
nothing else), and one tagged as another stack's is drift. Before changing
anything it checks what exists against that shape; any drift (a wrong key
schema, a missing index, TTL off, a missing or wrong redrive policy, a
visibility timeout too short) is reported with what is, what should be and
how to fix it, and provision exits 1 without changing anything. --dry-run
only checks and says what it would create.

An existing connections table written by an earlier socks is migrated in
place: every connection record gets the geek item that fan-out to users
reads, one left out of date by a function of the earlier socks that wrote
on after a migration is rewritten, and one whose record is gone is deleted
(with --dry-run: they are counted). It is safe while the stack serves. When
upgrading, run it again once no function of the earlier socks runs
(docs/deploy.md, "Upgrading"); a run after that finds nothing to migrate.

--eventbridge-rule adds an EventBridge rule STACK-envelopes on --event-bus
that sends events of --source and --detail-type to the envelopes queue, and
the statement of the queue's policy that lets that rule (and only it) send.
--sns-topic ARN subscribes the queue to the topic (raw message delivery with
--sns-raw), with its own policy statement. Drift in them (another pattern, a
disabled rule, another raw delivery setting, a statement of the same Sid that
says something else, a subscription still pending confirmation, with how to
confirm it) is reported like the rest. A subscription this run makes that SNS
holds pending confirmation (a topic of another account) is said after what
was created, with how to confirm it, and provision exits 1. docs/protocol.md
says what the broker takes off the queue from each.

docs/tables.md explains the layout; docs/deploy.md the rest of a deployment.`,
		Example: `  socks provision --backend aws --region eu-west-1 --stack prod
  socks provision --backend aws --dry-run --json
  SOCKS_DYNAMODB_ENDPOINT_URL=http://127.0.0.1:8000 SOCKS_SQS_ENDPOINT_URL=http://127.0.0.1:9324 \
    socks provision --backend aws --stack test
  socks provision --backend aws --eventbridge-rule --source com.example.site --detail-type EntityChanged
  socks provision --backend aws --sns-topic arn:aws:sns:eu-west-1:123456789012:jobs`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return provisionRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.DryRun, "dry-run", false, "check and say what would be created, without creating anything")
	fl.BoolVar(&opts.JSON, "json", false, "print the result as JSON")
	fl.DurationVar(&opts.Wait, "wait", awsops.DefaultCreateWait, "how long to wait for new tables to become active")
	fl.DurationVar(&opts.BrokerTimeout, "broker-timeout", awsops.DefaultBrokerTimeout, "the broker's timeout per batch (its Lambda function timeout); the queue's visibility timeout is 6 times it")
	opts.ProducerFlags.Bind(cmd, true)
	return cmd
}

// Result is what provision prints with --json.
type Result struct {
	Stack  string `json:"stack"`
	DryRun bool   `json:"dryRun"`
	// Changes are the resources created (with --dry-run: to create).
	Changes []awsops.Change `json:"changes"`
	// InPlace are the resources that existed with the right shape.
	InPlace []awsops.Change `json:"inPlace"`
	// Drift lists what differs from the shape provision creates; when it
	// is not empty nothing was changed.
	Drift []awsops.Drift `json:"drift"`
	// Migrated counts the geek items this version's layout adds that
	// provision added, rewrote or deleted (with --dry-run: would).
	Migrated int `json:"migrated"`
	// Repaired is the drift provision put right by itself (with
	// --dry-run: would): tables and queues that socks made before it
	// tagged them with their stack, now tagged socks:stack=STACK.
	Repaired []awsops.Drift `json:"repaired"`
}

// output is what provision prints with --json: the result and, when it
// failed, the error, with Changes what was created.
type output struct {
	Result
	// Left is what of the planned changes was not made when provision
	// stopped part of the way (none when it refused for drift).
	Left  []awsops.Change `json:"left,omitempty"`
	Error string          `json:"error,omitempty"`
}

// emptyLists returns r with each list that is nil empty: docs/json.md
// shows every list as [] when it is empty.
func (r Result) emptyLists() Result {
	for _, l := range []*[]awsops.Change{&r.Changes, &r.InPlace} {
		if *l == nil {
			*l = []awsops.Change{}
		}
	}
	for _, l := range []*[]awsops.Drift{&r.Drift, &r.Repaired} {
		if *l == nil {
			*l = []awsops.Drift{}
		}
	}
	return r
}

func (o *Options) settings() awsops.QueueSettings {
	return awsops.QueueSettings{BrokerTimeout: o.BrokerTimeout}
}

func provisionRun(ctx context.Context, opts *Options) (err error) {
	// res is what provision found and did, and left what of the planned
	// changes it did not make when it stopped part of the way: with
	// --json they are printed once, at the end, with the error when it
	// failed, also before it found anything (cmdutil.EndJSON).
	res := Result{DryRun: opts.DryRun}
	var left []awsops.Change
	if opts.JSON {
		defer func() {
			err = cmdutil.EndJSON(opts.IO.Out, err, func(why string) any {
				return output{Result: res.emptyLists(), Left: left, Error: why}
			})
		}()
	}
	if opts.Wait <= 0 {
		return cmdutil.FlagErrorf("--wait must be above 0")
	}
	if opts.BrokerTimeout < time.Second || opts.BrokerTimeout > 15*time.Minute {
		return cmdutil.FlagErrorf("--broker-timeout must be between 1s and 15m (Lambda's longest timeout)")
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
	prog := cmdutil.NewProgress(opts.IO, opts.JSON, opts.Now)
	prog.Transient("checking " + tgt.where())
	drifts, err := awsops.CheckDrift(ctx, tgt.DB, tgt.SQS, tgt.Tables, tgt.Queues, opts.settings())
	if err == nil {
		var tagDrifts []awsops.Drift
		tagDrifts, err = awsops.CheckStackTags(ctx, tgt.DB, tgt.SQS, tgt.Tables, tgt.Queues)
		drifts = append(drifts, tagDrifts...)
	}
	prog.Stop()
	if err != nil {
		return err
	}
	res = Result{Stack: tgt.Stack, DryRun: opts.DryRun, Changes: awsops.PlanChanges(drifts), Drift: awsops.Conflicts(drifts), Repaired: awsops.Repairs(drifts)}
	res.InPlace = inPlace(tgt, res.Changes)
	var pplan *awsops.ProducerPlan
	if !producers.Empty() {
		if slices.Contains(res.Changes, awsops.Change{Kind: awsops.KindQueue, Name: tgt.Queues.Main}) {
			res.Changes = append(res.Changes, awsops.PlannedProducers(tgt.Queues, producers)...)
		} else {
			if pplan, err = awsops.CheckProducers(ctx, tgt.Events, tgt.SNS, tgt.SQS, tgt.Queues, producers); err != nil {
				return err
			}
			res.Changes = append(res.Changes, pplan.Changes...)
			res.Drift = append(res.Drift, pplan.Drift...)
		}
	}
	res = res.emptyLists()

	if len(res.Drift) > 0 {
		if !opts.JSON {
			printDrift(opts.IO, opts.JSON, res.Drift)
		}
		return cmdutil.Exit(cmdutil.ExitError, fmt.Errorf("%s of %s differ%s from what socks provisions, so nothing was changed: fix %s as shown, or use another --stack",
			text.Pluralize(len(res.Drift), "thing"), tgt.where(), verbS(len(res.Drift)), itThem(len(res.Drift))))
	}
	// stopped ends a run that failed part of the way: with --json it
	// prints what was created (res.Changes is set to it), what of planned
	// was not, and the error, as teardown does.
	planned := slices.Clone(res.Changes)
	stopped := func(err error) error {
		left = []awsops.Change{}
		for _, c := range planned {
			if !slices.Contains(res.Changes, c) {
				left = append(left, c)
			}
		}
		return err
	}

	if !opts.DryRun && len(res.Changes) > 0 {
		prog = cmdutil.NewProgress(opts.IO, opts.JSON, opts.Now)
		done, err := awsops.CreateMissing(ctx, tgt.DB, tgt.SQS, tgt.Tables, tgt.Queues, res.Changes, awsops.CreateOptions{
			Settings: opts.settings(),
			Wait:     opts.Wait,
			Progress: reportTo(prog),
			Now:      opts.Now,
		})
		prog.Stop()
		if err != nil {
			for _, c := range done {
				fmt.Fprintf(opts.IO.ErrOut, "created %s\n", c)
			}
			res.Changes = append([]awsops.Change{}, done...)
			return stopped(err)
		}
		if !producers.Empty() {
			// (Which producers a failure left made is not known: they
			// are said to be left, and a rerun checks them.)
			res.Changes = done
			if pplan == nil {
				if pplan, err = awsops.CheckProducers(ctx, tgt.Events, tgt.SNS, tgt.SQS, tgt.Queues, producers); err != nil {
					return stopped(err)
				}
			}
			if err := awsops.CreateProducers(ctx, tgt.Events, tgt.SNS, tgt.SQS, tgt.Queues, producers, pplan); err != nil {
				return stopped(err)
			}
			res.Changes = planned
		}
	}
	if !opts.DryRun && len(res.Repaired) > 0 {
		repaired, err := awsops.ApplyStackTags(ctx, tgt.DB, tgt.SQS, tgt.Tables, tgt.Queues, res.Repaired)
		if err != nil {
			res.Repaired = append([]awsops.Drift{}, repaired...)
			return stopped(err)
		}
	}
	if tgt.Data != nil && !slices.Contains(res.Changes, awsops.Change{Kind: awsops.KindTable, Name: tgt.Tables.Connections}) {
		// An existing connections table may hold records of an earlier
		// socks without their geek items: add them.
		n, err := awsops.NewDynamoStore(tgt.Data, tgt.Tables).MigrateGeekItems(ctx, opts.DryRun)
		if err != nil {
			return stopped(err)
		}
		res.Migrated = n
	}
	// A subscription it made that SNS holds pending confirmation (a topic
	// of another account): all is made, but SNS delivers nothing yet.
	var unconfirmed error
	if pplan != nil && len(pplan.Unconfirmed) > 0 {
		var parts []string
		for _, d := range pplan.Unconfirmed {
			parts = append(parts, fmt.Sprintf("%s %s is %s: %s", d.Kind, d.Name, d.Is, d.Fix))
		}
		unconfirmed = cmdutil.Exit(cmdutil.ExitError, fmt.Errorf("%s is provisioned, but %s", tgt.where(), strings.Join(parts, "; ")))
	}
	if opts.JSON {
		return unconfirmed // nil, or the error printed with res
	}
	out := opts.IO.Out
	if res.Migrated > 0 {
		verb := "migrated"
		if opts.DryRun {
			verb = "would migrate"
		}
		fmt.Fprintf(out, "%s %s of table %s (added, brought up to date or deleted: the copies of connection records that fan-out to users reads)\n", verb, text.Pluralize(res.Migrated, "geek item"), tgt.Tables.Connections)
	}
	for _, r := range res.Repaired {
		verb := "tagged"
		if opts.DryRun {
			verb = "would tag"
		}
		fmt.Fprintf(out, "%s %s %s %s (it was made before socks tagged stacks)\n", verb, r.Kind, r.Name, r.Want)
	}
	if len(res.Changes) == 0 {
		if len(res.Repaired) == 0 {
			fmt.Fprintf(out, "nothing to do: %s are in place\n", tallies(res.InPlace))
		}
		return nil
	}
	verb := "created"
	if opts.DryRun {
		verb = "would create"
	}
	for _, c := range res.Changes {
		fmt.Fprintf(out, "%s %s\n", verb, c)
	}
	if len(res.InPlace) > 0 {
		fmt.Fprintf(out, "already in place: %s\n", tallies(res.InPlace))
	}
	if unconfirmed != nil {
		// The drift block says how to confirm them: the error does
		// not say it again.
		printDrift(opts.IO, opts.JSON, pplan.Unconfirmed)
		n := len(pplan.Unconfirmed)
		return cmdutil.Exit(cmdutil.ExitError, fmt.Errorf("%s is provisioned, but %s made %s pending confirmation, and SNS delivers nothing until then: confirm %s as shown",
			tgt.where(), text.Pluralize(n, "SNS subscription"), text.WasWere(n), itThem(n)))
	}
	return nil
}

// inPlace lists the stack's resources that are not among changes.
func inPlace(tgt *Target, changes []awsops.Change) []awsops.Change {
	var all []awsops.Change
	for _, n := range tgt.Tables.Names() {
		all = append(all, awsops.Change{Kind: awsops.KindTable, Name: n})
	}
	for _, n := range tgt.Queues.Names() {
		all = append(all, awsops.Change{Kind: awsops.KindQueue, Name: n})
	}
	out := []awsops.Change{}
	for _, c := range all {
		if !slices.Contains(changes, c) {
			out = append(out, c)
		}
	}
	return out
}

// tallies says "3 tables and 2 queues" (and "and 5 other resources" for
// what deploy made, the rule and the subscriptions).
func tallies(cs []awsops.Change) string {
	var tables, queues, others int
	for _, c := range cs {
		switch c.Kind {
		case awsops.KindTable:
			tables++
		case awsops.KindQueue:
			queues++
		default:
			others++
		}
	}
	if others > 0 {
		rest := make([]awsops.Change, 0, len(cs))
		for _, c := range cs {
			if c.Kind == awsops.KindTable || c.Kind == awsops.KindQueue {
				rest = append(rest, c)
			}
		}
		return tallies(rest) + " and " + text.Pluralize(others, "other resource")
	}
	switch {
	case tables > 0 && queues > 0:
		return text.Pluralize(tables, "table") + " and " + text.Pluralize(queues, "queue")
	case tables > 0:
		return text.Pluralize(tables, "table")
	case queues > 0:
		return text.Pluralize(queues, "queue")
	}
	return "no tables and no queues"
}

func verbS(n int) string {
	if n == 1 {
		return "s"
	}
	return ""
}

func itThem(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// printDrift writes each drift to stderr: what, is, want, fix.
func printDrift(ios *iostreams.IOStreams, jsonOut bool, drifts []awsops.Drift) {
	u := cmdutil.ErrUI(ios, jsonOut)
	w := ios.ErrOut
	for _, d := range drifts {
		// What is, AWS holds: whoever can write to the account chose
		// it (u.Text, u.Name).
		fmt.Fprintf(w, "%s %s %s: %s\n", u.Bad.Render("drift:"), d.Kind, u.Code.Render(u.Name(d.Name)), u.Text(d.Aspect))
		fmt.Fprintf(w, "  %s %s\n", u.Label.Render("is:  "), u.Text(d.Is))
		fmt.Fprintf(w, "  %s %s\n", u.Label.Render("want:"), u.Text(d.Want))
		fmt.Fprintf(w, "  %s %s\n", u.Label.Render("fix: "), u.Text(d.Fix))
	}
}

// reportTo renders the steps of awsops.CreateMissing on p.
func reportTo(p *cmdutil.Progress) func(awsops.Progress) {
	return func(e awsops.Progress) {
		switch e.Phase {
		case awsops.PhaseCreating:
			p.Status("creating " + e.Change.String())
		case awsops.PhaseWaiting:
			p.Status("waiting for " + e.Change.String() + " to become active")
		case awsops.PhaseTTL:
			p.Status("turning on TTL for " + e.Change.String())
		case awsops.PhaseDone:
			if !p.Spinning() {
				p.Printf("%s is ready (%s)\n", e.Change, e.Elapsed.Round(100*time.Millisecond))
			}
		}
	}
}
