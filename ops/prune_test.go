package ops_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/ops"
	"github.com/socks-dev/socks/ops/opstest"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// openDB opens a fresh local state file, closed when the test ends.
func openDB(t *testing.T, opts local.Options) *local.DB {
	t.Helper()
	db, err := local.Open(context.Background(), filepath.Join(t.TempDir(), "socks.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newStore(t *testing.T) store.Store { return openDB(t, local.Options{}).Store() }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestPruneOnTheLocalStore runs the acceptance suite against the embedded
// store, with a fake Management API that knows which connections are live.
func TestPruneOnTheLocalStore(t *testing.T) {
	fake := opstest.NewFakePusher()
	opstest.RunPrune(t, opstest.PruneHarness{
		Store:  newStore(t),
		Pusher: fake,
		Live: func(t *testing.T, n int) []string {
			ids := make([]string, n)
			for i := range ids {
				ids[i] = fmt.Sprintf("live-%04d", i)
			}
			fake.SetLive(store.ConnectionInfo{}, ids...)
			return ids
		},
	})
}

var now = time.Date(2030, time.June, 1, 12, 0, 0, 0, time.UTC)

func conn(id string, connectedAgo, expiresIn time.Duration) pubsub.Connection {
	return pubsub.Connection{ID: id, Geek: "alice", Topics: []string{"updates"},
		ConnectedAt: now.Add(-connectedAgo), ExpiresAt: now.Add(expiresIn)}
}

func put(t *testing.T, s store.Store, conns ...pubsub.Connection) {
	t.Helper()
	for _, c := range conns {
		if err := s.PutConnection(ctxT(t), c); err != nil {
			t.Fatal(err)
		}
	}
}

func ids(t *testing.T, s store.Store) []string {
	t.Helper()
	var mu sync.Mutex
	var out []string
	err := s.ScanConnections(ctxT(t), 1, func(page []pubsub.Connection) error {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range page {
			out = append(out, c.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name   string
		c      pubsub.Connection
		maxAge time.Duration
		want   string
	}{
		{"a record connected 3 h ago is too old", conn("a", 3*time.Hour, -time.Hour), 0, "too old"},
		{"a record connected exactly 2 h ago is too old", conn("a", 2*time.Hour, time.Hour), 0, "too old"},
		{"a record past its expiry is expired", conn("a", 30*time.Minute, -time.Minute), 0, "expired"},
		{"a young record must be asked about", conn("a", 10*time.Minute, time.Hour), 0, "ask"},
		{"a record without expiry must be asked about", conn("a", 10*time.Minute, 0), 0, "ask"},
		{"a shorter max age makes younger records too old", conn("a", 10*time.Minute, time.Hour), 5 * time.Minute, "too old"},
		{"a record from the future must be asked about", conn("a", -time.Minute, time.Hour), 0, "ask"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			if c.ExpiresAt.Equal(now) {
				c.ExpiresAt = time.Time{}
			}
			r, ok := ops.Classify(c, now, tc.maxAge)
			got := "ask"
			if ok {
				got = r.String()
			}
			if got != tc.want {
				t.Errorf("Classify = %s; want %s", got, tc.want)
			}
		})
	}
}

func TestPruneKeepsRecordsWhoseCheckFailed(t *testing.T) {
	s := newStore(t)
	put(t, s, conn("live", time.Minute, time.Hour), conn("gone", time.Minute, time.Hour),
		conn("broken", time.Minute, time.Hour), conn("forbidden", time.Minute, time.Hour))
	fake := opstest.NewFakePusher()
	fake.SetLive(store.ConnectionInfo{}, "live")
	fake.Fail(errors.New("connection reset by peer"), "broken")
	fake.Fail(&store.PushError{Kind: store.KindForbidden, Op: "GetConnection", ConnectionID: "forbidden", Status: 403}, "forbidden")

	res, err := ops.Prune(ctxT(t), s, fake, ops.PruneOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 2 || res.Kept != 1 || res.Deleted.Gone != 1 || res.Checked != 4 {
		t.Errorf("got %+v; want 4 checked, 1 gone, 1 kept, 2 errors", res)
	}
	if len(res.ErrorSamples) != 2 || !strings.Contains(strings.Join(res.ErrorSamples, "\n"), "connection reset") {
		t.Errorf("error samples %q; want both errors", res.ErrorSamples)
	}
	if got, want := ids(t, s), []string{"broken", "forbidden", "live"}; !slices.Equal(got, want) {
		t.Errorf("left %v; want %v", got, want)
	}
}

// TestPruneKeepsARecordGoneWhileItConnects: API Gateway answers 410 Gone
// to GetConnection until a connection's $connect has ended, and $connect
// writes the record first. A prune in that moment must keep the record of
// the connection about to open.
func TestPruneKeepsARecordGoneWhileItConnects(t *testing.T) {
	s := newStore(t)
	put(t, s, conn("connecting", 5*time.Second, time.Hour), conn("gone", time.Minute, time.Hour))
	res, err := ops.Prune(ctxT(t), s, opstest.NewFakePusher(), ops.PruneOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted.Gone != 1 || res.Kept != 1 || res.Checked != 2 {
		t.Errorf("got %+v; want 2 checked, 1 gone, 1 kept", res)
	}
	if got, want := ids(t, s), []string{"connecting"}; !slices.Equal(got, want) {
		t.Errorf("left %v; want %v", got, want)
	}
}

// flakyPusher throttles the first calls for each ID, then answers Gone.
type flakyPusher struct {
	opstest.FakePusher
	throttles int
	mu        sync.Mutex
	calls     map[string]int
}

func (f *flakyPusher) Get(ctx context.Context, id string) (store.ConnectionInfo, error) {
	f.mu.Lock()
	f.calls[id]++
	n := f.calls[id]
	f.mu.Unlock()
	if n <= f.throttles {
		return store.ConnectionInfo{}, opstest.Throttled(id)
	}
	return store.ConnectionInfo{}, &store.PushError{Kind: store.KindGone, Op: "GetConnection", ConnectionID: id, Status: 410}
}

func TestPruneRetriesThrottledChecks(t *testing.T) {
	t.Run("a check throttled twice is retried and succeeds", func(t *testing.T) {
		s := newStore(t)
		put(t, s, conn("a", time.Minute, time.Hour))
		res, err := ops.Prune(ctxT(t), s, &flakyPusher{throttles: 2, calls: map[string]int{}}, ops.PruneOptions{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if res.Deleted.Gone != 1 || res.Errors != 0 {
			t.Errorf("got %+v; want the record deleted as gone", res)
		}
	})
	t.Run("a check throttled every time is counted as an error", func(t *testing.T) {
		s := newStore(t)
		put(t, s, conn("a", time.Minute, time.Hour))
		res, err := ops.Prune(ctxT(t), s, &flakyPusher{throttles: 100, calls: map[string]int{}}, ops.PruneOptions{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if res.Errors != 1 || res.Deleted.Total() != 0 || len(ids(t, s)) != 1 {
			t.Errorf("got %+v; want one error and the record kept", res)
		}
	})
}

func TestPruneWithoutAManagementAPIKeepsYoungRecordsUnchecked(t *testing.T) {
	s := newStore(t)
	put(t, s, conn("old", 3*time.Hour, -time.Hour), conn("exp", 30*time.Minute, -time.Minute), conn("young", time.Minute, time.Hour))
	res, err := ops.Prune(ctxT(t), s, nil, ops.PruneOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	want := ops.PruneResult{Checked: 3, Deleted: ops.PruneDeleted{TooOld: 1, Expired: 1}, Unchecked: 1}
	if fmt.Sprint(res) != fmt.Sprint(want) {
		t.Errorf("got %+v; want %+v", res, want)
	}
	if got := ids(t, s); !slices.Equal(got, []string{"young"}) {
		t.Errorf("left %v; want [young]", got)
	}
}

// recordingStore records the size of each DeleteConnections call and can
// fail them.
type recordingStore struct {
	store.Store
	mu      sync.Mutex
	batches []int
	fail    error
}

func (r *recordingStore) DeleteConnections(ctx context.Context, ids []string) (int, error) {
	r.mu.Lock()
	r.batches = append(r.batches, len(ids))
	r.mu.Unlock()
	if r.fail != nil {
		return 0, r.fail
	}
	return r.Store.DeleteConnections(ctx, ids)
}

func TestPruneDeletesInBatchesOf25(t *testing.T) {
	rs := &recordingStore{Store: newStore(t)}
	for i := range 130 {
		put(t, rs, conn(fmt.Sprintf("old-%03d", i), 3*time.Hour, -time.Hour))
	}
	for i := range 30 {
		put(t, rs, conn(fmt.Sprintf("gone-%03d", i), time.Minute, time.Hour))
	}
	res, err := ops.Prune(ctxT(t), rs, opstest.NewFakePusher(), ops.PruneOptions{Now: now, Segments: 3, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted.TooOld != 130 || res.Deleted.Gone != 30 {
		t.Errorf("got %+v; want 130 too old and 30 gone", res)
	}
	total := 0
	for _, n := range rs.batches {
		if n < 1 || n > ops.DeleteBatch {
			t.Errorf("a DeleteConnections call got %d IDs; want 1 to %d", n, ops.DeleteBatch)
		}
		total += n
	}
	if total != 160 || len(rs.batches) > 8 {
		t.Errorf("%d calls deleting %d IDs (%v); want 160 IDs in at most 8 calls", len(rs.batches), total, rs.batches)
	}
}

func TestPruneReportsAFailedDelete(t *testing.T) {
	rs := &recordingStore{Store: newStore(t), fail: errors.New("disk full")}
	put(t, rs, conn("old", 3*time.Hour, -time.Hour))
	_, err := ops.Prune(ctxT(t), rs, nil, ops.PruneOptions{Now: now})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("got %v; want the delete's error", err)
	}
}

func TestPruneDryRunDeletesNothing(t *testing.T) {
	s := newStore(t)
	put(t, s, conn("old", 3*time.Hour, -time.Hour), conn("gone", time.Minute, time.Hour))
	if err := s.PutChatterID(ctxT(t), store.ChatterID{Geek: "alice", Hash: "ab", IssuedAt: now.Add(-48 * time.Hour), ExpiresAt: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var lines atomic.Int32
	res, err := ops.Prune(ctxT(t), s, opstest.NewFakePusher(), ops.PruneOptions{Now: now, DryRun: true, Log: func(line string) {
		if !strings.HasPrefix(line, "would delete ") {
			t.Errorf("dry-run log line %q; want it to start with 'would delete'", line)
		}
		lines.Add(1)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted.Total() != 2 || res.ChatterIDs != 1 || !res.DryRun || lines.Load() != 2 {
		t.Errorf("got %+v with %d log lines; want 2 deletions and 1 chatter ID reported, 2 lines", res, lines.Load())
	}
	if got := ids(t, s); len(got) != 2 {
		t.Errorf("left %v; want both records", got)
	}
	if cids, _ := s.ListChatterIDs(ctxT(t), ""); len(cids) != 1 {
		t.Errorf("%d chatter IDs left; want 1", len(cids))
	}
}

// unlistedChatterIDs is a store whose ListChatterIDs fails: a dry run
// that lists every chatter ID to count the expired ones fails on it. It
// counts them as its store does.
type unlistedChatterIDs struct{ store.Store }

func (u unlistedChatterIDs) CountExpiredChatterIDs(ctx context.Context, now time.Time) (int, error) {
	c, ok := u.Store.(store.ExpiredChatterIDCounter)
	if !ok {
		return 0, errors.New("the store does not count expired chatter IDs")
	}
	return c.CountExpiredChatterIDs(ctx, now)
}

func (unlistedChatterIDs) ListChatterIDs(context.Context, string) ([]store.ChatterID, error) {
	return nil, errors.New("listed every chatter ID")
}

// TestPruneDryRunCountsExpiredChatterIDsWithoutListingThem: a dry run
// listed every chatter ID, live ones included, to count the expired ones.
// A store that counts them (store.ExpiredChatterIDCounter: a COUNT on the
// local file, a Select COUNT Scan on DynamoDB) is asked to count; a store
// without it is still counted by listing.
func TestPruneDryRunCountsExpiredChatterIDsWithoutListingThem(t *testing.T) {
	s := newStore(t)
	for i, exp := range []time.Duration{-time.Hour, 0, time.Hour} { // expired, expired at now, live
		if err := s.PutChatterID(ctxT(t), store.ChatterID{Geek: "alice", Hash: fmt.Sprintf("ab%d", i), IssuedAt: now.Add(-48 * time.Hour), ExpiresAt: now.Add(exp)}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := ops.Prune(ctxT(t), unlistedChatterIDs{s}, opstest.NewFakePusher(), ops.PruneOptions{Now: now, DryRun: true})
	if err != nil || res.ChatterIDs != 2 {
		t.Errorf("dry run on a store that counts: %d chatter IDs, %v; want 2, counted without listing", res.ChatterIDs, err)
	}
	res, err = ops.Prune(ctxT(t), struct{ store.Store }{s}, opstest.NewFakePusher(), ops.PruneOptions{Now: now, DryRun: true})
	if err != nil || res.ChatterIDs != 2 {
		t.Errorf("dry run on a store that does not count: %d chatter IDs, %v; want 2", res.ChatterIDs, err)
	}
	if cids, _ := s.ListChatterIDs(ctxT(t), ""); len(cids) != 3 {
		t.Errorf("%d chatter IDs left after the dry runs; want 3", len(cids))
	}
}

// silentPusher is a Management API that never answers a GetConnection: it
// holds each call until its context ends.
type silentPusher struct{ *opstest.FakePusher }

func (silentPusher) Get(ctx context.Context, id string) (store.ConnectionInfo, error) {
	<-ctx.Done()
	return store.ConnectionInfo{}, &store.PushError{Kind: store.KindOther, Op: "GetConnection", ConnectionID: id, Err: ctx.Err()}
}

// TestPruneKeepsRecordsWhoseCheckNeverAnswers: a Management API that
// accepts a call and never answers costs each check its CheckTimeout; the
// record is kept and counted as an error, and the run ends. It hung for
// ever before, renewing the prune lease on DynamoDB all the while, so no
// other prune could run either.
func TestPruneKeepsRecordsWhoseCheckNeverAnswers(t *testing.T) {
	s := newStore(t)
	put(t, s, conn("a", time.Minute, time.Hour), conn("b", time.Minute, time.Hour), conn("old", 3*time.Hour, -time.Hour))
	res, err := ops.Prune(ctxT(t), s, silentPusher{opstest.NewFakePusher()}, ops.PruneOptions{Now: now, CheckTimeout: 10 * time.Millisecond})
	if err != nil {
		t.Fatalf("Prune = %+v, %v; want it to end on its own", res, err)
	}
	if res.Errors != 2 || res.Deleted.TooOld != 1 || res.Checked != 3 {
		t.Errorf("got %+v; want 3 checked, 1 too old, 2 errors", res)
	}
	if !strings.Contains(strings.Join(res.ErrorSamples, "\n"), "no answer") {
		t.Errorf("error samples %q; want them to say the Management API did not answer", res.ErrorSamples)
	}
	if got, want := ids(t, s), []string{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("left %v; want %v", got, want)
	}
}

// TestPruneDeletesDeadLettersPastTheirRetention: on a queue that keeps
// its dead letters until asked (the local one), prune-stale deletes those
// that failed store.DeadLetterRetention (14 days) or more before now, as
// SQS does by itself, keeps the younger ones, and in a dry run only
// counts them.
func TestPruneDeletesDeadLettersPastTheirRetention(t *testing.T) {
	var mu sync.Mutex
	clock := now.Add(-store.DeadLetterRetention)
	db := openDB(t, local.Options{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }})
	q := db.Queue()
	ctx := ctxT(t)
	for _, at := range []time.Time{now.Add(-store.DeadLetterRetention), now.Add(-store.DeadLetterRetention + time.Millisecond)} {
		mu.Lock()
		clock = at
		mu.Unlock()
		if _, err := q.Send(ctx, []byte(`{"n":1}`)); err != nil {
			t.Fatal(err)
		}
		msgs, err := q.Receive(ctx, 1, time.Minute, 0)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("Receive = %v, %v", msgs, err)
		}
		if err := q.DeadLetter(ctx, msgs[0], "test"); err != nil {
			t.Fatal(err)
		}
	}
	dead := func() int {
		t.Helper()
		st, err := q.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Dead
	}

	// A dry run counts them in the file, reading no body: ListDeadLetters
	// loaded every one to count them.
	listing := &listingQueue{Queue: q}
	res, err := ops.Prune(ctx, db.Store(), nil, ops.PruneOptions{Now: now, Queue: listing, DryRun: true})
	if err != nil || res.DeadLetters != 1 {
		t.Errorf("a dry run: %+v, %v; want 1 dead letter counted", res, err)
	}
	if listing.lists != 0 {
		t.Errorf("a dry run listed the dead letters %d times, reading every body; want them counted in SQL", listing.lists)
	}
	if n := dead(); n != 2 {
		t.Errorf("a dry run left %d dead letters; want both", n)
	}
	res, err = ops.Prune(ctx, db.Store(), nil, ops.PruneOptions{Now: now, Queue: q})
	if err != nil || res.DeadLetters != 1 {
		t.Errorf("a run: %+v, %v; want 1 dead letter deleted", res, err)
	}
	if n := dead(); n != 1 {
		t.Errorf("a run left %d dead letters; want the one a millisecond younger than 14 days", n)
	}
}

// listingQueue is the local queue, counting its ListDeadLetters calls.
type listingQueue struct {
	*local.Queue
	lists int
}

func (q *listingQueue) ListDeadLetters(ctx context.Context, limit int) ([]store.DeadLetter, error) {
	q.lists++
	return q.Queue.ListDeadLetters(ctx, limit)
}

// secondDeleteFails is a store whose DeleteConnections deletes the first
// batch and fails every later one.
type secondDeleteFails struct {
	store.Store
	calls atomic.Int32
}

func (s *secondDeleteFails) DeleteConnections(ctx context.Context, ids []string) (int, error) {
	if s.calls.Add(1) > 1 {
		return 0, errors.New("disk full")
	}
	return s.Store.DeleteConnections(ctx, ids)
}

// TestAFailedPruneCountsTheRecordsItExamined: a run stopped by a failed
// delete counts the records it examined before it stopped. Checked was
// added once a page was done, so a run stopped within its first page (500
// records locally, a 1 MB page on DynamoDB) printed checked=0 beside
// deleted=25.
func TestAFailedPruneCountsTheRecordsItExamined(t *testing.T) {
	s := &secondDeleteFails{Store: newStore(t)}
	for i := range 60 {
		put(t, s, conn(fmt.Sprintf("old-%03d", i), 3*time.Hour, -time.Hour))
	}
	res, err := ops.Prune(ctxT(t), s, nil, ops.PruneOptions{Now: now, Segments: 1})
	if err == nil {
		t.Fatalf("Prune = %+v, nil; want the delete's error", res)
	}
	// The 25th record filled the first batch, deleted; the 50th the
	// second, which failed.
	if res.Deleted.TooOld != ops.DeleteBatch || res.Checked != 2*ops.DeleteBatch {
		t.Errorf("the failed run counted %d checked and %+v deleted; want %d checked and %d too old", res.Checked, res.Deleted, 2*ops.DeleteBatch, ops.DeleteBatch)
	}
}
