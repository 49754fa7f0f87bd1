package local

import (
	"fmt"
	"testing"
	"time"

	"github.com/socks-dev/socks/store"
)

// deadLetterAt dead-letters a message sent and failed at the clock's time.
func deadLetterAt(t *testing.T, db *DB, body string) string {
	t.Helper()
	ctx := t.Context()
	q := db.Queue()
	id, err := q.Send(ctx, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := q.Receive(ctx, 1, time.Minute, 0)
	if err != nil || len(msgs) != 1 || msgs[0].ID != id {
		t.Fatalf("Receive = %v, %v; want %s", msgs, err, id)
	}
	if err := q.DeadLetter(ctx, msgs[0], "test"); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestDeadLettersAreKeptAsLongAsOnSQS: a dead letter stays in the file
// for store.DeadLetterRetention after it failed (14 days, the retention
// of socks's dead-letter queue on AWS) and DeleteExpiredDeadLetters
// removes it from then on, in write transactions of at most
// expiredBatch letters, so that a pile of them holds the file from other
// writers one batch at a time. The younger ones stay.
func TestDeadLettersAreKeptAsLongAsOnSQS(t *testing.T) {
	if store.DeadLetterRetention != 14*24*time.Hour {
		t.Fatalf("store.DeadLetterRetention = %s; want 14 days, the dead-letter queue's retention on AWS", store.DeadLetterRetention)
	}
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: t0}
	db := openTest(t, Options{Now: clock.Now})
	q := db.Queue()
	ctx := t.Context()
	var old []string
	for i := range 25 {
		old = append(old, deadLetterAt(t, db, fmt.Sprintf(`{"old":%d}`, i)))
	}
	clock.Advance(time.Hour)
	young := deadLetterAt(t, db, `{"young":1}`)
	left := func() map[string]bool {
		t.Helper()
		dls, err := q.ListDeadLetters(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, d := range dls {
			ids[d.ID] = true
			if want := d.FailedAt.Add(store.DeadLetterRetention); !d.ExpiresAt().Equal(want) {
				t.Errorf("dead letter %s expires at %s; want %s", d.ID, d.ExpiresAt(), want)
			}
		}
		return ids
	}

	// A millisecond before their retention ends, all are kept.
	n, err := q.DeleteExpiredDeadLetters(ctx, t0.Add(store.DeadLetterRetention-time.Millisecond))
	if err != nil || n != 0 {
		t.Fatalf("a millisecond before the retention ends: DeleteExpiredDeadLetters = %d, %v; want 0", n, err)
	}
	if ids := left(); len(ids) != 26 {
		t.Fatalf("%d dead letters left; want all 26", len(ids))
	}

	// prune-stale --dry-run counts what a run would delete, at the same
	// edge, without reading the letters.
	for _, tt := range []struct {
		at   time.Time
		want int
	}{{t0.Add(store.DeadLetterRetention - time.Millisecond), 0}, {t0.Add(store.DeadLetterRetention), len(old)}, {t0.Add(store.DeadLetterRetention + time.Hour), len(old) + 1}} {
		if n, err := q.CountExpiredDeadLetters(ctx, tt.at); err != nil || n != tt.want {
			t.Errorf("CountExpiredDeadLetters at t0+%s = %d, %v; want %d", tt.at.Sub(t0), n, err, tt.want)
		}
	}

	db.expiredBatch = 10
	before := db.writes
	n, err = q.DeleteExpiredDeadLetters(ctx, t0.Add(store.DeadLetterRetention))
	if err != nil || n != len(old) {
		t.Fatalf("at the end of their retention: DeleteExpiredDeadLetters = %d, %v; want %d", n, err, len(old))
	}
	if writes := db.writes - before; writes != 3 {
		t.Errorf("25 old dead letters were deleted in %d write transactions; want 3 of at most 10", writes)
	}
	ids := left()
	if len(ids) != 1 || !ids[young] {
		t.Errorf("dead letters left %v; want only %s, which failed an hour later", ids, young)
	}
	st, err := q.Stats(ctx)
	if err != nil || st.Dead != 1 {
		t.Errorf("Stats = %+v, %v; want 1 dead letter", st, err)
	}
}
