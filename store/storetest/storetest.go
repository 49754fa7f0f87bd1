// Package storetest is the conformance suite of the store.Store and
// store.Queue seams. Every backend runs the same suite from its own tests:
//
//	func TestStore(t *testing.T) {
//		storetest.RunStore(t, func(t *testing.T) store.Store { return newEmptyStore(t) })
//	}
//	func TestQueue(t *testing.T) {
//		storetest.RunQueue(t, func(t *testing.T, o storetest.QueueOptions) store.Queue { return newEmptyQueue(t, o) })
//	}
//
// The factories are called once per subtest, from parallel subtests, and must
// return a fresh, empty instance that no other subtest sees; they register
// their own cleanup with t.Cleanup.
//
// Store tests pass a fixed time (Now, in the future so that a backend's own
// TTL sweeper never removes rows under a test) wherever the interface takes
// one, and use whole seconds so that backends storing seconds pass too.
// Queue tests use the backend's real clock: short visibility timeouts (1 s)
// and bounded polling, never long fixed sleeps, so that each subtest takes at
// most a few seconds against SQS-like backends too.
package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/pubsub"
)

// Now is the fixed "current time" the store tests pass to the interface.
var Now = time.Date(2040, time.March, 4, 5, 6, 7, 0, time.UTC)

// checkConnection fails t unless got is want: same ID, geek, times and the
// same set of topics (backends need not keep topic order).
func checkConnection(t *testing.T, got, want pubsub.Connection) {
	t.Helper()
	if got.ID != want.ID || got.Geek != want.Geek {
		t.Errorf("got connection %s of %q, want %s of %q", got.ID, got.Geek, want.ID, want.Geek)
	}
	if !sameTime(got.ConnectedAt, want.ConnectedAt) {
		t.Errorf("connection %s: ConnectedAt = %v, want %v", want.ID, got.ConnectedAt, want.ConnectedAt)
	}
	if !sameTime(got.ExpiresAt, want.ExpiresAt) {
		t.Errorf("connection %s: ExpiresAt = %v, want %v", want.ID, got.ExpiresAt, want.ExpiresAt)
	}
	if g, w := sortedSet(got.Topics), sortedSet(want.Topics); !slices.Equal(g, w) {
		t.Errorf("connection %s: topics = %q, want %q", want.ID, g, w)
	}
}

// sameTime compares instants, treating two zero times as equal.
func sameTime(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() && b.IsZero()
	}
	return a.Equal(b)
}

// sortedSet returns s sorted without repeats (nil for an empty s).
func sortedSet(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// connIDs returns the sorted IDs of conns.
func connIDs(conns []pubsub.Connection) []string {
	out := make([]string, len(conns))
	for i, c := range conns {
		out[i] = c.ID
	}
	slices.Sort(out)
	return out
}

// eventually polls cond until it holds or timeout passes; it reports what
// cond last said when it gives up. Backends with eventually consistent
// counts (SQS) need it; exact backends pass at the first try.
func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// quote formats names for messages.
func quote(s []string) string { return "[" + strings.Join(s, " ") + "]" }
