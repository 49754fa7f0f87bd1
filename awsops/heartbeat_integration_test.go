package awsops

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/internal/lockedbuf"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// visibilityRequests counts the visibility requests sent to SQS: single
// ChangeMessageVisibility calls, and ChangeMessageVisibilityBatch calls
// with their entries (said on batched once each call has returned).
type visibilityRequests struct {
	SQSAPI
	mu               sync.Mutex
	singles, batches int
	batched          chan int
}

func (v *visibilityRequests) ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	v.mu.Lock()
	v.singles++
	v.mu.Unlock()
	out, err := v.SQSAPI.ChangeMessageVisibility(ctx, in, opts...)
	v.batched <- 1
	return out, err
}

func (v *visibilityRequests) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	v.mu.Lock()
	v.batches++
	v.mu.Unlock()
	out, err := v.SQSAPI.ChangeMessageVisibilityBatch(ctx, in, opts...)
	v.batched <- len(in.Entries)
	return out, err
}

func (v *visibilityRequests) counts() (singles, batches int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.singles, v.batches
}

// heldPosts holds every post until release is closed.
type heldPosts struct{ release chan struct{} }

func (p *heldPosts) Post(ctx context.Context, _ string, _ []byte) error {
	select {
	case <-p.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (p *heldPosts) Get(context.Context, string) (store.ConnectionInfo, error) {
	return store.ConnectionInfo{}, nil
}
func (p *heldPosts) Delete(context.Context, string) error { return nil }

// TestTheHeartbeatExtendsTenMessagesPerSQSRequest holds n messages of SQS
// (ElasticMQ) in hand and drives the broker's visibility heartbeat by
// hand: each beat hides them all again in ceil(n/10)
// ChangeMessageVisibilityBatch requests, not n ChangeMessageVisibility
// requests, and none of them fails.
func TestTheHeartbeatExtendsTenMessagesPerSQSRequest(t *testing.T) {
	for _, n := range []int{3, 12} {
		t.Run(fmt.Sprintf("%d messages", n), func(t *testing.T) {
			api := testSQSClient(t)
			queues := newTestQueues(t, api, QueueSettings{})
			reqs := &visibilityRequests{SQSAPI: api, batched: make(chan int, 64)}
			q := NewSQSQueue(reqs, queues, SQSOptions{})
			ctx := t.Context()
			db := localDB(t)
			now := time.Now()
			if err := db.Store().PutConnection(ctx, pubsub.Connection{ID: "c", Geek: "alice", Topics: []string{"updates"}, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			bodies := make([][]byte, n)
			for i := range bodies {
				env := pubsub.Envelope{ID: pubsub.NewMessageID(), Topics: []string{"updates"}, Body: []byte(`1`)}
				var err error
				if bodies[i], err = env.Marshal(); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := q.SendBatch(ctx, bodies); err != nil {
				t.Fatal(err)
			}
			const vis = time.Minute
			var msgs []store.Message
			for deadline := time.Now().Add(30 * time.Second); len(msgs) < n && time.Now().Before(deadline); {
				got, err := q.Receive(ctx, store.MaxBatch, vis, time.Second)
				if err != nil {
					t.Fatal(err)
				}
				msgs = append(msgs, got...)
			}
			if len(msgs) != n {
				t.Fatalf("received %d messages, want %d", len(msgs), n)
			}

			pusher := &heldPosts{release: make(chan struct{})}
			ticks := make(chan time.Time)
			var logs lockedbuf.Buffer
			br := &broker.Broker{
				Store: db.Store(), Queue: q, Pusher: pusher,
				MessageWorkers: n, Visibility: vis,
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
				Sleep:  func(context.Context, time.Duration) error { return nil },
				Tick:   func(time.Duration) (<-chan time.Time, func()) { return ticks, func() {} },
			}
			done := make(chan []broker.Outcome, 1)
			go func() { done <- br.HandleBatch(ctx, msgs) }()
			perBeat := (n + store.MaxBatch - 1) / store.MaxBatch
			for beat := 1; beat <= 2; beat++ {
				select {
				case ticks <- time.Now():
				case <-time.After(30 * time.Second):
					t.Fatal("no visibility heartbeat takes the tick")
				}
				for hidden := 0; hidden < n; {
					hidden += waitFor(t, reqs.batched, "the heartbeat's visibility requests")
				}
				singles, batches := reqs.counts()
				if singles != 0 || batches != beat*perBeat {
					t.Fatalf("after beat %d of %d messages in hand: %d ChangeMessageVisibility and %d ChangeMessageVisibilityBatch requests; want 0 and %d (%d a beat)",
						beat, n, singles, batches, beat*perBeat, perBeat)
				}
			}
			close(pusher.release)
			for i, out := range waitFor(t, done, "the batch") {
				if !out.Done {
					t.Errorf("message %d: outcome %+v; want done", i+1, out)
				}
			}
			if l := logs.String(); bytes.Contains([]byte(l), []byte("extending the visibility")) {
				t.Errorf("the heartbeat failed to extend a message's visibility:\n%s", l)
			}
		})
	}
}

// waitFor waits for ch, bounded by a generous deadline.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
