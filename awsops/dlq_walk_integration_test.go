package awsops

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/socks-dev/socks/store"
)

// walkQueue returns an SQSQueue on ElasticMQ whose reads of the dead
// letters take walk of them (as SQS's take 10,000), with n dead letters,
// and their IDs.
func walkQueue(t *testing.T, walk, n int) (*SQSQueue, []string) {
	t.Helper()
	q := newTestQueue(t, 0)
	q.opts.DeadLetterWalk = walk
	return q, deadLetters(t, q, n)
}

// TestAListingOfMoreDeadLettersThanAReadTakesSaysThereAreMore: on
// ElasticMQ, a listing of 7 dead letters by reads of 5 lists 5 and says
// there are more and what to do; one of exactly 5, or one asked for 3 of
// 7, says nothing of more. Before, a listing stopped at the bound and
// said nothing.
func TestAListingOfMoreDeadLettersThanAReadTakesSaysThereAreMore(t *testing.T) {
	q, _ := walkQueue(t, 5, 7)
	dls, err := q.ListDeadLettersHeld(t.Context(), 0)
	if len(dls) != 5 || !errors.Is(err, store.ErrDeadLettersUnread) ||
		!strings.Contains(err.Error(), "listed the first 5 dead letters read, and there are more") || !strings.Contains(err.Error(), "run it again") {
		t.Errorf("listing 7 by reads of 5 = %d, %v; want 5 and an error saying there are more, and to run it again", len(dls), err)
	}
	if dls, err := q.ListDeadLettersHeld(t.Context(), 3); len(dls) != 3 || err != nil {
		t.Errorf("listing 3 of 7 = %d, %v; want 3 and no error", len(dls), err)
	}
	// The one read past the bound to know of more is visible again.
	if dls, err := q.ListDeadLettersHeld(t.Context(), 0); len(dls) != 5 || !errors.Is(err, store.ErrDeadLettersUnread) {
		t.Errorf("listing them again = %d, %v; want 5 and more", len(dls), err)
	}
	exact, _ := walkQueue(t, 5, 5)
	if dls, err := exact.ListDeadLettersHeld(t.Context(), 0); len(dls) != 5 || err != nil {
		t.Errorf("listing exactly 5 by reads of 5 = %d, %v; want 5 and no error", len(dls), err)
	}
}

// TestAMistypedIDAmongExactlyAReadOfDeadLettersIsMissing: on ElasticMQ,
// with exactly as many dead letters as a read takes, an ID that is none
// of them is not one (found false, no error: `dlq show` exits 3), for a
// lookup, a redrive and a purge; with one more, it may be past them
// (store.ErrDeadLettersUnread). Before, a read that reached its bound
// took it that there were more: an ID among exactly 10,000 was "not
// among the first 10,000 read" (exit 1).
func TestAMistypedIDAmongExactlyAReadOfDeadLettersIsMissing(t *testing.T) {
	q, _ := walkQueue(t, 5, 5)
	ids := []string{"no-such-id"}
	if _, found, err := q.FindDeadLetter(t.Context(), ids[0]); found || err != nil {
		t.Errorf("FindDeadLetter of a mistyped ID among exactly 5 = %v, %v; want not found, no error", found, err)
	}
	if n, err := q.Redrive(t.Context(), ids); n != 0 || err != nil {
		t.Errorf("Redrive of a mistyped ID among exactly 5 = %d, %v; want 0, no error", n, err)
	}
	if n, err := q.PurgeDeadLetters(t.Context(), ids); n != 0 || err != nil {
		t.Errorf("PurgeDeadLetters of a mistyped ID among exactly 5 = %d, %v; want 0, no error", n, err)
	}
	more, _ := walkQueue(t, 5, 6)
	if _, found, err := more.FindDeadLetter(t.Context(), ids[0]); found || !errors.Is(err, store.ErrDeadLettersUnread) {
		t.Errorf("FindDeadLetter of a mistyped ID among 6 by reads of 5 = %v, %v; want store.ErrDeadLettersUnread", found, err)
	}
}

// TestAPurgeOfAllGoesOnUntilNoneAreLeft: on ElasticMQ, a purge of all 12
// dead letters by reads of 5 reads again until none are left, telling
// its count so far across the reads, and leaves none. Before, it purged
// the first read's and said nothing of the rest (`purge --all` printed
// "purged 10000" and exited 0 with more there).
func TestAPurgeOfAllGoesOnUntilNoneAreLeft(t *testing.T) {
	q, _ := walkQueue(t, 5, 12)
	var told []int
	n, err := q.PurgeEach(t.Context(), nil, func(n int) { told = append(told, n) })
	if n != 12 || err != nil {
		t.Fatalf("PurgeEach of all 12 by reads of 5 = %d, %v; want 12, no error", n, err)
	}
	if len(told) == 0 || told[len(told)-1] != 12 || !slices.IsSorted(told) {
		t.Errorf("PurgeEach told %v; want counts so far, rising, to 12", told)
	}
	if dls, err := q.ListDeadLettersHeld(t.Context(), 0); len(dls) != 0 || err != nil {
		t.Errorf("after the purge: %d dead letters, %v; want none", len(dls), err)
	}
}

// TestARedriveOfAllSaysThereAreMore: on ElasticMQ, a redrive of all 7
// dead letters by reads of 5 redrives 5, once each, and says there are
// more and to run it again (store.ErrDeadLettersUnread), which redrives
// the other 2. It reads once: a second read could take back one it had
// just redriven and that failed again. Before, it stopped at the bound
// and said nothing.
func TestARedriveOfAllSaysThereAreMore(t *testing.T) {
	q, _ := walkQueue(t, 5, 7)
	n, err := q.Redrive(t.Context(), nil)
	if n != 5 || !errors.Is(err, store.ErrDeadLettersUnread) ||
		!strings.Contains(err.Error(), "redrove the first 5 dead letters read, and there are more") || !strings.Contains(err.Error(), "run it again") {
		t.Errorf("Redrive of all 7 by reads of 5 = %d, %v; want 5 and an error saying there are more, and to run it again", n, err)
	}
	if n, err := q.Redrive(t.Context(), nil); n != 2 || err != nil {
		t.Errorf("Redrive again = %d, %v; want the other 2, no error", n, err)
	}
	got := drain(t, q)
	if len(got) != 7 {
		t.Errorf("the queue got %v; want each of the 7 once", got)
	}
	for body, k := range got {
		if k != 1 {
			t.Errorf("%s came back %d times", body, k)
		}
	}
}
