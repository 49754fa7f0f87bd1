package store

import (
	"context"
	"errors"
	"github.com/socks-dev/socks/internal/text"
	"time"
)

// Limits shared by queue backends (SQS's numbers).
const (
	// MaxBatch is the largest send or receive batch.
	MaxBatch = 10
	// MaxWait is the longest long poll.
	MaxWait = 20 * time.Second
	// DefaultMaxReceives is how often a message may be received before it
	// is moved to the dead letters.
	DefaultMaxReceives = 5
	// DeadLetterRetention is how long a dead letter is kept after it
	// failed: the MessageRetentionPeriod of socks's dead-letter queue on
	// AWS (14 days, SQS's maximum), after which SQS deletes it by itself.
	// The local queue deletes it then too (ExpiredDeadLetterDeleter).
	DeadLetterRetention = 14 * 24 * time.Hour
)

// Message is one received queue message.
type Message struct {
	// ID identifies the queue message (not the envelope ID); it is the ID
	// Send returned.
	ID string
	// Receipt is the handle for Delete, ChangeVisibility and DeadLetter;
	// it is only valid for this receive (see Queue).
	Receipt string
	Body    []byte
	// ReceiveCount counts receives including this one (approximate on
	// SQS).
	ReceiveCount int
	SentAt       time.Time
}

// ErrStaleReceipt is what Queue.DeadLetter's error wraps when the receipt
// it was given is stale: the message was received again since (it is
// someone else's now) or deleted. Nothing was moved.
var ErrStaleReceipt = errors.New("the message was received again or deleted since this receipt was given")

// ErrDeadLettersHeld is what Queue.Redrive's and Queue.PurgeDeadLetters's
// errors wrap when dead letters they were to take were hidden by another
// command reading them at the same moment (SQS: a walk of the dead-letter
// queue); what they could take is done, and a rerun does the rest. So do
// HeldDeadLetterLister's and DeadLetterFinder's.
var ErrDeadLettersHeld = errors.New("dead letters are held by another command")

// ErrDeadLettersUnread is what DeadLetterFinder's, Queue.Redrive's and
// Queue.PurgeDeadLetters's errors wrap when dead letters asked for by ID
// were not among those one read takes (SQS: the first 10,000 received, in
// no order), and there were more: they may be among the others, so they
// are not said to be missing, and a rerun reads the same; the error says
// how to reach them. So do HeldDeadLetterLister's and Queue.Redrive's of
// all when there were more than one read takes (a rerun takes the
// others), and Queue.PurgeDeadLetters's of all when it stopped with more
// left.
var ErrDeadLettersUnread = errors.New("dead letters past those one read takes")

// ErrRedrivenButKept is what Queue.Redrive's error wraps when dead
// letters were sent back onto the queue but could not be deleted from the
// dead letters (SQS: a failed DeleteMessageBatch): redriving them again
// would deliver them twice, so they are to be purged instead.
var ErrRedrivenButKept = errors.New("dead letters were redriven but are still in the dead letters")

// MaxDeadLetterReasonBytes bounds the reason kept with a dead letter, on
// every queue: SQS keeps it in a message attribute, whose size counts
// against the message's.
const MaxDeadLetterReasonBytes = 4096

// DeadLetterReason returns reason as a queue keeps it with a dead letter:
// "no reason given" for none, and one longer than
// MaxDeadLetterReasonBytes cut to its first bytes (whole characters) and
// "…".
func DeadLetterReason(reason string) string {
	if reason == "" {
		return "no reason given"
	}
	return text.CapBytes(reason, MaxDeadLetterReasonBytes)
}

// DeadLetter is a message that could not be handled, with why.
type DeadLetter struct {
	// ID is the ID of the message that failed (its Message.ID), which
	// Redrive and PurgeDeadLetters take.
	ID     string `json:"id"`
	Body   []byte `json:"body"`
	Reason string `json:"reason"`
	// ReceiveCount is how often the message had been received when it
	// failed.
	ReceiveCount int       `json:"receiveCount"`
	SentAt       time.Time `json:"sentAt"`
	// FailedAt is when the message was dead-lettered (on SQS, for a message
	// the queue's own redrive policy moved, its send time).
	FailedAt time.Time `json:"failedAt"`
	// Receipt is set when the backend needs it to delete this dead letter
	// (SQS); it is only valid for the listing that returned it.
	Receipt string `json:"-"`
}

// ExpiresAt is when the dead letter goes: DeadLetterRetention after it
// failed. On SQS a dead letter's retention counts from its enqueue time in
// the dead-letter queue, which is FailedAt (for one the redrive policy
// moved, its first enqueue time, which FailedAt is too).
func (d DeadLetter) ExpiresAt() time.Time { return d.FailedAt.Add(DeadLetterRetention) }

// ExpiredDeadLetterDeleter is a Queue whose old dead letters go only when
// asked (the local queue); SQS deletes them by itself once they are
// DeadLetterRetention old.
type ExpiredDeadLetterDeleter interface {
	// DeleteExpiredDeadLetters deletes the dead letters expired at now
	// (DeadLetter.ExpiresAt at or before it) and returns how many it
	// deleted, also when it fails part way.
	DeleteExpiredDeadLetters(ctx context.Context, now time.Time) (int, error)
	// CountExpiredDeadLetters counts the dead letters
	// DeleteExpiredDeadLetters would delete at now, reading none
	// (prune-stale --dry-run).
	CountExpiredDeadLetters(ctx context.Context, now time.Time) (int, error)
}

// QueueStats describes a queue's depth. SQS's counts are approximate and
// lag a moment behind.
type QueueStats struct {
	// Visible messages are waiting to be received.
	Visible int `json:"visible"`
	// InFlight messages were received and not yet deleted.
	InFlight int `json:"inFlight"`
	// Dead messages are in the dead-letter queue.
	Dead int `json:"dead"`
	// OldestDeadAt is when the oldest dead letter failed. It is zero when
	// there are none, and may be zero on SQS even when Dead is not (every
	// dead letter being read by someone else at that moment); there it is
	// the oldest of the first 1,000 dead letters read.
	OldestDeadAt time.Time `json:"oldestDeadAt,omitzero"`
}

// Queue carries envelopes from publishers to the broker.
//
// Semantics follow an SQS standard queue: a received message is invisible
// for the visibility timeout and comes back if it is not deleted in time
// (at-least-once); its ReceiveCount grows on each receive; once a receive
// would exceed the backend's maximum receives (DefaultMaxReceives unless
// configured), the backend moves the message to the dead letters by itself
// with a reason instead of returning it (the redrive policy).
//
// Each receive gives the message a fresh receipt. A stale receipt (from an
// earlier receive of a message received again since, or of one already
// deleted) must never delete, hide or dead-letter the message as received
// again, so a slow worker cannot touch a message someone else now handles.
// Delete and ChangeVisibility then return nil; DeadLetter returns an error
// wrapping ErrStaleReceipt, so that its caller never believes a message
// moved that did not.
type Queue interface {
	// Send enqueues one message body and returns its queue message ID.
	Send(ctx context.Context, body []byte) (string, error)
	// SendBatch enqueues bodies and returns their IDs in the order of
	// bodies; the backend splits them into calls of at most MaxBatch. No
	// bodies send nothing. An empty body, or one over
	// pubsub.MaxEnvelopeBytes, fails the whole batch before anything is
	// sent. If only part of a batch is sent (SQS), the error says so and
	// the IDs of the unsent bodies are "".
	SendBatch(ctx context.Context, bodies [][]byte) ([]string, error)
	// Receive returns up to max messages (clamped to 1..MaxBatch), waiting
	// up to wait (at most MaxWait) for the first one; it returns no
	// messages and a nil error when nothing came, and ctx's error when ctx
	// ends first. Received messages stay invisible for visibility (SQS
	// rounds it up to whole seconds; 0 makes them visible again at once).
	Receive(ctx context.Context, max int, visibility, wait time.Duration) ([]Message, error)
	// Delete removes a handled message by its receipt. Deleting twice is
	// not an error.
	Delete(ctx context.Context, receipt string) error
	// ChangeVisibility makes a received message visible again after d
	// (0: at once), for backoff, or hides it for longer.
	ChangeVisibility(ctx context.Context, receipt string, d time.Duration) error
	// ChangeVisibilityBatch is ChangeVisibility for each of receipts, in
	// as few requests as the backend allows: MaxBatch receipts a request
	// on SQS, one transaction locally. It returns nil when every receipt
	// was changed (a stale one counts as changed, as in
	// ChangeVisibility); else one error per receipt, in the order of
	// receipts, nil for those changed. A request that failed as a whole
	// fails each of its receipts; the other requests are still made.
	ChangeVisibilityBatch(ctx context.Context, receipts []string, d time.Duration) []error
	// DeadLetter moves a received message (found by m.Receipt, which must
	// be set) to the dead letters with reason, removing it from the queue.
	// With a stale receipt the message stays on the queue and the error
	// wraps ErrStaleReceipt; SQS may have copied it to the dead letters
	// all the same when the receipt went stale during the move (the
	// error says so). The reason is kept as DeadLetterReason gives it.
	DeadLetter(ctx context.Context, m Message, reason string) error
	// ListDeadLetters returns up to limit dead letters (every one when
	// limit <= 0; on SQS at most 10,000), oldest failure first.
	ListDeadLetters(ctx context.Context, limit int) ([]DeadLetter, error)
	// Redrive moves the dead letters with the given IDs back onto the
	// queue, visible at once, with a fresh receive count, and returns how
	// many moved. Nil ids moves all; an empty non-nil slice moves none;
	// unknown IDs are ignored. A redriven message may come back under a
	// new message ID (SQS). Its body goes back as pubsub.Redriven gives
	// it: a follow-up envelope starts its attempts again, so that the
	// broker retries its connections with a whole new budget instead of
	// dead-lettering it again at once; any other body is unchanged.
	Redrive(ctx context.Context, ids []string) (int, error)
	// PurgeDeadLetters deletes the dead letters with the given IDs and
	// returns how many it deleted. Nil ids deletes all; an empty non-nil
	// slice deletes none; unknown IDs are ignored.
	PurgeDeadLetters(ctx context.Context, ids []string) (int, error)
	// Stats reports the queue's depth.
	Stats(ctx context.Context) (QueueStats, error)
}

// EachRedriver is a Queue whose Redrive can tell its caller about each
// dead letter it moved: RedriveEach is Redrive calling moved (if not nil)
// with each dead letter it put back, its ID and body as they were in the
// dead letters, once the move is done. Both socks queues are.
type EachRedriver interface {
	RedriveEach(ctx context.Context, ids []string, moved func(DeadLetter)) (int, error)
}

// EachPurger is a Queue whose PurgeDeadLetters can tell its caller how
// far it got: PurgeEach is PurgeDeadLetters calling purged (if not nil)
// with how many it has deleted so far, after each part it deleted (SQS:
// MaxBatch a call, after a walk of them all). The local queue, which
// deletes them in one transaction, is not one.
type EachPurger interface {
	PurgeEach(ctx context.Context, ids []string, purged func(n int)) (int, error)
}

// HeldDeadLetterLister is a Queue whose listing can tell that dead
// letters were left out because another command held them (SQS, which
// hides a dead letter another command is reading), or because there were
// more than one read takes. ListDeadLettersHeld is ListDeadLetters, but
// when dead letters were held at the time it returns those it listed with
// an error wrapping ErrDeadLettersHeld that says how many, and when there
// were more, one wrapping ErrDeadLettersUnread (both joined, when both).
type HeldDeadLetterLister interface {
	ListDeadLettersHeld(ctx context.Context, limit int) ([]DeadLetter, error)
}

// DeadLetterFinder is a Queue that looks up one dead letter by its ID and
// can tell one that is not there from one it cannot see (SQS, where a dead
// letter another command is reading is hidden). FindDeadLetter returns
// the dead letter with id and true; or false when none it can see has
// that ID, with an error wrapping ErrDeadLettersHeld when dead letters
// were held by another command at the time: id may be one of them.
type DeadLetterFinder interface {
	FindDeadLetter(ctx context.Context, id string) (DeadLetter, bool, error)
}
