// Package broker implements `socks broker`: the long-polling worker that
// takes envelopes off the queue and delivers them through the Management
// API, outside Lambda.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/store"
)

// Options are the inputs of `socks broker`.
type Options struct {
	IO      *iostreams.IOStreams
	Backend func(context.Context) (*backend.Backend, error)
	Now     func() time.Time
	// Stopping records what the broker finishes after Ctrl-C, for Main
	// to say.
	Stopping *cmdutil.Stopping

	Concurrency int
	Workers     int
	Visibility  time.Duration
	Wait        time.Duration
	Once        bool
	JSON        bool
	Verbose     bool
	Quiet       bool

	// gatewayWait bounds the wait for a local gateway as the broker
	// starts (default gatewayWait; tests set their own).
	gatewayWait time.Duration
	// postTimeout bounds one post (default broker.DefaultPostTimeout;
	// tests set their own).
	postTimeout time.Duration
}

// gatewayWait bounds how long a broker on the local backend waits, as it
// starts, for `socks serve` to record its gateway in the state dir:
// started together (a Procfile, docker compose, `socks serve --no-broker
// & socks broker` in a script), the broker looked before serve had
// recorded itself, and exited.
const gatewayWait = 10 * time.Second

// NewCmdBroker returns `socks broker`.
func NewCmdBroker(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Backend: f.Backend, Now: f.Now, Stopping: f.Stopping}
	cmd := &cobra.Command{
		Use:   "broker [--concurrency N] [--visibility D] [--wait D] [--once]",
		Short: "Deliver queued messages: the long-polling broker worker",
		Long: `Broker takes envelopes off the queue and posts each body to every matching
connection through the Management API, the job the Lambda function does on
the SQS event source. Use it where Lambda is not: on a server, in a
container, or against emulators.

On AWS it long-polls the stack's SQS queue and posts to --callback-url (the
API's https://{api-id}.execute-api.{region}.amazonaws.com/{stage}). On the
local backend it reads the local queue and posts to the running
'socks serve' (start that with --no-broker so that one broker runs),
waiting up to 10s (with --once, within --wait) for it to start when none
runs yet (the two started together, by a Procfile or a script), and
following it to a new address
when it is started again elsewhere; while it runs, 'socks publish
--wait' and 'socks doctor' on the same state dir know that a broker runs.

A message is deleted only after it was handled; one whose deliveries all
failed comes back after a backoff, and is dead-lettered with the reason
after 5 receives. --visibility bounds the handling of one message; while
a message is in hand the broker hides it again every third of it, so a
long batch is not received a second time by another broker.

Logs go to standard error. Ctrl-C (or SIGTERM) stops receiving, finishes
the messages in hand, gives the rest of the batch back to the queue and
exits 0; a second one stops it at once (exit 130, or 143 for SIGTERM),
and a message it had in hand is delivered again later. --once handles one
batch, prints a summary (--json: as JSON) and exits: --wait then bounds
the whole run, the wait for 'socks serve' to start and for the batch
together (what is left of it after the first goes to the second); Ctrl-C
before the batch came prints none and exits 130.`,
		Example: `  socks broker --backend aws --region eu-west-1 --stack prod \
    --callback-url https://abc123.execute-api.eu-west-1.amazonaws.com/prod
  socks broker --once --wait 2s
  socks broker --once --json | jq .deadLettered`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return brokerRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&opts.Concurrency, "concurrency", broker.DefaultConcurrency, "posts in flight at once, per message and in all (the messages handled at once share as many connections)")
	fl.IntVar(&opts.Workers, "workers", broker.DefaultMessageWorkers, "messages handled at once")
	fl.DurationVar(&opts.Visibility, "visibility", broker.DefaultVisibility, "how long a received message stays hidden while it is handled")
	fl.DurationVar(&opts.Wait, "wait", broker.DefaultWait, "long-poll wait per receive (at most 20s; 0s only with --once, whose whole run it bounds)")
	fl.BoolVar(&opts.Once, "once", false, "handle one batch, print a summary and exit")
	fl.BoolVar(&opts.JSON, "json", false, "with --once, print the summary as JSON")
	fl.BoolVarP(&opts.Verbose, "verbose", "v", false, "log more")
	fl.BoolVarP(&opts.Quiet, "quiet", "q", false, "log only warnings and errors")
	cmd.MarkFlagsMutuallyExclusive("verbose", "quiet")
	return cmd
}

func (o *Options) check() error {
	switch {
	case o.Concurrency < 1:
		return cmdutil.FlagErrorf("--concurrency must be at least 1")
	case o.Workers < 1:
		return cmdutil.FlagErrorf("--workers must be at least 1")
	case o.Visibility < time.Second || o.Visibility > 12*time.Hour:
		return cmdutil.FlagErrorf("--visibility must be between 1s and 12h (SQS's limits)")
	case o.Wait < 0 || o.Wait > store.MaxWait:
		return cmdutil.FlagErrorf("--wait must be between 0s and %s (SQS's longest long poll)", store.MaxWait)
	case o.JSON && !o.Once:
		return cmdutil.FlagErrorf("--json goes with --once: without it the broker only logs, to standard error")
	case o.Wait == 0 && !o.Once:
		// A broker that runs on polls again and again: with no wait it
		// would spin on an empty queue (and pay for every request on
		// SQS), and a long poll answers as soon as a message comes anyway.
		return cmdutil.FlagErrorf("--wait 0s goes with --once: a broker that runs on waits for messages with a long poll (1s to %s), which answers as soon as one comes", store.MaxWait)
	}
	return nil
}

// Summary counts what one batch came to.
type Summary struct {
	Received     int `json:"received"`
	Done         int `json:"done"`
	Retry        int `json:"retry"`
	DeadLettered int `json:"deadLettered"`
}

func (s Summary) String() string {
	return fmt.Sprintf("received=%d done=%d retry=%d dead_lettered=%d", s.Received, s.Done, s.Retry, s.DeadLettered)
}

func brokerRun(ctx context.Context, opts *Options) error {
	if err := opts.check(); err != nil {
		return err
	}
	// With --once, --wait bounds the whole run: the wait for a local
	// gateway and then for the batch.
	started := opts.Now()
	b, err := opts.Backend(ctx)
	if err != nil {
		return err
	}
	logger := cmdutil.NewLogger(opts.IO.ErrOut, opts.Verbose, opts.Quiet)
	pusher, err := b.Pusher(ctx, opts.Concurrency)
	if errors.Is(err, backend.ErrNoGateway) && b.DB != nil && opts.awaitGatewayFor() > 0 {
		pusher, err = awaitGateway(ctx, b, opts, logger)
		if err != nil && ctx.Err() != nil && !opts.Once {
			// Ctrl-C while waiting, nothing in hand: a clean stop
			// (exit 0), as once running; --once was cut short (130).
			return nil
		}
	}
	if err != nil {
		return err
	}
	if b.SQS != nil {
		// The queue dead-letters a message past its receives itself.
		b.SQS.SetLogger(logger)
	}
	if err := cmdutil.GiveBackOrphans(ctx, b, logger); err != nil {
		return err
	}
	// On the local backend publish --wait asks whether a broker runs.
	release, err := b.HoldBroker()
	if err != nil {
		return err
	}
	defer release()
	// 1m, not 1m0s.
	visibility := opts.Visibility.String()
	if strings.HasSuffix(visibility, "m0s") {
		visibility = strings.TrimSuffix(visibility, "0s")
	}
	left := "a message it had in hand comes back on the queue after --visibility (" + visibility + ") and is delivered again, so a client may get it twice"
	if b.DB != nil {
		left = "a message it had in hand is given back when a broker next starts on this state dir (socks broker or socks serve) and delivered again, so a client may get it twice"
	}
	// Recorded while a batch is in hand only: Ctrl-C to a broker that
	// waits for one stops it at once, with nothing to say.
	holding := func() func() {
		return opts.Stopping.Add(cmdutil.Work{
			What: "finishing the messages in hand, each within its --visibility of " + visibility,
			Left: left,
		})
	}
	// Records are judged by the clock that wrote them: on AWS, AWS's
	// (this machine's may be set off, a container's drift while its host
	// slept), asked again every clockSync. Until it answers, this
	// machine's: a store that cannot be read fails the batch with its own
	// error, after the queue's (a missing queue is named first).
	now, stopClock := store.FollowEvery(ctx, b.Store, opts.Now, store.ClockSync, func(err error) {
		logger.Debug("reading the time by the store's clock", "err", err)
	})
	defer stopClock()
	br := &broker.Broker{
		Store:          b.Store,
		Queue:          b.Queue,
		Pusher:         pusher,
		Concurrency:    opts.Concurrency,
		MessageWorkers: opts.Workers,
		// The messages handled at once share the pusher's
		// --concurrency connections: a post waits for one before its
		// timeout starts.
		PostSlots:   make(chan struct{}, opts.Concurrency),
		PostTimeout: opts.postTimeout,
		Visibility:  opts.Visibility,
		Wait:        opts.Wait,
		Now:         now,
		Logger:      logger,
		Mapping:     b.Config.Mapping,
		Holding:     holding,
	}
	// The first batch is received here, so that a queue that does not
	// exist or cannot be reached fails at once with one error instead of
	// being retried in the log. Without --once it is a short poll, so that
	// the start is logged at once.
	wait := min(opts.Wait, max(0, opts.Wait-opts.Now().Sub(started)))
	if !opts.Once {
		wait = 0
	}
	sum, err := handleBatch(ctx, br, opts, wait)
	if err != nil {
		if ctx.Err() != nil {
			if opts.Once {
				// Cut short before a batch came: no summary to print,
				// and not a batch that came to nothing (exit 130).
				return ctx.Err()
			}
			return nil
		}
		return fmt.Errorf("receiving from %s: %w", b.QueueName(), err)
	}
	if opts.Once {
		if opts.JSON {
			return cmdutil.PrintJSON(opts.IO.Out, sum)
		}
		fmt.Fprintln(opts.IO.Out, sum)
		return nil
	}
	_, endpoint, _ := b.Gateway(ctx)
	logger.Info("broker started", "queue", b.QueueName(), "endpoint", endpoint, "concurrency", opts.Concurrency, "workers", opts.Workers)
	// A state file deleted or replaced under the broker: stop rather than
	// wait on a queue no other process sends to.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	replaced := make(chan error, 1)
	go func() {
		err := b.WatchStateFile(ctx)
		replaced <- err
		if err != nil {
			cancel(err)
		}
	}()
	if err := br.Run(ctx); err != nil {
		return err
	}
	cancel(nil)
	if err := <-replaced; err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}

// awaitGatewayFor is how long the broker waits for a local gateway as it
// starts: opts.gatewayWait (default gatewayWait), and with --once no
// longer than --wait (`--once --wait 0s` waits for nothing).
func (opts *Options) awaitGatewayFor() time.Duration {
	wait := opts.gatewayWait
	if wait <= 0 {
		wait = gatewayWait
	}
	if opts.Once {
		wait = min(wait, opts.Wait)
	}
	return wait
}

// awaitGateway waits, at most opts.awaitGatewayFor(), for a gateway to
// be recorded in b's local state dir, and returns the pusher for it. It
// looks every 50 ms: serve records itself once, in the state file, which
// no event announces.
func awaitGateway(ctx context.Context, b *backend.Backend, opts *Options, logger *slog.Logger) (store.Pusher, error) {
	wait := opts.awaitGatewayFor()
	logger.Info("waiting for `socks serve` to start on this state dir", "at_most", wait)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, fmt.Errorf("%w (waited %s for one to start)", backend.ErrNoGateway, wait)
		case <-tick.C:
		}
		p, err := b.Pusher(ctx, opts.Concurrency)
		if !errors.Is(err, backend.ErrNoGateway) {
			return p, err
		}
	}
}

// handleBatch receives one batch and handles it, as one turn of Run does.
func handleBatch(ctx context.Context, br *broker.Broker, opts *Options, wait time.Duration) (Summary, error) {
	msgs, err := br.Queue.Receive(ctx, store.MaxBatch, opts.Visibility, wait)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Received: len(msgs)}
	for _, out := range br.HandleBatch(ctx, msgs) {
		switch {
		case out.Done:
			sum.Done++
		case out.DeadLettered:
			sum.DeadLettered++
		default:
			sum.Retry++
		}
	}
	return sum, nil
}
