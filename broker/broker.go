// Package broker fans envelopes out to connections: it takes them off the
// queue, finds the matching connections by key, posts the body to each
// through the Management API with bounded concurrency, removes connections
// that are gone, retries throttling with backoff, and deletes a message only
// after it was handled — or moves it to the dead letters with the reason.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// Defaults.
const (
	DefaultConcurrency = 32
	DefaultVisibility  = 60 * time.Second
	DefaultWait        = 10 * time.Second
	DefaultPostTries   = 6
	// DefaultMessageWorkers is how many queue messages are handled at once.
	DefaultMessageWorkers = 4
	maxErrorsKept         = 5
)

// Broker fans envelopes out. Set Store, Queue and Pusher; the rest default.
type Broker struct {
	Store  store.Store
	Queue  store.Queue
	Pusher store.Pusher

	// Concurrency bounds posts in flight for one envelope.
	Concurrency int
	// PostTries bounds attempts per connection when throttled.
	PostTries int
	// BackoffBase and BackoffMax shape the jittered exponential backoff
	// between throttled attempts.
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
	// Mapping turns EventBridge events whose detail is not an envelope
	// into envelopes (nil: such events are dead-lettered).
	Mapping *pubsub.Mapping

	Now    func() time.Time
	Logger *slog.Logger
	// Sleep waits between retries (tests shorten it).
	Sleep func(ctx context.Context, d time.Duration) error
}

func (b *Broker) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
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
	rep := store.Report{MessageID: env.ID}
	targets, err := b.Store.FindTargets(ctx, env.Users, env.Topics, b.now())
	if err != nil {
		return rep, fmt.Errorf("finding connections: %w", err)
	}
	rep.Targets = len(targets)
	var mu sync.Mutex
	count := func(n *int, err error) {
		mu.Lock()
		defer mu.Unlock()
		*n++
		if err != nil && len(rep.Errors) < maxErrorsKept {
			rep.Errors = append(rep.Errors, err.Error())
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(orDefault(b.Concurrency, DefaultConcurrency))
	for _, c := range targets {
		g.Go(func() error {
			err := b.post(gctx, c.ID, env.Body)
			switch {
			case err == nil:
				count(&rep.Delivered, nil)
			case store.IsGone(err):
				if derr := b.Store.DeleteConnection(gctx, c.ID); derr != nil {
					err = fmt.Errorf("removing gone connection %s: %w", c.ID, derr)
				} else {
					err = nil
				}
				count(&rep.Gone, err)
			default:
				count(&rep.Failed, err)
			}
			return nil // one connection's failure never stops the others
		})
	}
	_ = g.Wait()
	rep.At = b.now()
	return rep, ctx.Err()
}

// post delivers to one connection, retrying throttling with jittered
// exponential backoff.
func (b *Broker) post(ctx context.Context, id string, body []byte) error {
	tries := orDefault(b.PostTries, DefaultPostTries)
	for attempt := 0; ; attempt++ {
		err := b.Pusher.Post(ctx, id, body)
		if store.PushErrorKindOf(err) != store.KindThrottled || attempt+1 >= tries {
			return err
		}
		if b.sleep(ctx, b.backoff(attempt)) != nil {
			return err
		}
	}
}

func (b *Broker) backoff(attempt int) time.Duration {
	base := orDefault(b.BackoffBase, 50*time.Millisecond)
	maxD := orDefault(b.BackoffMax, 2*time.Second)
	d := base << min(attempt, 16)
	if d > maxD || d <= 0 {
		d = maxD
	}
	// Full jitter: spread retries of many connections apart.
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

func (b *Broker) sleep(ctx context.Context, d time.Duration) error {
	if b.Sleep != nil {
		return b.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Outcome is what handling one queue message came to.
type Outcome struct {
	Report store.Report
	// Done: the message was handled (delivered, or nothing to deliver, or
	// only permanent failures) and must be deleted.
	Done bool
	// DeadLettered: the message was moved to the dead letters.
	DeadLettered bool
	// Err says why a message that is not Done must be retried.
	Err error
}

// Decide handles one received message without deleting it: it parses the
// envelope (plain, or wrapped in an EventBridge event or SNS notification,
// see pubsub.ParseMessage) and fans it out. It is shared by the queue loop and the Lambda
// SQS handler, which deletes through partial batch failures instead.
//
// A message is retried only when none of its deliveries could be done
// (retrying after a partial success would deliver twice to some), even when
// ctx ended half way through the fan-out: the connections it cut short are
// counted as failed in the report.
func (b *Broker) Decide(ctx context.Context, m store.Message) Outcome {
	env, err := pubsub.ParseMessage(m.Body, b.Mapping)
	if err != nil {
		return Outcome{Err: &PoisonError{Err: err}}
	}
	if env.ID == "" {
		env.ID = m.ID
	}
	rep, err := b.Deliver(ctx, env)
	switch {
	case rep.Delivered > 0 || rep.Gone > 0:
		return Outcome{Report: rep, Done: true}
	case err != nil:
		return Outcome{Report: rep, Err: err}
	case rep.Failed > 0:
		return Outcome{Report: rep, Err: fmt.Errorf("no delivery succeeded: %d failed (first: %s)", rep.Failed, first(rep.Errors))}
	}
	return Outcome{Report: rep, Done: true}
}

// PoisonError marks a message that can never be handled (it does not parse).
type PoisonError struct{ Err error }

func (e *PoisonError) Error() string { return "unusable envelope: " + e.Err.Error() }
func (e *PoisonError) Unwrap() error { return e.Err }

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

// Settle finishes a decided message, except for deleting it: it records the
// report of a handled one, and moves one that is poison, or failed on its
// last allowed receive, to the dead letters with the reason. It reports
// whether the message is finished with (out.Done, or out.DeadLettered is
// now set); false means it stays on the queue to be received again.
func (b *Broker) Settle(ctx context.Context, m store.Message, out *Outcome) bool {
	log := b.logger().With("message", m.ID, "receives", m.ReceiveCount)
	var poison *PoisonError
	switch {
	case out.Done:
		if err := b.recordReport(ctx, out.Report); err != nil {
			log.Warn("recording report", "err", err)
		}
		log.Info("delivered", "id", out.Report.MessageID, "targets", out.Report.Targets,
			"delivered", out.Report.Delivered, "gone", out.Report.Gone, "failed", out.Report.Failed)
		return true
	case errors.As(out.Err, &poison):
		b.DeadLetter(ctx, m, out, out.Err.Error())
	case m.ReceiveCount >= orDefault(b.MaxReceives, store.DefaultMaxReceives):
		b.DeadLetter(ctx, m, out, fmt.Sprintf("failed %d times; last error: %s", m.ReceiveCount, out.Err))
	default:
		log.Warn("will retry", "err", out.Err)
	}
	return out.DeadLettered
}

// DeadLetter moves m to the dead letters with reason, adds the reason to
// the report (recorded when the envelope had an ID) and sets
// out.DeadLettered; if the move fails, m stays on the queue.
func (b *Broker) DeadLetter(ctx context.Context, m store.Message, out *Outcome, reason string) {
	log := b.logger().With("message", m.ID, "receives", m.ReceiveCount)
	if err := b.Queue.DeadLetter(ctx, m, reason); err != nil {
		log.Error("dead-lettering message", "err", err, "reason", reason)
		return
	}
	out.DeadLettered = true
	if out.Report.MessageID != "" {
		out.Report.Errors = append(out.Report.Errors, reason)
		if err := b.recordReport(ctx, out.Report); err != nil {
			log.Warn("recording report", "err", err)
		}
	}
	log.Warn("dead-lettered", "reason", reason)
}

// Handle decides one message and then deletes it, dead-letters it with the
// reason, or leaves it for a retry after a backoff. The queue calls after
// the fan-out get their own settleTimeout, even when ctx has ended, so that
// a message whose fan-out ran out of time is still deleted rather than
// delivered again.
func (b *Broker) Handle(ctx context.Context, m store.Message) Outcome {
	out := b.Decide(ctx, m)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	if !b.Settle(ctx, m, &out) {
		// Back off before the next receive: longer each time.
		delay := time.Duration(m.ReceiveCount) * time.Second
		if err := b.Queue.ChangeVisibility(ctx, m.Receipt, delay); err != nil {
			b.logger().Warn("changing visibility", "message", m.ID, "err", err)
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

func (b *Broker) recordReport(ctx context.Context, r store.Report) error {
	if r.MessageID == "" {
		return nil
	}
	return b.Store.PutReport(ctx, r)
}

// Run receives batches and handles them with HandleBatch until ctx is done.
// Messages in hand when ctx ends are finished first (see HandleBatch);
// anything not deleted comes back after its visibility timeout.
func (b *Broker) Run(ctx context.Context) error {
	vis := orDefault(b.Visibility, DefaultVisibility)
	wait := orDefault(b.Wait, DefaultWait)
	log := b.logger()
	failures := 0
	for ctx.Err() == nil {
		msgs, err := b.Queue.Receive(ctx, store.MaxBatch, vis, wait)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			failures++
			log.Error("receiving from the queue", "err", err)
			if b.sleep(ctx, b.backoff(failures)) != nil {
				break
			}
			continue
		}
		failures = 0
		b.HandleBatch(ctx, msgs)
	}
	return nil
}

// HandleBatch handles received messages, MessageWorkers at once, and
// returns their outcomes in order. Handling continues past the end of ctx,
// so that a message in hand is finished (and deleted) rather than delivered
// again later, but the fan-outs stop once the visibility timeout is over,
// when the messages are visible to other receivers again.
func (b *Broker) HandleBatch(ctx context.Context, msgs []store.Message) []Outcome {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), orDefault(b.Visibility, DefaultVisibility))
	defer cancel()
	outs := make([]Outcome, len(msgs))
	g := new(errgroup.Group)
	g.SetLimit(orDefault(b.MessageWorkers, DefaultMessageWorkers))
	for i, m := range msgs {
		g.Go(func() error {
			outs[i] = b.Handle(hctx, m)
			return nil
		})
	}
	_ = g.Wait()
	return outs
}
