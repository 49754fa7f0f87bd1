// Package backoff is the one retry wait of the code base: full-jitter
// exponential backoff, bounded, and a sleep that ends with its context.
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
