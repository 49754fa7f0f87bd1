package broker_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/internal/lockedbuf"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// holdingPusher holds every post to the connection held until release is
// closed, and says on started when the first such post began.
type holdingPusher struct {
	store.Pusher
	held    string
	once    sync.Once
	started chan struct{}
	release chan struct{}
}

func (p *holdingPusher) Post(ctx context.Context, id string, data []byte) error {
	if id == p.held {
		p.once.Do(func() { close(p.started) })
		select {
		case <-p.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return p.Pusher.Post(ctx, id, data)
}

// testClock is a clock the test moves by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// visibilityCounter says on calls the visibility of each message whose
// visibility was changed, by ChangeVisibility or ChangeVisibilityBatch, and
// counts the ChangeVisibility and the ChangeVisibilityBatch calls.
type visibilityCounter struct {
	store.Queue
	calls   chan time.Duration
	singles atomic.Int64
	batches atomic.Int64
}

func (q *visibilityCounter) ChangeVisibility(ctx context.Context, receipt string, d time.Duration) error {
	q.singles.Add(1)
	err := q.Queue.ChangeVisibility(ctx, receipt, d)
	if err == nil {
		q.calls <- d
	}
	return err
}

func (q *visibilityCounter) ChangeVisibilityBatch(ctx context.Context, receipts []string, d time.Duration) []error {
	q.batches.Add(1)
	errs := q.Queue.ChangeVisibilityBatch(ctx, receipts, d)
	for i := range receipts {
		if errs == nil || errs[i] == nil {
			q.calls <- d
		}
	}
	return errs
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

// TestMessagesOfABatchStayInvisibleWhileItIsHandled receives two messages
// in one batch, handled one after the other, and holds the first one's
// delivery past the visibility timeout (on the queue's clock, which the
// test moves). The broker's heartbeat keeps both invisible: no other
// receiver gets them while they are in hand, and each is delivered once.
func TestMessagesOfABatchStayInvisibleWhileItIsHandled(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{now: time.Now()}
	f := newFixtureOn(t, clock.Now)
	db := f.db
	f.connect(t, "slow", "alice", "slow")
	f.connect(t, "quick", "bob", "quick")
	f.enqueue(t, envelope(nil, []string{"slow"}, `1`))
	f.enqueue(t, envelope(nil, []string{"quick"}, `2`))

	const vis = time.Minute
	pusher := &holdingPusher{Pusher: f.pusher, held: "slow", started: make(chan struct{}), release: make(chan struct{})}
	queue := &visibilityCounter{Queue: db.Queue(), calls: make(chan time.Duration, 16)}
	ticks := make(chan time.Time)
	br := &broker.Broker{
		Store: db.Store(), Queue: queue, Pusher: pusher,
		MessageWorkers: 1, MaxReceives: 3, Visibility: vis,
		Sleep: func(context.Context, time.Duration) error { return nil },
		Tick:  func(time.Duration) (<-chan time.Time, func()) { return ticks, func() {} },
	}
	msgs, err := db.Queue().Receive(ctx, 10, vis, 0)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("Receive = %d messages, %v; want 2", len(msgs), err)
	}
	done := make(chan []broker.Outcome)
	go func() { done <- br.HandleBatch(ctx, msgs) }()
	waitFor(t, pusher.started, "the first message's post")

	// Two thirds of the timeout on, the heartbeat hides both again for
	// the whole timeout.
	clock.advance(vis * 2 / 3)
	select {
	case ticks <- clock.Now():
	case <-time.After(30 * time.Second):
		t.Fatal("no visibility heartbeat takes the tick")
	}
	for range 2 {
		if d := waitFor(t, queue.calls, "the heartbeat's ChangeVisibilityBatch"); d != vis {
			t.Fatalf("the heartbeat hid a message for %s; want the visibility timeout %s", d, vis)
		}
	}
	if n := queue.batches.Load(); n != 1 {
		t.Fatalf("the heartbeat hid the two messages in %d ChangeVisibilityBatch calls; want one", n)
	}
	// Past the first timeout, neither comes back to another receiver.
	clock.advance(vis * 2 / 3)
	again, err := db.Queue().Receive(ctx, 10, vis, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Fatalf("another receiver got %d messages of the batch still in hand; want none", len(again))
	}
	close(pusher.release)
	outs := waitFor(t, done, "the batch")
	for i, out := range outs {
		if !out.Done {
			t.Errorf("message %d: outcome %+v; want done", i+1, out)
		}
	}
	for _, id := range []string{"slow", "quick"} {
		if got := f.pusher.got(id); len(got) != 1 {
			t.Errorf("%s got %q; want the message once", id, got)
		}
	}
	st, err := db.Queue().Stats(ctx)
	if err != nil || st.Visible+st.InFlight != 0 {
		t.Fatalf("queue after the batch: %+v, %v; want empty", st, err)
	}
}

// TestEachMessageOfABatchHasItsOwnTimeBudget handles a batch one message
// at a time, the first of which never finishes its post: it is cut short
// when its budget ends (here by hand, through Broker.Budget, not by a
// clock), and the second, handled after it, still gets a whole budget of
// its own and is delivered. With one budget for the batch, the second
// would start with the first's, already ended.
func TestEachMessageOfABatchHasItsOwnTimeBudget(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.connect(t, "stuck", "alice", "stuck")
	f.connect(t, "quick", "bob", "quick")
	f.pusher.stuck = "stuck"
	f.enqueue(t, envelope(nil, []string{"stuck"}, `1`))
	f.enqueue(t, envelope(nil, []string{"quick"}, `2`))
	f.broker.MessageWorkers = 1
	budgets := 0
	f.broker.Budget = func(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
		if d != f.broker.Visibility {
			t.Errorf("a budget of %s; want the visibility timeout, %s", d, f.broker.Visibility)
		}
		budgets++ // one worker: the calls come one after the other
		bctx, cancel := context.WithCancel(ctx)
		if budgets == 1 {
			cancel() // the first message's budget runs out
		}
		return bctx, cancel
	}
	f.broker.Visibility = time.Hour
	msgs, err := f.db.Queue().Receive(ctx, 10, time.Hour, 0)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("Receive = %d messages, %v; want 2", len(msgs), err)
	}
	outs := f.broker.HandleBatch(ctx, msgs)
	if budgets != 2 {
		t.Errorf("%d budgets for 2 messages; want one each", budgets)
	}
	if outs[0].Done || outs[0].Err == nil {
		t.Errorf("the stuck message: outcome %+v; want a retry", outs[0])
	}
	if !outs[1].Done || outs[1].Report.Delivered != 1 {
		t.Errorf("the message after it: outcome %+v; want delivered (its own budget)", outs[1])
	}
	if got := f.pusher.got("quick"); len(got) != 1 {
		t.Errorf("quick got %q; want the message once", got)
	}
}

// TestABatchReceivedAsTheBrokerStopsIsGivenBack hands HandleBatch a batch
// after its context ended (Ctrl-C between the receive and the handling):
// nothing is posted, and the messages are visible again at once for
// another broker rather than after their visibility timeout, in one
// Queue.ChangeVisibilityBatch (one request on SQS for ten messages).
func TestABatchReceivedAsTheBrokerStopsIsGivenBack(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "c", "alice", "updates")
	f.enqueue(t, envelope(nil, []string{"updates"}, `1`))
	f.enqueue(t, envelope(nil, []string{"updates"}, `2`))
	msgs, err := f.db.Queue().Receive(context.Background(), 10, time.Hour, 0)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("Receive = %d messages, %v; want 2", len(msgs), err)
	}
	queue := &visibilityCounter{Queue: f.db.Queue(), calls: make(chan time.Duration, 16)}
	f.broker.Queue = queue
	f.broker.Visibility = time.Hour // no heartbeat beats meanwhile
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i, out := range f.broker.HandleBatch(ctx, msgs) {
		if out.Done || out.DeadLettered || out.Err == nil {
			t.Errorf("message %d: outcome %+v; want given back", i+1, out)
		}
	}
	if got := f.pusher.got("c"); len(got) != 0 {
		t.Errorf("c got %q; want nothing posted after the stop", got)
	}
	if b, s := queue.batches.Load(), queue.singles.Load(); b != 1 || s != 0 {
		t.Errorf("given back in %d ChangeVisibilityBatch and %d ChangeVisibility calls; want one batch call", b, s)
	}
	again, err := f.db.Queue().Receive(context.Background(), 10, time.Minute, 0)
	if err != nil || len(again) != 2 {
		t.Fatalf("another receiver got %d messages, %v; want both at once", len(again), err)
	}
}

// TestADeadLetterWithAStaleReceiptIsNotTakenForDone has a broker that
// took too long: the message it wants to dead-letter was received again
// by another. The move fails with store.ErrStaleReceipt; the broker does
// not count the message dead-lettered, records no dead-letter reason in
// its report, and leaves its visibility to the receiver of now.
func TestADeadLetterWithAStaleReceiptIsNotTakenForDone(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.connect(t, "c", "alice", "updates")
	f.broker.MaxAttempts = 2
	env := envelope(nil, []string{"updates"}, `1`)
	env.FollowUp = pubsub.FollowUp{Connections: []string{"c"}, Attempt: 3, LastError: "HTTP 500"}
	f.enqueue(t, env)
	slow := receiveOne(t, f.db.Queue(), 0)
	current := receiveOne(t, f.db.Queue(), time.Hour)
	queue := &visibilityCounter{Queue: f.db.Queue(), calls: make(chan time.Duration, 16)}
	f.broker.Queue = queue

	out := f.broker.Handle(ctx, slow)
	if out.DeadLettered || out.Done || !errors.Is(out.Err, store.ErrStaleReceipt) {
		t.Fatalf("outcome %+v; want not dead-lettered, with an error wrapping store.ErrStaleReceipt", out)
	}
	if dead, err := f.db.Queue().ListDeadLetters(ctx, 0); err != nil || len(dead) != 0 {
		t.Fatalf("dead letters = %+v, %v; want none", dead, err)
	}
	if rep, err := f.db.Store().GetReport(ctx, env.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("report = %+v, %v; want none recorded for a move that did not happen", rep, err)
	}
	if len(queue.calls) != 0 {
		t.Fatalf("the broker changed the visibility of a message it no longer holds")
	}
	// The receiver of now still holds it and can dead-letter it.
	if out := f.broker.Handle(ctx, current); !out.DeadLettered {
		t.Fatalf("the current receiver's outcome %+v; want dead-lettered", out)
	}
}

// refuseOneVisibility is a queue whose ChangeVisibilityBatch refuses the
// receipt refused, and says on beats when a call has returned.
type refuseOneVisibility struct {
	store.Queue
	refused string
	beats   chan struct{}
}

func (q *refuseOneVisibility) ChangeVisibilityBatch(ctx context.Context, receipts []string, d time.Duration) []error {
	errs := q.Queue.ChangeVisibilityBatch(ctx, receipts, d)
	for i, r := range receipts {
		if r == q.refused {
			if errs == nil {
				errs = make([]error, len(receipts))
			}
			errs[i] = errors.New("refused by the queue")
		}
	}
	q.beats <- struct{}{}
	return errs
}

// TestAHeartbeatRefusedForOneMessageLogsThatMessage has the queue refuse
// one message of the heartbeat's batch: the warning names that message
// alone, and the batch is still handled (a duplicate at worst).
func TestAHeartbeatRefusedForOneMessageLogsThatMessage(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.connect(t, "slow", "alice", "slow")
	f.connect(t, "quick", "bob", "quick")
	f.enqueue(t, envelope(nil, []string{"slow"}, `1`))
	f.enqueue(t, envelope(nil, []string{"quick"}, `2`))
	msgs, err := f.db.Queue().Receive(ctx, 10, time.Minute, 0)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("Receive = %d messages, %v; want 2", len(msgs), err)
	}
	pusher := &holdingPusher{Pusher: f.pusher, held: "slow", started: make(chan struct{}), release: make(chan struct{})}
	queue := &refuseOneVisibility{Queue: f.db.Queue(), refused: msgs[1].Receipt, beats: make(chan struct{}, 4)}
	ticks := make(chan time.Time)
	var logs lockedbuf.Buffer
	f.broker.Queue, f.broker.Pusher = queue, pusher
	f.broker.MessageWorkers, f.broker.Visibility = 1, time.Minute
	f.broker.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	f.broker.Tick = func(time.Duration) (<-chan time.Time, func()) { return ticks, func() {} }
	done := make(chan []broker.Outcome)
	go func() { done <- f.broker.HandleBatch(ctx, msgs) }()
	waitFor(t, pusher.started, "the first message's post")
	select {
	case ticks <- time.Now():
	case <-time.After(30 * time.Second):
		t.Fatal("no visibility heartbeat takes the tick")
	}
	waitFor(t, queue.beats, "the heartbeat's ChangeVisibilityBatch")
	close(pusher.release)
	for i, out := range waitFor(t, done, "the batch") {
		if !out.Done {
			t.Errorf("message %d: outcome %+v; want done", i+1, out)
		}
	}
	var warned []string
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "extending the visibility") {
			warned = append(warned, line)
		}
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "message="+msgs[1].ID) || !strings.Contains(warned[0], "refused by the queue") {
		t.Fatalf("heartbeat warnings %q; want one, naming message %s and the queue's error", warned, msgs[1].ID)
	}
}

// TestAGiveBackRefusedForOneMessageLogsThatMessage: the queue refuses one
// message of the stopping broker's give-back (one batch call): the warning
// names that message alone.
func TestAGiveBackRefusedForOneMessageLogsThatMessage(t *testing.T) {
	f := newFixture(t)
	f.enqueue(t, envelope(nil, []string{"updates"}, `1`))
	f.enqueue(t, envelope(nil, []string{"updates"}, `2`))
	msgs, err := f.db.Queue().Receive(context.Background(), 10, time.Hour, 0)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("Receive = %d messages, %v; want 2", len(msgs), err)
	}
	var logs lockedbuf.Buffer
	f.broker.Queue = &refuseOneVisibility{Queue: f.db.Queue(), refused: msgs[0].Receipt, beats: make(chan struct{}, 4)}
	f.broker.Visibility = time.Hour
	f.broker.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.broker.HandleBatch(ctx, msgs)
	var warned []string
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "giving back an unstarted message") {
			warned = append(warned, line)
		}
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "message="+msgs[0].ID) || !strings.Contains(warned[0], "refused by the queue") {
		t.Fatalf("give-back warnings %q; want one, naming message %s and the queue's error", warned, msgs[0].ID)
	}
}
