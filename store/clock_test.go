package store

import (
	"context"
	"testing"
	"time"
)

// setClock is a Clock whose time the test sets.
type setClock struct{ at time.Time }

func (c *setClock) Now(context.Context) (time.Time, error) { return c.at, nil }

// TestAFollowedClockTellsTheStoresTimeBetweenSyncs: this machine's clock
// hours ahead of the store's, then set right (NTP) between two syncs.
func TestAFollowedClockTellsTheStoresTimeBetweenSyncs(t *testing.T) {
	aws := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	here := aws.Add(3 * time.Hour)
	f := &FollowedClock{Local: func() time.Time { return here }}
	if got := f.Now(); !got.Equal(here) {
		t.Errorf("never synced: %v; want this machine's %v", got, here)
	}
	c := &setClock{aws}
	if err := f.Sync(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	here, c.at = here.Add(time.Minute), aws.Add(time.Minute)
	if got := f.Now(); !got.Equal(c.at) {
		t.Errorf("a minute after the sync: %v; want the store's %v", got, c.at)
	}
	here = c.at // set right
	if err := f.Sync(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if got := f.Now(); !got.Equal(c.at) {
		t.Errorf("synced again after this machine's clock was set right: %v; want %v", got, c.at)
	}
}

// askedClock is a Store with a Clock that says each ask on asked.
type askedClock struct {
	Store
	at    time.Time
	asked chan struct{}
}

func (c askedClock) Now(context.Context) (time.Time, error) {
	c.asked <- struct{}{}
	return c.at, nil
}

// TestFollowEveryAsksAgainUntilStopped: a long-running process asks the
// store's clock again and again (this machine's may be set right
// meanwhile), and stop ends that; a store without a clock is this
// machine's.
func TestFollowEveryAsksAgainUntilStopped(t *testing.T) {
	aws := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	here := func() time.Time { return aws.Add(3 * time.Hour) }
	c := askedClock{at: aws, asked: make(chan struct{})}
	got := make(chan func() time.Time, 1)
	var stop func()
	go func() {
		now, s := FollowEvery(t.Context(), c, here, time.Millisecond, func(err error) { t.Error(err) })
		stop = s
		got <- now
	}()
	for i := range 3 {
		select {
		case <-c.asked:
		case <-time.After(10 * time.Second):
			t.Fatalf("asked %d times; want 3", i)
		}
	}
	now := <-got
	if !now().Equal(aws) {
		t.Errorf("now = %v; want the store's %v", now(), aws)
	}
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	for {
		select {
		case <-c.asked: // an ask under way when stop came
			continue
		case <-stopped:
		case <-time.After(10 * time.Second):
			t.Fatal("stop did not return")
		}
		break
	}
	if now, stop := FollowEvery(t.Context(), nil, here, time.Millisecond, nil); !now().Equal(here()) {
		t.Errorf("without a clock: %v; want this machine's", now())
	} else {
		stop()
	}
}

// TestAFollowedClockIsNotMovedByAWallClockStepBetweenSyncs: between two
// asks the time elapsed since the last one is measured by the monotonic
// clock, not the wall clock, which NTP may step meanwhile. A machine hours
// behind AWS (the difference kept at the sync) whose wall clock NTP then
// set right told a time hours ahead of AWS's until the next sync: a broker
// skipped every live record as expired, serve refused valid chatter IDs.
// Stepped back, it told a time hours behind.
func TestAFollowedClockIsNotMovedByAWallClockStepBetweenSyncs(t *testing.T) {
	aws := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, step := range []time.Duration{3 * time.Hour, -3 * time.Hour} {
		here := aws.Add(-step) // off by as much as NTP then steps it
		var elapsed time.Duration
		f := &FollowedClock{
			Local: func() time.Time { return here },
			since: func(time.Time) time.Duration { return elapsed },
		}
		if err := f.Sync(t.Context(), &setClock{aws}); err != nil {
			t.Fatal(err)
		}
		here, elapsed = here.Add(step+time.Minute), time.Minute
		if got, want := f.Now(), aws.Add(time.Minute); !got.Equal(want) {
			t.Errorf("the wall clock stepped %v a minute after the sync: Now = %v; want %v, the store's", step, got, want)
		}
	}
}
