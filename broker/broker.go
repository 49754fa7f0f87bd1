// Package broker fans envelopes out to connections: it takes them off the
// queue, finds the matching connections by key, posts the body to each
// through the Management API with bounded concurrency, removes connections
// that are gone, retries every other failure with jittered backoff, hands
// the deliveries that still failed on in a follow-up envelope addressed to
// exactly those connections, and deletes a message only after that — or
// moves it to the dead letters with the reason. docs/reliability.md states
// the guarantee.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/socks-dev/socks/internal/backoff"
	"github.com/socks-dev/socks/internal/outage"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// Defaults.
const (
	DefaultConcurrency = 32
	DefaultVisibility  = 60 * time.Second
	DefaultWait        = 10 * time.Second
	DefaultPostTries   = 6
	// DefaultMaxAttempts is how many follow-ups one message may have.
	DefaultMaxAttempts = 5
	// DefaultMessageWorkers is how many queue messages are handled at once.
	DefaultMessageWorkers = 4
	maxErrorsKept         = store.MaxReportErrors
	// reportAttempts bounds the read-modify-writes of a report that
	// another writer keeps changing first (updateReport).
	reportAttempts = 10
	// minPostsPerWorker is the fewest posts to a non-blocking pusher that
	// get a goroutine of their own.
	minPostsPerWorker = 256
)

// Broker fans envelopes out. Set Store, Queue and Pusher; the rest default.
type Broker struct {
	Store  store.Store
	Queue  store.Queue
	Pusher store.Pusher

	// Concurrency bounds posts in flight for one envelope.
	Concurrency int
	// PostSlots, when set, also bounds the posts in flight across every
	// envelope handled at once (its capacity): set it to the connections
	// of a Pusher that envelopes handled at once share (the Lambda
	// function's records). A post's PostTimeout starts once it has a
	// slot, so its wait for one is not spent from it; without slots,
	// posts past the client's connections waited in its pool with their
	// timeout running, and failed never sent.
	PostSlots chan struct{}
	// PostTries bounds attempts per connection in one handling.
	PostTries int
	// BackoffBase and BackoffMax shape the jittered exponential backoff
	// between attempts.
	BackoffBase, BackoffMax time.Duration
	// Visibility is how long a received message stays invisible; it must
	// be longer than handling one message takes.
	Visibility time.Duration
	// Wait is the long-poll wait per receive.
	Wait time.Duration
	// MaxReceives is how often a failing message is retried before it is
	// dead-lettered with its reason.
	MaxReceives int
	// MessageWorkers bounds messages handled at once.
	MessageWorkers int
	// MaxAttempts bounds the follow-ups of one message: a follow-up
	// received after that many is dead-lettered with its connections.
	MaxAttempts int
	// PostTimeout bounds one post (default DefaultPostTimeout).
	PostTimeout time.Duration
	// Mapping turns EventBridge events whose detail is not an envelope
	// into envelopes (nil: such events are dead-lettered).
	Mapping *pubsub.Mapping

	Now    func() time.Time
	Logger *slog.Logger

	// Holding, when set, is called as HandleBatch takes a batch of at
	// least one message in hand, and the done it returns once the batch
	// is settled: a command records then what Ctrl-C leaves it to finish
	// (cmdutil.Stopping), and an idle broker has nothing to finish.
	Holding func() (done func())
	// Sleep waits between retries (tests shorten it).
	Sleep func(ctx context.Context, d time.Duration) error
	// Tick makes the ticker of the visibility heartbeat (see HandleBatch):
	// its ticks and the function that stops it. Nil is time.NewTicker;
	// tests drive the ticks.
	Tick func(every time.Duration) (ticks <-chan time.Time, stop func())
	// Budget gives a message's handling its time budget: a context that
	// ends d after the call (see HandleBatch). Nil is context.WithTimeout;
	// tests end it by hand.
	Budget func(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc)
}

func (b *Broker) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

// reportTime is the time of a report: now in UTC to the millisecond, as
// the stores keep it, so that a report printed as Deliver made it
// (publish --direct) reads as one read back from the store.
func (b *Broker) reportTime() time.Time {
	return b.now().UTC().Truncate(time.Millisecond)
}

func (b *Broker) logger() *slog.Logger {
	if b.Logger != nil {
		return b.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func orDefault[T comparable](v, d T) T {
	var zero T
	if v == zero {
		return d
	}
	return v
}

// Deliver fans env out at once, without the queue. The error is non-nil when
// the targets could not be found (a store failure) or ctx ended during the
// fan-out; per-connection failures, those ctx cut short included, are
// counted in the report.
func (b *Broker) Deliver(ctx context.Context, env pubsub.Envelope) (store.Report, error) {
	f, err := b.fanOut(ctx, env)
	return f.report, err
}

// fanOut is what one fan-out came to: the report, and the connections whose
// delivery still failed after its retries, with the last such error.
type fanOutResult struct {
	report  store.Report
	pending []string
	lastErr error
}

// fanOut posts env's body to its targets: the connections of a follow-up,
// or those the store finds for its users and topics.
func (b *Broker) fanOut(ctx context.Context, env pubsub.Envelope) (fanOutResult, error) {
	f := fanOutResult{report: store.Report{MessageID: env.ID}}
	rep := &f.report
	ids := env.Connections
	if !env.IsFollowUp() {
		var err error
		if ids, err = b.targets(ctx, env); err != nil {
			return f, fmt.Errorf("finding connections: %w", err)
		}
	}
	rep.Targets = len(ids)
	var mu sync.Mutex
	count := func(n *int, id string, err error) {
		mu.Lock()
		defer mu.Unlock()
		*n++
		if err != nil && len(rep.Errors) < maxErrorsKept {
			rep.Errors = append(rep.Errors, err.Error())
		}
		if n == &rep.Failed {
			f.pending = append(f.pending, id)
			f.lastErr = err
		}
	}
	// settle counts one connection's final outcome; a gone connection is
	// removed from the store first.
	settle := func(ctx context.Context, id string, err error) {
		switch {
		case err == nil:
			count(&rep.Delivered, id, nil)
		case store.IsGone(err):
			if store.PushErrorKindOf(err) == store.KindInvalidID {
				b.logger().Warn("removing the record of a connection whose ID the Management API refuses: it can never be reached", "connection", id, "err", err)
			}
			if derr := b.deleteGone(ctx, id); derr != nil {
				err = fmt.Errorf("removing gone connection %s: %w", id, derr)
			} else {
				err = nil
			}
			count(&rep.Gone, id, err)
		default:
			count(&rep.Failed, id, err)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(orDefault(b.Concurrency, DefaultConcurrency))
	if store.NonBlocking(b.Pusher) {
		// A post that never blocks is made in place, one after the other
		// (in one goroutine per CPU for a large fan-out): no goroutine per
		// connection, no timeout of its own. Only a failure goes on
		// concurrently, to its retries or to the store, as below.
		parts := max(1, min(runtime.GOMAXPROCS(0), len(ids)/minPostsPerWorker))
		var wg sync.WaitGroup
		for part := range slices.Chunk(ids, max(1, (len(ids)+parts-1)/parts)) {
			wg.Go(func() {
				delivered := 0
				for _, id := range part {
					err := b.Pusher.Post(ctx, id, env.Body)
					if err == nil {
						delivered++
						continue
					}
					g.Go(func() error {
						settle(gctx, id, b.postFrom(gctx, id, env.Body, 1, err))
						return nil
					})
				}
				mu.Lock()
				rep.Delivered += delivered
				mu.Unlock()
			})
		}
		wg.Wait()
	} else {
		for _, id := range ids {
			g.Go(func() error {
				settle(gctx, id, b.post(gctx, id, env.Body))
				return nil // one connection's failure never stops the others
			})
		}
	}
	_ = g.Wait()
	rep.At = b.reportTime()
	return f, ctx.Err()
}

// deleteGone removes the record of a connection the Management API
// answered 410 Gone: with store.GoneConnectionDeleter when the Store has
// it, which spares a connection still in its $connect.
func (b *Broker) deleteGone(ctx context.Context, id string) error {
	if d, ok := b.Store.(store.GoneConnectionDeleter); ok {
		_, err := d.DeleteGoneConnection(ctx, id, b.now())
		return err
	}
	return b.Store.DeleteConnection(ctx, id)
}

// targets returns the IDs of the connections env reaches: by
// store.TargetIDFinder when the store has it, else from FindTargets.
func (b *Broker) targets(ctx context.Context, env pubsub.Envelope) ([]string, error) {
	if f, ok := b.Store.(store.TargetIDFinder); ok {
		return f.FindTargetIDs(ctx, env.Users, env.Topics, b.now())
	}
	conns, err := b.Store.FindTargets(ctx, env.Users, env.Topics, b.now())
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(conns))
	for i, c := range conns {
		ids[i] = c.ID
	}
	return ids, nil
}

// DefaultPostTimeout bounds one PostToConnection call.
const DefaultPostTimeout = 10 * time.Second

// post delivers to one connection. Every failure but "gone" is retried
// with jittered exponential backoff, up to PostTries attempts in all,
// except those a retry cannot mend at once (a wrong endpoint or
// credentials, a message too large); each attempt is bounded by
// PostTimeout.
func (b *Broker) post(ctx context.Context, id string, body []byte) error {
	return b.postFrom(ctx, id, body, 0, nil)
}

// postFrom is post from attempt on; prev is the failure of the attempt
// before (nil when attempt is 0).
func (b *Broker) postFrom(ctx context.Context, id string, body []byte, attempt int, prev error) error {
	tries := orDefault(b.PostTries, DefaultPostTries)
	for ; ; attempt++ {
		if attempt > 0 {
			if !retryable(prev) || attempt >= tries || ctx.Err() != nil {
				return prev
			}
			if b.sleep(ctx, b.backoff(attempt-1)) != nil {
				return prev
			}
		}
		if b.PostSlots != nil {
			select {
			case b.PostSlots <- struct{}{}:
			case <-ctx.Done():
				if prev == nil {
					prev = &store.PushError{Kind: store.KindOther, Op: "PostToConnection", ConnectionID: id, Err: context.Cause(ctx)}
				}
				return prev
			}
		}
		timeout := orDefault(b.PostTimeout, DefaultPostTimeout)
		pctx, cancel := context.WithTimeout(ctx, timeout)
		prev = b.Pusher.Post(pctx, id, body)
		if prev != nil && ctx.Err() == nil && errors.Is(pctx.Err(), context.DeadlineExceeded) {
			prev = noAnswer(prev, id, timeout)
		}
		cancel()
		if b.PostSlots != nil {
			<-b.PostSlots
		}
		if prev == nil {
			return nil
		}
	}
}

// noAnswer is err, a post cut off by its timeout, said in words ("no
// answer within 10s") rather than as the SDK's "canceled, context
// deadline exceeded"; its kind stays, so it is retried as before.
func noAnswer(err error, id string, timeout time.Duration) error {
	pe := &store.PushError{Kind: store.KindOther, Op: "PostToConnection", ConnectionID: id}
	if old, ok := errors.AsType[*store.PushError](err); ok {
		pe.Kind, pe.Op, pe.Status = old.Kind, old.Op, old.Status
	}
	pe.Err = fmt.Errorf("no answer within %s", timeout)
	return pe
}

// retryable reports whether a failed post is worth another try at once.
func retryable(err error) bool {
	switch store.PushErrorKindOf(err) {
	case store.KindGone, store.KindInvalidID, store.KindForbidden, store.KindTooLarge:
		return false
	}
	return true
}

func (b *Broker) backoff(attempt int) time.Duration {
	base := orDefault(b.BackoffBase, 50*time.Millisecond)
	maxD := orDefault(b.BackoffMax, 2*time.Second)
	return backoff.FullJitter(attempt, base, maxD)
}

func (b *Broker) sleep(ctx context.Context, d time.Duration) error {
	if b.Sleep != nil {
		return b.Sleep(ctx, d)
	}
	return backoff.Sleep(ctx, d)
}

// Outcome is what handling one queue message came to.
type Outcome struct {
	Report store.Report
	// Done: the message was handled (delivered, or nothing to deliver, or
	// the failed deliveries handed on in a follow-up) and must be deleted.
	Done bool
	// DeadLettered: the message was moved to the dead letters.
	DeadLettered bool
	// Err says why a message that is not Done must be retried.
	Err error
	// Pending are the connections whose delivery failed when others were
	// made: Settle hands them on in a follow-up envelope (HandedOn).
	Pending []string
	// HandedOn: the follow-up for Pending was enqueued.
	HandedOn bool

	env     pubsub.Envelope
	lastErr error
}

// Decide handles one received message without deleting it: it parses the
// envelope (plain, or wrapped in an EventBridge event or SNS notification,
// see pubsub.ParseMessage) and fans it out. It is shared by the queue loop and the Lambda
// SQS handler, which deletes through partial batch failures instead.
//
// When some deliveries were made (or found gone) and others failed after
// their retries, the message is Done with those others Pending, for Settle
// to hand on. When none could be made, the whole message is retried (Err):
// nobody has it yet. Connections the end of ctx cut short count as failed.
// A follow-up past MaxAttempts is not delivered again but dead-lettered.
func (b *Broker) Decide(ctx context.Context, m store.Message) Outcome {
	env, err := pubsub.ParseMessage(m.Body, b.Mapping)
	if err != nil {
		return Outcome{Err: &PoisonError{Err: err}}
	}
	if env.ID == "" {
		env.ID = m.ID
	}
	if maxA := orDefault(b.MaxAttempts, DefaultMaxAttempts); env.Attempt > maxA {
		n := len(env.Connections)
		return Outcome{Report: store.Report{MessageID: env.ID, Targets: n, Failed: n}, env: env, Err: &GiveUpError{
			Connections: env.Connections, Attempts: env.Attempt, LastError: env.LastError}}
	}
	f, err := b.fanOut(ctx, env)
	// In order, so that handing the same connections on again makes the
	// same follow-ups (store.FollowUpKey).
	slices.Sort(f.pending)
	out := Outcome{Report: f.report, env: env, lastErr: f.lastErr}
	rep := f.report
	switch {
	case len(f.pending) == 0 && err == nil:
		out.Done = true
	case rep.Delivered > 0 || rep.Gone > 0:
		out.Done, out.Pending = true, f.pending
	case err != nil:
		out.Err = err
	default:
		out.Err = fmt.Errorf("no delivery succeeded: %d failed (first: %s)", rep.Failed, first(rep.Errors))
	}
	if len(f.pending) > 0 && !out.Done {
		out.Err = fmt.Errorf("%w; not delivered to %s", out.Err, listIDs(f.pending))
	}
	return out
}

// PoisonError marks a message that can never be handled (it does not parse).
type PoisonError struct{ Err error }

func (e *PoisonError) Error() string { return "unusable envelope: " + e.Err.Error() }
func (e *PoisonError) Unwrap() error { return e.Err }

// GiveUpError marks a follow-up whose attempts are used up.
type GiveUpError struct {
	Connections []string
	Attempts    int
	LastError   string
}

func (e *GiveUpError) Error() string {
	return fmt.Sprintf("not delivered to %s after %d attempts; last error: %s", listIDs(e.Connections), e.Attempts, orDefault(e.LastError, "unknown"))
}

// listIDs names connections for a reason: every one up to maxIDsNamed,
// then how many more.
func listIDs(ids []string) string {
	const maxIDsNamed = 20
	s := pluralConnections(len(ids)) + " ("
	if len(ids) > maxIDsNamed {
		return s + strings.Join(ids[:maxIDsNamed], ", ") + fmt.Sprintf(" and %d more)", len(ids)-maxIDsNamed)
	}
	return s + strings.Join(ids, ", ") + ")"
}

func pluralConnections(n int) string {
	if n == 1 {
		return "1 connection"
	}
	return fmt.Sprintf("%d connections", n)
}

func first(s []string) string {
	if len(s) == 0 {
		return "unknown error"
	}
	return s[0]
}

// settleTimeout bounds the queue and store calls that finish a decided
// message: they get their own time, since the fan-out may have used up the
// handling context's.
const settleTimeout = 10 * time.Second

// Settle finishes a decided message, except for deleting it: it hands the
// Pending connections of a handled one on in a follow-up envelope (before
// the caller deletes the message, so that they are never dropped) and
// records its report; it moves one that is poison, used up its attempts,
// or failed on its last allowed receive, to the dead letters with the
// reason. It reports whether the message is finished with (out.Done, or
// out.DeadLettered is now set); false means it stays on the queue to be
// received again.
func (b *Broker) Settle(ctx context.Context, m store.Message, out *Outcome) bool {
	log := b.logger().With("message", m.ID, "receives", m.ReceiveCount)
	recorded := false
	if out.Done && len(out.Pending) > 0 {
		out.Report.Pending = len(out.Pending)
		if !out.env.IsFollowUp() {
			// The report of an original replaces any earlier one, so it
			// goes first: its follow-up may be handled the moment it is
			// enqueued, and adds its deliveries to this report. (A
			// follow-up's report adds to the one before, in any order.)
			if err := b.recordReport(ctx, out.env, out.Report, out.Pending); err != nil {
				log.Warn("recording report", "err", err)
			}
			recorded = true
		}
		if err := b.handOn(ctx, out); err != nil {
			// Not handed on: the whole message is retried, and those who
			// got it may get it again (at least once, never lost).
			out.Done = false
			// The reason names them: on the last receive it is the dead
			// letter's, which must say whom the message did not reach.
			out.Err = fmt.Errorf("not delivered to %s, and handing them on failed: %w", listIDs(out.Pending), err)
		} else {
			out.HandedOn = true
		}
	}
	var poison *PoisonError
	var giveUp *GiveUpError
	switch {
	case out.Done:
		if !recorded {
			if err := b.recordReport(ctx, out.env, out.Report, out.Pending); err != nil {
				log.Warn("recording report", "err", err)
			}
		}
		log.Info("delivered", "id", out.Report.MessageID, "targets", out.Report.Targets,
			"delivered", out.Report.Delivered, "gone", out.Report.Gone, "failed", out.Report.Failed,
			"handed_on", len(out.Pending), "attempt", out.env.Attempt)
		return true
	case errors.As(out.Err, &poison), errors.As(out.Err, &giveUp):
		b.DeadLetter(ctx, m, out, out.Err.Error())
	case m.ReceiveCount >= orDefault(b.MaxReceives, store.DefaultMaxReceives):
		b.DeadLetter(ctx, m, out, fmt.Sprintf("failed %d times; last error: %s", m.ReceiveCount, out.Err))
	default:
		log.Warn("will retry", "err", out.Err)
	}
	return out.DeadLettered
}

// handOnTries bounds the SendBatch calls of one hand-on.
const handOnTries = 4

// handOn enqueues out.Pending as follow-up envelopes of out's message: the
// same ID, users, topics (each once) and body, addressed to exactly those
// connections, one attempt more. A batch sent only in part (store.Queue.SendBatch gives
// "" for the IDs of the unsent bodies) is not an error of the whole: only
// the unsent follow-ups are sent again, after a backoff, up to handOnTries
// calls in all; it fails only if some still cannot be sent. (Failing the
// message would send the follow-ups already enqueued a second time, and
// retry the connections it already reached.) A call that sent nothing
// fails the hand-on at once, as it always did: nothing would go twice, the
// queue's client has retried it already, and in Lambda the settling's
// deadline is better spent answering.
func (b *Broker) handOn(ctx context.Context, out *Outcome) error {
	// Each user and topic once, which means the same: the limits count
	// distinct ones, so an envelope may name one thousands of times and
	// fill a queue message, which its connections would then overflow.
	base := out.env
	base.Users, base.Topics = pubsub.Unique(base.Users), pubsub.Unique(base.Topics)
	var bodies [][]byte
	for _, ids := range followUpChunks(out.Pending) {
		env := base
		env.FollowUp = pubsub.FollowUp{Connections: ids, Attempt: env.Attempt + 1}
		if out.lastErr != nil {
			env.LastError = text.CapBytes(out.lastErr.Error(), 512)
		}
		data, err := env.Marshal()
		if err != nil {
			return err
		}
		bodies = append(bodies, data)
	}
	unsent := bodies
	for try := 0; ; try++ {
		ids, err := b.Queue.SendBatch(ctx, unsent)
		if err == nil {
			return nil
		}
		var rest [][]byte
		for i, body := range unsent {
			if i >= len(ids) || ids[i] == "" {
				rest = append(rest, body)
			}
		}
		if len(rest) == len(unsent) {
			if try == 0 {
				return err
			}
			return fmt.Errorf("%d of %d follow-ups not enqueued: %w", len(rest), len(bodies), err)
		}
		unsent = rest
		if len(unsent) == 0 {
			return nil
		}
		if try+1 >= handOnTries {
			return fmt.Errorf("%d of %d follow-ups not enqueued after %d tries: %w", len(unsent), len(bodies), handOnTries, err)
		}
		b.logger().Warn("follow-ups not enqueued, sending them again", "unsent", len(unsent), "of", len(bodies), "err", err)
		if serr := b.sleep(ctx, b.backoff(try)); serr != nil {
			return fmt.Errorf("%d of %d follow-ups not enqueued: %w", len(unsent), len(bodies), err)
		}
	}
}

// DeadLetter moves m to the dead letters with reason, adds the reason to
// the report (recorded when the envelope had an ID) and sets
// out.DeadLettered; if the move fails, m stays on the queue. A move refused
// for a stale receipt (m was received again by another receiver, or
// deleted) is added to out.Err, wrapping store.ErrStaleReceipt: the
// message is no longer this receiver's to finish, or to retry.
func (b *Broker) DeadLetter(ctx context.Context, m store.Message, out *Outcome, reason string) {
	log := b.logger().With("message", m.ID, "receives", m.ReceiveCount)
	if err := b.Queue.DeadLetter(ctx, m, reason); err != nil {
		if errors.Is(err, store.ErrStaleReceipt) {
			log.Warn("not dead-lettered: the message was received again or deleted meanwhile", "err", err, "reason", reason)
			stale := fmt.Errorf("not dead-lettered: %w", err)
			if out.Err != nil {
				stale = fmt.Errorf("%w; %w", out.Err, stale)
			}
			out.Err = stale
			return
		}
		log.Error("dead-lettering message", "err", err, "reason", reason)
		return
	}
	out.DeadLettered = true
	if out.env.ID == "" {
		// Not decided (a record past its receives): its report says so
		// all the same, as the local queue's own dead-lettering does.
		if err := b.reportUndecided(ctx, m, reason); err != nil {
			log.Warn("recording report", "err", err)
		}
		log.Warn("dead-lettered", "reason", reason)
		return
	}
	if out.Report.MessageID != "" {
		out.Report.Pending, out.Report.DeadLettered = 0, true
		out.Report.Errors = append(out.Report.Errors, reason)
		if err := b.recordReport(ctx, out.env, out.Report, nil); err != nil {
			log.Warn("recording report", "err", err)
		}
	}
	log.Warn("dead-lettered", "reason", reason)
}

// reportUndecided records in the report of m, dead-lettered for reason
// without being decided, that it was (store.ReportDeadLettered). A body
// that does not parse has no report.
func (b *Broker) reportUndecided(ctx context.Context, m store.Message, reason string) error {
	return store.ReportDeadLettered(ctx, b.Store, m.ID, m.Body, b.Mapping, reason, b.reportTime(), reportAttempts, b.waitToRetryReport)
}

// updateReport changes the report of message id by read-modify-write
// (store.UpdateReport): a write that loses to another broker's is
// redone after a backoff, up to reportAttempts times.
func (b *Broker) updateReport(ctx context.Context, id string, change func(prev *store.Report) (*store.Report, error)) error {
	return store.UpdateReport(ctx, b.Store, id, reportAttempts, b.waitToRetryReport, change)
}

// waitToRetryReport waits the backoff after attempt lost to another
// writer of the report.
func (b *Broker) waitToRetryReport(ctx context.Context, attempt int) error {
	return b.sleep(ctx, b.backoff(attempt))
}

// Handle decides one message and then deletes it, dead-letters it with the
// reason, or leaves it for a retry after a backoff. The queue calls after
// the fan-out get their own settleTimeout, even when ctx has ended, so that
// a message whose fan-out ran out of time is still deleted rather than
// delivered again.
func (b *Broker) Handle(ctx context.Context, m store.Message) Outcome {
	return b.handle(ctx, m, func() {})
}

// handle is Handle; settled is called once the message is settled, before
// it is made visible again for a retry or deleted.
func (b *Broker) handle(ctx context.Context, m store.Message, settled func()) Outcome {
	out := b.Decide(ctx, m)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	finished := b.Settle(ctx, m, &out)
	settled()
	if !finished {
		if !errors.Is(out.Err, store.ErrStaleReceipt) {
			b.RetryLater(ctx, m)
		}
		return out
	}
	if out.Done {
		if err := b.Queue.Delete(ctx, m.Receipt); err != nil {
			// Not deleted means it comes back: at least once, never lost.
			b.logger().Error("deleting handled message", "message", m.ID, "err", err)
		}
	}
	return out
}

// RetryLater makes m, which Settle left on the queue, visible again after a
// backoff that grows with its receives (1 s × its receive count), rather
// than after the rest of its visibility timeout. A failure only logs: m
// then comes back when that timeout ends.
func (b *Broker) RetryLater(ctx context.Context, m store.Message) {
	delay := time.Duration(m.ReceiveCount) * time.Second
	if err := b.Queue.ChangeVisibility(ctx, m.Receipt, delay); err != nil {
		b.logger().Warn("changing visibility", "message", m.ID, "err", err)
	}
}

// followUpChunks splits the connections handed on into those of each
// follow-up envelope.
func followUpChunks(pending []string) [][]string {
	return slices.Collect(slices.Chunk(pending, pubsub.MaxFollowUpConnections))
}

// recordReport records r, the report of handling env, which handed pending
// on. The report of a follow-up adds to the one recorded before
// (store.Report.Add): its deliveries and gone connections are added, its
// failures replace the earlier ones, which it retried, and so do its
// hand-ons the pending; handled again, it replaces what it added before,
// and a follow-up the report does not list (an earlier handling's, which
// a later handling of the message replaced) adds nothing. The follow-ups
// of pending are listed in the report (store.Report.HandOn).
func (b *Broker) recordReport(ctx context.Context, env pubsub.Envelope, r store.Report, pending []string) error {
	if r.MessageID == "" {
		return nil
	}
	if env.IsFollowUp() {
		// A report there but unread is an error (updateReport): writing
		// this handling's counts alone would replace the message's.
		return b.updateReport(ctx, r.MessageID, func(prev *store.Report) (*store.Report, error) {
			if prev == nil {
				orphan := store.OrphanReport(r.MessageID, env.Connections)
				prev = &orphan
			}
			if _, listed := prev.FollowUps[store.FollowUpKey(env.Connections)]; !listed {
				b.logger().Info("not counted in the report: a follow-up of an earlier handling of the message", "id", r.MessageID, "attempt", env.Attempt)
				return nil, nil
			}
			next := prev.Add(r, env.Connections, followUpChunks(pending))
			return &next, nil
		})
	}
	return b.Store.PutReport(ctx, r.HandOn(followUpChunks(pending)))
}

// Run receives batches and handles them with HandleBatch until ctx is done.
// Messages in hand when ctx ends are finished first (see HandleBatch);
// anything not deleted comes back after its visibility timeout.
func (b *Broker) Run(ctx context.Context) error {
	vis := orDefault(b.Visibility, DefaultVisibility)
	wait := orDefault(b.Wait, DefaultWait)
	// A queue that cannot be received from (a state file that takes no
	// writes) fails at every try, a second apart or so: logged when it
	// starts, each minute after with the count, and when it ends.
	receiving := outage.Log{Logger: b.logger(), What: "receiving from the queue", Now: b.now}
	failures := 0
	for ctx.Err() == nil {
		msgs, err := b.Queue.Receive(ctx, store.MaxBatch, vis, wait)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			failures++
			receiving.Failed(err)
			if b.sleep(ctx, b.backoff(failures)) != nil {
				break
			}
			continue
		}
		failures = 0
		receiving.OK()
		b.HandleBatch(ctx, msgs)
	}
	return nil
}

// HandleBatch handles received messages, MessageWorkers at once, and
// returns their outcomes in order.
//
// While a message is in hand, from the receive until it is settled, a
// heartbeat hides it again for the whole visibility timeout every third of
// it (Queue.ChangeVisibilityBatch), so that neither a long fan-out nor waiting
// for a worker behind the batch's other messages makes it visible to other
// receivers, who would deliver it a second time. Each message's handling
// has a budget of its own, the visibility timeout from when its handling
// starts: one slow message never eats the time of those after it.
//
// Handling continues past the end of ctx, so that a message in hand is
// finished (and deleted) rather than delivered again later; the messages
// of the batch not yet started when ctx ends are made visible again at
// once instead, in one Queue.ChangeVisibilityBatch, for another broker
// (their outcome's Err is ctx's error).
func (b *Broker) HandleBatch(ctx context.Context, msgs []store.Message) []Outcome {
	if len(msgs) > 0 && b.Holding != nil {
		defer b.Holding()()
	}
	vis := orDefault(b.Visibility, DefaultVisibility)
	hb := b.startHeartbeat(context.WithoutCancel(ctx), msgs, vis)
	defer hb.stop()
	outs := make([]Outcome, len(msgs))
	var wg sync.WaitGroup
	workers := make(chan struct{}, orDefault(b.MessageWorkers, DefaultMessageWorkers))
	for i, m := range msgs {
		select {
		case workers <- struct{}{}:
		case <-ctx.Done():
		}
		if err := ctx.Err(); err != nil {
			for j := i; j < len(msgs); j++ {
				hb.release(msgs[j].Receipt)
				outs[j] = Outcome{Err: err}
			}
			b.giveBack(ctx, msgs[i:])
			break
		}
		wg.Go(func() {
			defer func() { <-workers }()
			budget := b.Budget
			if budget == nil {
				budget = context.WithTimeout
			}
			mctx, cancel := budget(context.WithoutCancel(ctx), vis)
			defer cancel()
			outs[i] = b.handle(mctx, m, func() { hb.release(m.Receipt) })
		})
	}
	wg.Wait()
	return outs
}

// giveBack makes msgs, received but not started when ctx ended, visible
// again at once, in one Queue.ChangeVisibilityBatch within settleTimeout.
// A message it could not give back comes back after its visibility
// timeout.
func (b *Broker) giveBack(ctx context.Context, msgs []store.Message) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	receipts := make([]string, len(msgs))
	for i, m := range msgs {
		receipts[i] = m.Receipt
	}
	for i, err := range b.Queue.ChangeVisibilityBatch(ctx, receipts, 0) {
		if err != nil {
			b.logger().Warn("giving back an unstarted message", "message", msgs[i].ID, "err", err)
		}
	}
}

// heartbeat keeps the messages in hand invisible: every third of the
// visibility timeout it hides each again for the whole timeout.
type heartbeat struct {
	// mu is held while the messages are hidden again, so that a message
	// released is never hidden again after its release returns (which
	// would undo a retry's backoff).
	mu   sync.Mutex
	held map[string]string // message ID by receipt
	quit chan struct{}
	done chan struct{}
}

func (b *Broker) startHeartbeat(ctx context.Context, msgs []store.Message, vis time.Duration) *heartbeat {
	hb := &heartbeat{held: make(map[string]string, len(msgs)), quit: make(chan struct{}), done: make(chan struct{})}
	for _, m := range msgs {
		hb.held[m.Receipt] = m.ID
	}
	tick := b.Tick
	if tick == nil {
		tick = func(every time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(every)
			return t.C, t.Stop
		}
	}
	ticks, stop := tick(max(vis/3, time.Millisecond))
	go func() {
		defer close(hb.done)
		defer stop()
		for {
			select {
			case <-hb.quit:
				return
			case <-ticks:
				hb.beat(ctx, b, vis)
			}
		}
	}()
	return hb
}

// beat hides every message still held for vis again, within settleTimeout
// in all (a release waits for it), in one Queue.ChangeVisibilityBatch: one
// request on SQS for every ten messages in hand rather than one each.
func (hb *heartbeat) beat(ctx context.Context, b *Broker, vis time.Duration) {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	if len(hb.held) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	receipts := slices.Collect(maps.Keys(hb.held))
	for i, err := range b.Queue.ChangeVisibilityBatch(ctx, receipts, vis) {
		if err != nil {
			// It may come back to another receiver while in hand: a
			// duplicate at worst (at least once).
			b.logger().Warn("extending the visibility of a message in hand", "message", hb.held[receipts[i]], "err", err)
		}
	}
}

// release stops hiding the message with receipt.
func (hb *heartbeat) release(receipt string) {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	delete(hb.held, receipt)
}

// stop ends the heartbeat and waits for it.
func (hb *heartbeat) stop() {
	close(hb.quit)
	<-hb.done
}
