package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/store"
)

// TestAMessageNothingReachedComesBackAfterASecondPerReceive: a message
// none of whose deliveries succeeded is retried whole, visible again 1 s ×
// its receive count after it was handled (docs/reliability.md, item 4),
// not after the rest of its visibility timeout, on the queue's clock,
// which the test moves.
func TestAMessageNothingReachedComesBackAfterASecondPerReceive(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{now: time.Now()}
	f := newFixtureOn(t, clock.Now)
	db := f.db
	f.broker = &broker.Broker{Store: db.Store(), Queue: db.Queue(), Pusher: f.pusher, MaxReceives: 3, Sleep: func(context.Context, time.Duration) error { return nil }}
	f.connect(t, "c", "alice", "updates")
	f.pusher.fail["c"] = store.KindForbidden
	f.enqueue(t, envelope(nil, []string{"updates"}, `1`))
	q := db.Queue()
	receive := func() []store.Message {
		msgs, err := q.Receive(ctx, 1, time.Hour, 0)
		if err != nil {
			t.Fatal(err)
		}
		return msgs
	}
	m := receiveOne(t, q, time.Hour)
	for count := 1; count < 3; count++ {
		if m.ReceiveCount != count {
			t.Fatalf("receive %d has count %d", count, m.ReceiveCount)
		}
		if out := f.broker.Handle(ctx, m); out.Done || out.DeadLettered {
			t.Fatalf("receive %d: outcome %+v, want a retry", count, out)
		}
		backoff := time.Duration(count) * time.Second
		clock.advance(backoff - time.Millisecond)
		if got := receive(); len(got) != 0 {
			t.Fatalf("after receive %d the message came back before %s (its visibility timeout is an hour)", count, backoff)
		}
		clock.advance(time.Millisecond)
		got := receive()
		if len(got) != 1 {
			t.Fatalf("after receive %d the message did not come back %s later", count, backoff)
		}
		m = got[0]
	}
}
