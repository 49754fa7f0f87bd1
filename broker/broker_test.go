package broker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/internal/lockedbuf"
	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// fakePusher records posts; behaviour per connection ID is scripted.
type fakePusher struct {
	mu       sync.Mutex
	posts    map[string][][]byte
	fail     map[string]store.PushErrorKind // permanent failure kind
	throttle map[string]int                 // throttle this many times, then deliver
	errs     map[string]int                 // fail with a 500 this many times, then deliver
	inFlight atomic.Int64
	maxSeen  atomic.Int64
	stuck    string // a post to this connection hangs until its context ends
	// gate, when set, holds every post until gate posts are in flight at
	// once (or for a generous deadline), then lets them all through.
	gate     int64
	gateOnce sync.Once
	open     chan struct{}
	// nonBlocking is what NonBlocking reports.
	nonBlocking bool
}

// NonBlocking makes fakePusher a store.NonBlockingPusher when nonBlocking
// is set.
func (p *fakePusher) NonBlocking() bool { return p.nonBlocking }

func newFakePusher() *fakePusher {
	return &fakePusher{posts: map[string][][]byte{}, fail: map[string]store.PushErrorKind{}, throttle: map[string]int{}, errs: map[string]int{}}
}

func (p *fakePusher) Post(ctx context.Context, id string, data []byte) error {
	if id == p.stuck {
		<-ctx.Done()
		return &store.PushError{Kind: store.KindOther, Op: "PostToConnection", ConnectionID: id, Err: ctx.Err()}
	}
	n := p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	for {
		m := p.maxSeen.Load()
		if n <= m || p.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	if p.gate > 0 {
		if n >= p.gate {
			p.gateOnce.Do(func() { close(p.open) })
		}
		select {
		case <-p.open:
		case <-time.After(10 * time.Second):
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if k, ok := p.fail[id]; ok {
		return &store.PushError{Kind: k, Op: "PostToConnection", ConnectionID: id}
	}
	if p.throttle[id] > 0 {
		p.throttle[id]--
		return &store.PushError{Kind: store.KindThrottled, Op: "PostToConnection", ConnectionID: id, Status: 429}
	}
	if p.errs[id] > 0 {
		p.errs[id]--
		return &store.PushError{Kind: store.KindOther, Op: "PostToConnection", ConnectionID: id, Status: 500}
	}
	p.posts[id] = append(p.posts[id], append([]byte(nil), data...))
	return nil
}

func (p *fakePusher) Get(context.Context, string) (store.ConnectionInfo, error) {
	return store.ConnectionInfo{}, nil
}
func (p *fakePusher) Delete(context.Context, string) error { return nil }

func (p *fakePusher) got(id string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, b := range p.posts[id] {
		out = append(out, string(b))
	}
	return out
}

type fixture struct {
	db     *local.DB
	pusher *fakePusher
	broker *broker.Broker
	now    time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureOn(t, nil)
}

// newFixtureOn is newFixture with the local queue on the clock now (nil:
// the time of day), which a test may move.
func newFixtureOn(t *testing.T, now func() time.Time) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := local.Open(ctx, filepath.Join(t.TempDir(), "socks.db"), local.Options{MaxReceives: 3, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p := newFakePusher()
	f := &fixture{db: db, pusher: p, now: time.Now()}
	f.broker = &broker.Broker{
		Store: db.Store(), Queue: db.Queue(), Pusher: p,
		Concurrency: 4, MaxReceives: 3, Visibility: time.Second, Wait: 100 * time.Millisecond,
		Sleep: func(context.Context, time.Duration) error { return nil },
	}
	return f
}

func (f *fixture) connect(t *testing.T, id, geek string, topics ...string) {
	t.Helper()
	err := f.db.Store().PutConnection(context.Background(), pubsub.Connection{
		ID: id, Geek: geek, Topics: topics, ConnectedAt: f.now, ExpiresAt: f.now.Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
}

// enqueue sends env to the fixture's queue.
func (f *fixture) enqueue(t *testing.T, env pubsub.Envelope) {
	t.Helper()
	data, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Queue().Send(context.Background(), data); err != nil {
		t.Fatal(err)
	}
}

// enqueueToOkAndBad connects "ok" and "bad" (alice's, on "updates"),
// makes every post to "bad" fail (store.KindOther, to be retried), and
// enqueues a message to "updates", which it returns.
func (f *fixture) enqueueToOkAndBad(t *testing.T) pubsub.Envelope {
	t.Helper()
	f.connect(t, "ok", "alice", "updates")
	f.connect(t, "bad", "alice", "updates")
	f.pusher.fail["bad"] = store.KindOther
	env := envelope(nil, []string{"updates"}, `1`)
	f.enqueue(t, env)
	return env
}

func envelope(users []string, topics []string, body string) pubsub.Envelope {
	return pubsub.Envelope{ID: pubsub.NewMessageID(), Users: users, Topics: topics, Body: json.RawMessage(body)}
}

func TestDeliverReachesExactlyTheMatchingConnections(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "a1", "alice", "updates")
	f.connect(t, "a2", "alice", "news")
	f.connect(t, "b1", "bob", "updates")
	f.connect(t, "c1", "carol", ".")

	rep, err := f.broker.Deliver(context.Background(), envelope([]string{"alice"}, []string{"updates"}, `{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Targets != 1 || rep.Delivered != 1 {
		t.Fatalf("report = %+v, want one target delivered", rep)
	}
	if got := f.pusher.got("a1"); len(got) != 1 || got[0] != `{"n":1}` {
		t.Fatalf("a1 got %q", got)
	}
	for _, id := range []string{"a2", "b1", "c1"} {
		if got := f.pusher.got(id); len(got) != 0 {
			t.Fatalf("%s got %q, want nothing", id, got)
		}
	}

	rep, err = f.broker.Deliver(context.Background(), envelope(nil, []string{"updates"}, `"all"`))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Targets != 3 || rep.Delivered != 3 {
		t.Fatalf("broadcast report = %+v, want a1, b1 and the wildcard c1", rep)
	}
}

func TestAGoneConnectionIsRemovedOnTheFirst410(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "dead", "alice", "updates")
	f.connect(t, "live", "alice", "updates")
	f.pusher.fail["dead"] = store.KindGone

	rep, err := f.broker.Deliver(context.Background(), envelope([]string{"alice"}, []string{"updates"}, `1`))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Gone != 1 || rep.Delivered != 1 || rep.Failed != 0 {
		t.Fatalf("report = %+v", rep)
	}
	if _, err := f.db.Store().GetConnection(context.Background(), "dead"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the gone connection's record is still there (err=%v)", err)
	}
	if _, err := f.db.Store().GetConnection(context.Background(), "live"); err != nil {
		t.Fatalf("the live connection's record was touched: %v", err)
	}
}

// A connection ID the Management API refuses (400, "Invalid connectionId":
// a record that a forged or odd $connect wrote) can never be reached: its
// record is removed at once, as a gone one's, with a log line saying why,
// rather than retried and handed on until it is dead-lettered.
func TestAConnectionIDTheAPIRefusesIsRemovedAndTheLogSaysWhy(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "forged", "alice", "updates")
	f.connect(t, "live", "alice", "updates")
	f.pusher.fail["forged"] = store.KindInvalidID
	var logs lockedbuf.Buffer
	f.broker.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	var sleeps atomic.Int32
	f.broker.Sleep = func(context.Context, time.Duration) error { sleeps.Add(1); return nil }

	rep, err := f.broker.Deliver(context.Background(), envelope([]string{"alice"}, []string{"updates"}, `1`))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Gone != 1 || rep.Delivered != 1 || rep.Failed != 0 || sleeps.Load() != 0 {
		t.Fatalf("report = %+v after %d backoffs, want 1 gone, 1 delivered, no retry", rep, sleeps.Load())
	}
	if _, err := f.db.Store().GetConnection(context.Background(), "forged"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused connection's record is still there (err=%v)", err)
	}
	if got := logs.String(); !strings.Contains(got, "forged") || !strings.Contains(got, "can never be reached") {
		t.Errorf("log %q, want a line naming the connection and saying why its record went", got)
	}
}

func TestThrottlingIsRetriedWithBackoff(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "c", "alice", "updates")
	f.pusher.throttle["c"] = 3
	var sleeps []time.Duration
	f.broker.Sleep = func(_ context.Context, d time.Duration) error { sleeps = append(sleeps, d); return nil }

	rep, err := f.broker.Deliver(context.Background(), envelope(nil, []string{"updates"}, `1`))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Delivered != 1 || len(sleeps) != 3 {
		t.Fatalf("report = %+v after %d backoffs, want delivered after 3", rep, len(sleeps))
	}
	for _, d := range sleeps {
		if d <= 0 || d > 2*time.Second {
			t.Fatalf("backoff %s is outside (0, 2s]", d)
		}
	}

	f.pusher.throttle["c"] = 100
	rep, _ = f.broker.Deliver(context.Background(), envelope(nil, []string{"updates"}, `2`))
	if rep.Failed != 1 || !strings.Contains(strings.Join(rep.Errors, " "), "throttled") {
		t.Fatalf("endless throttling must end as a failure naming it: %+v", rep)
	}
}

func TestFanOutConcurrencyIsBounded(t *testing.T) {
	f := newFixture(t)
	for i := range 40 {
		f.connect(t, fmt.Sprintf("c%02d", i), "alice", "updates")
	}
	f.pusher.gate, f.pusher.open = 4, make(chan struct{})
	rep, err := f.broker.Deliver(context.Background(), envelope(nil, []string{"updates"}, `1`))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Delivered != 40 {
		t.Fatalf("delivered %d of 40", rep.Delivered)
	}
	if m := f.pusher.maxSeen.Load(); m != 4 {
		t.Fatalf("max posts in flight = %d, want the limit 4", m)
	}
}

// TestAFanOutMeansTheSameWhetherThePusherBlocksOrNot fans the same mix of
// outcomes out through a pusher that may block (posted concurrently) and
// one that never does (posted one after the other, failures retried
// concurrently): the reports, the retries and the removed connections are
// the same.
func TestAFanOutMeansTheSameWhetherThePusherBlocksOrNot(t *testing.T) {
	for _, nonBlocking := range []bool{false, true} {
		t.Run(fmt.Sprintf("non-blocking %v", nonBlocking), func(t *testing.T) {
			f := newFixture(t)
			f.pusher.nonBlocking = nonBlocking
			for i := range 20 {
				f.connect(t, fmt.Sprintf("ok%02d", i), "alice", "updates")
			}
			for _, id := range []string{"gone", "throttled", "flaky", "big", "forbidden", "hopeless"} {
				f.connect(t, id, "alice", "updates")
			}
			f.pusher.fail["gone"] = store.KindGone
			f.pusher.fail["big"] = store.KindTooLarge
			f.pusher.fail["forbidden"] = store.KindForbidden
			f.pusher.throttle["throttled"] = 2
			f.pusher.errs["flaky"] = 3
			f.pusher.throttle["hopeless"] = 100
			var sleeps atomic.Int64
			f.broker.Sleep = func(context.Context, time.Duration) error { sleeps.Add(1); return nil }

			rep, err := f.broker.Deliver(context.Background(), envelope(nil, []string{"updates"}, `1`))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Targets != 26 || rep.Delivered != 22 || rep.Gone != 1 || rep.Failed != 3 {
				t.Fatalf("report = %+v; want 26 targets: 22 delivered (2 after retries), 1 gone, 3 failed", rep)
			}
			// throttled 2 + flaky 3 + hopeless 5 (DefaultPostTries 6).
			if n := sleeps.Load(); n != 10 {
				t.Errorf("%d backoffs; want 10", n)
			}
			for _, id := range []string{"throttled", "flaky", "ok00", "ok19"} {
				if got := f.pusher.got(id); len(got) != 1 {
					t.Errorf("%s got %q; want the message once", id, got)
				}
			}
			if _, err := f.db.Store().GetConnection(context.Background(), "gone"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the gone connection's record is still there (err=%v)", err)
			}
			errs := strings.Join(rep.Errors, " ")
			for _, want := range []string{"forbidden", "throttled", "128 KB"} {
				if !strings.Contains(strings.ToLower(errs), strings.ToLower(want)) {
					t.Errorf("errors %q do not name %q", rep.Errors, want)
				}
			}
		})
	}
}

func TestANonBlockingPusherIsPostedWithoutAGoroutinePerConnection(t *testing.T) {
	f := newFixture(t)
	f.pusher.nonBlocking = true
	for i := range 40 {
		f.connect(t, fmt.Sprintf("c%02d", i), "alice", "updates")
	}
	rep, err := f.broker.Deliver(context.Background(), envelope(nil, []string{"updates"}, `1`))
	if err != nil || rep.Delivered != 40 {
		t.Fatalf("report %+v, %v; want 40 delivered", rep, err)
	}
	if m := f.pusher.maxSeen.Load(); m != 1 {
		t.Fatalf("max posts in flight = %d; want 1 (posted one after the other)", m)
	}
}

func receiveOne(t *testing.T, q store.Queue, vis time.Duration) store.Message {
	t.Helper()
	msgs, err := q.Receive(context.Background(), 1, vis, 2*time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Receive = %d messages, %v", len(msgs), err)
	}
	return msgs[0]
}

// TestAnUnparsableEnvelopeIsDeadLetteredWithItsReason puts on the queue
// what other producers might write there. Each is dead-lettered at once,
// with a reason in words (never a Go error), and leaves the queue.
func TestAnUnparsableEnvelopeIsDeadLetteredWithItsReason(t *testing.T) {
	many := func(n int) string {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf(`"n%d"`, i)
		}
		return strings.Join(names, ",")
	}
	for _, tc := range []struct {
		name, body, reason string
	}{
		{"a truncated envelope", `{"topics":["updates"],"body":`, "not valid JSON"},
		{"whitespace only", " \n ", "envelope is empty"},
		{"topics as a string", `{"topics":"updates","body":1}`, `"topics" as a string; it must be a list of strings`},
		{"a JSON nesting bomb", strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000), "nests more than 64 levels"},
		{"invalid UTF-8", "{\"topics\":[\"up\xffdates\"],\"body\":1}", "not valid UTF-8"},
		{"binary garbage", "\x00\x01\x02\xfe", "not valid UTF-8"},
		{"a control character in a topic", `{"topics":["up\u0000dates"],"body":1}`, "control character"},
		{"thousands of topics", `{"topics":[` + many(3000) + `],"body":1}`, "at most 50"},
		{"too many users for its topics", `{"users":[` + many(1000) + `],"topics":["a","b"],"body":1}`, "lookups"},
		{"no body", `{"topics":["updates"]}`, "body is missing"},
		// Queued by an earlier socks, whose IDs could hold them.
		{"an ID with a no-break space", `{"id":"job\u00a07","topics":["updates"],"body":1}`, "id contains whitespace"},
		{"an ID with a zero-width space", `{"id":"job\u200b7","topics":["updates"],"body":1}`, "invisible formatting character U+200B"},
		// Read by any other JSON parser as addressed to alice; Go's
		// decoder, whatever the case of a key, delivered it to bob.
		{"a key in another case", `{"users":["alice"],"Users":["bob"],"topics":["updates"],"body":1}`, `unusable envelope: envelope has key "Users", not "users": keys are case-sensitive`},
		{"an SNS key in another case", `{"Type":"Notification","Message":"{\"topics\":[\"updates\"],\"body\":1}","message":"{\"topics\":[\"secrets\"],\"body\":1}"}`, `unusable envelope: SNS notification has key "message", not "Message": keys are case-sensitive`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			q := f.db.Queue()
			if _, err := q.Send(ctx, []byte(tc.body)); err != nil {
				t.Fatal(err)
			}
			out := f.broker.Handle(ctx, receiveOne(t, q, time.Minute))
			if !out.DeadLettered {
				t.Fatalf("outcome = %+v, want dead-lettered", out)
			}
			dead, err := q.ListDeadLetters(ctx, 10)
			if err != nil || len(dead) != 1 {
				t.Fatalf("dead letters = %v, %v", dead, err)
			}
			if !strings.Contains(dead[0].Reason, tc.reason) {
				t.Fatalf("reason %q does not say %q", dead[0].Reason, tc.reason)
			}
			for _, leak := range []string{"json:", "Go struct", "Go value"} {
				if strings.Contains(dead[0].Reason, leak) {
					t.Errorf("reason %q shows Go internals", dead[0].Reason)
				}
			}
			if len(dead[0].Reason) > 1024 {
				t.Errorf("the reason is %d bytes; it echoes the envelope", len(dead[0].Reason))
			}
			st, _ := q.Stats(ctx)
			if st.Visible != 0 || st.InFlight != 0 {
				t.Fatalf("the poison message is still on the queue: %+v", st)
			}
		})
	}
}

func TestAMessageWhoseDeliveriesAllFailIsRetriedThenDeadLettered(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	q := f.db.Queue()
	f.connect(t, "c", "alice", "updates")
	f.pusher.fail["c"] = store.KindForbidden
	env := envelope(nil, []string{"updates"}, `1`)
	f.enqueue(t, env)
	for i := 1; i <= 3; i++ {
		m := receiveOne(t, q, time.Minute)
		if m.ReceiveCount != i {
			t.Fatalf("receive %d has count %d", i, m.ReceiveCount)
		}
		out := f.broker.Handle(ctx, m)
		if i < 3 && (out.Done || out.DeadLettered) {
			t.Fatalf("attempt %d: outcome %+v, want a retry", i, out)
		}
		if i < 3 {
			// The broker backs off by making it visible later; skip the wait.
			if err := q.ChangeVisibility(ctx, m.Receipt, 0); err != nil {
				t.Fatal(err)
			}
		}
		if i == 3 && !out.DeadLettered {
			t.Fatalf("after %d receives the message must be dead-lettered: %+v", i, out)
		}
	}
	dead, _ := q.ListDeadLetters(ctx, 10)
	if len(dead) != 1 || !strings.Contains(dead[0].Reason, "failed 3 times") || !strings.Contains(dead[0].Reason, "forbidden") {
		t.Fatalf("dead letters = %+v", dead)
	}
}

func TestAPartialSuccessHandsTheFailedConnectionsOnInAFollowUp(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	q := f.db.Queue()
	env := f.enqueueToOkAndBad(t)
	out := f.broker.Handle(ctx, receiveOne(t, q, time.Minute))
	if !out.Done || !out.HandedOn || !slices.Equal(out.Pending, []string{"bad"}) {
		t.Fatalf("outcome = %+v, want done with 'bad' handed on (retrying the whole message would deliver twice to 'ok')", out)
	}
	rep, err := f.db.Store().GetReport(ctx, env.ID)
	if err != nil || rep.Delivered != 1 || rep.Failed != 1 {
		t.Fatalf("report = %+v, %v", rep, err)
	}
	// The original is gone; the follow-up names exactly 'bad'.
	m := receiveOne(t, q, time.Minute)
	fu, err := pubsub.ParseEnvelope(m.Body)
	if err != nil || fu.ID != env.ID || !slices.Equal(fu.Connections, []string{"bad"}) || fu.Attempt != 1 || string(fu.Body) != `1` {
		t.Fatalf("follow-up = %+v, %v", fu, err)
	}
	if !strings.Contains(fu.LastError, "bad") {
		t.Errorf("follow-up's last error %q does not say what failed", fu.LastError)
	}
	// 'bad' recovers: the follow-up reaches it and only it.
	delete(f.pusher.fail, "bad")
	out = f.broker.Handle(ctx, m)
	if !out.Done || len(out.Pending) != 0 {
		t.Fatalf("follow-up outcome = %+v", out)
	}
	if got, bad := f.pusher.got("ok"), f.pusher.got("bad"); len(got) != 1 || len(bad) != 1 {
		t.Fatalf("ok got %q and bad got %q; want the message once each", got, bad)
	}
	rep, err = f.db.Store().GetReport(ctx, env.ID)
	if err != nil || rep.Targets != 2 || rep.Delivered != 2 || rep.Failed != 0 {
		t.Fatalf("report after the follow-up = %+v, %v; want 2 of 2 delivered", rep, err)
	}
	if st, _ := q.Stats(ctx); st.Visible+st.InFlight+st.Dead != 0 {
		t.Fatalf("queue not empty: %+v", st)
	}
}

func TestAFollowUpThatKeepsFailingIsDeadLetteredWithItsConnections(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	q := f.db.Queue()
	env := f.enqueueToOkAndBad(t)
	f.broker.Handle(ctx, receiveOne(t, q, time.Minute))
	var out broker.Outcome
	for i := 1; i <= 3 && !out.DeadLettered; i++ {
		m := receiveOne(t, q, time.Minute)
		out = f.broker.Handle(ctx, m)
		if !out.DeadLettered {
			_ = q.ChangeVisibility(ctx, m.Receipt, 0) // skip the backoff
		}
	}
	if !out.DeadLettered {
		t.Fatalf("outcome %+v; want the follow-up dead-lettered after 3 receives", out)
	}
	dead, _ := q.ListDeadLetters(ctx, 10)
	if len(dead) != 1 || !strings.Contains(dead[0].Reason, "1 connection (bad)") {
		t.Fatalf("dead letters = %+v; want one naming the connection", dead)
	}
	if fu, err := pubsub.ParseEnvelope(dead[0].Body); err != nil || !slices.Equal(fu.Connections, []string{"bad"}) {
		t.Fatalf("dead letter body = %s, %v; want the follow-up for 'bad'", dead[0].Body, err)
	}
	if got := f.pusher.got("ok"); len(got) != 1 {
		t.Fatalf("ok got %q; want the message once", got)
	}
	if rep, err := f.db.Store().GetReport(ctx, env.ID); err != nil || rep.Targets != 2 || rep.Delivered != 1 || rep.Failed != 1 {
		t.Fatalf("report %+v, %v; want 1 of 2 delivered and 1 failed", rep, err)
	}
}

func TestAFollowUpPastItsAttemptsIsDeadLetteredWithoutAPost(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	q := f.db.Queue()
	f.connect(t, "c", "alice", "updates")
	f.broker.MaxAttempts = 2
	env := envelope(nil, []string{"updates"}, `1`)
	env.FollowUp = pubsub.FollowUp{Connections: []string{"c"}, Attempt: 3, LastError: "HTTP 500"}
	f.enqueue(t, env)
	out := f.broker.Handle(ctx, receiveOne(t, q, time.Minute))
	if !out.DeadLettered || len(f.pusher.got("c")) != 0 {
		t.Fatalf("outcome %+v, posts %q; want dead-lettered without a post", out, f.pusher.got("c"))
	}
	dead, _ := q.ListDeadLetters(ctx, 10)
	if len(dead) != 1 || !strings.Contains(dead[0].Reason, "1 connection (c) after 3 attempts; last error: HTTP 500") {
		t.Fatalf("dead letters = %+v", dead)
	}
}

// TestARedrivenFollowUpIsPostedAgainWithItsAttemptsStartedAgain is the
// operator's path: a follow-up that used up its attempts is dead-lettered
// without a post; the outage is fixed and `socks dlq redrive` puts it back;
// the broker posts it (not dead-letters it again at once), and the report
// adds the delivery to the original's rather than starting over.
func TestARedrivenFollowUpIsPostedAgainWithItsAttemptsStartedAgain(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	q := f.db.Queue()
	f.broker.MaxAttempts = 2
	env := f.enqueueToOkAndBad(t)
	if out := f.broker.Handle(ctx, receiveOne(t, q, time.Minute)); !out.HandedOn {
		t.Fatalf("original's outcome %+v; want 'bad' handed on", out)
	}
	// Its follow-ups went on failing for 'bad' until the last one was
	// past MaxAttempts: replace the first follow-up with that one.
	fu := receiveOne(t, q, time.Minute)
	_ = q.Delete(ctx, fu.Receipt)
	used := env
	used.FollowUp = pubsub.FollowUp{Connections: []string{"bad"}, Attempt: 3, LastError: "HTTP 500"}
	f.enqueue(t, used)
	if out := f.broker.Handle(ctx, receiveOne(t, q, time.Minute)); !out.DeadLettered || len(f.pusher.got("bad")) != 0 {
		t.Fatalf("outcome %+v; want the used-up follow-up dead-lettered without a post", out)
	}

	delete(f.pusher.fail, "bad")
	if n, err := q.Redrive(ctx, nil); err != nil || n != 1 {
		t.Fatalf("Redrive = %d, %v; want 1", n, err)
	}
	out := f.broker.Handle(ctx, receiveOne(t, q, time.Minute))
	if !out.Done || out.DeadLettered {
		t.Fatalf("redriven follow-up's outcome %+v; want it delivered", out)
	}
	if got := f.pusher.got("bad"); len(got) != 1 || got[0] != `1` {
		t.Fatalf("bad got %q; want the message once", got)
	}
	if got := f.pusher.got("ok"); len(got) != 1 {
		t.Fatalf("ok got %q; want the message once, not again", got)
	}
	rep, err := f.db.Store().GetReport(ctx, env.ID)
	if err != nil || rep.Targets != 2 || rep.Delivered != 2 || rep.Failed != 0 {
		t.Fatalf("report %+v, %v; want 2 of 2 delivered", rep, err)
	}
	if st, _ := q.Stats(ctx); st.Visible+st.InFlight+st.Dead != 0 {
		t.Fatalf("queue not empty: %+v", st)
	}
}

// failingSendQueue is a queue whose sends fail.
type failingSendQueue struct{ store.Queue }

func (failingSendQueue) SendBatch(context.Context, [][]byte) ([]string, error) {
	return nil, errors.New("queue unreachable")
}

func TestAMessageWhoseFollowUpCannotBeEnqueuedIsKept(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	q := f.db.Queue()
	f.broker.Queue = failingSendQueue{q}
	f.enqueueToOkAndBad(t)
	out := f.broker.Handle(ctx, receiveOne(t, q, time.Minute))
	if out.Done || out.DeadLettered || !strings.Contains(fmt.Sprint(out.Err), "queue unreachable") {
		t.Fatalf("outcome %+v; want a retry saying the follow-up could not be enqueued", out)
	}
	if st, _ := q.Stats(ctx); st.InFlight != 1 {
		t.Fatalf("queue %+v; the message must stay until its failures are handed on", st)
	}
}

func TestServerErrorsAndResetsAreRetriedWithBackoff(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "c", "alice", "updates")
	f.pusher.errs["c"] = 3
	sleeps := 0
	f.broker.Sleep = func(context.Context, time.Duration) error { sleeps++; return nil }
	rep, err := f.broker.Deliver(context.Background(), envelope(nil, []string{"updates"}, `1`))
	if err != nil || rep.Delivered != 1 || sleeps != 3 {
		t.Fatalf("report %+v, %v after %d backoffs; want delivered after 3 backoffs", rep, err, sleeps)
	}
}

func TestACrashBetweenReceiveAndDeleteRedelivers(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	q := f.db.Queue()
	f.connect(t, "c", "alice", "updates")
	env := envelope([]string{"alice"}, []string{"updates"}, `{"survived":true}`)
	f.enqueue(t, env)
	// A broker receives the message and dies before handling it.
	_ = receiveOne(t, q, 300*time.Millisecond)

	// Another broker picks it up once the visibility timeout has passed.
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.broker.Run(runCtx) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(f.pusher.got("c")) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := f.pusher.got("c"); len(got) != 1 || got[0] != `{"survived":true}` {
		t.Fatalf("after the crash the connection got %q, want the message once", got)
	}
	st, _ := q.Stats(ctx)
	if st.Visible+st.InFlight+st.Dead != 0 {
		t.Fatalf("queue not empty after handling: %+v", st)
	}
}

func TestEndlessThrottlingMakesPostTriesAttemptsWithBackoffOnlyBetweenThem(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "c", "alice", "updates")
	f.broker.PostTries = 3
	f.pusher.throttle["c"] = 100
	sleeps := 0
	f.broker.Sleep = func(context.Context, time.Duration) error { sleeps++; return nil }

	rep, err := f.broker.Deliver(context.Background(), envelope(nil, []string{"updates"}, `1`))
	if err != nil {
		t.Fatal(err)
	}
	if attempts := 100 - f.pusher.throttle["c"]; rep.Failed != 1 || attempts != 3 || sleeps != 2 {
		t.Fatalf("report %+v after %d attempts and %d backoffs; want a failure after 3 attempts and 2 backoffs", rep, attempts, sleeps)
	}
}

func TestAFanOutCutShortAfterADeliveryHandsTheRestOn(t *testing.T) {
	f := newFixture(t)
	q := f.db.Queue()
	f.connect(t, "a-ok", "alice", "updates")
	f.connect(t, "b-stuck", "alice", "updates")
	f.pusher.stuck = "b-stuck"
	env := envelope(nil, []string{"updates"}, `1`)
	f.enqueue(t, env)
	m := receiveOne(t, q, time.Minute)

	// The handling context ends (Ctrl-C, or the visibility budget is
	// spent) once a-ok has its message and b-stuck is still pending.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for len(f.pusher.got("a-ok")) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	out := f.broker.Handle(ctx, m)
	if !out.Done || out.Report.Delivered != 1 || out.Report.Failed != 1 || !slices.Equal(out.Pending, []string{"b-stuck"}) {
		t.Fatalf("outcome %+v; want done with 1 delivered and b-stuck handed on (a retry would deliver to a-ok twice)", out)
	}
	st, err := q.Stats(context.Background())
	if err != nil || st.Visible != 1 || st.InFlight != 0 {
		t.Fatalf("queue %+v, %v; the handled message must be deleted even though the handling context ended, and its follow-up queued", st, err)
	}
	if rep, err := f.db.Store().GetReport(context.Background(), env.ID); err != nil || rep.Delivered != 1 {
		t.Errorf("report %+v, %v; want it recorded", rep, err)
	}
}

// TestAMessageWhoseFollowUpNeverEnqueuesIsDeadLetteredWithTheConnectionsItMissed:
// when the follow-up cannot be enqueued on the message's last receive, the
// original is dead-lettered, and its reason names the connections it did
// not reach (the guarantee: "the message ends in the dead letters with the
// reason and the IDs of the connections it did not reach").
func TestAMessageWhoseFollowUpNeverEnqueuesIsDeadLetteredWithTheConnectionsItMissed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	q := f.db.Queue()
	f.broker.Queue = failingSendQueue{q}
	f.connect(t, "ok", "alice", "updates")
	f.connect(t, "bad-one", "alice", "updates")
	f.pusher.fail["bad-one"] = store.KindOther
	env := envelope(nil, []string{"updates"}, `1`)
	f.enqueue(t, env)
	// Earlier receives that came to nothing (visible again at once).
	for range f.broker.MaxReceives - 1 {
		_ = receiveOne(t, q, 0)
	}
	out := f.broker.Handle(ctx, receiveOne(t, q, time.Minute))
	if !out.DeadLettered {
		t.Fatalf("outcome %+v; want the message dead-lettered on its last receive", out)
	}
	dead, err := q.ListDeadLetters(ctx, 0)
	if err != nil || len(dead) != 1 {
		t.Fatalf("dead letters = %+v, %v", dead, err)
	}
	if r := dead[0].Reason; !strings.Contains(r, "bad-one") || strings.Contains(r, "(ok") || strings.Contains(r, " ok") {
		t.Fatalf("dead letter's reason %q; want it to name the connection it did not reach (bad-one) and only that one", r)
	}
}

// failingReportStore fails GetReport (a read error, not "no report"), as
// a state file or table briefly unreadable would.
type failingReportStore struct{ store.Store }

func (failingReportStore) GetReport(context.Context, string) (store.Report, error) {
	return store.Report{}, errors.New("table unreachable")
}

// TestAFollowUpWhoseReportCannotBeReadLeavesTheReportAlone: a follow-up's
// report adds to the message's; when the report cannot be read, the
// follow-up's own counts must not replace it (they would say 1 target of
// what were 2, and lose the deliveries made before).
func TestAFollowUpWhoseReportCannotBeReadLeavesTheReportAlone(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	q := f.db.Queue()
	env := f.enqueueToOkAndBad(t)
	if out := f.broker.Handle(ctx, receiveOne(t, q, time.Minute)); !out.HandedOn {
		t.Fatalf("outcome %+v; want 'bad' handed on", out)
	}
	delete(f.pusher.fail, "bad")
	f.broker.Store = failingReportStore{f.db.Store()}
	if out := f.broker.Handle(ctx, receiveOne(t, q, time.Minute)); !out.Done {
		t.Fatalf("follow-up outcome %+v; want it delivered", out)
	}
	rep, err := f.db.Store().GetReport(ctx, env.ID)
	if err != nil || rep.Targets != 2 || rep.Delivered != 1 || rep.Failed != 1 {
		t.Fatalf("report %+v, %v; want the original's (1 of 2 delivered) kept, not replaced by the follow-up's alone", rep, err)
	}
}

// partSendQueue is a queue whose first SendBatch sends every body but the
// last and says so as SQS does (store.Queue.SendBatch: the unsent body's ID
// is "", and an error); it records the bodies of every SendBatch call.
type partSendQueue struct {
	store.Queue
	mu    sync.Mutex
	calls [][][]byte
}

func (q *partSendQueue) SendBatch(ctx context.Context, bodies [][]byte) ([]string, error) {
	q.mu.Lock()
	q.calls = append(q.calls, bodies)
	first := len(q.calls) == 1
	q.mu.Unlock()
	if !first || len(bodies) < 2 {
		return q.Queue.SendBatch(ctx, bodies)
	}
	ids, err := q.Queue.SendBatch(ctx, bodies[:len(bodies)-1])
	if err != nil {
		return nil, err
	}
	return append(ids, ""), errors.New("SQS refused 1 of 2 messages: InternalError")
}

func TestAFollowUpBatchSentInPartResendsOnlyTheRest(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	q := f.db.Queue()
	pq := &partSendQueue{Queue: q}
	f.broker.Queue = pq
	// More failing connections than one follow-up holds: two follow-ups.
	f.connect(t, "ok", "alice", "updates")
	bad := map[string]bool{}
	for i := range pubsub.MaxFollowUpConnections + 1 {
		id := fmt.Sprintf("bad%04d", i)
		f.connect(t, id, "alice", "updates")
		f.pusher.fail[id] = store.KindOther
		bad[id] = true
	}
	f.enqueue(t, envelope(nil, []string{"updates"}, `1`))
	m := receiveOne(t, q, time.Minute)
	out := f.broker.Handle(ctx, m)
	if !out.Done || !out.HandedOn || out.Err != nil {
		t.Fatalf("outcome done=%v handedOn=%v err=%v; want done, its follow-ups handed on", out.Done, out.HandedOn, out.Err)
	}
	pq.mu.Lock()
	calls := pq.calls
	pq.mu.Unlock()
	if len(calls) != 2 || len(calls[0]) != 2 || len(calls[1]) != 1 || !bytes.Equal(calls[1][0], calls[0][1]) {
		t.Fatalf("SendBatch calls of %d bodies; want the two follow-ups, then only the unsent one again", lens(calls))
	}
	// The queue holds the two follow-ups once each (the original is still
	// in flight): every failed connection in exactly one.
	msgs, err := q.Receive(ctx, 10, time.Minute, time.Second)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("Receive = %d messages, %v; want the 2 follow-ups", len(msgs), err)
	}
	seen := map[string]int{}
	for _, fm := range msgs {
		env, err := pubsub.ParseEnvelope(fm.Body)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range env.Connections {
			seen[id]++
		}
	}
	if len(seen) != len(bad) {
		t.Fatalf("the follow-ups address %d connections; want the %d that failed", len(seen), len(bad))
	}
	for id, n := range seen {
		if !bad[id] || n != 1 {
			t.Fatalf("connection %s is in %d follow-ups; want each failed one in exactly one", id, n)
		}
	}
	if got := f.pusher.got("ok"); len(got) != 1 {
		t.Fatalf("ok got %q; want the message once", got)
	}
}

func lens(calls [][][]byte) []int {
	var n []int
	for _, c := range calls {
		n = append(n, len(c))
	}
	return n
}

// TestAReportIsTimedInUTCToTheMillisecond: the report Deliver returns
// (which `publish --direct --json` prints) is timed as the stores keep it
// and docs/json.md shows it, in UTC to the millisecond; it had the
// clock's nanoseconds and its zone.
func TestAReportIsTimedInUTCToTheMillisecond(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "a1", "alice", "updates")
	at := time.Date(2030, time.June, 1, 14, 0, 0, 123456789, time.FixedZone("CEST", 2*3600))
	f.broker.Now = func() time.Time { return at }
	rep, err := f.broker.Deliver(context.Background(), envelope(nil, []string{"updates"}, `1`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rep.At)
	if want := `"2030-06-01T12:00:00.123Z"`; string(b) != want {
		t.Errorf("the report's at is %s; want %s", b, want)
	}
}

// TestAPostThatGetsNoAnswerSaysSoInWords: a Management API that accepts a
// post and never answers (a frozen `socks serve`, a stalled network) fails
// each try at the post timeout; the report's error, which `publish
// --direct` prints and the broker logs, says that in words, not as the
// SDK's "canceled, context deadline exceeded".
func TestAPostThatGetsNoAnswerSaysSoInWords(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "frozen", "alice", "updates")
	f.pusher.stuck = "frozen"
	f.broker.PostTimeout = 20 * time.Millisecond
	f.broker.PostTries = 2
	rep, err := f.broker.Deliver(context.Background(), envelope([]string{"alice"}, []string{"updates"}, `1`))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 1 || len(rep.Errors) != 1 {
		t.Fatalf("report %+v; want one failure with its error", rep)
	}
	if e := rep.Errors[0]; !strings.Contains(e, "frozen") || !strings.Contains(e, "no answer within 20ms") || strings.Contains(e, "deadline") {
		t.Errorf("the failure reads %q; want the connection and \"no answer within 20ms\", in words", e)
	}
}

// TestAFollowUpOfAnEnvelopeNamingATopicOverAndOverFitsTheQueue: the limits
// count distinct topics and users, so an envelope from another producer
// may name one topic (or user) thousands of times and fill the queue's
// 1 MiB. Its follow-up, the same envelope plus the connections it names,
// was then too big to enqueue: the whole message was retried, delivered
// again to those who had it, and dead-lettered. A follow-up names each
// topic and user once, which means the same.
func TestAFollowUpOfAnEnvelopeNamingATopicOverAndOverFitsTheQueue(t *testing.T) {
	for _, field := range []string{"topics", "users"} {
		t.Run(field, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			q := f.db.Queue()
			f.connect(t, "ok", "alice", "updates")
			f.connect(t, "bad", "alice", "updates")
			f.pusher.fail["bad"] = store.KindOther
			env := envelope([]string{"alice"}, []string{"updates"}, `1`)
			list, name := &env.Topics, "updates"
			if field == "users" {
				list, name = &env.Users, "alice"
			}
			base, err := env.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			// Each more mention is `,"name"`: fill the queue message to
			// within 64 bytes of its limit.
			more := (pubsub.MaxEnvelopeBytes - 64 - len(base)) / (len(name) + 3)
			*list = append(*list, slices.Repeat([]string{name}, more)...)
			f.enqueue(t, env)
			out := f.broker.Handle(ctx, receiveOne(t, q, time.Minute))
			if !out.Done || !out.HandedOn || !slices.Equal(out.Pending, []string{"bad"}) {
				t.Fatalf("outcome: done %v, handed on %v, pending %q, %v; want done with 'bad' handed on", out.Done, out.HandedOn, out.Pending, out.Err)
			}
			fu, err := pubsub.ParseEnvelope(receiveOne(t, q, time.Minute).Body)
			if err != nil || !slices.Equal(fu.Connections, []string{"bad"}) || !slices.Equal(fu.Topics, []string{"updates"}) || !slices.Equal(fu.Users, []string{"alice"}) {
				t.Fatalf("follow-up: connections %q, topics %d, users %d, %v; want 'bad', each topic and user once", fu.Connections, len(fu.Topics), len(fu.Users), err)
			}
			if got := f.pusher.got("ok"); len(got) != 1 {
				t.Errorf("ok got %q; want the message once", got)
			}
		})
	}
}

// slotPusher holds the first post until release is closed, and records
// each post's deadline and the most posts under way at once.
type slotPusher struct {
	entered chan string
	release chan struct{}

	mu        sync.Mutex
	inFlight  int
	most      int
	deadlines map[string]time.Time
}

func (p *slotPusher) Post(ctx context.Context, id string, _ []byte) error {
	p.mu.Lock()
	p.inFlight++
	p.most = max(p.most, p.inFlight)
	first := len(p.deadlines) == 0
	p.deadlines[id], _ = ctx.Deadline()
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inFlight--
		p.mu.Unlock()
	}()
	p.entered <- id
	if first {
		<-p.release
	}
	return nil
}

func (p *slotPusher) Get(context.Context, string) (store.ConnectionInfo, error) {
	return store.ConnectionInfo{}, nil
}
func (p *slotPusher) Delete(context.Context, string) error { return nil }

// Envelopes that share a Pusher's connections (the Lambda function's
// records) share PostSlots as many: a post waits for a slot before its
// PostTimeout starts, so the wait is not spent from it. Without them, the
// posts past the client's connections waited in its pool with their
// timeout running, and failed never sent.
func TestAPostsTimeoutStartsOnceItHasASlot(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "one", "alice", "updates")
	f.connect(t, "two", "alice", "updates")
	p := &slotPusher{entered: make(chan string, 2), release: make(chan struct{}), deadlines: map[string]time.Time{}}
	f.broker.Pusher = p
	f.broker.PostSlots = make(chan struct{}, 1)
	f.broker.PostTimeout = time.Hour
	done := make(chan store.Report, 1)
	go func() {
		rep, _ := f.broker.Deliver(context.Background(), envelope([]string{"alice"}, []string{"updates"}, `1`))
		done <- rep
	}()
	first := <-p.entered
	// The other post waits for the slot: give it a moment to be under
	// way instead, as it was without slots (then it is there at once, a
	// failure); with slots it is not, and its hour starts only once the
	// first is released.
	var second string
	select {
	case second = <-p.entered:
	case <-time.After(200 * time.Millisecond):
	}
	released := time.Now()
	close(p.release)
	if second == "" {
		second = <-p.entered
	}
	rep := <-done
	if rep.Delivered != 2 {
		t.Fatalf("report %+v; want both delivered", rep)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.most != 1 {
		t.Errorf("%d posts under way at once; want 1, the slots", p.most)
	}
	if d := p.deadlines[second]; d.Before(released.Add(time.Hour)) {
		t.Errorf("the post to %s, which waited for %s's slot, had until %v; want its hour from when it got the slot (after %v)", second, first, d, released)
	}
}
