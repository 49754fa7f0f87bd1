package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// PushErrorKind classifies a Management API failure.
type PushErrorKind int

const (
	// KindOther is any failure not listed below.
	KindOther PushErrorKind = iota
	// KindGone: the connection no longer exists (410). Delete its record.
	KindGone
	// KindThrottled: too many requests (429 / LimitExceeded). Retry later.
	KindThrottled
	// KindTooLarge: the payload exceeds the message limit (413).
	KindTooLarge
	// KindForbidden: the endpoint or credentials are wrong (403).
	KindForbidden
	// KindInvalidID: the Management API refused the connection ID itself
	// (400 BadRequestException, "Invalid connectionId"): no connection
	// can have it, so, as KindGone, it can never be reached (IsGone);
	// delete its record.
	KindInvalidID
)

func (k PushErrorKind) String() string {
	switch k {
	case KindGone:
		return "gone"
	case KindThrottled:
		return "throttled"
	case KindTooLarge:
		return "too large"
	case KindForbidden:
		return "forbidden"
	case KindInvalidID:
		return "invalid connection ID"
	default:
		return "failed"
	}
}

// PushError is the error every Pusher returns for a failed call.
type PushError struct {
	Kind         PushErrorKind
	Op           string // "PostToConnection", "GetConnection", "DeleteConnection"
	ConnectionID string
	Status       int
	Err          error
}

func (e *PushError) Error() string {
	msg := fmt.Sprintf("%s %s: %s", e.Op, e.ConnectionID, e.Kind)
	if e.Status != 0 {
		msg += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	switch e.Kind {
	case KindForbidden:
		msg += " — check that the endpoint includes the stage and that the role has execute-api:ManageConnections"
	case KindTooLarge:
		msg += " — API Gateway delivers at most 128 KB per message"
	case KindInvalidID:
		msg += " — API Gateway issues no such ID, so the connection can never be reached"
	case KindOther:
		if e.Status == 410 {
			msg += " — a 410 without API Gateway's GoneException, so the connection is not taken for gone: check that the callback URL is the API's Management endpoint (https://API-ID.execute-api.REGION.amazonaws.com/STAGE)"
		}
	}
	return msg
}

func (e *PushError) Unwrap() error { return e.Err }

// PushErrorKindOf returns the kind of a pusher error (KindOther when err is
// not a *PushError).
func PushErrorKindOf(err error) PushErrorKind {
	var pe *PushError
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return KindOther
}

// IsGone reports whether err says the connection no longer exists, or
// never could (KindInvalidID).
func IsGone(err error) bool {
	k := PushErrorKindOf(err)
	return k == KindGone || k == KindInvalidID
}

// ConnectionInfo is what GetConnection describes.
type ConnectionInfo struct {
	ConnectedAt  time.Time `json:"connectedAt"`
	LastActiveAt time.Time `json:"lastActiveAt"`
	SourceIP     string    `json:"sourceIp,omitempty"`
	UserAgent    string    `json:"userAgent,omitempty"`
}

// Pusher talks to connected clients through the API Gateway Management API
// (or the local gateway's copy of it). Every failure is a *PushError naming
// the operation ("PostToConnection", "GetConnection", "DeleteConnection")
// and the connection ID; a connection that does not exist or has closed is
// KindGone for all three, and an ID the API refuses KindInvalidID (IsGone
// is true for both).
type Pusher interface {
	// Post delivers data to the client as one message, byte for byte;
	// more than pubsub.MaxMessageBytes is KindTooLarge.
	Post(ctx context.Context, connectionID string, data []byte) error
	// Get describes a live connection: ConnectedAt and LastActiveAt are
	// set.
	Get(ctx context.Context, connectionID string) (ConnectionInfo, error)
	// Delete closes a connection; it is gone afterwards.
	Delete(ctx context.Context, connectionID string) error
}

// NonBlockingPusher is a Pusher whose Post never waits on the client or
// the network: it hands the message over, or refuses it, at once (the
// local gateway's in-process pusher, which writes without blocking or
// queues). The broker posts to one synchronously, without a goroutine per
// connection; failures take the same retries as with any Pusher. A
// wrapper that may block (package faults' slow posts) must not claim it.
type NonBlockingPusher interface {
	Pusher
	// NonBlocking reports whether Post never blocks.
	NonBlocking() bool
}

// NonBlocking reports whether p's Post never blocks (see
// NonBlockingPusher).
func NonBlocking(p Pusher) bool {
	nb, ok := p.(NonBlockingPusher)
	return ok && nb.NonBlocking()
}
