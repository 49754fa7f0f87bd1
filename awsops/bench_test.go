package awsops

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

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
	n := benchSize(10000, 200)
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = []byte(fmt.Sprintf(`{"topics":["bench"],"body":{"n":%d}}`, i))
	}
	// Untimed: the emulator's JVM warms up on the first requests, which
	// would otherwise count against whichever variant runs first (with
	// -short, whose figures are rough, one round).
	warm := newTestQueue(b, 0)
	for range benchSize(3, 1) {
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
// to 10,000 connections (300 with -short) and reports the Query pages
// per message: whole 1 MB pages, so a handful, not one per few items.
func BenchmarkTopicFanOutPages(b *testing.B) {
	n := benchSize(10000, 300)
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

// countingScans counts the Scan calls (one page each) a store makes and
// sums the read capacity DynamoDB says they consumed.
type countingScans struct {
	DynamoDBAPI
	pages atomic.Int64
	// milliRCU is the consumed read capacity, in thousandths.
	milliRCU atomic.Int64
}

func (c *countingScans) Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	c.pages.Add(1)
	counted := *in
	counted.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := c.DynamoDBAPI.Scan(ctx, &counted, opts...)
	if err == nil && out.ConsumedCapacity != nil && out.ConsumedCapacity.CapacityUnits != nil {
		c.milliRCU.Add(int64(*out.ConsumedCapacity.CapacityUnits * 1000))
	}
	return out, err
}

// BenchmarkBroadcastReads finds the targets of a broadcast (topic ".",
// no users) among 2,000 connections (500 with -short) following 1 or 3
// topics each, and reports what the strongly consistent Scan of the base
// table reads per broadcast: items (every item of the table: the record,
// the geek copy and one subscription copy per topic of each connection),
// pages and read capacity. For comparison, the walk of the by-geek index
// (one item per connection, but only eventually consistent, so not usable
// for a fan-out: a connection made a moment ago could be missed).
func BenchmarkBroadcastReads(b *testing.B) {
	n := benchSize(2000, 500)
	for _, topics := range [][]string{{"news"}, {"news", "sport", "weather"}} {
		api := &countingScans{DynamoDBAPI: testDynamoClient(b)}
		s := NewDynamoStore(api, newTestTables(b, testDynamoClient(b)))
		now := time.Now()
		conns := make([]pubsub.Connection, n)
		for i := range conns {
			conns[i] = pubsub.Connection{ID: fmt.Sprintf("conn-%05d=", i), Geek: fmt.Sprintf("geek-%04d", i%500), Topics: topics, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}
		}
		if err := s.ImportConnections(b.Context(), conns); err != nil {
			b.Fatal(err)
		}
		report := func(b *testing.B, p0, c0, r0 int64) {
			b.ReportMetric(float64(api.pages.Load()-p0)/float64(b.N), "pages/op")
			b.ReportMetric(float64(api.milliRCU.Load()-c0)/1000/float64(b.N), "rcu/op")
			b.ReportMetric(float64(s.ItemsRead()-r0)/float64(b.N), "items-read/op")
			b.ReportMetric(float64(n), "connections")
		}
		b.Run(fmt.Sprintf("topics=%d/consistent-scan", len(topics)), func(b *testing.B) {
			p0, c0, r0 := api.pages.Load(), api.milliRCU.Load(), s.ItemsRead()
			for b.Loop() {
				got, err := s.FindTargets(b.Context(), nil, []string{pubsub.AllTopics}, time.Now())
				if err != nil || len(got) != n {
					b.Fatalf("found %d of %d: %v", len(got), n, err)
				}
			}
			report(b, p0, c0, r0)
		})
		b.Run(fmt.Sprintf("topics=%d/by-geek-index-eventually-consistent", len(topics)), func(b *testing.B) {
			p0, c0, r0 := api.pages.Load(), api.milliRCU.Load(), s.ItemsRead()
			for b.Loop() {
				var found atomic.Int64
				err := s.ScanConnections(b.Context(), broadcastSegments, func(cs []pubsub.Connection) error {
					found.Add(int64(len(cs)))
					return nil
				})
				if err != nil || found.Load() != int64(n) {
					b.Fatalf("walked %d of %d: %v", found.Load(), n, err)
				}
			}
			report(b, p0, c0, r0)
		})
	}
}
