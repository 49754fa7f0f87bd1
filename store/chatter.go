package store

import (
	"context"
	"fmt"
	"time"

	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/pubsub"
)

// IssueChatterID creates a fresh chatter ID for geek, valid for ttl and
// limited to the topic patterns topics (none: any topic), records its hash
// in s and returns the secret. The secret is never stored or logged: the
// caller hands it to the browser and forgets it.
//
// A geek may hold at most DefaultMaxLiveChatterIDs live (unexpired) IDs;
// IssueChatterIDWithin sets another bound.
func IssueChatterID(ctx context.Context, s Store, geek string, ttl time.Duration, now time.Time, topics ...string) (string, ChatterID, error) {
	return IssueChatterIDWithin(ctx, s, geek, ttl, now, DefaultMaxLiveChatterIDs, topics...)
}

// DefaultMaxLiveChatterIDs bounds the live chatter IDs of one geek unless
// configured.
const DefaultMaxLiveChatterIDs = 100

// LiveChatterIDsError is an issue refused because Geek already holds Live
// live chatter IDs, Max or more. It is ErrLimit (errors.Is); its words
// are a whole sentence, without ErrLimit's.
type LiveChatterIDsError struct {
	Geek      string
	Live, Max int
}

func (e *LiveChatterIDsError) Error() string {
	return fmt.Sprintf("geek %s already holds %s, the most allowed: %s or let them expire",
		e.Geek, text.Pluralize(e.Live, "live chatter ID"), e.RevokeSome())
}

// RevokeSome is the advice to revoke some of the geek's IDs, with
// commands that run as given (`socks chatter revoke --geek NAME` alone is
// a usage error: it needs --id, --id-file or --all).
func (e *LiveChatterIDsError) RevokeSome() string {
	return fmt.Sprintf("revoke some (`socks chatter list --geek %[1]s` shows their fingerprints; `socks chatter revoke --geek %[1]s --id FINGERPRINT`, or `--all`)", e.Geek)
}

// Is makes a *LiveChatterIDsError ErrLimit.
func (e *LiveChatterIDsError) Is(target error) bool { return target == ErrLimit }

// IssueChatterIDWithin is IssueChatterID with maxLive live IDs per geek at
// most: over it, the error is a *LiveChatterIDsError and nothing is written. The
// count is of live records, so expired and revoked IDs free their place;
// concurrent issues may overshoot by at most their number.
func IssueChatterIDWithin(ctx context.Context, s Store, geek string, ttl time.Duration, now time.Time, maxLive int, topics ...string) (string, ChatterID, error) {
	if err := pubsub.ValidateGeek(geek); err != nil {
		return "", ChatterID{}, err
	}
	// Every input is checked before the store is asked anything.
	topics = pubsub.Unique(topics)
	if err := pubsub.ValidateTopicPatterns(topics); err != nil {
		return "", ChatterID{}, err
	}
	if err := pubsub.ValidateChatterTTL(ttl); err != nil {
		return "", ChatterID{}, err
	}
	if maxLive > 0 {
		live, err := countLiveChatterIDs(ctx, s, geek, now)
		if err != nil {
			return "", ChatterID{}, fmt.Errorf("counting the chatter IDs of %s: %w", geek, err)
		}
		if live >= maxLive {
			return "", ChatterID{}, &LiveChatterIDsError{Geek: geek, Live: live, Max: maxLive}
		}
	}
	secret := pubsub.NewChatterID()
	// Both stores keep times to the millisecond: the ID returned is the
	// one stored, and the expiry the caller reckons with is the store's.
	c := ChatterID{
		Geek:      geek,
		Hash:      pubsub.HashChatterID(secret),
		IssuedAt:  now.Truncate(time.Millisecond),
		ExpiresAt: now.Add(ttl).Truncate(time.Millisecond),
		Topics:    topics,
	}
	if err := s.PutChatterID(ctx, c); err != nil {
		return "", ChatterID{}, fmt.Errorf("recording chatter ID: %w", err)
	}
	return secret, c, nil
}

// countLiveChatterIDs counts geek's chatter IDs live at now, in the store
// when it can (LiveChatterIDCounter), otherwise from all of them.
func countLiveChatterIDs(ctx context.Context, s Store, geek string, now time.Time) (int, error) {
	if c, ok := s.(LiveChatterIDCounter); ok {
		return c.CountLiveChatterIDs(ctx, geek, now)
	}
	ids, err := s.ListChatterIDs(ctx, geek)
	if err != nil {
		return 0, err
	}
	live := 0
	for _, c := range ids {
		if !c.Expired(now) {
			live++
		}
	}
	return live, nil
}
