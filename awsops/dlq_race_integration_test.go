package awsops

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/socks-dev/socks/store"
)

// deadLetters puts n messages in q's dead letters and returns their IDs.
func deadLetters(t *testing.T, q *SQSQueue, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		if _, err := q.Send(t.Context(), fmt.Appendf(nil, `{"users":["u"],"topics":["t"],"body":"%d"}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	for len(ids) < n {
		msgs, err := q.Receive(t.Context(), store.MaxBatch, time.Minute, time.Second)
		if err != nil || len(msgs) == 0 {
			t.Fatalf("receive: %d messages, %v", len(msgs), err)
		}
		for _, m := range msgs {
			if err := q.DeadLetter(t.Context(), m, "test"); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// drain receives every message on q's main queue and counts each body.
func drain(t *testing.T, q *SQSQueue) map[string]int {
	t.Helper()
	got := make(map[string]int)
	for range 100 {
		msgs, err := q.Receive(t.Context(), store.MaxBatch, time.Minute, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			got[string(m.Body)]++
		}
	}
	return got
}

func TestTwoRedrivesAtOnceMoveEachDeadLetterOnce(t *testing.T) {
	q := newTestQueue(t, 0)
	const n = 30
	deadLetters(t, q, n)
	var wg sync.WaitGroup
	moved := make([]int, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { moved[i], errs[i] = q.Redrive(t.Context(), nil) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil && !errors.Is(err, store.ErrDeadLettersHeld) {
			t.Errorf("redrive %d: %v", i, err)
		}
	}
	if moved[0]+moved[1] != n {
		t.Errorf("the redrives moved %d and %d; want %d in all", moved[0], moved[1], n)
	}
	got := drain(t, q)
	if len(got) != n {
		t.Errorf("%d distinct messages on the queue; want %d", len(got), n)
	}
	for b, c := range got {
		if c != 1 {
			t.Errorf("%s is on the queue %d times", b, c)
		}
	}
	if st, err := q.Stats(t.Context()); err != nil || st.Dead != 0 {
		t.Errorf("Stats = %+v, %v; want no dead letters left", st, err)
	}
}

func TestARedriveAndAPurgeOfOneDeadLetterAtOnce(t *testing.T) {
	q := newTestQueue(t, 0)
	ids := deadLetters(t, q, 3)
	var wg sync.WaitGroup
	var redriven, purged int
	var rerr, perr error
	wg.Go(func() { redriven, rerr = q.Redrive(t.Context(), ids[1:2]) })
	wg.Go(func() { purged, perr = q.PurgeDeadLetters(t.Context(), ids[1:2]) })
	wg.Wait()
	for _, err := range []error{rerr, perr} {
		if err != nil && !errors.Is(err, store.ErrDeadLettersHeld) {
			t.Errorf("unexpected failure: %v", err)
		}
	}
	if redriven+purged != 1 {
		t.Errorf("redriven %d (%v), purged %d (%v); want the one dead letter taken by one of them", redriven, rerr, purged, perr)
	}
	if got := drain(t, q); len(got) != redriven {
		t.Errorf("%d messages on the queue; want %d", len(got), redriven)
	}
	if dls, err := q.ListDeadLetters(t.Context(), 0); err != nil || len(dls) != 2 {
		t.Errorf("ListDeadLetters = %d, %v; want the 2 others", len(dls), err)
	}
}

// TestADeadLetterHeldByAnotherWalkIsNotSaidToBeMissing: while another
// command walks the dead letters (a dlq list, socks status), a redrive or
// purge of one of them fails saying so, instead of answering that there is
// no such dead letter (exit 3), and takes it once the walk lets go.
func TestADeadLetterHeldByAnotherWalkIsNotSaidToBeMissing(t *testing.T) {
	q := newTestQueue(t, 0)
	ids := deadLetters(t, q, 2)
	held, _, _, err := q.walkDeadLetters(t.Context(), maxDeadLetterWalk, new(time.Time))
	if err != nil || len(held) != 2 {
		t.Fatalf("walk = %d, %v", len(held), err)
	}
	n, err := q.Redrive(t.Context(), ids[:1])
	if n != 0 || !errors.Is(err, store.ErrDeadLettersHeld) {
		t.Errorf("Redrive during a walk = %d, %v; want 0 and store.ErrDeadLettersHeld", n, err)
	}
	n, err = q.PurgeDeadLetters(t.Context(), nil)
	if n != 0 || !errors.Is(err, store.ErrDeadLettersHeld) {
		t.Errorf("PurgeDeadLetters(all) during a walk = %d, %v; want 0 and store.ErrDeadLettersHeld", n, err)
	}
	if err := q.release(t.Context(), held); err != nil {
		t.Fatal(err)
	}
	var moved []string
	n, err = q.RedriveEach(t.Context(), ids[:1], func(d store.DeadLetter) { moved = append(moved, d.ID+" "+string(d.Body)) })
	if n != 1 || err != nil || len(moved) != 1 || moved[0] != ids[0]+` {"users":["u"],"topics":["t"],"body":"0"}` {
		t.Errorf("RedriveEach after the walk = %d, %v, told of %q; want 1, %s", n, err, moved, ids[0])
	}
}

// TestAPurgeTellsHowManySoFar: PurgeEach tells its caller the running
// count after each call of ten, so that a purge of thousands shows its
// progress as a redrive does.
func TestAPurgeTellsHowManySoFar(t *testing.T) {
	q := newTestQueue(t, 0)
	deadLetters(t, q, 25)
	var told []int
	n, err := q.PurgeEach(t.Context(), nil, func(n int) { told = append(told, n) })
	if n != 25 || err != nil || fmt.Sprint(told) != "[10 20 25]" {
		t.Errorf("PurgeEach = %d, %v, told %v; want 25, told [10 20 25]", n, err, told)
	}
}

// TestARedriveAndAPurgeThatExtendTheirHoldTakeEachDeadLetterOnce: on
// ElasticMQ, a redrive and a purge whose clock says their hold is due
// before every batch (10 s a look) extend it with the receipts of their
// walk: SQS takes them, none is said taken, each dead letter is sent back
// once or purged.
func TestARedriveAndAPurgeThatExtendTheirHoldTakeEachDeadLetterOnce(t *testing.T) {
	q := newTestQueue(t, 0)
	var mu sync.Mutex
	at := time.Unix(1e9, 0)
	q.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		at = at.Add(keepHold)
		return at
	}
	deadLetters(t, q, 25)
	n, err := q.Redrive(t.Context(), nil)
	if n != 25 || err != nil {
		t.Errorf("Redrive = %d, %v; want 25, nil", n, err)
	}
	got := drain(t, q)
	if len(got) != 25 {
		t.Errorf("%d messages on the queue; want the 25 redriven", len(got))
	}
	for body, c := range got {
		if c != 1 {
			t.Errorf("%s on the queue %d times; want once", body, c)
		}
	}
	deadLetters(t, q, 25)
	n, err = q.PurgeDeadLetters(t.Context(), nil)
	if n != 25 || err != nil {
		t.Errorf("PurgeDeadLetters = %d, %v; want 25, nil", n, err)
	}
	if dls, err := q.ListDeadLetters(t.Context(), 0); err != nil || len(dls) != 0 {
		t.Errorf("ListDeadLetters = %d, %v; want none left", len(dls), err)
	}
}

// TestAHoldAnotherWalkTookCannotBeExtended: on ElasticMQ, once a walk's
// hold has run out (made visible here) and another walk received its dead
// letters, extending the first walk's hold is refused for each, and each
// is marked taken: a redrive does not send them back.
func TestAHoldAnotherWalkTookCannotBeExtended(t *testing.T) {
	q := newTestQueue(t, 0)
	deadLetters(t, q, 3)
	var extended time.Time
	dms, _, _, err := q.walkDeadLetters(t.Context(), maxDeadLetterWalk, &extended)
	if err != nil || len(dms) != 3 {
		t.Fatalf("walk = %d, %v", len(dms), err)
	}
	if err := q.release(t.Context(), dms); err != nil {
		t.Fatal(err)
	}
	other, _, _, err := q.walkDeadLetters(t.Context(), maxDeadLetterWalk, new(time.Time))
	if err != nil || len(other) != 3 {
		t.Fatalf("the other walk = %d, %v", len(other), err)
	}
	t.Cleanup(func() { _ = q.release(context.Background(), other) })
	deadURL, err := q.deadURL(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	q.keepHeld(t.Context(), deadURL, dms, new(time.Time))
	for _, d := range dms {
		if !d.taken {
			t.Errorf("dead letter %s: its hold was extended with the receipt of a walk another has since taken it from; want it marked taken", d.letter.ID)
		}
	}
}
