// Package backoff is the one retry wait of the code base: exponential
// backoff, bounded, with full jitter (the retries of a server's callers) or
// equal jitter (a client's reconnects, which have a floor), and a sleep
// that ends with its context.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// FullJitter is a random wait in (0, min(base<<shift, max)]: the full-jitter
// backoff that spreads the retries of many callers apart.
func FullJitter(shift int, base, max time.Duration) time.Duration {
	d := base << min(max0(shift), 16)
	if d > max || d <= 0 {
		d = max
	}
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

// EqualJitter is a wait in [d/2, d) where d is base doubled shift times,
// at most max (raised to base when below it): "equal jitter", which
// spreads apart the reconnects of many clients dropped together while
// keeping each wait at least half its step, so that they grow. u is the
// random draw in [0, 1): rand.Float64(), or a fixed one in tests.
func EqualJitter(shift int, base, max time.Duration, u float64) time.Duration {
	if max < base {
		max = base
	}
	d := base
	for i := 0; i < shift && d < max; i++ {
		if d > max/2 {
			d = max
			break
		}
		d *= 2
	}
	d = min(d, max)
	half := d / 2
	return half + time.Duration(float64(d-half)*u)
}

func max0(n int) int {
	if n < 0 {
		return 0
	}
	return n
}

// Sleep waits d, or less when ctx ends first, in which case it returns the
// context's error.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
