// Package store declares the three narrow seams the broker and the route
// handlers talk to — Store (chatter IDs and connections), Queue (envelopes and
// dead letters) and Pusher (the API Gateway Management API) — with the errors
// they share. Each backend implements them: package local (embedded SQL) and
// package awsops (DynamoDB, SQS, Management API). Package storetest holds the
// conformance suite every implementation must pass.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/socks-dev/socks/pubsub"
)

// Errors shared by every backend. Implementations wrap them, so callers test
// with errors.Is.
var (
	// ErrNotFound: the record does not exist. A report that has expired is
	// not found either; an expired connection record is still returned.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized: a chatter ID does not match the geek.
	ErrUnauthorized = errors.New("chatter ID is not valid for this geek")
	// ErrExpired: a chatter ID matched but is past its expiry.
	ErrExpired = errors.New("chatter ID has expired")
	// ErrLimit: the change would exceed a limit, so nothing was written.
	ErrLimit = errors.New("limit reached")
	// ErrConflict: another writer changed the record since it was read,
	// so nothing was written; read it again and redo the change.
	ErrConflict = errors.New("changed by another writer")
	// ErrUnavailable: the store cannot be written now (its disk is full
	// or failed), so nothing was written; the same write may pass later.
	ErrUnavailable = errors.New("the store cannot be written now")
)

// ChatterID is the stored form of an issued chatter ID: only its hash.
type ChatterID struct {
	Geek      string    `json:"geek"`
	Hash      string    `json:"-"`
	IssuedAt  time.Time `json:"issuedAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	// Topics are the topic patterns the ID may connect to and subscribe
	// to (pubsub.TopicAllowed); empty: any topic.
	Topics []string `json:"topics,omitempty"`
	// Refused, set by ListChatterIDs, says in words why VerifyChatterID
	// refuses this ID whatever its expiry: its record, written by a
	// backend in another language (docs/chatter.md), cannot be honoured
	// as written. Topics then holds what could be read, which is not
	// honoured.
	Refused string `json:"refused,omitempty"`
}

// UnusableChatterIDError is VerifyChatterID's error for a chatter ID
// that matched but whose record cannot be honoured as written (Reason
// says why, as ChatterID.Refused): it is ErrUnauthorized to the client,
// which learns nothing more, and the operator's log names the ID and
// the reason.
type UnusableChatterIDError struct {
	Geek        string
	Fingerprint string
	Reason      string
}

func (e *UnusableChatterIDError) Error() string {
	return "geek " + e.Geek + ": chatter ID " + e.Fingerprint + " cannot be honoured: " + e.Reason
}

// Unwrap makes the error ErrUnauthorized.
func (e *UnusableChatterIDError) Unwrap() error { return ErrUnauthorized }

// Fingerprint is the short, non-secret handle of the chatter ID.
func (c ChatterID) Fingerprint() string { return pubsub.Fingerprint(c.Hash) }

// Expired reports whether the chatter ID is past its expiry at now: from the
// instant ExpiresAt on.
func (c ChatterID) Expired(now time.Time) bool { return !now.Before(c.ExpiresAt) }

// ConnectionFilter narrows ListConnections. The zero value lists every live
// connection.
type ConnectionFilter struct {
	// Geek, when set, keeps that geek's connections.
	Geek string
	// Topic, when set, keeps the connections subscribed to exactly that
	// topic: a wildcard subscriber is listed under pubsub.AllTopics only.
	Topic string
	// IncludeExpired also returns records past their expiry (for pruning
	// and troubleshooting); by default they are hidden.
	IncludeExpired bool
}

// Store holds chatter IDs and connection records.
//
// Every method takes the current time where expiry matters, so that tests
// and TTL-lagging backends behave the same: an expired row is never returned
// as live, whether or not it has been physically deleted yet. A record
// expires at the instant of its ExpiresAt; a connection with a zero
// ExpiresAt never expires (pubsub.Connection.Expired).
//
// Times may be kept to the second only; callers must not rely on more. A
// slice result with nothing in it may be nil. Geeks and topics are parts
// of keys: callers pass names that pubsub.ValidateGeek and
// pubsub.ValidateTopic accept, and a backend may refuse others with a
// *pubsub.InvalidError (the AWS backend does).
type Store interface {
	// PutChatterID records an issued chatter ID: its hash only, never the
	// secret. Putting the same geek and hash again replaces the record.
	// The hash must not be empty.
	PutChatterID(ctx context.Context, c ChatterID) error
	// VerifyChatterID hashes secret, looks the hash up under geek and
	// compares it in constant time. It returns nil, an error wrapping
	// ErrUnauthorized (no such ID for this geek, including another geek's
	// ID and the stored hash given as the secret) or one wrapping
	// ErrExpired (it matched, but ChatterID.Expired at now); any other
	// error is a failure to check, not a refusal. On success it returns
	// the record (its Topics included).
	VerifyChatterID(ctx context.Context, geek, secret string, now time.Time) (ChatterID, error)
	// ListChatterIDs lists the chatter IDs of geek ("" for every geek),
	// expired ones included, ordered by geek then issue time.
	ListChatterIDs(ctx context.Context, geek string) ([]ChatterID, error)
	// RevokeChatterIDs deletes geek's chatter IDs whose hash starts with one
	// of prefixes (a full hash or a fingerprint) and returns how many it
	// deleted, each once however many prefixes matched it. Nil prefixes
	// revoke all of geek's IDs; an empty non-nil slice, and empty prefixes,
	// revoke nothing, so that an empty list never widens into "all".
	// Another geek's IDs are never touched, even with the same hash.
	RevokeChatterIDs(ctx context.Context, geek string, prefixes []string) (int, error)
	// DeleteExpiredChatterIDs removes the chatter IDs expired at now and
	// returns how many it removed; runs at once count each removal once.
	DeleteExpiredChatterIDs(ctx context.Context, now time.Time) (int, error)

	// PutConnection records a connection and its topics, replacing the
	// geek, topics and times of a record with the same ID (the old geek's
	// and topics' lookups no longer find it). The ID must not be empty.
	// Topics are kept as a set: their order is not kept, repeats are not.
	// Allowed is kept and returned by GetConnection and AddTopics (other
	// reads may leave it out).
	PutConnection(ctx context.Context, c pubsub.Connection) error
	// GetConnection returns a connection record, expired or not (callers
	// check with Expired); an error wrapping ErrNotFound if there is none.
	GetConnection(ctx context.Context, id string) (pubsub.Connection, error)
	// AddTopics subscribes a connection to more topics (each kept once)
	// and returns the updated record. An unknown connection is ErrNotFound
	// and no record is created. When the connection would then follow
	// more than max topics (max < 1: pubsub.MaxTopicsPerConnection),
	// nothing is added: it returns the record as it is and an error
	// wrapping ErrLimit. The check and the write are one atomic step, so
	// no number of concurrent calls, from any number of clients or
	// processes, leaves more than max.
	AddTopics(ctx context.Context, id string, topics []string, max int) (pubsub.Connection, error)
	// RemoveTopics unsubscribes a connection from topics, ignoring those it
	// does not follow, and returns the updated record; it may be left with
	// no topics, and then no message reaches it. An unknown connection is
	// ErrNotFound.
	RemoveTopics(ctx context.Context, id string, topics []string) (pubsub.Connection, error)
	// DeleteConnection removes a connection and all its subscriptions by
	// connection ID (the only key $disconnect has). Deleting an unknown ID
	// is not an error.
	DeleteConnection(ctx context.Context, id string) error
	// DeleteConnections removes any number of connections at once and
	// returns how many of them existed: unknown IDs are ignored, and runs
	// at once count each deletion once. No IDs delete nothing. On an
	// error it returns how many records it deleted before the failure (0
	// when it deleted none or undid them).
	DeleteConnections(ctx context.Context, ids []string) (int, error)

	// FindTargets returns the connections, live at now, that an envelope
	// addressed to users (empty: every subscriber) and topics reaches, with
	// the semantics of pubsub.Connection.Matches: each once, with its full
	// topic list, in no promised order. No topics reach nobody. It must use
	// key lookups (by topic, by geek), never a walk over every connection,
	// except when topics holds AllTopics and users is empty (a broadcast
	// to all).
	FindTargets(ctx context.Context, users, topics []string, now time.Time) ([]pubsub.Connection, error)

	// ListConnections calls fn with non-empty pages of the connections
	// matching filter, ordered by geek then connection ID across pages,
	// until the records run out or fn returns an error, which it returns
	// as is. When nothing matches, fn is never called.
	ListConnections(ctx context.Context, filter ConnectionFilter, now time.Time, fn func([]pubsub.Connection) error) error
	// ScanConnections walks every connection record, expired ones included,
	// in segments (fewer than 1 means 1) read in parallel pages, for
	// pruning. Each record is passed once; fn may be called concurrently
	// from several goroutines, and never for an empty store. The first
	// error from fn stops the walk and is returned (errors.Is finds it); a
	// cancelled ctx stops it with an error. Records added or changed during
	// the walk may be missed or seen in their new state.
	ScanConnections(ctx context.Context, segments int, fn func([]pubsub.Connection) error) error

	// PutReport records what the broker did with a message, for
	// `publish --wait`, replacing an earlier report of the same message
	// whatever its version (r.Version is ignored; the stored version
	// changes). MessageID must not be empty. A report is kept for a day
	// after its At (after the put when At is zero).
	PutReport(ctx context.Context, r Report) error
	// ReplaceReport records r as PutReport does, but only while the
	// stored report is the one read at r.Version (what GetReport
	// returned; 0: there was none, it had expired, or older code wrote
	// it without a version): when another writer has written the report
	// since, nothing is written and the error wraps ErrConflict. The
	// check and the write are one atomic step, so that of two
	// read-modify-writes from one read, from any clients or processes,
	// exactly one lands.
	ReplaceReport(ctx context.Context, r Report) error
	// GetReport returns the report of a message, with its Version;
	// ErrNotFound until it exists, and once it has expired.
	GetReport(ctx context.Context, messageID string) (Report, error)
}

// TargetIDFinder is a Store that finds the IDs alone of the connections
// FindTargets returns, more cheaply than the whole records: what the broker
// needs to fan out. FindTargetIDs returns the same connections as
// FindTargets, each once, in no promised order (the conformance suite
// checks the two agree). The broker uses it when the Store has it.
type TargetIDFinder interface {
	FindTargetIDs(ctx context.Context, users, topics []string, now time.Time) ([]string, error)
}

// LiveChatterIDCounter is a Store that counts a geek's live chatter IDs
// without reading them: IssueChatterIDWithin uses it when the Store has
// it, and otherwise counts what ListChatterIDs returns. The count is of
// the IDs not ChatterID.Expired at now, as ListChatterIDs would give them.
type LiveChatterIDCounter interface {
	CountLiveChatterIDs(ctx context.Context, geek string, now time.Time) (int, error)
}

// ExpiredChatterIDCounter is a Store that counts the chatter IDs expired
// at now without reading them: prune-stale's dry run uses it when the
// Store has it, and otherwise counts what ListChatterIDs returns. The
// count is of the IDs DeleteExpiredChatterIDs would remove at now.
type ExpiredChatterIDCounter interface {
	CountExpiredChatterIDs(ctx context.Context, now time.Time) (int, error)
}

// ConnectionAdmitter is a Store that admits a $connect in one atomic
// write: the chatter check, the count of the geek's live connections and
// the connection record, so that a connect costs one round trip and
// concurrent connects, from any number of clients or processes, never
// leave more than the cap. The routes use it when the Store has it, and
// otherwise call VerifyChatterID, count with ListConnections and call
// PutConnection, one after the other (then concurrent connects may
// overshoot the cap by at most their number).
type ConnectionAdmitter interface {
	// AdmitConnection verifies geek's secret as VerifyChatterID does (an
	// error wrapping ErrUnauthorized or ErrExpired refuses), passes the
	// verified record to record, which returns the connection to write or
	// an error that refuses (returned as is), and then writes the
	// connection, with the ID id and the geek geek, as PutConnection does,
	// unless the geek already holds limit or more live (at now) connection
	// records other than id: then it returns that count (counted up to
	// limit) and an error wrapping ErrLimit. A refusal writes nothing.
	// limit < 1 is no cap. record may be called more than once, and must
	// only compute.
	AdmitConnection(ctx context.Context, id, geek, secret string, now time.Time, limit int, record func(ChatterID) (pubsub.Connection, error)) (int, error)
}

// GoneConnectionDeleter is a Store whose connections may be answered 410
// Gone before they are open: on API Gateway the $connect handler writes the
// record, and until the handshake ends (up to pubsub.ConnectWindow) a post
// or GetConnection to that connection answers 410. The broker removes a
// gone connection with DeleteGoneConnection when the Store has it, so that
// a connection opening at that moment keeps its record, and otherwise
// with DeleteConnection.
type GoneConnectionDeleter interface {
	// DeleteGoneConnection deletes connection id as DeleteConnection does,
	// unless its record connected less than pubsub.ConnectWindow before
	// now; it reports whether it deleted a record.
	DeleteGoneConnection(ctx context.Context, id string, now time.Time) (bool, error)
}

// Clock is a Store whose records carry the times of another clock than
// this machine's: on AWS, API Gateway's connectedAt and the expiries the
// Lambda wrote, by AWS's clock. What judges records by their age
// (prune-stale) asks the store for the time, not this machine's clock,
// which may be set hours off (a laptop's).
type Clock interface {
	// Now returns the time by the store's clock, to about a second and
	// never later than it.
	Now(ctx context.Context) (time.Time, error)
}

// ExpiredReportDeleter is a Store whose reports older than a day go only
// when asked, or a few at each report written (the local one); DynamoDB's
// TTL deletes them by itself.
type ExpiredReportDeleter interface {
	// DeleteExpiredReports deletes the reports older than a day at now
	// (by their At), which GetReport no longer returns, and returns how
	// many it deleted, also when it fails part way.
	DeleteExpiredReports(ctx context.Context, now time.Time) (int, error)
}

// ExpiredConnectionDeleter is a Store whose expired connection records
// stay until asked to go (the local one), when their $disconnect never
// came; DynamoDB's TTL deletes them by itself.
type ExpiredConnectionDeleter interface {
	// DeleteExpiredConnections deletes the connection records expired
	// at now (never those without an expiry) and their topics, and
	// returns how many it deleted, also when it fails part way.
	DeleteExpiredConnections(ctx context.Context, now time.Time) (int, error)
}

// Report is the outcome of fanning out one envelope: of its first
// handling, with the handlings of its follow-ups added (Add).
type Report struct {
	MessageID string `json:"id"`
	Targets   int    `json:"targets"`
	Delivered int    `json:"delivered"`
	Gone      int    `json:"gone"`
	// Failed counts the connections whose delivery failed, those Pending
	// included.
	Failed int `json:"failed"`
	// Pending counts the failed connections handed on in follow-ups not
	// settled yet: until it is 0 the counts may still change.
	Pending int `json:"pending,omitempty"`
	// DeadLettered: the message, or one of its follow-ups, went to the
	// dead letters (Errors says why).
	DeadLettered bool     `json:"deadLettered,omitempty"`
	Errors       []string `json:"errors,omitempty"`
	// FollowUps holds, by FollowUpKey, what each follow-up handed on by
	// the handlings counted here added to the counts: at first its
	// connections, failed and pending. A follow-up handled a second time
	// (its broker died before deleting it) replaces its own counts rather
	// than adding them again, and one not listed (handed on by an earlier
	// handling of the message, which a later one replaced) adds nothing,
	// so that no connection is counted twice.
	FollowUps map[string]Counts `json:"followUps,omitempty"`
	At        time.Time         `json:"at"`
	// Version is the stored report's version, set by GetReport (0: none,
	// or written by older code) and checked by ReplaceReport; every write
	// changes it. It is not part of the report's JSON.
	Version int64 `json:"-"`
}

// ParseReport reads a stored report's JSON. Its error says in words what
// is wrong ("has \"targets\" as a string; it must be a number"), never
// encoding/json's or the time package's own.
func ParseReport(data []byte) (Report, error) {
	if reason := pubsub.CheckJSON(data); reason != "" {
		return Report{}, errors.New("its JSON " + reason)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		var te *time.ParseError
		if errors.As(err, &te) {
			return Report{}, errors.New(`its JSON has "at" as a string that is not an RFC 3339 time`)
		}
		return Report{}, errors.New("its JSON " + pubsub.DescribeJSONError(err))
	}
	return r, nil
}

// Counts are what one follow-up added to its message's report.
type Counts struct {
	// Connections is how many it was addressed to.
	Connections int `json:"n"`
	Delivered   int `json:"d,omitempty"`
	Gone        int `json:"g,omitempty"`
	Failed      int `json:"f,omitempty"`
	Pending     int `json:"p,omitempty"`
	// Next are the keys of the follow-ups it handed on.
	Next []string `json:"next,omitempty"`
}

// MaxReportErrors is how many errors a report keeps (the latest).
const MaxReportErrors = 5

// FollowUpKey identifies the follow-up addressed to conns within its
// message: a hash of the connection IDs, in any order. (A follow-up hands
// on only part of its connections, so those of one message never share a
// key, unless they are the same handing-on done twice.)
func FollowUpKey(conns []string) string {
	sorted := slices.Sorted(slices.Values(conns))
	h := sha256.New()
	for _, c := range sorted {
		h.Write([]byte(c))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// HandOn returns r, the report of a message's first handling, with the
// follow-ups addressed to each of chunks listed (FollowUps) as not
// handled yet: their connections failed and pending.
func (r Report) HandOn(chunks [][]string) Report {
	if len(chunks) == 0 {
		return r
	}
	r.FollowUps = maps.Clone(r.FollowUps)
	if r.FollowUps == nil {
		r.FollowUps = make(map[string]Counts, len(chunks))
	}
	r.listFollowUps(chunks)
	return r
}

// listFollowUps lists chunks as follow-ups not handled yet and returns
// their keys. r.FollowUps must be r's own.
func (r *Report) listFollowUps(chunks [][]string) []string {
	keys := make([]string, 0, len(chunks))
	for _, c := range chunks {
		k := FollowUpKey(c)
		r.FollowUps[k] = Counts{Connections: len(c), Failed: len(c), Pending: len(c)}
		keys = append(keys, k)
	}
	return keys
}

// unlist takes the follow-up key and those it handed on, at any depth,
// out of r (whose FollowUps must be r's own), with what they added.
func (r *Report) unlist(key string) {
	c, ok := r.FollowUps[key]
	if !ok {
		return
	}
	for _, k := range c.Next {
		r.unlist(k)
	}
	r.Delivered -= c.Delivered
	r.Gone -= c.Gone
	r.Failed += c.Connections - c.Failed
	r.Pending += c.Connections - c.Pending
	delete(r.FollowUps, key)
}

// Add returns r, the report of a message so far, with next added: the
// report of handling its follow-up addressed to conns, which handed chunks
// on. Its counts replace what that follow-up added before (at first:
// conns failed and pending): its deliveries and gone connections are
// added, its failures replace those it retried, and its hand-ons replace
// them as pending (and are listed). Handled a second time, it also takes
// back what the follow-ups its first handling handed on added, and those
// are no longer listed. A follow-up r does not list adds nothing (see
// Report.FollowUps), and r is returned as it was. r's targets and message
// ID stay; the time is next's.
func (r Report) Add(next Report, conns []string, chunks [][]string) Report {
	key := FollowUpKey(conns)
	old, listed := r.FollowUps[key]
	if !listed {
		return r
	}
	r.FollowUps = maps.Clone(r.FollowUps)
	for _, k := range old.Next {
		r.unlist(k)
	}
	c := Counts{Connections: len(conns), Delivered: next.Delivered, Gone: next.Gone, Failed: next.Failed, Pending: next.Pending}
	c.Next = r.listFollowUps(chunks)
	r.Delivered += c.Delivered - old.Delivered
	r.Gone += c.Gone - old.Gone
	r.Failed = max(r.Failed+c.Failed-old.Failed, 0)
	r.Pending = max(r.Pending+c.Pending-old.Pending, 0)
	r.FollowUps[key] = c
	r.DeadLettered = r.DeadLettered || next.DeadLettered
	r = r.Note(next.Errors...)
	r.At = next.At
	return r
}

// DeadLettered returns the report of a message after env, its envelope
// or a follow-up's, was dead-lettered for reason without being decided (a
// queue past its receives), given prev, the report so far (nil: none). A
// follow-up's connections are settled as failed; an original's report is
// marked dead-lettered, or made when there was none (nothing is known of
// its targets then). env.ID must be set.
func DeadLettered(prev *Report, env pubsub.Envelope, reason string, now time.Time) Report {
	next := Report{MessageID: env.ID, DeadLettered: true, Errors: []string{reason}, At: now}
	n := len(env.Connections)
	switch {
	case env.IsFollowUp():
		next.Failed = n
		if prev == nil {
			base := OrphanReport(env.ID, env.Connections)
			prev = &base
		}
		return prev.Add(next, env.Connections, nil)
	case prev != nil:
		r := prev.Note(reason)
		r.DeadLettered, r.At = true, now
		return r
	}
	return next
}

// OrphanReport is the report a follow-up addressed to conns adds to when
// its message has none (it expired, or was never written): as if the
// message, sent to conns, had handed them all on.
func OrphanReport(id string, conns []string) Report {
	n := len(conns)
	return Report{MessageID: id, Targets: n, Failed: n, Pending: n}.HandOn([][]string{conns})
}

// Note returns r with errs added to its errors, keeping the latest
// MaxReportErrors.
func (r Report) Note(errs ...string) Report {
	r.Errors = append(slices.Clip(r.Errors), errs...)
	if len(r.Errors) > MaxReportErrors {
		r.Errors = r.Errors[len(r.Errors)-MaxReportErrors:]
	}
	return r
}
