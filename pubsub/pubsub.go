// Package pubsub holds the vocabulary shared by every part of socks: the
// envelope a publisher sends, the connection record the gateway keeps, the
// names and the hard limits they must respect, and their validation.
//
// Nothing here talks to a network, a database or a terminal.
package pubsub

import (
	"fmt"
	"time"
)

// TimeMillis is how a time is written where each of a stream must have
// one width, so that they sort as text: RFC 3339 to the millisecond,
// with its three digits always (Go's RFC3339Nano drops trailing zeros:
// "05Z" sorts after "05.5Z"). Give it a time in UTC: it then ends in Z.
// The pong frame's time and `listen --json`'s times are so written.
const TimeMillis = "2006-01-02T15:04:05.000Z07:00"

// Limits imposed by API Gateway WebSocket APIs. The local gateway enforces the
// same numbers so that what works locally works on AWS.
const (
	// GatewayIDHeader carries, on every answer of the local gateway's
	// Management API (`socks serve`), that gateway's run ID: random, new
	// each time it starts, and recorded in the state dir beside its
	// address. A process that posts to the recorded address (`socks
	// broker`) takes an answer without it, or with another, for no answer
	// of this state dir's gateway: whatever listens at the address now may
	// be another program that took the port. API Gateway sends none, and
	// nothing checks it there.
	GatewayIDHeader = "X-Socks-Gateway-Id"

	// MaxMessageBytes is the largest message API Gateway delivers (128 KB).
	MaxMessageBytes = 128 * 1024
	// MaxFrameBytes is the largest single WebSocket frame (32 KB).
	MaxFrameBytes = 32 * 1024
	// MaxConnectionDuration is the longest a connection may live (2 h).
	MaxConnectionDuration = 2 * time.Hour
	// IdleTimeout closes a connection that sent nothing for this long (10 min).
	IdleTimeout = 10 * time.Minute
	// ConnectWindow is how long after its connectedAt a connection may
	// still be in its $connect: API Gateway waits up to 29 s for the
	// route's integration, and until the handshake ends it answers 410
	// Gone to posts and GetConnection although the record is written.
	ConnectWindow = 30 * time.Second
	// TooManyFrames begins the error of the reply the local gateway sends,
	// in order, in place of routing a frame over its inbound rate
	// ({"type":"error","error":"too many frames: ..."}), whatever the
	// frame's action, a ping's too; and it is the reason of the 1008 close
	// of a client that keeps on.
	TooManyFrames = "too many frames"
	// ChatterIDExpired begins the reason of the 403 that refuses a
	// $connect whose chatter ID is past its expiry by the clock of the
	// gateway's handler ("chatter ID expired: issue a new one").
	ChatterIDExpired = "chatter ID expired"
	// MaxEnvelopeBytes is the largest queue message SQS accepts (1 MiB).
	MaxEnvelopeBytes = 1024 * 1024

	// MaxNameLength bounds geek and topic names.
	MaxNameLength = 128
	// MaxTopicsPerConnection bounds how many topics one connection follows.
	MaxTopicsPerConnection = 50
	// MaxUsersPerEnvelope bounds the users one envelope may address.
	MaxUsersPerEnvelope = 1000
	// MaxLookupsPerEnvelope bounds what finding an envelope's targets
	// costs: users × (topics + 1) key lookups (EnvelopeLookups), so 1,000
	// users with one topic, or 50 topics for 39 users.
	MaxLookupsPerEnvelope = 2000

	// AllTopics is the wildcard topic: as a subscription it matches every
	// topic; as an envelope topic it addresses every subscriber.
	AllTopics = "."

	// DefaultChatterTTL is how long a freshly issued chatter ID is valid.
	DefaultChatterTTL = 24 * time.Hour
	// MaxChatterTTL bounds --ttl for chatter IDs.
	MaxChatterTTL = 90 * 24 * time.Hour
	// MinChatterTTL is the shortest --ttl: expiry is stored to the
	// millisecond, so a shorter one could be over as it is printed.
	MinChatterTTL = time.Second
)

// ValidateChatterTTL checks the life of a chatter ID to issue: from
// MinChatterTTL to MaxChatterTTL.
func ValidateChatterTTL(ttl time.Duration) error {
	if ttl < MinChatterTTL || ttl > MaxChatterTTL {
		return &InvalidError{Field: "ttl", Reason: fmt.Sprintf("%s is out of range: give a duration of at least %s and at most %s", ttl, MinChatterTTL, MaxChatterTTL)}
	}
	return nil
}

// Connection is the record kept for one open WebSocket connection.
type Connection struct {
	ID     string   `json:"connectionId"`
	Geek   string   `json:"geek"`
	Topics []string `json:"topics"`
	// Allowed are the topic patterns the connection's chatter ID may
	// follow (pubsub.TopicAllowed); empty: any topic.
	Allowed     []string  `json:"allowed,omitempty"`
	ConnectedAt time.Time `json:"connectedAt"`
	// ExpiresAt is when the record is dead by definition: the connection
	// cannot outlive API Gateway's maximum duration.
	ExpiresAt time.Time `json:"expiresAt"`
}

// Expired reports whether the record is past its expiry at now.
func (c Connection) Expired(now time.Time) bool {
	return !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt)
}

// Follows reports whether the connection receives messages for topic.
func (c Connection) Follows(topic string) bool {
	for _, t := range c.Topics {
		if t == AllTopics || t == topic || topic == AllTopics {
			return true
		}
	}
	return false
}

// Matches reports whether an envelope addressed to users (empty: everyone)
// and topics reaches this connection.
func (c Connection) Matches(users, topics []string) bool {
	if len(users) > 0 {
		found := false
		for _, u := range users {
			if u == c.Geek {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	for _, t := range topics {
		if c.Follows(t) {
			return true
		}
	}
	return false
}
