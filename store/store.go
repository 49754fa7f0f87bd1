// Package store declares the three narrow seams the broker and the route
// handlers talk to — Store (chatter IDs and connections), Queue (envelopes and
// dead letters) and Pusher (the API Gateway Management API) — with the errors
// they share. Each backend implements them: package local (embedded SQL) and
// package awsops (DynamoDB, SQS, Management API). Package storetest holds the
// conformance suite every implementation must pass.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/socks-dev/socks/pubsub"
)

// Errors shared by every backend. Implementations wrap them, so callers test
// with errors.Is.
var (
	// ErrNotFound: the record does not exist (or has expired).
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized: a chatter ID does not match the geek.
	ErrUnauthorized = errors.New("chatter ID is not valid for this geek")
	// ErrExpired: a chatter ID matched but is past its expiry.
	ErrExpired = errors.New("chatter ID has expired")
)

// ChatterID is the stored form of an issued chatter ID: only its hash.
type ChatterID struct {
	Geek      string    `json:"geek"`
	Hash      string    `json:"-"`
	IssuedAt  time.Time `json:"issuedAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Fingerprint is the short, non-secret handle of the chatter ID.
func (c ChatterID) Fingerprint() string { return pubsub.Fingerprint(c.Hash) }

// Expired reports whether the chatter ID is past its expiry at now.
func (c ChatterID) Expired(now time.Time) bool { return !now.Before(c.ExpiresAt) }

// ConnectionFilter narrows ListConnections. Zero values match everything.
type ConnectionFilter struct {
	Geek  string
	Topic string
	// IncludeExpired also returns records past their expiry (for pruning
	// and troubleshooting); by default they are hidden.
	IncludeExpired bool
}

// Store holds chatter IDs and connection records.
//
// Every method takes the current time where expiry matters, so that tests
// and TTL-lagging backends behave the same: an expired row is never returned
// as live, whether or not it has been physically deleted yet.
type Store interface {
	// PutChatterID records an issued chatter ID (its hash only).
	PutChatterID(ctx context.Context, c ChatterID) error
	// VerifyChatterID checks secret against geek's chatter IDs in constant
	// time. It returns nil, ErrUnauthorized or ErrExpired.
	VerifyChatterID(ctx context.Context, geek, secret string, now time.Time) error
	// ListChatterIDs lists the chatter IDs of geek ("" for every geek),
	// expired ones included, ordered by geek then issue time.
	ListChatterIDs(ctx context.Context, geek string) ([]ChatterID, error)
	// RevokeChatterIDs deletes geek's chatter IDs whose hash starts with one
	// of prefixes (a full hash or a fingerprint); nil prefixes revoke all of
	// geek's IDs. It returns how many were deleted.
	RevokeChatterIDs(ctx context.Context, geek string, prefixes []string) (int, error)
	// DeleteExpiredChatterIDs removes chatter IDs expired at now.
	DeleteExpiredChatterIDs(ctx context.Context, now time.Time) (int, error)

	// PutConnection records (or replaces) a connection and its topics.
	PutConnection(ctx context.Context, c pubsub.Connection) error
	// GetConnection returns a connection record; ErrNotFound if there is none.
	// Expired records are returned (callers decide); use Expired to check.
	GetConnection(ctx context.Context, id string) (pubsub.Connection, error)
	// AddTopics subscribes a connection to more topics and returns the
	// updated record. ErrNotFound if the connection is unknown.
	AddTopics(ctx context.Context, id string, topics []string) (pubsub.Connection, error)
	// RemoveTopics unsubscribes a connection from topics and returns the
	// updated record. ErrNotFound if the connection is unknown.
	RemoveTopics(ctx context.Context, id string, topics []string) (pubsub.Connection, error)
	// DeleteConnection removes a connection and all its subscriptions by
	// connection ID. Deleting an unknown ID is not an error.
	DeleteConnection(ctx context.Context, id string) error
	// DeleteConnections removes many connections at once and returns how
	// many existed.
	DeleteConnections(ctx context.Context, ids []string) (int, error)

	// FindTargets returns the live connections an envelope addressed to users
	// (empty: every subscriber) and topics reaches, each once. It must use key
	// lookups (by topic, by geek), never a walk over every connection, except
	// when topics holds AllTopics and users is empty (a broadcast to all).
	FindTargets(ctx context.Context, users, topics []string, now time.Time) ([]pubsub.Connection, error)

	// ListConnections calls fn with pages of connections matching filter,
	// ordered by geek then connection ID, until fn returns an error or the
	// records run out.
	ListConnections(ctx context.Context, filter ConnectionFilter, now time.Time, fn func([]pubsub.Connection) error) error
	// ScanConnections walks every connection record, expired ones included,
	// in segments pages read in parallel (for pruning). fn may be called
	// concurrently from several goroutines.
	ScanConnections(ctx context.Context, segments int, fn func([]pubsub.Connection) error) error

	// PutReport records what the broker did with a message, for
	// `publish --wait`. GetReport returns ErrNotFound until it exists.
	PutReport(ctx context.Context, r Report) error
	GetReport(ctx context.Context, messageID string) (Report, error)
}

// Report is the outcome of fanning out one envelope.
type Report struct {
	MessageID string    `json:"id"`
	Targets   int       `json:"targets"`
	Delivered int       `json:"delivered"`
	Gone      int       `json:"gone"`
	Failed    int       `json:"failed"`
	Errors    []string  `json:"errors,omitempty"`
	At        time.Time `json:"at"`
}
