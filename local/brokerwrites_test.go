package local

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/socks-dev/socks/broker"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// refuseWrites makes every connection of db's pool refuse writes as
// SQLite does those of a file it may not write (SQLITE_READONLY), or
// take them again: a state file that takes no writes at all, whatever
// they need (a full disk refuses only the writes that need room).
func refuseWrites(db *DB, refuse bool) error {
	if refuse {
		return execOnEveryConn(db, "PRAGMA query_only = 1")
	}
	return execOnEveryConn(db, "PRAGMA query_only = 0")
}

// postRecorder is a Pusher that counts posts by connection, answers them
// with err (nil: delivered), and calls then, once, after the first.
type postRecorder struct {
	mu    sync.Mutex
	posts map[string]int
	err   error
	then  func()
}

func (p *postRecorder) Post(_ context.Context, id string, _ []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.posts == nil {
		p.posts = map[string]int{}
	}
	p.posts[id]++
	if p.then != nil {
		p.then()
		p.then = nil
	}
	return p.err
}

func (p *postRecorder) count(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.posts[id]
}

func (p *postRecorder) Get(context.Context, string) (store.ConnectionInfo, error) {
	return store.ConnectionInfo{}, nil
}
func (p *postRecorder) Delete(context.Context, string) error { return nil }

// TestAMessageWhoseStateFileStopsTakingWritesIsNotLost: the local
// broker's writes after a fan-out (the report, the delete of the handled
// message, the dead letter of one that failed for good) fail while the
// state file takes no writes; the message is kept, nothing is reported
// or acknowledged that was not written, and once the file takes writes
// again the message is handled again: delivered at least once, or
// dead-lettered by the queue itself with its report, never lost.
func TestAMessageWhoseStateFileStopsTakingWritesIsNotLost(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	setup := func(t *testing.T, maxReceives int) (*DB, *fakeClock, string) {
		clock := &fakeClock{t: time.Now()}
		db := openTest(t, Options{Now: clock.Now, MaxReceives: maxReceives})
		ctx := t.Context()
		if err := db.Store().PutConnection(ctx, pubsub.Connection{ID: "c1", Geek: "alice", Topics: []string{"t"}, ConnectedAt: clock.Now()}); err != nil {
			t.Fatal(err)
		}
		data, err := pubsub.Envelope{ID: "m-1", Topics: []string{"t"}, Body: json.RawMessage(`1`)}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Queue().Send(ctx, data); err != nil {
			t.Fatal(err)
		}
		return db, clock, "m-1"
	}
	receive := func(t *testing.T, db *DB) store.Message {
		t.Helper()
		msgs, err := db.Queue().Receive(t.Context(), 10, time.Minute, 0)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("Receive = %d messages, %v; want the one sent", len(msgs), err)
		}
		return msgs[0]
	}

	t.Run("delivered, then its report and delete fail: delivered again once writes pass", func(t *testing.T) {
		db, clock, id := setup(t, 0)
		p := &postRecorder{}
		p.then = func() {
			if err := refuseWrites(db, true); err != nil {
				t.Error(err)
			}
		}
		b := &broker.Broker{Store: db.Store(), Queue: db.Queue(), Pusher: p, Now: clock.Now, Logger: quiet}
		out := b.Handle(t.Context(), receive(t, db))
		if !out.Done || p.count("c1") != 1 {
			t.Fatalf("outcome %+v after %d posts; want delivered once", out, p.count("c1"))
		}
		if st, err := db.Queue().Stats(t.Context()); err != nil || st.InFlight != 1 {
			t.Fatalf("queue %+v, %v; want the message kept (its delete failed)", st, err)
		}
		if _, err := db.Store().GetReport(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("report: %v; want none (its write failed)", err)
		}
		if err := refuseWrites(db, false); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
		out = b.Handle(t.Context(), receive(t, db))
		if !out.Done || p.count("c1") != 2 {
			t.Errorf("outcome %+v after %d posts; want delivered again", out, p.count("c1"))
		}
		if st, err := db.Queue().Stats(t.Context()); err != nil || st.Visible+st.InFlight+st.Dead != 0 {
			t.Errorf("queue %+v, %v; want the message deleted once handled with writes passing", st, err)
		}
		if rep, err := db.Store().GetReport(t.Context(), id); err != nil || rep.Delivered != 1 {
			t.Errorf("report %+v, %v; want delivered=1", rep, err)
		}
	})

	t.Run("failed on its last receive, then its dead letter fails: the queue dead-letters it once writes pass", func(t *testing.T) {
		db, clock, id := setup(t, 1)
		p := &postRecorder{err: &store.PushError{Kind: store.KindForbidden, Err: errors.New("403")}}
		p.then = func() {
			if err := refuseWrites(db, true); err != nil {
				t.Error(err)
			}
		}
		b := &broker.Broker{Store: db.Store(), Queue: db.Queue(), Pusher: p, Now: clock.Now, Logger: quiet, MaxReceives: 1}
		out := b.Handle(t.Context(), receive(t, db))
		if out.Done || out.DeadLettered {
			t.Fatalf("outcome %+v; want neither done nor dead-lettered (the move failed)", out)
		}
		if st, err := db.Queue().Stats(t.Context()); err != nil || st.InFlight+st.Visible != 1 || st.Dead != 0 {
			t.Fatalf("queue %+v, %v; want the message kept on the queue", st, err)
		}
		if err := refuseWrites(db, false); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
		if msgs, err := db.Queue().Receive(t.Context(), 10, time.Minute, 0); err != nil || len(msgs) != 0 {
			t.Fatalf("Receive = %d messages, %v; want none: past its receives, the queue dead-letters it", len(msgs), err)
		}
		if st, err := db.Queue().Stats(t.Context()); err != nil || st.Dead != 1 || st.Visible+st.InFlight != 0 {
			t.Errorf("queue %+v, %v; want the message among the dead letters", st, err)
		}
		if rep, err := db.Store().GetReport(t.Context(), id); err != nil || !rep.DeadLettered {
			t.Errorf("report %+v, %v; want it dead-lettered", rep, err)
		}
	})
}
