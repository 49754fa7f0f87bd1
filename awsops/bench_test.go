package awsops

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/socks-dev/socks/pubsub"
)

// The naive baselines of issue 10, measured on the emulators beside what
// socks does. scripts/bench prints the ratios. They are committed before
// any optimisation and must not be weakened: they are what "≥ N× naive"
// is measured against.

func benchSize(full, short int) int {
	if testing.Short() {
		return short
	}
	return full
}

// BenchmarkSQSPublish sends N envelopes: batched (SendBatch, what `socks
// publish` does with several envelopes) against one request each.
func BenchmarkSQSPublish(b *testing.B) {
	n := benchSize(10000, 500)
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = []byte(fmt.Sprintf(`{"topics":["bench"],"body":{"n":%d}}`, i))
	}
	// Untimed: the emulator's JVM warms up on the first requests, which
	// would otherwise count against whichever variant runs first.
	warm := newTestQueue(b, 0)
	for range 3 {
		if _, err := warm.SendBatch(b.Context(), bodies[:min(n, 500)]); err != nil {
			b.Fatal(err)
		}
		for _, body := range bodies[:min(n, 100)] {
			if _, err := warm.Send(b.Context(), body); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("batched", func(b *testing.B) {
		q := newTestQueue(b, 0)
		for b.Loop() {
			ids, err := q.SendBatch(b.Context(), bodies)
			if err != nil || len(ids) != n {
				b.Fatalf("sent %d of %d: %v", len(ids), n, err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "envelopes/s")
	})
	b.Run("naive-one-each", func(b *testing.B) {
		q := newTestQueue(b, 0)
		for b.Loop() {
			for _, body := range bodies {
				if _, err := q.Send(b.Context(), body); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "envelopes/s")
	})
}

// countingDynamo counts the Query calls a store makes (each call reads one
// page), and the ones that set a Limit.
type countingDynamo struct {
	DynamoDBAPI
	queries atomic.Int64
	limited atomic.Int64
}

func (c *countingDynamo) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.queries.Add(1)
	if in.Limit != nil {
		c.limited.Add(1)
	}
	return c.DynamoDBAPI.Query(ctx, in, opts...)
}

// BenchmarkTopicFanOutPages finds the subscribers of a topic-wide message
// to 10,000 connections (1,000 with -short) and reports the Query pages
// per message: whole 1 MB pages, so a handful, not one per few items.
func BenchmarkTopicFanOutPages(b *testing.B) {
	n := benchSize(10000, 1000)
	api := &countingDynamo{DynamoDBAPI: testDynamoClient(b)}
	s := NewDynamoStore(api, newTestTables(b, testDynamoClient(b)))
	now := time.Now()
	conns := make([]pubsub.Connection, n)
	for i := range conns {
		conns[i] = pubsub.Connection{ID: fmt.Sprintf("conn-%05d=", i), Geek: fmt.Sprintf("geek-%04d", i%2000), Topics: []string{"news"}, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	if err := s.ImportConnections(b.Context(), conns); err != nil {
		b.Fatal(err)
	}
	q0 := api.queries.Load()
	for b.Loop() {
		got, err := s.FindTargets(b.Context(), nil, []string{"news"}, time.Now())
		if err != nil || len(got) != n {
			b.Fatalf("found %d of %d: %v", len(got), n, err)
		}
	}
	// One of the Queries per message is the empty TOPIC#. partition.
	b.ReportMetric(float64(api.queries.Load()-q0)/float64(b.N), "pages/op")
	b.ReportMetric(float64(n), "subscribers")
}

// seedUsersOnTopics records users geeks, each with one connection
// following topics topics, and returns the geeks and topics.
func seedUsersOnTopics(tb testing.TB, s *DynamoStore, users, topics int) (us, ts []string) {
	tb.Helper()
	for i := range topics {
		ts = append(ts, fmt.Sprintf("topic%02d", i))
	}
	now := time.Now()
	for i := range users {
		u := fmt.Sprintf("geek%02d", i)
		us = append(us, u)
		c := pubsub.Connection{ID: fmt.Sprintf("conn%02d=", i), Geek: u, Topics: ts, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := s.PutConnection(tb.Context(), c); err != nil {
			tb.Fatal(err)
		}
	}
	return us, ts
}

// BenchmarkFindTargetsQueries finds the targets of an envelope to 10 users
// on 10 topics, each user connected on every topic, and reports the
// Queries, the items read and the matches per envelope. The first design
// cost users × (topics + 1) Queries (the wildcard counts as a topic): 110.
func BenchmarkFindTargetsQueries(b *testing.B) {
	const users, topics = 10, 10
	api := &countingDynamo{DynamoDBAPI: testDynamoClient(b)}
	s := NewDynamoStore(api, newTestTables(b, testDynamoClient(b)))
	us, ts := seedUsersOnTopics(b, s, users, topics)
	q0, r0 := api.queries.Load(), s.ItemsRead()
	matches := 0
	for b.Loop() {
		got, err := s.FindTargets(b.Context(), us, ts, time.Now())
		if err != nil || len(got) != users {
			b.Fatalf("found %d of %d: %v", len(got), users, err)
		}
		matches += len(got)
	}
	b.ReportMetric(float64(api.queries.Load()-q0)/float64(b.N), "queries/op")
	b.ReportMetric(float64(s.ItemsRead()-r0)/float64(b.N), "items-read/op")
	b.ReportMetric(float64(matches)/float64(b.N), "matches/op")
}
