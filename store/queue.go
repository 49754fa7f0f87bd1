package store

import (
	"context"
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
)

// Message is one received queue message.
type Message struct {
	// ID identifies the queue message (not the envelope ID).
	ID string
	// Receipt is the handle for Delete and ChangeVisibility; it is only
	// valid for this receive.
	Receipt string
	Body    []byte
	// ReceiveCount counts receives including this one.
	ReceiveCount int
	SentAt       time.Time
}

// DeadLetter is a message that could not be handled, with why.
type DeadLetter struct {
	ID           string    `json:"id"`
	Body         []byte    `json:"body"`
	Reason       string    `json:"reason"`
	ReceiveCount int       `json:"receiveCount"`
	SentAt       time.Time `json:"sentAt"`
	FailedAt     time.Time `json:"failedAt"`
	// Receipt is set when the backend needs it to delete this dead letter
	// (SQS); it is only valid for the listing that returned it.
	Receipt string `json:"-"`
}

// QueueStats describes a queue's depth.
type QueueStats struct {
	// Visible messages are waiting to be received.
	Visible int `json:"visible"`
	// InFlight messages were received and not yet deleted.
	InFlight int `json:"inFlight"`
	// Dead messages are in the dead-letter queue.
	Dead int `json:"dead"`
	// OldestDeadAt is when the oldest dead letter failed (zero if none).
	OldestDeadAt time.Time `json:"oldestDeadAt,omitzero"`
}

// Queue carries envelopes from publishers to the broker.
//
// Semantics follow SQS: a received message is invisible for the visibility
// timeout and comes back if it is not deleted in time (at-least-once); its
// ReceiveCount grows on each receive; past MaxReceives the backend moves it
// to the dead letters by itself (the redrive policy).
type Queue interface {
	// Send enqueues one message body and returns its queue message ID.
	Send(ctx context.Context, body []byte) (string, error)
	// SendBatch enqueues up to MaxBatch bodies at once (more are split).
	SendBatch(ctx context.Context, bodies [][]byte) ([]string, error)
	// Receive returns up to max messages (at most MaxBatch), waiting up to
	// wait for the first one; it returns an empty slice, not an error, when
	// nothing came. Received messages stay invisible for visibility.
	Receive(ctx context.Context, max int, visibility, wait time.Duration) ([]Message, error)
	// Delete removes a handled message by its receipt.
	Delete(ctx context.Context, receipt string) error
	// ChangeVisibility makes a received message visible again after d
	// (0: at once), for backoff.
	ChangeVisibility(ctx context.Context, receipt string, d time.Duration) error
	// DeadLetter moves a received message to the dead letters with reason,
	// removing it from the queue.
	DeadLetter(ctx context.Context, m Message, reason string) error
	// ListDeadLetters returns up to limit dead letters, oldest first.
	ListDeadLetters(ctx context.Context, limit int) ([]DeadLetter, error)
	// Redrive moves the dead letters with the given IDs (all when ids is
	// nil) back onto the queue with a fresh receive count.
	Redrive(ctx context.Context, ids []string) (int, error)
	// PurgeDeadLetters deletes the dead letters with the given IDs (all when
	// ids is nil).
	PurgeDeadLetters(ctx context.Context, ids []string) (int, error)
	// Stats reports the queue's depth.
	Stats(ctx context.Context) (QueueStats, error)
}
