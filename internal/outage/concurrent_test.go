package outage

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socks-dev/socks/internal/lockedbuf"
)

// lines is what logs holds, a line each.
func lines(logs *lockedbuf.Buffer) []string {
	s := strings.TrimSpace(logs.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// TestFailuresFromManyGoroutinesAreOneOutage: a Log shared by
// goroutines that fail at once (the $connects of many clients while the
// state file cannot be written) logs one line when the outage starts,
// not one per goroutine, and its end counts every failure.
func TestFailuresFromManyGoroutinesAreOneOutage(t *testing.T) {
	var logs lockedbuf.Buffer
	now := time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)
	l := Log{Logger: slog.New(slog.NewTextHandler(&logs, nil)), What: "admitting", Now: func() time.Time { return now }}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				l.Failed(errors.New("full"))
				l.Passed(0) // a pass that began before the outage: ends nothing
			}
		})
	}
	wg.Wait()
	l.Passed(l.Begin())
	got := lines(&logs)
	if len(got) != 2 || !strings.Contains(got[0], `msg=admitting err=full`) || !strings.Contains(got[1], `msg="admitting again" failures=400`) {
		t.Errorf("logged %q; want the start and an end counting 400 failures", got)
	}
}

// TestAPassThatBeganBeforeAFailureDoesNotEndTheOutage: with tries that
// overlap, a try that passes says the failure is over only when it began
// after the outage's latest failure: one that began before the outage,
// or during it but before another failure (it read the store before the
// disk filled, or took the lock another try then waited for in vain),
// ends nothing, so that overlapping passes and failures do not log a
// start and an end for each failure.
func TestAPassThatBeganBeforeAFailureDoesNotEndTheOutage(t *testing.T) {
	var logs lockedbuf.Buffer
	now := time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)
	l := Log{Logger: slog.New(slog.NewTextHandler(&logs, nil)), What: "admitting", Now: func() time.Time { return now }}
	err := errors.New("full")

	before := l.Begin()
	l.Failed(err)
	l.Passed(before)
	during := l.Begin()
	now = now.Add(10 * time.Second)
	l.Failed(err)
	l.Passed(during)
	if got := lines(&logs); len(got) != 1 {
		t.Fatalf("logged %q; want the start alone: no pass began after the latest failure", got)
	}
	after := l.Begin()
	l.Passed(after)
	l.Passed(after) // twice: one end
	got := lines(&logs)
	if len(got) != 2 || !strings.Contains(got[1], `msg="admitting again" failures=2 after=10s`) {
		t.Fatalf("logged %q; want the start and one end after 2 failures in 10s", got)
	}
	// An outage after it is one of its own: a try from the last one
	// ends nothing.
	l.Failed(err)
	l.Passed(after)
	if got := lines(&logs); len(got) != 3 || !strings.Contains(got[2], `msg=admitting err=full`) {
		t.Fatalf("logged %q; want a second start and no end", got)
	}
}

// TestBetweenOutagesAPassCostsALoad: between outages, a try's Begin and
// Passed allocate nothing (and take no lock: Passed of a try begun
// between outages returns at once).
func TestBetweenOutagesAPassCostsALoad(t *testing.T) {
	l := Log{Logger: slog.New(slog.DiscardHandler), What: "admitting"}
	if n := testing.AllocsPerRun(100, func() { l.Passed(l.Begin()) }); n != 0 {
		t.Errorf("%v allocations a pass; want 0", n)
	}
}
