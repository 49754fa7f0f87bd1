package local

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// BenchmarkFindTargets compares the broker's key lookup (one geek's
// connections on one topic, among 10,000) with what the system socks grew
// from did: walk every connection and filter. scripts/bench prints the ratio.
func BenchmarkFindTargets(b *testing.B) {
	ctx := context.Background()
	now := time.Now()
	const n = 10000
	db := benchDB(b, n, func(i int) pubsub.Connection {
		return pubsub.Connection{
			ID: fmt.Sprintf("conn%05d", i), Geek: fmt.Sprintf("geek%04d", i%2000),
			Topics:      []string{fmt.Sprintf("topic%d", i%7), "updates"},
			ConnectedAt: now, ExpiresAt: now.Add(time.Hour),
		}
	})
	users, topics := []string{"geek0042"}, []string{"updates"}

	b.Run("key-lookup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			got, err := db.Store().FindTargets(ctx, users, topics, now)
			if err != nil || len(got) != n/2000 {
				b.Fatalf("got %d targets, %v", len(got), err)
			}
		}
	})
	b.Run("full-scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var got []pubsub.Connection
			err := db.Store().ListConnections(ctx, store.ConnectionFilter{}, now, func(page []pubsub.Connection) error {
				for _, c := range page {
					if c.Matches(users, topics) {
						got = append(got, c)
					}
				}
				return nil
			})
			if err != nil || len(got) != n/2000 {
				b.Fatalf("got %d targets, %v", len(got), err)
			}
		}
	})
}

// BenchmarkTopicTargets is the broker's lookup for a topic-wide message to
// 2,000 subscribers: the whole records (FindTargets) against the IDs alone
// (FindTargetIDs, what the broker uses), from the cache of an unchanged
// file and read again after each change.
func BenchmarkTopicTargets(b *testing.B) {
	ctx := context.Background()
	now := time.Now()
	const n = 2000
	db := benchDB(b, n, func(i int) pubsub.Connection {
		return pubsub.Connection{
			ID: fmt.Sprintf("conn%05d", i), Geek: fmt.Sprintf("geek%04d", i%500),
			Topics: []string{"bench"}, ConnectedAt: now, ExpiresAt: now.Add(time.Hour),
		}
	})
	topics := []string{"bench"}
	b.Run("records", func(b *testing.B) {
		for b.Loop() {
			got, err := db.Store().FindTargets(ctx, nil, topics, now)
			if err != nil || len(got) != n {
				b.Fatalf("got %d targets, %v", len(got), err)
			}
		}
	})
	b.Run("ids", func(b *testing.B) {
		for b.Loop() {
			got, err := db.Store().FindTargetIDs(ctx, nil, topics, now)
			if err != nil || len(got) != n {
				b.Fatalf("got %d targets, %v", len(got), err)
			}
		}
	})
	b.Run("ids-after-a-change", func(b *testing.B) {
		other := pubsub.Connection{ID: "other", Geek: "other", Topics: []string{"other"}, ConnectedAt: now}
		for b.Loop() {
			b.StopTimer()
			if err := db.Store().PutConnection(ctx, other); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			got, err := db.Store().FindTargetIDs(ctx, nil, topics, now)
			if err != nil || len(got) != n {
				b.Fatalf("got %d targets, %v", len(got), err)
			}
		}
	})
}

// benchDB opens a state file in a temporary directory, closed when b ends,
// with the n connections conn(0) … conn(n-1) recorded.
func benchDB(b *testing.B, n int, conn func(i int) pubsub.Connection) *DB {
	b.Helper()
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "socks.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	for i := range n {
		if err := db.Store().PutConnection(ctx, conn(i)); err != nil {
			b.Fatal(err)
		}
	}
	return db
}
