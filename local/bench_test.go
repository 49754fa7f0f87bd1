package local

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
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

// BenchmarkAdmitConnection is $connect's write in a burst: 2,000 admits
// (chatter check, live count, record with one topic) from 100 goroutines,
// as BenchmarkConnectVsCeiling in bench/ makes them, without the network.
// The records are deleted between rounds (not timed).
func BenchmarkAdmitConnection(b *testing.B) {
	ctx := context.Background()
	now := time.Now()
	const n, workers = 2000, 100
	db := benchDB(b, 0, nil)
	secrets := make([]string, n)
	for i := range n {
		s, _, err := store.IssueChatterID(ctx, db.Store(), fmt.Sprintf("geek%05d", i), time.Hour, now)
		if err != nil {
			b.Fatal(err)
		}
		secrets[i] = s
	}
	// Connection IDs ordered as the gateway makes them (gateway
	// newConnID): a sequence number, then random bits. Random IDs cost
	// about half as much again (each record on index pages of its own).
	ids, geeks := make([]string, n), make([]string, n)
	for i := range n {
		ids[i], geeks[i] = fmt.Sprintf("%06x", i)+randomID("")[:16], fmt.Sprintf("geek%05d", i)
	}
	b.ReportAllocs()
	for b.Loop() {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= n {
						return
					}
					_, err := db.Store().AdmitConnection(ctx, ids[i], geeks[i], secrets[i], now, 100, func(store.ChatterID) (pubsub.Connection, error) {
						return pubsub.Connection{Topics: []string{"bench"}, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}, nil
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		if _, err := db.Store().DeleteConnections(ctx, ids); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/admit")
}

// BenchmarkRedriveTenThousandDeadLetters measures `dlq redrive --all` of
// a pile of 10,000 dead letters on the local queue, moved in one write
// transaction, and how long a publish (a Send from another connection, as
// another process) started meanwhile waits for it: the time the file is
// held from the broker and publishers. The bodies are checked against
// today's rules (the callback) after the transaction, not in it. It
// reports ms/redrive and the longest wait of a Send, ms-send-wait.
func BenchmarkRedriveTenThousandDeadLetters(b *testing.B) {
	ctx := context.Background()
	const n = 10_000
	path := filepath.Join(b.TempDir(), "state", "socks.db")
	db, err := Open(ctx, path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	other, err := Open(ctx, path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer other.Close()
	body := []byte(`{"geek":"alice","topic":"updates","payload":{"n":1}}`)
	var wait time.Duration
	for b.Loop() {
		b.StopTimer()
		if err := db.write(ctx, func(tx *sql.Tx) error {
			for i := range n {
				if _, err := tx.ExecContext(ctx, `INSERT INTO dead_letters (id, body, reason, receive_count, sent_at, failed_at) VALUES (?, ?, 'test', 5, 0, ?)`,
					fmt.Sprintf("m-%d", i), body, i); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, `DELETE FROM queue`)
			return err
		}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		var wg sync.WaitGroup
		started := make(chan struct{})
		wg.Go(func() {
			<-started
			t0 := time.Now()
			if _, err := other.Queue().Send(ctx, []byte(`{"geek":"bob","topic":"t","payload":1}`)); err != nil {
				b.Error(err)
			}
			wait = max(wait, time.Since(t0))
		})
		close(started)
		checked := 0
		moved, err := db.Queue().RedriveEach(ctx, nil, func(d store.DeadLetter) {
			_, _ = pubsub.ParseMessage(pubsub.Redriven(d.Body), nil)
			checked++
		})
		wg.Wait()
		if err != nil || moved != n || checked != n {
			b.Fatalf("RedriveEach moved %d, checked %d, %v; want %d", moved, checked, err, n)
		}
	}
	b.ReportMetric(float64(wait.Milliseconds()), "ms-send-wait")
}
