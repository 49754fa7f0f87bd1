package local

// What a state file does after hours of use, compressed into a bounded
// run: the write-ahead log under writers and readers that never pause.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// walSize is the size of db's write-ahead log (0 when there is none).
func walSize(t *testing.T, db *DB) int64 {
	t.Helper()
	fi, err := os.Stat(db.Path() + "-wal")
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// Readers that never all pause at once (a broker's lookups, `publish
// --wait`'s polls, `subs list --live`, from this and other processes)
// starve SQLite's own checkpoints: it can never start the log again from
// its beginning, and the -wal file grew by every write (527 MB after
// 40,000 writes of 2 KB). A writer that finds the log over its bound
// folds it into the file and truncates it.
func TestTheWriteAheadLogStaysBoundedUnderReadersThatNeverPause(t *testing.T) {
	db := openTest(t, Options{})
	db.walLimit, db.walCheckEvery = 512<<10, 16
	// A fold waits for the reads in flight, which always end: its
	// one-second wait, shorter than a read on a busy machine under -race,
	// let folds give up and the log pass the bound (seen under
	// scripts/test). The bound is of folds that succeed.
	db.foldWait = time.Minute
	reader := openPath(t, db.Path(), Options{}) // another process's handle
	ctx := t.Context()

	// Readers that overlap (another process's broker lookups, `publish
	// --wait`'s polls, `subs list --live`), each reading every report.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int64
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var n sql.NullInt64
				if err := reader.sql.QueryRowContext(ctx, `SELECT sum(length(json)) FROM reports`).Scan(&n); err != nil {
					t.Errorf("reading: %v", err)
					return
				}
				reads.Add(1)
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()

	// 400 writes of 16 KB: 6 MB through the log.
	errs := []string{strings.Repeat("e", 16<<10)}
	var largest int64
	for i := range 400 {
		r := store.Report{MessageID: fmt.Sprintf("m-%d", i%20), Targets: 1, Errors: errs}
		if err := db.Store().PutReport(ctx, r); err != nil {
			t.Fatal(err)
		}
		largest = max(largest, walSize(t, db))
	}
	close(stop)
	wg.Wait()
	stop = make(chan struct{}) // for the deferred close
	if reads.Load() == 0 {
		t.Fatal("the readers read nothing")
	}
	// The bound, plus what the writes between two looks at it add
	// (walCheckEvery writes of 8 KB or so), with room to spare. Without
	// the folds, or with folds that gave up at once, it grew past 3 MB.
	if limit := 5 * db.walLimit; largest > limit {
		t.Errorf("the write-ahead log grew to %d bytes under readers that never pause; want it kept under %d", largest, limit)
	}
}

// Reports are kept for a day (publish --wait and same-day
// troubleshooting): a broker that has run for days, writing a report per
// message, keeps in the file only the reports of the last day, however
// many it wrote before.
func TestReportsOlderThanADayLeaveTheFile(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	db := openTest(t, Options{Now: clock.Now})
	ctx := t.Context()
	count := func() int {
		t.Helper()
		var n int
		if err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM reports`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Two and a half days of messages, 20 an hour.
	const perHour = 20
	for hour := range 60 {
		for i := range perHour {
			r := store.Report{MessageID: fmt.Sprintf("m-%d-%d", hour, i), Targets: 1, Delivered: 1, At: clock.Now()}
			if err := db.Store().PutReport(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if n := count(); n > 25*perHour {
			t.Fatalf("after %d hours the file holds %d reports; want at most a day's and an hour's (%d)", hour+1, n, 25*perHour)
		}
		clock.Advance(time.Hour)
	}
	if _, err := db.Store().GetReport(ctx, "m-0-0"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a report of two days ago: %v; want not found", err)
	}
	if _, err := db.Store().GetReport(ctx, fmt.Sprintf("m-59-%d", perHour-1)); err != nil {
		t.Errorf("the last report: %v", err)
	}
}

// TestOldReportsLeaveInBoundedWrites: a report write deletes at most
// reportsPerPut reports older than a day on the way (it deleted every
// one at once: after a day without messages following a busy one, the
// first report written, on the broker's path, held the file from every
// other writer while it deleted a day of reports, 50,000 in 150 ms, a
// million in seconds, past the other processes' 10 s busy timeout at a
// few million); DeleteExpiredReports (serve's sweep, at start and
// hourly) deletes the rest, expiredBatch a transaction. A report older
// than a day is not found either way.
func TestOldReportsLeaveInBoundedWrites(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	db := openTest(t, Options{Now: clock.Now})
	s := db.Store()
	ctx := t.Context()
	count := func() int {
		t.Helper()
		var n int
		if err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM reports`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	put := func(id string) {
		t.Helper()
		if err := s.PutReport(ctx, store.Report{MessageID: id, Targets: 1, Delivered: 1, At: clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 250 {
		put(fmt.Sprintf("old-%d", i))
	}
	clock.Advance(25 * time.Hour)
	db.reportsPerPut, db.expiredBatch = 30, 100
	put("new-0")
	if n := count(); n != 250-30+1 {
		t.Errorf("after a report written a day later the file holds %d reports; want %d (30 old ones deleted)", n, 250-30+1)
	}
	if _, err := s.GetReport(ctx, "old-249"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a report of a day ago not deleted yet: %v; want not found", err)
	}
	before := db.writes
	n, err := s.DeleteExpiredReports(ctx, clock.Now())
	if err != nil || n != 220 {
		t.Fatalf("DeleteExpiredReports = %d, %v; want the 220 old reports left", n, err)
	}
	if writes := db.writes - before; writes != 3 {
		t.Errorf("220 old reports were deleted in %d write transactions; want 3 of at most 100", writes)
	}
	if n := count(); n != 1 {
		t.Errorf("the file holds %d reports; want the new one alone", n)
	}
	if _, err := s.GetReport(ctx, "new-0"); err != nil {
		t.Errorf("the new report: %v", err)
	}
}

// Over days the pool's SQLite connections close when idle and others open
// in their place, while a reader in this process may hold its locks on
// the file; SQLite keeps a closed connection's descriptors open while the
// process holds locks, and must reuse them for the next connection, or the
// process would hold more files with every churn of the pool. Compressed:
// a pool that keeps no idle connection opens and closes one for every
// read, 150 of them, beside a read held open throughout.
func TestAPoolThatChurnsHoldsNoMoreFilesOpen(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("counting open files needs /proc/self/fd")
	}
	fds := func() int {
		t.Helper()
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}
	db := openTest(t, Options{})
	ctx := t.Context()
	held, err := db.sql.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Rollback()
	var n int
	if err := held.QueryRowContext(ctx, `SELECT count(*) FROM reports`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	db.sql.SetMaxIdleConns(0)
	read := func() {
		var n int
		if err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM reports`).Scan(&n); err != nil {
			t.Error(err)
		}
	}
	round := func(i int) {
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(read)
		}
		wg.Wait()
		if err := db.Store().PutReport(ctx, store.Report{MessageID: fmt.Sprintf("m-%d", i), Targets: 1}); err != nil {
			t.Fatal(err)
		}
	}
	round(0)
	base := fds()
	for i := 1; i <= 50; i++ {
		round(i)
	}
	// The rounds may have had more connections open at once than the
	// first (up to the pool's bound), never more.
	if got := fds(); got > base+maxOpenConns {
		t.Errorf("%d open files after 150 connections opened and closed; %d after the first few", got, base)
	}
}

// TestAFoldUnderAReadOfThisProcessGivesWay: a fold that a read held open
// in this very process (its pool connection in use, its snapshot older
// than the log's end) holds up neither the write that started it nor the
// read: the write returns, the read goes on with its snapshot, and the
// log is folded at a later write once the read has ended.
func TestAFoldUnderAReadOfThisProcessGivesWay(t *testing.T) {
	db := openTest(t, Options{})
	db.walLimit, db.walCheckEvery = 1, 1
	db.foldWait = 50 * time.Millisecond // the read is held throughout: the fold gives up whatever its wait
	ctx := t.Context()
	put := func(id string) {
		t.Helper()
		if err := db.Store().PutReport(ctx, store.Report{MessageID: id, Targets: 1, Errors: []string{strings.Repeat("e", 8<<10)}}); err != nil {
			t.Fatalf("PutReport %s: %v", id, err)
		}
	}
	count := func(q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) int {
		t.Helper()
		var n int
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM reports`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	put("before")
	read, err := db.sql.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer read.Rollback()
	if n := count(read); n != 1 {
		t.Fatalf("the read sees %d reports; want 1", n)
	}
	put("during") // its fold waits for the read, gives up, and the write returns
	if n := count(read); n != 1 {
		t.Errorf("the read sees %d reports after the write; want its snapshot's 1", n)
	}
	if size := walSize(t, db); size == 0 {
		t.Fatal("the log was truncated under a read of an older snapshot")
	}
	if err := read.Rollback(); err != nil {
		t.Fatal(err)
	}
	// Tried again at the next check: the next write's.
	put("after")
	if size := walSize(t, db); size != 0 {
		t.Errorf("the log is %d bytes after a write with no read open; want it folded and truncated", size)
	}
	if n := count(db.sql); n != 3 {
		t.Errorf("%d reports in the file; want 3", n)
	}
}

// TestAFoldAReadHeldUpIsTriedAgainSoon: a fold that a long read held up
// is tried again at a later check, a few writes on (the checks between
// tries doubling while reads keep holding folds up, so that a read that
// never ends costs a fold's wait only every so often), not once the log
// has grown by another walLimit: readers that hold up one fold in
// sixteen otherwise let the log grow by walLimit per such fold, without
// bound.
func TestAFoldAReadHeldUpIsTriedAgainSoon(t *testing.T) {
	db := openTest(t, Options{})
	db.walLimit, db.walCheckEvery = 1<<20, 1
	db.foldWait = 20 * time.Millisecond // the read is held throughout: the fold gives up whatever its wait
	ctx := t.Context()
	put := func(id string, size int) {
		t.Helper()
		if err := db.Store().PutReport(ctx, store.Report{MessageID: id, Targets: 1, Errors: []string{strings.Repeat("e", size)}}); err != nil {
			t.Fatalf("PutReport %s: %v", id, err)
		}
	}
	read, err := db.sql.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer read.Rollback()
	var n int
	if err := read.QueryRowContext(ctx, `SELECT count(*) FROM reports`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	// Past the limit under the read: every fold gives up.
	const held = 100
	for i := range held {
		put(fmt.Sprintf("held-%d", i), 16<<10)
	}
	if size := walSize(t, db); size <= db.walLimit {
		t.Fatalf("the log is %d bytes after %d writes of 16 KB; want it past the limit of %d", size, held, db.walLimit)
	}
	// A try at the first check past the limit, then after 1, 2, 4, 8, 16,
	// 16, ... checks: a dozen in all, not one per write.
	if db.walFolds < 2 || db.walFolds > 16 {
		t.Errorf("%d folds tried in %d writes under a read that held up every one; want a few, fewer and fewer", db.walFolds, held)
	}
	if err := read.Rollback(); err != nil {
		t.Fatal(err)
	}
	// The read has ended: small writes, far from adding walLimit to the
	// log, see it folded within the longest pause between tries.
	for i := range 17 {
		put(fmt.Sprintf("after-%d", i), 10)
		if walSize(t, db) == 0 {
			return
		}
	}
	t.Errorf("the log is still %d bytes 17 small writes after the read ended; want it folded at one of the next 16 checks", walSize(t, db))
}

// TestALogAnotherProcessFoldedIsFoldedAgainAtTheLimit: a process whose
// folds a read held up backs off; once the log is back under the limit
// (another process folded it, or this one), the back-off is over, and
// the log is folded again as soon as it passes the limit, not only
// beyond the size where the held-up fold gave up.
func TestALogAnotherProcessFoldedIsFoldedAgainAtTheLimit(t *testing.T) {
	db := openTest(t, Options{})
	db.walLimit, db.walCheckEvery = 256<<10, 1
	db.foldWait = 20 * time.Millisecond
	other := openPath(t, db.Path(), Options{}) // another process's handle
	ctx := t.Context()
	put := func(id string) {
		t.Helper()
		if err := db.Store().PutReport(ctx, store.Report{MessageID: id, Targets: 1, Errors: []string{strings.Repeat("e", 16<<10)}}); err != nil {
			t.Fatalf("PutReport %s: %v", id, err)
		}
	}
	read, err := other.sql.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer read.Rollback()
	var n int
	if err := read.QueryRowContext(ctx, `SELECT count(*) FROM reports`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		put(fmt.Sprintf("held-%d", i))
	}
	if err := read.Rollback(); err != nil {
		t.Fatal(err)
	}
	if !other.foldWAL() {
		t.Fatal("the other process could not fold the log with no read open")
	}
	if size := walSize(t, db); size != 0 {
		t.Fatalf("the log is %d bytes after the other process folded it; want 0", size)
	}
	// A limit the next few writes pass, well within the longest pause
	// between tries (16 checks) that the held-up folds left this process
	// in: only the back-off's end lets it fold at the first check past it.
	db.walLimit = 64 << 10
	for i := range 60 {
		put(fmt.Sprintf("after-%d", i))
		if size := walSize(t, db); size > db.walLimit+64<<10 {
			t.Fatalf("write %d after the other process folded the log left it at %d bytes; want it folded at the first check past the limit (%d)", i+1, size, db.walLimit)
		}
	}
}

// TestExpiredConnectionRecordsAreDeletedInBoundedWrites: the record of a
// connection whose $disconnect never came or failed (a store error,
// `serve --faults drop-disconnect`) stayed in the file for as long as
// serve ran, expired, unless prune-stale ran; serve's sweep deletes
// those expired before now with DeleteExpiredConnections, subscriptions
// and all, in write transactions of at most expiredBatch records, and
// keeps the live ones and those that never expire.
func TestExpiredConnectionRecordsAreDeletedInBoundedWrites(t *testing.T) {
	db := openTest(t, Options{})
	s := db.Store()
	ctx := t.Context()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	put := func(id string, expires time.Time) {
		t.Helper()
		c := pubsub.Connection{ID: id, Geek: "alice", Topics: []string{"news", "."}, ConnectedAt: now.Add(-3 * time.Hour), ExpiresAt: expires}
		if err := s.PutConnection(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 25 {
		put(fmt.Sprintf("old-%02d", i), now.Add(-time.Hour))
	}
	put("at-now", now)
	put("live", now.Add(time.Millisecond))
	put("never", time.Time{})
	db.expiredBatch = 10
	before := db.writes
	n, err := s.DeleteExpiredConnections(ctx, now)
	if err != nil || n != 26 {
		t.Fatalf("DeleteExpiredConnections = %d, %v; want 26", n, err)
	}
	if writes := db.writes - before; writes != 3 {
		t.Errorf("26 expired records were deleted in %d write transactions; want 3 of at most 10", writes)
	}
	var left []string
	err = s.ListConnections(ctx, store.ConnectionFilter{IncludeExpired: true}, now, func(page []pubsub.Connection) error {
		for _, c := range page {
			left = append(left, c.ID)
		}
		return nil
	})
	if err != nil || strings.Join(left, ",") != "live,never" {
		t.Errorf("records left %v, %v; want live,never", left, err)
	}
	var subs int
	if err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM subscriptions`).Scan(&subs); err != nil || subs != 4 {
		t.Errorf("%d subscriptions left, %v; want the 4 of the records left", subs, err)
	}
}

// TestTheSweepOfExpiredConnectionsIsARangeOfAnIndex: serve's hourly
// sweep (DeleteExpiredConnections) looks for the records expired a day
// ago inside its write transaction; without an index on expires_at that
// was a scan of every record (7-20 ms for 100,000, on every sweep, with
// nothing to delete) while every connect and every other process waited
// to write. It reads a range of connections_expires (schema step 8).
func TestTheSweepOfExpiredConnectionsIsARangeOfAnIndex(t *testing.T) {
	db := openTest(t, Options{})
	p := queryPlan(t, db, expiredConnectionIDs, int64(0), 1000)
	if !strings.Contains(p, "INDEX connections_expires (expires_at<?)") || strings.Contains(p, "SCAN") {
		t.Errorf("the sweep's plan is not a range of the expires_at index:\n%s", p)
	}
}

// TestOpenMigratesAVersion7FileAndItsExpiredConnectionsAreSwept: a file a
// socks of schema version 7 wrote gains connections_expires, and the
// sweep then deletes its expired records (subscriptions and all) and
// keeps the live one and the one that never expires.
func TestOpenMigratesAVersion7FileAndItsExpiredConnectionsAreSwept(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	db := openOldFile(t, 7,
		fmt.Sprintf(`INSERT INTO connections (id, geek, connected_at, expires_at) VALUES ('old', 'alice', 0, %d), ('live', 'alice', 0, %d), ('never', 'alice', 0, NULL)`,
			now.Add(-time.Hour).UnixMilli(), now.Add(time.Hour).UnixMilli()),
		`INSERT INTO subscriptions (topic, geek, conn_id) VALUES ('news', 'alice', 'old'), ('news', 'alice', 'live'), ('news', 'alice', 'never')`,
	)
	var indexes int
	if err := db.sql.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'connections_expires'`).Scan(&indexes); err != nil || indexes != 1 {
		t.Fatalf("connections_expires indexes after the migration = %d, %v; want 1", indexes, err)
	}
	n, err := db.Store().DeleteExpiredConnections(t.Context(), now)
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpiredConnections = %d, %v; want 1", n, err)
	}
	ids, err := db.Store().FindTargetIDs(t.Context(), nil, []string{"news"}, now)
	slices.Sort(ids)
	if err != nil || strings.Join(ids, ",") != "live,never" {
		t.Errorf("FindTargetIDs(news) = %v, %v; want live,never", ids, err)
	}
}
