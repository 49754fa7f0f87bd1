package listen

import (
	"math/rand/v2"
	"time"

	"github.com/socks-dev/socks/internal/backoff"
)

// Backoff paces reconnects: exponential from Min, capped at Max, with
// equal jitter (backoff.EqualJitter: each delay is drawn from [d/2, d)) so
// that many listeners dropped together do not return together, and each
// wait is at least half its step, as socks.js's.
type Backoff struct {
	Min, Max time.Duration
	// Jitter returns a number in [0, 1) (default math/rand/v2).
	Jitter func() float64
}

// Default reconnect pacing.
const (
	defaultBackoffMin = 500 * time.Millisecond
	defaultBackoffMax = 30 * time.Second
)

// Delay is the wait before retry number attempt (0 for the first).
func (b Backoff) Delay(attempt int) time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = defaultBackoffMin
	}
	if hi <= 0 {
		hi = defaultBackoffMax
	}
	jitter := b.Jitter
	if jitter == nil {
		jitter = rand.Float64
	}
	return backoff.EqualJitter(attempt, lo, hi, jitter())
}
