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
