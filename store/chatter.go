package store

import (
	"context"
	"fmt"
	"time"

	"github.com/socks-dev/socks/pubsub"
)

// IssueChatterID creates a fresh chatter ID for geek, valid for ttl and
// limited to the topic patterns topics (none: any topic), records its hash
// in s and returns the secret. The secret is never stored or logged: the
// caller hands it to the browser and forgets it.
func IssueChatterID(ctx context.Context, s Store, geek string, ttl time.Duration, now time.Time, topics ...string) (string, ChatterID, error) {
	if err := pubsub.ValidateGeek(geek); err != nil {
		return "", ChatterID{}, err
	}
	topics = pubsub.Unique(topics)
	if err := pubsub.ValidateTopicPatterns(topics); err != nil {
		return "", ChatterID{}, err
	}
	if ttl <= 0 || ttl > pubsub.MaxChatterTTL {
		return "", ChatterID{}, &pubsub.InvalidError{Field: "ttl", Reason: fmt.Sprintf("%s is out of range: give a duration above 0 and at most %s", ttl, pubsub.MaxChatterTTL)}
	}
	secret := pubsub.NewChatterID()
	c := ChatterID{
		Geek:      geek,
		Hash:      pubsub.HashChatterID(secret),
		IssuedAt:  now,
		ExpiresAt: now.Add(ttl),
		Topics:    topics,
	}
	if err := s.PutChatterID(ctx, c); err != nil {
		return "", ChatterID{}, fmt.Errorf("recording chatter ID: %w", err)
	}
	return secret, c, nil
}
