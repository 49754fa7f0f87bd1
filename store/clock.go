package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// FollowedClock tells the time by a store's clock (Clock) between asks:
// the time the store last answered with plus the time elapsed since, by
// the monotonic clock (time.Now's readings carry one), so that the wall
// clock stepped meanwhile (NTP setting it right) moves it neither way. A
// machine that slept meanwhile, whose monotonic clock stood still, tells
// an earlier time until the next ask: never a later one. Its zero value,
// never synced, is this machine's clock (Local, or time.Now).
type FollowedClock struct {
	// Local is this machine's clock (nil: time.Now).
	Local  func() time.Time
	synced atomic.Pointer[syncedAt]
	// since, set by tests, measures the monotonic time elapsed since a
	// reading of Local (default: Local's reading now less it, by their
	// monotonic readings when both carry one).
	since func(time.Time) time.Duration
}

// syncedAt is a sync: the store's time, and Local's reading once the
// store had answered.
type syncedAt struct{ at, local time.Time }

func (f *FollowedClock) local() time.Time {
	if f.Local != nil {
		return f.Local()
	}
	return time.Now()
}

// Now returns the time by the store's clock as last synced.
func (f *FollowedClock) Now() time.Time {
	s := f.synced.Load()
	if s == nil {
		return f.local()
	}
	if f.since != nil {
		return s.at.Add(f.since(s.local))
	}
	return s.at.Add(f.local().Sub(s.local))
}

// Sync asks c the time and keeps it with this machine's reading, taken
// once c has answered, so that Now is never later than c's time. A
// failed ask keeps the sync there was.
func (f *FollowedClock) Sync(ctx context.Context, c Clock) error {
	at, err := c.Now(ctx)
	if err != nil {
		return err
	}
	f.synced.Store(&syncedAt{at: at, local: f.local()})
	return nil
}

// NowBy returns the time by s's clock when s is a Clock, else local's:
// what judges or writes the times of s's records goes by it. When the
// store's clock cannot be read it returns local's time with the error:
// a caller about to use the same table fails there in its own words.
func NowBy(ctx context.Context, s Store, local func() time.Time) (time.Time, error) {
	if c, ok := s.(Clock); ok {
		at, err := c.Now(ctx)
		if err != nil {
			return local(), fmt.Errorf("reading the time by the store's clock: %w", err)
		}
		return at, nil
	}
	return local(), nil
}

// Follow syncs f with s's clock when s is a Clock and returns the time
// by f. A clock that cannot be read keeps what f had (never synced, this
// machine's): a caller about to use the same store fails there in its
// own words.
func (f *FollowedClock) Follow(ctx context.Context, s Store) time.Time {
	if c, ok := s.(Clock); ok {
		_ = f.Sync(ctx, c)
	}
	return f.Now()
}

// ClockSync is how often a long-running process (a broker, serve) asks
// the store's clock the time again: this machine's may be set right, or
// drift, meanwhile.
const ClockSync = time.Minute

// FollowEvery follows s's clock when s is a Clock: it syncs at once and
// then every `every` until stop is called, telling failed of each ask
// that fails (the last sync is kept; never synced, it is
// local's). now is the time by it. When s has no clock, now is local.
func FollowEvery(ctx context.Context, s Store, local func() time.Time, every time.Duration, failed func(error)) (now func() time.Time, stop func()) {
	c, ok := s.(Clock)
	if !ok {
		return local, func() {}
	}
	clock := &FollowedClock{Local: local}
	if err := clock.Sync(ctx, c); err != nil && ctx.Err() == nil {
		failed(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := clock.Sync(ctx, c); err != nil && ctx.Err() == nil {
					failed(err)
				}
			}
		}
	}()
	return clock.Now, func() { cancel(); <-done }
}
