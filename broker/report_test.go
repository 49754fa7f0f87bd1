package broker_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// TestAReportSaysHowManyConnectionsAreStillHandedOn follows a message
// whose delivery to one connection fails and is handed on: its report
// says that one is pending until the follow-up settles it, so that
// `publish --wait` can wait for the follow-up rather than answer at the
// first handling.
func TestAReportSaysHowManyConnectionsAreStillHandedOn(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	q := f.db.Queue()
	f.connect(t, "ok", "alice", "updates")
	f.connect(t, "bad", "alice", "updates")
	f.connect(t, "worse", "alice", "updates")
	f.pusher.fail["bad"] = store.KindOther
	f.pusher.fail["worse"] = store.KindOther
	env := envelope(nil, []string{"updates"}, `1`)
	f.enqueue(t, env)
	if out := f.broker.Handle(ctx, receiveOne(t, q, time.Minute)); !out.HandedOn {
		t.Fatalf("outcome %+v; want the failures handed on", out)
	}
	report := func() store.Report {
		t.Helper()
		rep, err := f.db.Store().GetReport(ctx, env.ID)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := report(); rep.Pending != 2 || rep.Delivered != 1 || rep.DeadLettered {
		t.Fatalf("report after the original = %+v; want 1 delivered and 2 pending", rep)
	}
	// 'bad' recovers, 'worse' does not: 'worse' is handed on again.
	delete(f.pusher.fail, "bad")
	f.pusher.fail["worse"] = store.KindOther
	f.broker.MaxAttempts = 1
	if out := f.broker.Handle(ctx, receiveOne(t, q, time.Minute)); !out.HandedOn {
		t.Fatalf("follow-up outcome %+v; want 'worse' handed on again", out)
	}
	if rep := report(); rep.Pending != 1 || rep.Delivered != 2 || rep.Failed != 1 {
		t.Fatalf("report after the first follow-up = %+v; want 2 delivered, 1 failed and still pending", rep)
	}
	// The second follow-up is past its attempts: dead-lettered, settled.
	if out := f.broker.Handle(ctx, receiveOne(t, q, time.Minute)); !out.DeadLettered {
		t.Fatalf("second follow-up outcome %+v; want dead-lettered", out)
	}
	if rep := report(); rep.Pending != 0 || rep.Delivered != 2 || rep.Failed != 1 || !rep.DeadLettered {
		t.Fatalf("final report = %+v; want 2 delivered, 1 failed, none pending, dead-lettered", rep)
	}
}

// TestAReportCountsEachConnectionOnceWhenABrokerDiesBeforeTheDelete plays
// kill -9 between settling a message (its report recorded, its follow-up
// enqueued) and deleting it, so that it is handled again: the duplicate
// deliveries happen (at least once), but the report's counts never pass
// its targets.
func TestAReportCountsEachConnectionOnceWhenABrokerDiesBeforeTheDelete(t *testing.T) {
	// crashAfterSettle handles m as a broker killed before the delete
	// does, and makes m visible again at once (its timeout over).
	crashAfterSettle := func(t *testing.T, f *fixture, m store.Message) {
		t.Helper()
		out := f.broker.Decide(context.Background(), m)
		f.broker.Settle(context.Background(), m, &out)
		if err := f.db.Queue().ChangeVisibility(context.Background(), m.Receipt, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		crash string // "original" or "follow-up"
	}{
		{"the follow-up handled twice", "follow-up"},
		{"the original handled twice, handing on twice", "original"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			q := f.db.Queue()
			env := f.enqueueToOkAndBad(t)
			if tc.crash == "original" {
				crashAfterSettle(t, f, receiveOne(t, q, time.Minute))
			}
			// Handled (again): both runs handed 'bad' on.
			for {
				m := receiveOne(t, q, time.Minute)
				if fu, err := pubsub.ParseMessage(m.Body, nil); err != nil || !fu.IsFollowUp() {
					f.broker.Handle(ctx, m)
					break
				}
				// The first run's follow-up came first: it back to the end.
				if err := q.ChangeVisibility(ctx, m.Receipt, 0); err != nil {
					t.Fatal(err)
				}
			}
			delete(f.pusher.fail, "bad")
			for {
				msgs, err := q.Receive(ctx, 1, time.Minute, 0)
				if err != nil {
					t.Fatal(err)
				}
				if len(msgs) == 0 {
					break
				}
				if tc.crash == "follow-up" {
					crashAfterSettle(t, f, msgs[0])
					tc.crash = ""
					continue
				}
				f.broker.Handle(ctx, msgs[0])
			}
			rep, err := f.db.Store().GetReport(ctx, env.ID)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Targets != 2 || rep.Delivered != 2 || rep.Failed != 0 || rep.Pending != 0 {
				t.Fatalf("report %+v; want 2 targets, 2 delivered, none failed or pending", rep)
			}
			if len(f.pusher.got("bad")) < 2 {
				t.Fatalf("bad got %q; want the duplicate the crash makes (the test must crash after the post)", f.pusher.got("bad"))
			}
		})
	}
}

// TestAMessageDeadLetteredBeforeItWasDecidedIsReported is the Lambda
// handler's path for a record past its receives: it is dead-lettered
// without a fan-out, and its report says so, as the local queue's does
// for a message it dead-letters by itself, so that `publish --wait`
// answers.
func TestAMessageDeadLetteredBeforeItWasDecidedIsReported(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	env := envelope(nil, []string{"updates"}, `1`)
	f.enqueue(t, env)
	m := receiveOne(t, f.db.Queue(), time.Minute)
	var out broker.Outcome
	f.broker.DeadLetter(ctx, m, &out, "received 9 times without being handled (max 5)")
	if !out.DeadLettered {
		t.Fatalf("outcome %+v; want dead-lettered", out)
	}
	rep, err := f.db.Store().GetReport(ctx, env.ID)
	if err != nil || !rep.DeadLettered || !strings.Contains(strings.Join(rep.Errors, " "), "received 9 times") {
		t.Fatalf("report %+v, %v; want dead-lettered with the reason", rep, err)
	}
}

// TestAFollowUpWithoutAReportIsCountedWhenRedriven dead-letters a
// follow-up whose message has no report (expired, or never written), and
// redrives it: the delivery counts in the report it started.
func TestAFollowUpWithoutAReportIsCountedWhenRedriven(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	q := f.db.Queue()
	f.connect(t, "c", "alice", "updates")
	f.broker.MaxAttempts = 1
	env := envelope(nil, []string{"updates"}, `1`)
	env.FollowUp = pubsub.FollowUp{Connections: []string{"c"}, Attempt: 2}
	f.enqueue(t, env)
	if out := f.broker.Handle(ctx, receiveOne(t, q, time.Minute)); !out.DeadLettered {
		t.Fatalf("outcome %+v; want dead-lettered", out)
	}
	if n, err := q.Redrive(ctx, nil); err != nil || n != 1 {
		t.Fatalf("Redrive = %d, %v", n, err)
	}
	if out := f.broker.Handle(ctx, receiveOne(t, q, time.Minute)); !out.Done {
		t.Fatalf("redriven outcome %+v; want done", out)
	}
	rep, err := f.db.Store().GetReport(ctx, env.ID)
	if err != nil || rep.Targets != 1 || rep.Delivered != 1 || rep.Failed != 0 || rep.Pending != 0 {
		t.Fatalf("report %+v, %v; want 1 of 1 delivered", rep, err)
	}
}

// racingReportStore holds the first report write, made after its writer
// read the report it adds to, until the test releases it: a second
// writer handling another follow-up of the same message at that instant
// reads the same report and writes first.
type racingReportStore struct {
	store.Store
	once    sync.Once
	held    chan struct{} // closed when the first write is held
	release chan struct{} // closed by the test to let it go on
}

func (s *racingReportStore) hold() {
	first := false
	s.once.Do(func() { first = true })
	if first {
		close(s.held)
		<-s.release
	}
}

func (s *racingReportStore) PutReport(ctx context.Context, r store.Report) error {
	s.hold()
	return s.Store.PutReport(ctx, r)
}

func (s *racingReportStore) ReplaceReport(ctx context.Context, r store.Report) error {
	s.hold()
	return s.Store.ReplaceReport(ctx, r)
}

// TestTwoFollowUpsOfAMessageHandledAtOnceAreBothCounted handles two
// follow-ups of one message at the same instant: the first reads the
// report, the second reads it, writes its delivery, and only then may the
// first write. Neither delivery may be lost from the report, and nothing
// may stay pending (`publish --wait` waits for pending to reach 0).
func TestTwoFollowUpsOfAMessageHandledAtOnceAreBothCounted(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	q := f.db.Queue()
	f.connect(t, "a", "alice", "updates")
	f.connect(t, "b", "alice", "updates")
	env := envelope(nil, []string{"updates"}, `1`)
	// The original handed 'a' and 'b' on in two follow-ups.
	first := store.Report{MessageID: env.ID, Targets: 2, Failed: 2, Pending: 2, At: f.now}.
		HandOn([][]string{{"a"}, {"b"}})
	if err := f.db.Store().PutReport(ctx, first); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"a", "b"} {
		fu := env
		fu.FollowUp = pubsub.FollowUp{Connections: []string{c}, Attempt: 1}
		f.enqueue(t, fu)
	}
	msgs, err := q.Receive(ctx, 2, time.Minute, 0)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("Receive = %d messages, %v; want both follow-ups", len(msgs), err)
	}
	racing := &racingReportStore{Store: f.db.Store(), held: make(chan struct{}), release: make(chan struct{})}
	f.broker.Store = racing
	done := make(chan broker.Outcome)
	go func() { done <- f.broker.Handle(ctx, msgs[0]) }()
	<-racing.held
	if out := f.broker.Handle(ctx, msgs[1]); !out.Done {
		t.Fatalf("second follow-up outcome %+v; want done", out)
	}
	close(racing.release)
	if out := <-done; !out.Done {
		t.Fatalf("first follow-up outcome %+v; want done", out)
	}
	rep, err := f.db.Store().GetReport(ctx, env.ID)
	if err != nil || rep.Delivered != 2 || rep.Failed != 0 || rep.Pending != 0 {
		t.Fatalf("report %+v, %v; want both follow-ups' deliveries counted (2 delivered, none failed or pending)", rep, err)
	}
}

// overtakenReportStore answers every ReplaceReport as if another writer
// had always written the report first.
type overtakenReportStore struct {
	store.Store
	replaces atomic.Int32
}

func (s *overtakenReportStore) ReplaceReport(context.Context, store.Report) error {
	s.replaces.Add(1)
	return fmt.Errorf("recording the report: %w", store.ErrConflict)
}

// TestAReportOtherWritersKeepChangingIsTriedABoundedNumberOfTimes: the
// read-modify-write of a follow-up's report retries when another writer
// won, after a backoff each time, and gives up after 10 attempts (the
// message is still delivered and deleted; the report write only logs).
func TestAReportOtherWritersKeepChangingIsTriedABoundedNumberOfTimes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.connect(t, "a", "alice", "updates")
	env := envelope(nil, []string{"updates"}, `1`)
	first := store.Report{MessageID: env.ID, Targets: 1, Failed: 1, Pending: 1, At: f.now}.HandOn([][]string{{"a"}})
	if err := f.db.Store().PutReport(ctx, first); err != nil {
		t.Fatal(err)
	}
	env.FollowUp = pubsub.FollowUp{Connections: []string{"a"}, Attempt: 1}
	f.enqueue(t, env)
	overtaken := &overtakenReportStore{Store: f.db.Store()}
	f.broker.Store = overtaken
	var sleeps atomic.Int32
	f.broker.Sleep = func(context.Context, time.Duration) error { sleeps.Add(1); return nil }
	if out := f.broker.Handle(ctx, receiveOne(t, f.db.Queue(), time.Minute)); !out.Done {
		t.Fatalf("outcome %+v; want done", out)
	}
	if n, s := overtaken.replaces.Load(), sleeps.Load(); n != 10 || s != 9 {
		t.Errorf("%d report writes with %d backoffs; want 10 and 9 between them", n, s)
	}
}
