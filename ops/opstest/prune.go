package opstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/socks-dev/socks/ops"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// PruneHarness is what RunPrune needs from a backend.
type PruneHarness struct {
	// Store is the store under test. It must hold no connection records
	// and no expired chatter IDs when RunPrune starts, other than those
	// Live makes.
	Store store.Store
	// Pusher is the Management API of the gateway Live connects through
	// (or a FakePusher that Live marks live).
	Pusher store.Pusher
	// Live opens n live connections and returns their IDs. If their records
	// are not in Store when it returns (a fake gateway), RunPrune writes
	// them as just connected.
	Live func(t *testing.T, n int) []string
	// Total is how many connection records the suite works on, live ones
	// included (default 1000).
	Total int
	// LiveCount is how many of them are live (default 100).
	LiveCount int
	// Timeout bounds each Prune run (default 2 minutes).
	Timeout time.Duration
}

// The shares of the records that are dead without a Management API call.
const (
	tooOldShare  = 30 // percent: connected 3 h ago
	expiredShare = 15 // percent: connected 30 min ago, expired 5 min ago
)

// expiredChatterIDs is how many expired chatter IDs the suite seeds.
const expiredChatterIDs = 3

// expiredYearsAgo is how long ago the seeded records and chatter IDs that
// are past their expiry expired. A backend's own TTL may delete expired
// items at any moment (DynamoDB Local sweeps every 10 s), which would make
// the runs' counts fall short by whatever it took; but DynamoDB's TTL, and
// DynamoDB Local's, leaves alone items that expired over five years ago.
// So only Prune deletes them, and its counts can be checked exactly.
const expiredYearsAgo = 6

// population is the seeded state RunPrune expects to prune.
type population struct {
	tooOld, expired, gone, live []string
}

func (p population) total() int { return len(p.tooOld) + len(p.expired) + len(p.gone) + len(p.live) }

// RunPrune is the acceptance suite of ops.Prune. It seeds h.Store with
// h.Total connection records: some connected over 2 h ago, some expired
// (TTL lag; they expired years ago, so that the backend's own TTL leaves
// them to Prune), some whose connections are gone at the gateway (410), and
// h.LiveCount live ones, plus expired chatter IDs. Then it checks that
//
//   - a dry run reports exactly those counts and changes nothing;
//   - no Management API call is made for the records older than 2 h or
//     expired, and exactly one per younger record;
//   - two runs at once both finish without errors and together delete
//     exactly the dead records (each counting only what it deleted), keep
//     every live one, and leave the same state as one run;
//   - a run after that deletes nothing, and the live connections are still
//     live.
func RunPrune(t *testing.T, h PruneHarness) {
	t.Helper()
	if h.Total <= 0 {
		h.Total = 1000
	}
	if h.LiveCount <= 0 {
		h.LiveCount = 100
	}
	if h.Timeout <= 0 {
		h.Timeout = 2 * time.Minute
	}
	counting := NewCountingPusher(h.Pusher)
	pop := seed(t, h)
	young := append(slices.Clone(pop.gone), pop.live...)
	noCall := append(slices.Clone(pop.tooOld), pop.expired...)

	// prune runs ops.Prune; it may be called from any goroutine, so it
	// reports a failure with Errorf and returns ok false.
	prune := func(t *testing.T, dryRun bool) (ops.PruneResult, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), h.Timeout)
		defer cancel()
		res, err := ops.Prune(ctx, h.Store, counting, ops.PruneOptions{
			Now: time.Now(), DryRun: dryRun, Concurrency: 8, Segments: 4,
		})
		if err != nil {
			t.Errorf("Prune(dryRun=%v): %v (result %+v)", dryRun, err, res)
			return res, false
		}
		return res, true
	}
	checkCalls := func(t *testing.T, runs int) {
		t.Helper()
		for _, id := range noCall {
			if n := counting.Gets(id); n != 0 {
				t.Errorf("record %s is dead by age or expiry, but the Management API was asked %d times", id, n)
			}
		}
		for _, id := range young {
			if n := counting.Gets(id); n < 1 || n > runs {
				t.Errorf("record %s is younger than 2 h: want 1 to %d Management API calls, got %d", id, runs, n)
			}
		}
	}

	t.Run("a dry run reports every dead record and changes nothing", func(t *testing.T) {
		counting.Reset()
		res, ok := prune(t, true)
		if !ok {
			return
		}
		want := ops.PruneResult{
			DryRun:     true,
			Checked:    pop.total(),
			Deleted:    ops.PruneDeleted{TooOld: len(pop.tooOld), Expired: len(pop.expired), Gone: len(pop.gone)},
			Kept:       len(pop.live),
			ChatterIDs: expiredChatterIDs,
		}
		if !sameResult(res, want) {
			t.Errorf("dry run reported %+v\nwant %+v", res, want)
		}
		checkCalls(t, 1)
		if got := recordIDs(t, h.Store); len(got) != pop.total() {
			t.Errorf("after a dry run %d records are left; want all %d", len(got), pop.total())
		}
		if n := countExpiredChatterIDs(t, h.Store); n != expiredChatterIDs {
			t.Errorf("after a dry run %d expired chatter IDs are left; want %d", n, expiredChatterIDs)
		}
	})

	t.Run("two runs at once delete exactly the dead records between them", func(t *testing.T) {
		counting.Reset()
		var wg sync.WaitGroup
		results := make([]ops.PruneResult, 2)
		for i := range results {
			wg.Go(func() { results[i], _ = prune(t, false) })
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		var sum ops.PruneDeleted
		chatter := 0
		for i, res := range results {
			if res.Errors != 0 || res.Unchecked != 0 {
				t.Errorf("run %d: errors=%d unchecked=%d %v; want none", i+1, res.Errors, res.Unchecked, res.ErrorSamples)
			}
			if res.Kept != len(pop.live) {
				t.Errorf("run %d kept %d records as live; want %d", i+1, res.Kept, len(pop.live))
			}
			if got := res.Deleted.Total() + res.Vanished + res.Kept + res.Unchecked + res.Errors; got != res.Checked {
				t.Errorf("run %d: %+v does not add up to the %d records it checked", i+1, res, res.Checked)
			}
			sum.TooOld += res.Deleted.TooOld
			sum.Expired += res.Deleted.Expired
			sum.Gone += res.Deleted.Gone
			chatter += res.ChatterIDs
		}
		want := ops.PruneDeleted{TooOld: len(pop.tooOld), Expired: len(pop.expired), Gone: len(pop.gone)}
		switch {
		case sum == want && chatter == expiredChatterIDs:
		default:
			t.Errorf("the two runs deleted %+v and %d expired chatter IDs between them (%+v and %+v); want %+v and %d",
				sum, chatter, results[0].Deleted, results[1].Deleted, want, expiredChatterIDs)
		}
		checkCalls(t, 2)
	})

	t.Run("exactly the live records are left", func(t *testing.T) {
		got := recordIDs(t, h.Store)
		want := slices.Sorted(slices.Values(pop.live))
		if !slices.Equal(got, want) {
			t.Errorf("%d records left; want the %d live ones\nunexpected: %v\nmissing: %v", len(got), len(want), minus(got, want), minus(want, got))
		}
		if n := countExpiredChatterIDs(t, h.Store); n != 0 {
			t.Errorf("%d expired chatter IDs are left; want none", n)
		}
	})

	t.Run("another run deletes nothing and the live connections stay live", func(t *testing.T) {
		res, ok := prune(t, false)
		if !ok {
			return
		}
		want := ops.PruneResult{Checked: len(pop.live), Kept: len(pop.live)}
		if !sameResult(res, want) {
			t.Errorf("third run reported %+v; want %+v", res, want)
		}
		ctx, cancel := context.WithTimeout(context.Background(), h.Timeout)
		defer cancel()
		for _, id := range pop.live {
			if _, err := h.Pusher.Get(ctx, id); err != nil {
				t.Errorf("live connection %s: %v", id, err)
			}
		}
	})
}

// sameResult compares results, ignoring the error samples.
func sameResult(a, b ops.PruneResult) bool {
	a.ErrorSamples, b.ErrorSamples = nil, nil
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// seed writes the population and returns it.
func seed(t *testing.T, h PruneHarness) population {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), h.Timeout)
	defer cancel()
	var pop population
	pop.live = h.Live(t, h.LiveCount)
	if len(pop.live) != h.LiveCount {
		t.Fatalf("Live opened %d connections; want %d", len(pop.live), h.LiveCount)
	}
	now := time.Now().Truncate(time.Second)
	longAgo := now.AddDate(-expiredYearsAgo, 0, 0)
	for _, id := range pop.live {
		_, err := h.Store.GetConnection(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			err = h.Store.PutConnection(ctx, pubsub.Connection{
				ID: id, Geek: "prune-live", Topics: []string{"updates"},
				ConnectedAt: now, ExpiresAt: now.Add(pubsub.MaxConnectionDuration),
			})
		}
		if err != nil {
			t.Fatalf("live connection %s: %v", id, err)
		}
	}
	dead := h.Total - h.LiveCount
	nOld, nExpired := dead*tooOldShare/100, dead*expiredShare/100
	prefix := randomHex(4)
	for i := range dead {
		c := pubsub.Connection{Geek: fmt.Sprintf("prune-geek-%d", i%17), Topics: []string{[]string{"updates", "news", pubsub.AllTopics}[i%3]}}
		switch {
		case i < nOld:
			// Connected 3 h ago; expired long ago (see expiredYearsAgo),
			// though only the age counts for these.
			c.ID = fmt.Sprintf("old-%s-%04d", prefix, i)
			c.ConnectedAt, c.ExpiresAt = now.Add(-3*time.Hour), longAgo
			pop.tooOld = append(pop.tooOld, c.ID)
		case i < nOld+nExpired:
			// Connected 30 min ago and past its expiry: TTL lag.
			c.ID = fmt.Sprintf("exp-%s-%04d", prefix, i)
			c.ConnectedAt, c.ExpiresAt = now.Add(-30*time.Minute), longAgo
			pop.expired = append(pop.expired, c.ID)
		default:
			c.ID = fmt.Sprintf("gone-%s-%04d", prefix, i)
			c.ConnectedAt, c.ExpiresAt = now.Add(-10*time.Minute), now.Add(110*time.Minute)
			pop.gone = append(pop.gone, c.ID)
		}
		if err := h.Store.PutConnection(ctx, c); err != nil {
			t.Fatalf("seeding %s: %v", c.ID, err)
		}
	}
	for i := range expiredChatterIDs + 2 {
		// The expired ones expired long ago (see expiredYearsAgo).
		c := store.ChatterID{Geek: "prune-chatter", Hash: randomHex(32), IssuedAt: longAgo.Add(-24 * time.Hour), ExpiresAt: longAgo}
		if i >= expiredChatterIDs {
			c.IssuedAt, c.ExpiresAt = now.Add(-time.Hour), now.Add(24*time.Hour)
		}
		if err := h.Store.PutChatterID(ctx, c); err != nil {
			t.Fatalf("seeding a chatter ID: %v", err)
		}
	}
	if got := len(recordIDs(t, h.Store)); got != h.Total {
		t.Fatalf("seeded %d records; the store holds %d (was it empty?)", h.Total, got)
	}
	if n := countExpiredChatterIDs(t, h.Store); n != expiredChatterIDs {
		t.Fatalf("seeded %d expired chatter IDs; the store holds %d (was it empty?)", expiredChatterIDs, n)
	}
	return pop
}

// recordIDs returns the sorted IDs of every connection record, expired
// ones included.
func recordIDs(t *testing.T, s store.Store) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var mu sync.Mutex
	var ids []string
	err := s.ScanConnections(ctx, 2, func(page []pubsub.Connection) error {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range page {
			ids = append(ids, c.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ScanConnections: %v", err)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

func countExpiredChatterIDs(t *testing.T, s store.Store) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids, err := s.ListChatterIDs(ctx, "")
	if err != nil {
		t.Fatalf("ListChatterIDs: %v", err)
	}
	now := time.Now()
	n := 0
	for _, c := range ids {
		if c.Expired(now) {
			n++
		}
	}
	return n
}

// minus returns the elements of a (sorted) not in b, at most 10.
func minus(a, b []string) []string {
	var out []string
	for _, v := range a {
		if _, found := slices.BinarySearch(b, v); !found {
			out = append(out, v)
			if len(out) == 10 {
				break
			}
		}
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
