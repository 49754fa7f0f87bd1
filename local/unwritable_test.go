package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// Faults of a state file that cannot take writes, injected on the
// connections of a DB's pool: every connection the pool may hand out
// (maxOpenConns of them) runs the pragma, and stays in the pool
// afterwards (the pool keeps as many idle). Such a pragma (max_page_count,
// query_only, busy_timeout) holds for its connection only: one the pool
// opens afresh later (after 30 s idle, or in place of one dropped) lacks
// it, which these short tests never wait for.

// execOnEveryConn runs pragma on every connection of db's pool.
func execOnEveryConn(db *DB, pragma string) error {
	ctx := context.Background()
	conns := make([]*sql.Conn, 0, maxOpenConns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range maxOpenConns {
		c, err := db.sql.Conn(ctx)
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		if _, err := c.ExecContext(ctx, pragma); err != nil {
			return fmt.Errorf("%s: %w", pragma, err)
		}
	}
	return nil
}

// onEveryConn is execOnEveryConn failing the test.
func onEveryConn(t *testing.T, db *DB, pragma string) {
	t.Helper()
	if err := execOnEveryConn(db, pragma); err != nil {
		t.Fatal(err)
	}
}

// fillUp makes db's state file full: it may not grow by a page more
// (SQLITE_FULL, as on a full disk), until room is called.
func fillUp(t *testing.T, db *DB) (room func()) {
	t.Helper()
	// A limit below the file's size sets it to the size.
	onEveryConn(t, db, "PRAGMA max_page_count = 1")
	return func() { onEveryConn(t, db, "PRAGMA max_page_count = 1073741823") }
}

// bigTopic is a topic name that needs a page of its own.
func bigTopic(i int) string { return fmt.Sprintf("%s%d", strings.Repeat("t", 4000), i) }

// TestAGroupOfWritesThatCannotGrowTheFileEachSaysTheDiskIsFull: the
// writes of a group (a burst of $connects) that fail for want of room
// each get the error that says so, store.ErrUnavailable (which the routes
// answer 503), as a write alone does; one that needs no room commits and
// succeeds; nothing of those that failed is in the file. Before, each
// failed write of a group that failed got SQLite's own error ("database or
// disk is full (13)"), which the routes answered 500.
func TestAGroupOfWritesThatCannotGrowTheFileEachSaysTheDiskIsFull(t *testing.T) {
	db := openTest(t, Options{})
	ctx := t.Context()
	now := time.Now()
	secret, _, err := store.IssueChatterID(ctx, db.Store(), "alice", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetMeta(ctx, "kept", "x"); err != nil {
		t.Fatal(err)
	}
	room := fillUp(t, db)
	if err := db.needStmts(ctx); err != nil {
		t.Fatal(err)
	}
	var batch []*groupedWrite
	var admissions []*admission
	for i := range 3 {
		a := &admission{id: fmt.Sprintf("c%d", i), geek: "alice", want: pubsub.HashChatterID(secret), now: now, limit: 100,
			record: func(store.ChatterID) (pubsub.Connection, error) {
				return pubsub.Connection{Topics: []string{bigTopic(i)}, ConnectedAt: now}, nil
			}}
		admissions = append(admissions, a)
		batch = append(batch, &groupedWrite{fn: db.store.admitAlone(a), admit: a, done: make(chan error, 1)})
	}
	// A write that needs no room: a row deleted.
	batch = append(batch, &groupedWrite{fn: func(tx *wtx) error {
		_, err := tx.ExecContext(tx.ctx, `DELETE FROM meta WHERE key = 'kept'`)
		return err
	}, done: make(chan error, 1)})
	db.writeGroup(batch)
	for i, w := range batch[:3] {
		err := <-w.done
		if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(fmt.Sprint(err), "the disk is full") {
			t.Errorf("admission %d: %v; want store.ErrUnavailable saying the disk is full", i, err)
		}
	}
	if err := <-batch[3].done; err != nil {
		t.Errorf("the write that needed no room: %v; want it committed", err)
	}
	room()
	var n int
	if err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM connections`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d connection records (%v); want none of the failed admissions", n, err)
	}
	if _, ok, err := db.GetMeta(ctx, "kept"); err != nil || ok {
		t.Errorf("the deleted row is there: %v, %v; want the write that succeeded committed", ok, err)
	}
	// With room again, the same admissions pass.
	for i, a := range admissions {
		if _, err := db.store.AdmitConnection(ctx, a.id, a.geek, secret, now, a.limit, a.record); err != nil {
			t.Errorf("admission %d with room again: %v", i, err)
		}
	}
}

// TestAGroupWhoseTransactionSQLiteRolledBackGivesEachWriteTheCause:
// SQLite may roll back the whole transaction when a statement fails for
// want of room or on an I/O error (a cache spill to a full disk), not the
// statement alone; the group's savepoints are then gone. Every write of
// the group failed, for that write's reason (store.ErrUnavailable, the
// disk is full: 503), and nothing of the group is in the file. Before,
// each got the failed ROLLBACK TO's "no such savepoint" (SQLITE_ERROR,
// answered 500), the cause lost.
func TestAGroupWhoseTransactionSQLiteRolledBackGivesEachWriteTheCause(t *testing.T) {
	db := openTest(t, Options{})
	ctx := t.Context()
	if err := db.SetMeta(ctx, "kept", "x"); err != nil {
		t.Fatal(err)
	}
	room := fillUp(t, db)
	if err := db.needStmts(ctx); err != nil {
		t.Fatal(err)
	}
	deleteKept := &groupedWrite{fn: func(tx *wtx) error {
		_, err := tx.ExecContext(tx.ctx, `DELETE FROM meta WHERE key = 'kept'`)
		return err
	}, done: make(chan error, 1)}
	// A write that fails for want of room, after which SQLite rolled
	// back the whole transaction (as it does when the pager cannot
	// write a spilled page).
	full := &groupedWrite{fn: func(tx *wtx) error {
		_, err := tx.ExecContext(tx.ctx, `INSERT INTO meta(key, value) VALUES ('big', ?)`, strings.Repeat("x", 1<<20))
		if err == nil {
			t.Error("the big row went in; want the file full")
			return nil
		}
		_, _ = tx.ExecContext(tx.ctx, `ROLLBACK`)
		return err
	}, done: make(chan error, 1)}
	batch := []*groupedWrite{deleteKept, full}
	db.writeGroup(batch)
	for i, w := range batch {
		err := <-w.done
		if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(fmt.Sprint(err), "the disk is full") {
			t.Errorf("write %d: %v; want store.ErrUnavailable saying the disk is full", i, err)
		}
	}
	room()
	if _, ok, err := db.GetMeta(ctx, "kept"); err != nil || !ok {
		t.Errorf("the deleted row is gone: %v, %v; want nothing of the rolled back group in the file", ok, err)
	}
}

// holdWriteLock takes the state file's write lock from a connection of
// its own, as another process with a write transaction open would (an
// sqlite3 shell after BEGIN IMMEDIATE, a stuck socks), until release.
func holdWriteLock(t *testing.T, path string) (release func()) {
	t.Helper()
	other, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := other.BeginTx(t.Context(), nil)
	if err == nil {
		_, err = tx.ExecContext(t.Context(), `INSERT INTO meta(key, value) VALUES ('held', 'x')`)
	}
	if err != nil {
		other.Close()
		t.Fatal(err)
	}
	released := false
	release = func() {
		if !released {
			released = true
			_ = tx.Rollback()
			other.Close()
		}
	}
	t.Cleanup(release)
	return release
}

// TestAWriteTheStateFileStaysLockedForSaysWhoHoldsIt: a write that finds
// the state file locked by another process past SQLite's wait and its
// retries fails saying so in words, with what to do, and is
// ErrLocked and store.ErrUnavailable (a $connect then is refused 503, to
// try again; the doctor says to end that process),
// with SQLite's words after;
// nothing is written, and once the lock is let go the same write passes.
// Before, a publish said "database is locked (5) (SQLITE_BUSY)", after a
// minute.
func TestAWriteTheStateFileStaysLockedForSaysWhoHoldsIt(t *testing.T) {
	db := openTest(t, Options{})
	ctx := t.Context()
	now := time.Now()
	secret, _, err := store.IssueChatterID(ctx, db.Store(), "alice", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	// SQLite's wait for the lock, 10 s in the file's settings, cut short.
	onEveryConn(t, db, "PRAGMA busy_timeout = 20")
	release := holdWriteLock(t, db.Path())
	_, sendErr := db.Queue().Send(ctx, []byte(`{"topics":["t"],"body":1}`))
	_, admitErr := db.Store().AdmitConnection(ctx, "c1", "alice", secret, now, 10, func(store.ChatterID) (pubsub.Connection, error) {
		return pubsub.Connection{ConnectedAt: now}, nil
	})
	for what, err := range map[string]error{"a queue send": sendErr, "an admission": admitErr} {
		if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, ErrLocked) {
			t.Errorf("%s while another process holds the lock: %v; want ErrLocked, store.ErrUnavailable", what, err)
		}
		for _, says := range []string{"state file " + db.Path() + " stayed locked by another process for ", "end it", "try again"} {
			if !strings.Contains(fmt.Sprint(err), says) {
				t.Errorf("%s while another process holds the lock: %q does not say %q", what, err, says)
			}
		}
	}
	release()
	if st, err := db.Queue().Stats(ctx); err != nil || st.Visible != 0 {
		t.Errorf("queue %+v, %v; want nothing queued by the send that failed", st, err)
	}
	if _, err := db.Queue().Send(ctx, []byte(`{"topics":["t"],"body":1}`)); err != nil {
		t.Errorf("a send once the lock is let go: %v", err)
	}
}

// TestAnOpenThatCannotWriteTheSchemaSaysWhyOnce: a new state file on a
// full disk (its schema cannot be written) fails saying so once. Before,
// the open repeated the words of the write that failed:
// "cannot write the state file …: the disk is full; free some space and
// try again: cannot write the state file …: the disk is full; …".
func TestAnOpenThatCannotWriteTheSchemaSaysWhyOnce(t *testing.T) {
	abs := filepath.Join(t.TempDir(), "socks.db")
	if err := os.WriteFile(abs, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		t.Fatal(err)
	}
	// Room for one page: the schema needs more.
	db, err := open(t.Context(), abs, fi, dsn(abs, busyTimeout)+"&_pragma=max_page_count(1)", Options{})
	if err == nil {
		db.Close()
		t.Fatal("Open of a new state file that cannot grow succeeded")
	}
	says := "cannot write the state file " + abs + ": the disk is full"
	if !errors.Is(err, store.ErrUnavailable) || strings.Count(err.Error(), says) != 1 {
		t.Errorf("Open: %v; want store.ErrUnavailable saying %q once", err, says)
	}
}

// TestAWriteSQLiteRefusesAsReadOnlySaysWhatToMakeWritable: a write that
// SQLite refuses as read-only (the -wal or -shm file beside the state
// file, or the file itself, made read-only under a running process whose
// connections SQLite opens again) fails saying which files must be
// writable and how, as the state file's other errors do
// (ErrNotWritable, a *NotWritableError), and is store.ErrUnavailable (a
// $connect is refused 503). Before, it said "attempt to write a readonly
// database (8)". Here SQLite's query_only makes the connections refuse
// writes as such a one does.
func TestAWriteSQLiteRefusesAsReadOnlySaysWhatToMakeWritable(t *testing.T) {
	db := openTest(t, Options{})
	ctx := t.Context()
	now := time.Now()
	secret, _, err := store.IssueChatterID(ctx, db.Store(), "alice", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	onEveryConn(t, db, "PRAGMA query_only = 1")
	_, sendErr := db.Queue().Send(ctx, []byte(`{"topics":["t"],"body":1}`))
	_, admitErr := db.Store().AdmitConnection(ctx, "c1", "alice", secret, now, 10, func(store.ChatterID) (pubsub.Connection, error) {
		return pubsub.Connection{ConnectedAt: now}, nil
	})
	p := db.Path()
	for what, err := range map[string]error{"a queue send": sendErr, "an admission": admitErr} {
		var nw *NotWritableError
		if !errors.As(err, &nw) || !errors.Is(err, ErrNotWritable) || !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s SQLite refused as read-only: %v; want a *NotWritableError that is store.ErrUnavailable", what, err)
			continue
		}
		if want := "state file " + p + " is not writable: "; !strings.HasPrefix(nw.Problem(), want) {
			t.Errorf("%s: problem %q; want it to begin %q", what, nw.Problem(), want)
		}
		if want := "chmod u+w " + p + " " + p + "-wal " + p + "-shm"; !strings.Contains(nw.Fix, want) {
			t.Errorf("%s: fix %q does not say %q", what, nw.Fix, want)
		}
	}
	onEveryConn(t, db, "PRAGMA query_only = 0")
	if st, err := db.Queue().Stats(ctx); err != nil || st.Visible != 0 {
		t.Errorf("queue %+v, %v; want nothing queued by the send that failed", st, err)
	}
}

// TestAGroupedWriteWhoseTurnNeverComesSaysTheFileIsBusy: a grouped write
// (a $connect, a $disconnect) whose turn to write does not come within
// the group's time, because another write of this process holds the file
// (waiting out another process's lock, about a minute), fails as a write
// that found the lock taken does: store.ErrUnavailable (503), saying the
// state file was held up. Before, it said "context deadline exceeded",
// which the routes answered 500.
func TestAGroupedWriteWhoseTurnNeverComesSaysTheFileIsBusy(t *testing.T) {
	db := openTest(t, Options{})
	ctx := t.Context()
	now := time.Now()
	secret, _, err := store.IssueChatterID(ctx, db.Store(), "alice", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	db.groupTimeout = 50 * time.Millisecond
	// Another write of this process has the turn, and keeps it.
	if err := db.beginWrite(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = db.Store().AdmitConnection(ctx, "c1", "alice", secret, now, 10, func(store.ChatterID) (pubsub.Connection, error) {
		return pubsub.Connection{ConnectedAt: now}, nil
	})
	db.endWrite()
	if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, ErrLocked) || !strings.Contains(fmt.Sprint(err), "state file "+db.Path()+" stayed busy") {
		t.Errorf("an admission whose turn never came: %v; want store.ErrUnavailable saying the state file stayed busy", err)
	}
	if _, err := db.Store().AdmitConnection(ctx, "c1", "alice", secret, now, 10, func(store.ChatterID) (pubsub.Connection, error) {
		return pubsub.Connection{ConnectedAt: now}, nil
	}); err != nil {
		t.Errorf("the same admission once the turn is free: %v", err)
	}
}

// TestIssuingAChatterIDOnAFullDiskIsUnavailable: issuing a chatter ID
// (the live page's POST /chatter-id, `socks chatter issue`) on a state
// file that cannot grow fails as store.ErrUnavailable saying the disk is
// full, through store.IssueChatterID's words, so that the page is
// answered 503 (web TestAStoreThatCannotBeWrittenNowIsTold503).
func TestIssuingAChatterIDOnAFullDiskIsUnavailable(t *testing.T) {
	db := openTest(t, Options{})
	ctx := t.Context()
	room := fillUp(t, db)
	var err error
	// Each chatter ID row is small: issue until the free room is gone
	// (a page's worth at most).
	for i := 0; i < 1000 && err == nil; i++ {
		_, _, err = store.IssueChatterID(ctx, db.Store(), fmt.Sprintf("geek%d", i), time.Hour, time.Now())
	}
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(fmt.Sprint(err), "the disk is full") {
		t.Errorf("issuing on a full disk: %v; want store.ErrUnavailable saying the disk is full", err)
	}
	room()
}

// TestAReadOnlyFileSystemIsNotCalledAPermission: a write SQLite refused
// as read-only because the file system holding the state file was
// mounted (or remounted) read-only said to chmod u+w the files, which
// cannot help there; a state dir on one said to make it writable by this
// user. Each says the file system is read-only and to remount it, or to
// use a state dir on another; a permission still gets chmod.
func TestAReadOnlyFileSystemIsNotCalledAPermission(t *testing.T) {
	db := openTest(t, Options{})
	ctx := t.Context()
	p := db.Path()
	saved := access
	t.Cleanup(func() { access = saved })
	onEveryConn(t, db, "PRAGMA query_only = 1")
	for _, tc := range []struct {
		name     string
		errno    syscall.Errno
		says     []string
		saysNone []string
	}{
		{"a read-only mount", syscall.EROFS, []string{"read-only file system", "mounted read-only", "remount it read-write", "--state-dir"}, []string{"chmod"}},
		{"a permission", syscall.EACCES, []string{"chmod u+w " + p}, []string{"remount"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			access = func(path string) error {
				if path == p+"-shm" {
					return nil
				}
				return &os.PathError{Op: "access", Path: path, Err: tc.errno}
			}
			_, err := db.Queue().Send(ctx, []byte(`{"topics":["t"],"body":1}`))
			var nw *NotWritableError
			if !errors.As(err, &nw) || !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("send: %v; want a *NotWritableError that is store.ErrUnavailable", err)
			}
			for _, w := range tc.says {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
			for _, w := range tc.saysNone {
				if strings.Contains(err.Error(), w) {
					t.Errorf("%q says %q", err, w)
				}
			}
		})
	}
	dirErr := DirNotWritable("/mnt/ro/socks", &os.PathError{Op: "access", Path: "/mnt/ro/socks", Err: syscall.EROFS})
	if s := dirErr.Error(); !strings.Contains(s, "mounted read-only") || strings.Contains(s, "writable by this user") {
		t.Errorf("state dir on a read-only mount: %q; want it to say the file system is mounted read-only, not to make it writable by this user", s)
	}
}

// TestAnOpenTheStateFileStaysLockedForSaysHowLongItWaited: an open that
// finds the state file held by another process in exclusive locking mode
// (a program that set `PRAGMA locking_mode=EXCLUSIVE`) fails after
// SQLite's wait and the retries, saying how long it waited in all.
// Before, it named SQLite's wait alone ("stayed locked … for 10s") while
// the open had waited about 60 s.
func TestAnOpenTheStateFileStaysLockedForSaysHowLongItWaited(t *testing.T) {
	path := filepath.Join(t.TempDir(), "socks.db")
	if err := openPath(t, path, Options{}).Close(); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=locking_mode(EXCLUSIVE)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK")

	// SQLite's wait for the lock, 10 s in the file's settings, cut short.
	const wait = 50 * time.Millisecond
	began := time.Now()
	db, err := Open(t.Context(), path, Options{lockWait: wait})
	took := time.Since(began)
	if err == nil {
		db.Close()
		t.Fatal("Open while another process holds the file in exclusive locking mode succeeded; want it refused")
	}
	if !errors.Is(err, ErrLocked) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open while another process holds the lock: %v; want ErrLocked, store.ErrUnavailable", err)
	}
	m := regexp.MustCompile(`stayed locked by another process for (\S+):`).FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("Open while another process holds the lock: %q does not say how long it waited", err)
	}
	said, perr := time.ParseDuration(m[1])
	if perr != nil {
		t.Fatalf("%q: %v", m[1], perr)
	}
	// Every try waits SQLite's wait at least; the retries pause besides.
	if least := (busyRetries + 1) * wait; said < least || said > took+50*time.Millisecond {
		t.Errorf("Open says it waited %s; it tried %d times, each waiting %s, and took %s in all: want what it waited", said, busyRetries+1, wait, took)
	}
}

// TestAWriteThatWaitsForAnotherProcesssLockTellsSo: a write whose first
// try finds the state file locked by another process past SQLite's wait
// calls the function given to NotifyLockWait, once, before it waits
// again (so that `socks publish` on a terminal can say what it waits
// for, where it was silent for a minute); it still fails as before,
// ErrLocked, if the lock stays taken, and passes if it is let go
// meanwhile. A write that finds the lock free calls nothing.
func TestAWriteThatWaitsForAnotherProcesssLockTellsSo(t *testing.T) {
	db := openTest(t, Options{})
	ctx := t.Context()
	// SQLite's wait for the lock, 10 s in the file's settings, cut short.
	onEveryConn(t, db, "PRAGMA busy_timeout = 20")
	told := 0
	var then func()
	db.NotifyLockWait(func() {
		told++
		if then != nil {
			then()
		}
	})
	release := holdWriteLock(t, db.Path())
	if _, err := db.Queue().Send(ctx, []byte(`{"topics":["t"],"body":1}`)); !errors.Is(err, ErrLocked) {
		t.Errorf("a send while another process holds the lock: %v; want ErrLocked", err)
	}
	if told != 1 {
		t.Errorf("told %d times of a send that waited for the lock and failed; want once", told)
	}
	release()
	told = 0
	if _, err := db.Queue().Send(ctx, []byte(`{"topics":["t"],"body":1}`)); err != nil || told != 0 {
		t.Errorf("a send with the lock free: %v, told %d times; want it sent, nothing told", err, told)
	}
	then = holdWriteLock(t, db.Path())
	if _, err := db.Queue().Send(ctx, []byte(`{"topics":["t"],"body":1}`)); err != nil || told != 1 {
		t.Errorf("a send whose lock was let go after it was told: %v, told %d times; want it sent, told once", err, told)
	}
}
