// Package local is the embedded backend of socks: a store.Store and a
// store.Queue kept in one SQLite file (modernc.org/sqlite, pure Go, no cgo)
// in the user's state directory.
//
// Several socks processes may open the same file at once — `socks serve`
// running the gateway and the broker, `socks publish` from a script,
// `socks listen` in a terminal. The file is in WAL mode, so readers never
// block the writer; every write runs in a BEGIN IMMEDIATE transaction, so
// writers queue up on SQLite's lock (busy_timeout) instead of failing half
// way; and the rare SQLITE_BUSY that still escapes is retried.
//
// Times are stored as unix milliseconds and come back in UTC with millisecond
// precision.
package local

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/socks-dev/socks/internal/planted"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/internal/writable"
	"github.com/socks-dev/socks/store"
)

const (
	// DefaultPollInterval is the first pause of a long poll that found
	// nothing on the queue.
	DefaultPollInterval = 50 * time.Millisecond
	// maxPollInterval is what the pause of a long poll grows to.
	maxPollInterval = 250 * time.Millisecond

	// maxOpenConns bounds the SQLite connections of one DB handle.
	maxOpenConns = 4
	// connMaxIdle is how long an idle SQLite connection is kept.
	connMaxIdle = 30 * time.Second
	// busyTimeout is how long SQLite waits for another connection's lock.
	busyTimeout = 10 * time.Second
	// busyRetries is how often a transaction that still failed with
	// SQLITE_BUSY is run again.
	busyRetries = 5

	// walLimit is the size of the write-ahead log past which a write folds
	// it into the state file and truncates it, every walCheckEvery writes
	// (see endWrite). SQLite's own checkpoints keep it near 4 MB while
	// readers leave it gaps.
	walLimit      = 16 << 20
	walCheckEvery = 64
	// walMaxBackOff bounds the pause between two folds that readers held
	// up: 1<<walMaxBackOff checks (1,024 writes).
	walMaxBackOff = 4
	// walFoldWait is how long a fold waits for the readers of older
	// snapshots to end (the busy_timeout of its statement).
	walFoldWait = time.Second

	// expiredBatch bounds the expired rows (chatter IDs, dead letters) one
	// write transaction deletes (a few milliseconds' work), so that a pile
	// of them holds the file from other writers one batch at a time.
	expiredBatch = 1000
	// reportsPerPut bounds the reports older than a day that a report
	// write deletes on the way (see putReport).
	reportsPerPut = 100

	// pageSize is how many connections one page of ListConnections or
	// ScanConnections holds.
	pageSize = 500
	// maxVars bounds the values bound to one statement.
	maxVars = 500
)

// Options tune a DB. The zero value is ready to use.
type Options struct {
	// Now is the queue's clock (visibility timeouts, send and failure
	// times) and of report expiry (GetReport takes no time). It defaults
	// to time.Now. The other Store methods take the time as an argument.
	Now func() time.Time
	// MaxReceives is how often a queue message may be received before the
	// queue moves it to the dead letters by itself. It defaults to
	// store.DefaultMaxReceives.
	MaxReceives int
	// PollInterval is the first pause of a long poll that found nothing;
	// the pause grows to 250 ms (or stays at PollInterval if that is longer).
	// A Send through the same DB wakes a waiting Receive at once, and so
	// does a Send by another process (see wake.go); where the state dir
	// cannot be watched, such messages are seen at the next poll. It
	// defaults to DefaultPollInterval.
	PollInterval time.Duration
	// ReadOnly opens an existing state file for reading only, writing
	// nothing in its directory: a state dir the user may read but not
	// write (a backup, a read-only mount) can be listed. Writes through
	// such a DB fail.
	ReadOnly bool
	// InUse names a long-running socks process that has the state file
	// open (such as "`socks serve` (pid 123)"), or returns "" when none
	// does. Open calls it before it brings an older schema up to date and
	// refuses to while one runs: that process, an older socks, would go
	// on with statements and rules of the old schema against the new one
	// without an error (its writes break the new schema's invariants).
	// Nil: no check.
	InUse func(ctx context.Context, db *DB) string

	// lockWait is SQLite's wait for another connection's lock
	// (busy_timeout), busyTimeout unless a test cuts it short.
	lockWait time.Duration
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxReceives <= 0 {
		o.MaxReceives = store.DefaultMaxReceives
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.lockWait <= 0 {
		o.lockWait = busyTimeout
	}
	return o
}

// DB is an open state file. It is safe for concurrent use, and other
// processes may use the same file at the same time.
type DB struct {
	sql  *sql.DB
	path string
	opts Options
	// file is the state file as it was opened, to tell when the path
	// names another file (or none) since (WatchReplaced).
	file os.FileInfo

	// writeSem serialises this process's write transactions, so that they
	// wait on a Go channel (honouring their context) instead of spinning in
	// SQLite's busy handler against each other.
	writeSem chan struct{}
	// writes counts this process's write transactions, and walLimit is
	// the size of the write-ahead log past which a write folds it into
	// the file and truncates it; walHeldUp counts the folds in a row that
	// readers held up, and walRetry is the write from which the next is
	// tried; walFolds counts the folds tried (see endWrite). Under
	// writeSem.
	writes, walCheckEvery         int
	walLimit                      int64
	walHeldUp, walRetry, walFolds int
	// foldWait is how long a fold waits for readers (walFoldWait; tests
	// set their own).
	foldWait time.Duration
	// expiredBatch is how many expired rows one write transaction of
	// deleteExpired deletes (the constant expiredBatch; tests
	// lower it).
	expiredBatch int
	// reportsPerPut is how many old reports a report write deletes
	// (the constant reportsPerPut; tests set their own).
	reportsPerPut int
	// groupTimeout bounds a grouped write (the constant groupTimeout;
	// tests set their own).
	groupTimeout time.Duration
	// wake is closed (and replaced) when this process made a message
	// visible, to end the pause of a long poll early. wakeMu guards it.
	wake   chan struct{}
	wakeMu sync.Mutex
	// stmts are prepared once, when first needed (see stmts.go), and so
	// are the batch statements (admit.go).
	stmts   stmts
	batches batchStmts
	// group queues the writes that share a transaction (see group.go).
	group grouper
	// watch wakes this process's long polls when another process made a
	// message visible (see wake.go).
	watch watcher
	// lockWait is told when a write waited for another process's lock
	// (see NotifyLockWait).
	lockWait atomic.Pointer[func()]

	store *Store
	queue *Queue
}

// Open opens the state file at path, creating it (mode 0600) and its
// directory (mode 0700) when missing, and brings its schema up to date.
// Close the DB when done.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if path == "" {
		return nil, errors.New("no state file given; set --state-dir or SOCKS_STATE_DIR")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	if opts.ReadOnly {
		return openReadOnly(ctx, abs, opts)
	}
	dir := filepath.Dir(abs)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, DirNotWritable(dir, err)
	}
	if fi, err := os.Lstat(abs); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("state file %s is a directory; remove it or set --state-dir or SOCKS_STATE_DIR", abs)
	}
	if err := checkPlanted(abs); err != nil {
		return nil, err
	}
	// Create the file ourselves so that it gets mode 0600; SQLite gives the
	// -wal and -shm files the same mode.
	f, err := planted.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		if errors.Is(err, planted.ErrNotRegular) {
			return nil, err
		}
		if _, serr := os.Stat(abs); serr == nil && errors.Is(err, fs.ErrPermission) {
			return nil, fileNotWritable(abs)
		}
		return nil, DirNotWritable(dir, err)
	}
	fi, err := f.Stat()
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("state file %s: %w", abs, err)
	}

	return open(ctx, abs, fi, dsn(abs, opts.withDefaults().lockWait), opts)
}

// sqliteFiles are the suffixes of the files SQLite opens for the state
// file: the file itself, its write-ahead log and shared memory, and the
// rollback journal it looks for as it opens (a "hot" one is rolled back
// into the file).
var sqliteFiles = []string{"", "-wal", "-shm", "-journal"}

// checkPlanted refuses the state file abs when it, or a file SQLite opens
// beside it, is a symbolic link, a FIFO or anything but a regular file:
// another member of a group that may write the state dir may have planted
// it. SQLite follows a link at the state file itself (it resolves the
// path first) and wrote its pages into the file the link points at,
// creating it when missing; it opens the others without following links,
// which failed as a state dir that is not writable; and it waited for
// ever on a FIFO at the journal. The error names the file and says to
// remove it. Each new SQLite connection checks again (unplanted); what
// is planted between a check and SQLite's open is not seen.
func checkPlanted(abs string) error {
	for _, suffix := range sqliteFiles {
		if err := planted.Check(abs + suffix); err != nil {
			return err
		}
	}
	return nil
}

// unplanted opens the SQLite connections of the state file abs, each
// refused while a file SQLite opens is planted (checkPlanted): a process
// runs for long, and its pool opens connections as it goes (one for each
// that was idle too long), each of which looked for a hot journal and
// waited for ever on a FIFO planted there meanwhile.
type unplanted struct {
	driver.Connector
	abs string
}

func (c unplanted) Connect(ctx context.Context) (driver.Conn, error) {
	if err := checkPlanted(c.abs); err != nil {
		return nil, err
	}
	return c.Connector.Connect(ctx)
}

// open opens the state file abs (as fi) through the data source name
// dsn and brings its schema up to date (or, read-only, checks that it
// is). The statements are prepared when first needed (stmts.go).
func open(ctx context.Context, abs string, fi os.FileInfo, dsn string, opts Options) (*DB, error) {
	connector, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", abs, err)
	}
	sqldb := sql.OpenDB(unplanted{Connector: connector, abs: abs})
	// Each connection holds a file descriptor on the state file, and in
	// WAL mode SQLite keeps a closed connection's descriptor open while any
	// other is open (closing it would drop the process's locks): so the
	// pool is bounded, or a burst of work would leave the process holding
	// as many descriptors as the burst had connections. Writes are one at
	// a time anyway (writeSem). Within the bound the pool does not churn:
	// opening an SQLite connection (the file, the pragmas, the schema)
	// costs far more than a query, and database/sql keeps only 2 idle
	// connections by default. Idle connections close after a while.
	sqldb.SetMaxOpenConns(maxOpenConns)
	sqldb.SetMaxIdleConns(maxOpenConns)
	sqldb.SetConnMaxIdleTime(connMaxIdle)
	db := &DB{
		sql:           sqldb,
		path:          abs,
		file:          fi,
		opts:          opts.withDefaults(),
		writeSem:      make(chan struct{}, 1),
		walLimit:      walLimit,
		walCheckEvery: walCheckEvery,
		foldWait:      walFoldWait,
		expiredBatch:  expiredBatch,
		reportsPerPut: reportsPerPut,
		groupTimeout:  groupTimeout,
		wake:          make(chan struct{}),
	}
	db.store = &Store{db: db}
	db.queue = &Queue{db: db}
	migrate := db.migrate
	if opts.ReadOnly {
		migrate = db.checkSchema
	}
	began := time.Now()
	if err := migrate(ctx); err != nil {
		_ = sqldb.Close()
		return nil, openError(abs, err, time.Since(began))
	}
	db.startGroups()
	return db, nil
}

// dsn builds the modernc.org/sqlite data source name: a file: URI (so that
// any character in the path is safe) with the per-connection settings.
func dsn(abs string, lockWait time.Duration) string {
	u := url.URL{Path: filepath.ToSlash(abs)}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", lockWait.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// A statement that writes many rows (the grouped admissions) keeps a
	// journal of the pages it changed, to undo itself alone; past 64 KiB
	// SQLite spills it to a temporary file, a write per page. In memory it
	// is a copy.
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Set("_txlock", "immediate")
	return "file:" + u.EscapedPath() + "?" + q.Encode()
}

// openReadOnly opens the existing state file abs for reading only (see
// Options.ReadOnly). The file is in WAL mode: SQLite reads it read-only
// (mode=ro) when its -wal and -shm files exist or can be made, that is
// while a process that may write it has it open, or when the dir is
// writable. Otherwise, with no -wal file or an empty one (the last writer
// closed it cleanly, folding it into the file), the file alone holds
// everything and is read as immutable: SQLite then takes no locks and
// makes no file. A -wal file that holds changes and cannot be read makes
// the read impossible, which the error says.
func openReadOnly(ctx context.Context, abs string, opts Options) (*DB, error) {
	fi, err := os.Lstat(abs)
	if err != nil {
		return nil, fmt.Errorf("cannot read state file %s: %w", abs, unwrapPathErr(err))
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("state file %s is a directory; remove it or set --state-dir or SOCKS_STATE_DIR", abs)
	}
	if err := checkPlanted(abs); err != nil {
		return nil, err
	}
	lockWait := opts.withDefaults().lockWait
	db, err := open(ctx, abs, fi, readOnlyDSN(abs, false, lockWait), opts)
	if err == nil || !cannotOpen(err) {
		return db, err
	}
	if wal, werr := os.Stat(abs + "-wal"); werr == nil && wal.Size() > 0 {
		return nil, fmt.Errorf("cannot read state file %s: its write-ahead log %s, which may hold its latest changes, is read by SQLite only where it may write (a -shm file beside it); read it as a user who may write %s, or copy the state dir somewhere writable and read the copy (--state-dir)", abs, filepath.Base(abs)+"-wal", filepath.Dir(abs))
	}
	db, err = open(ctx, abs, fi, readOnlyDSN(abs, true, lockWait), opts)
	if err != nil && cannotOpen(err) {
		return nil, fmt.Errorf("cannot read state file %s: %w; make it readable by this user, or set --state-dir or SOCKS_STATE_DIR", abs, fs.ErrPermission)
	}
	return db, err
}

// cannotOpen reports whether err is SQLite's refusal to open a file or
// to read it read-only (no -shm file it may make).
func cannotOpen(err error) bool {
	switch sqliteCode(err) {
	case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM:
		return true
	}
	return false
}

// readOnlyDSN is dsn for reading only: mode=ro, or immutable (no locks,
// no -wal or -shm file read or made). No journal mode is set (that
// writes) and transactions begin deferred.
func readOnlyDSN(abs string, immutable bool, lockWait time.Duration) string {
	u := url.URL{Path: filepath.ToSlash(abs)}
	q := url.Values{}
	q.Set("mode", "ro")
	if immutable {
		q.Set("immutable", "1")
	}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", lockWait.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "temp_store(MEMORY)")
	return "file:" + u.EscapedPath() + "?" + q.Encode()
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ErrNotWritable says that this user cannot write the state dir or the
// state file: its permissions, or a read-only file system. Making it
// writable is the fix; moving the file away would lose what it holds.
// Every such error is a *NotWritableError.
var ErrNotWritable = errors.New("is not writable")

// NotWritableError is ErrNotWritable for one state dir or state file, with
// the problem and the fix kept apart: Error says both in one line, as the
// commands print it; the doctor prints Problem, and its fix in a column of
// its own.
type NotWritableError struct {
	What string // "state dir" or "state file"
	Path string
	Err  error // why: permission denied, a read-only file system
	Fix  string
}

// Problem says what cannot be written and why, without the fix.
func (e *NotWritableError) Problem() string {
	return fmt.Sprintf("%s %s %s: %v", e.What, e.Path, ErrNotWritable, e.Err)
}

func (e *NotWritableError) Error() string { return e.Problem() + "; " + e.Fix }

func (e *NotWritableError) Unwrap() []error { return []error{ErrNotWritable, e.Err} }

// DirNotWritable is the error of a state dir that cannot be written
// (err, an *fs.PathError or its cause, says why).
func DirNotWritable(dir string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	fix := "make it writable by this user, or set --state-dir or SOCKS_STATE_DIR to a writable directory"
	if errors.Is(err, syscall.EROFS) {
		fix = readOnlyMountFix
	}
	return &NotWritableError{What: "state dir", Path: dir, Err: err, Fix: fix}
}

// readOnlyMountFix is the fix of a state dir or file on a file system
// mounted read-only (EROFS), where no chmod helps.
const readOnlyMountFix = "the file system it is on is mounted read-only: remount it read-write, or set --state-dir or SOCKS_STATE_DIR to a directory on a writable one"

// fileNotWritable is the error of a state file this user may not write.
func fileNotWritable(path string) error {
	return &NotWritableError{What: "state file", Path: path, Err: fs.ErrPermission,
		Fix: "make it writable by this user (chmod u+w " + path + "), or set --state-dir or SOCKS_STATE_DIR"}
}

// openError turns a failure to open or migrate, after waiting for
// waited, into an error that says what to do about it.
func openError(path string, err error, waited time.Duration) error {
	if errors.Is(err, ErrNewerSchema) {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	if errors.Is(err, ErrOlderSchema) || errors.Is(err, ErrInUseByOlder) {
		return fmt.Errorf("state file %s %w", path, err)
	}
	if errors.As(err, new(unavailableError)) {
		// A write of the schema that failed (writeError): it says why
		// already, naming the file.
		return err
	}
	if d := diskError(path, err); d != nil {
		return d
	}
	if errors.Is(err, errForeign) {
		return fmt.Errorf("state file %s is not a socks state database: %w; move it away or set --state-dir or SOCKS_STATE_DIR", path, err)
	}
	switch sqliteCode(err) {
	case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
		return fmt.Errorf("state file %s is not a socks state database: %w; move it away or set --state-dir or SOCKS_STATE_DIR", path, err)
	case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM:
		return DirNotWritable(filepath.Dir(path), err)
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return lockedError(path, waited, err)
	}
	return fmt.Errorf("opening state file %s: %w", path, err)
}

// ErrReplaced says that the state file was deleted, moved away or
// replaced while this process had it open.
var ErrReplaced = errors.New("was deleted or replaced while socks ran")

// replacedCheck is how often WatchReplaced looks at the state file.
const replacedCheck = time.Second

// WatchReplaced checks every second that the state file's path still
// names the file Open opened. It returns nil when ctx ends, and an error
// wrapping ErrReplaced once the path names another file or none: the DB
// then writes to a file no other process opens (their messages go to the
// new one), so a long-running process must stop rather than go on.
func (db *DB) WatchReplaced(ctx context.Context) error {
	t := time.NewTicker(replacedCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		fi, err := os.Stat(db.path)
		switch {
		case errors.Is(err, os.ErrNotExist) || err == nil && !os.SameFile(fi, db.file):
			return fmt.Errorf("state file %s %w: this process used the deleted file, which no other socks process sees; start it again", db.path, ErrReplaced)
		case err != nil:
			// Unreadable for now (permissions changed): SQLite's own
			// reads and writes say what is wrong; look again later.
		}
	}
}

// ErrDamaged says that the state file failed SQLite's check of its
// structure: pages that are no b-tree pages, or indexes that do not match
// their tables (a bad disk, a copy taken while it was written).
var ErrDamaged = errors.New("is damaged")

// CheckIntegrity reads the whole state file with SQLite's quick_check and
// returns an error wrapping ErrDamaged, naming the first problems, when
// its structure is damaged: reads of what the damage spares still work,
// so the file opens and other reads may not notice.
func (db *DB) CheckIntegrity(ctx context.Context) error {
	var problems []string
	err := db.read(ctx, func(tx *sql.Tx) error {
		problems = nil
		rows, err := tx.QueryContext(ctx, `PRAGMA quick_check(3)`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				return err
			}
			for _, line := range strings.Split(p, "\n") {
				if line != "" && !strings.HasPrefix(line, "*** in database ") {
					problems = append(problems, line)
				}
			}
		}
		return rows.Err()
	})
	switch {
	case sqliteCode(err) == sqlite3.SQLITE_CORRUPT || sqliteCode(err) == sqlite3.SQLITE_NOTADB:
		return fmt.Errorf("state file %s %w: %w", db.path, ErrDamaged, err)
	case err != nil:
		return fmt.Errorf("checking state file %s: %w", db.path, err)
	case len(problems) == 1 && problems[0] == "ok":
		return nil
	}
	return fmt.Errorf("state file %s %w: %s", db.path, ErrDamaged, strings.Join(problems, "; "))
}

// Path returns the absolute path of the state file.
func (db *DB) Path() string { return db.path }

// Store returns the chatter-ID and connection store kept in the file.
func (db *DB) Store() *Store { return db.store }

// Queue returns the envelope queue kept in the file.
func (db *DB) Queue() *Queue { return db.queue }

// Close closes the file. Calls on the DB after Close fail.
func (db *DB) Close() error {
	db.stopGroups()
	db.stopWatch()
	return db.sql.Close()
}

// SetMeta records value under key, replacing any earlier value. The gateway
// records its endpoint this way so that other processes find it.
func (db *DB) SetMeta(ctx context.Context, key, value string) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO meta(key, value) VALUES (?, ?)
			 ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value)
		return err
	})
	if err != nil {
		return fmt.Errorf("set %s in %s: %w", key, db.path, err)
	}
	return nil
}

// GetMeta returns the value recorded under key and whether there is one.
func (db *DB) GetMeta(ctx context.Context, key string) (string, bool, error) {
	var value string
	err := db.sql.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&value)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("get %s from %s: %w", key, db.path, err)
	}
	return value, true, nil
}

// DeleteMeta removes key. Removing a missing key is not an error.
func (db *DB) DeleteMeta(ctx context.Context, key string) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM meta WHERE key = ?`, key)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete %s from %s: %w", key, db.path, err)
	}
	return nil
}

// deleteExpired deletes the rows of table whose column is at or before
// now (unix milliseconds, through an index of column), in write
// transactions of at most expiredBatch rows each, and returns how many it
// deleted, also when it fails part way.
func (db *DB) deleteExpired(ctx context.Context, table, column string, now time.Time) (int, error) {
	total := 0
	del := fmt.Sprintf(`DELETE FROM %[1]s WHERE rowid IN (SELECT rowid FROM %[1]s WHERE %[2]s <= ? LIMIT ?)`, table, column)
	for {
		var n int
		err := db.write(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, del, millis(now), db.expiredBatch)
			if err != nil {
				return err
			}
			n = rowsAffected(res)
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < db.expiredBatch {
			return total, nil
		}
	}
}

// beginWrite waits for this process's turn to write (writeSem); call
// endWrite when done.
func (db *DB) beginWrite(ctx context.Context) error {
	select {
	case db.writeSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// endWrite ends this process's turn to write, every walCheckEvery writes
// folding the write-ahead log into the state file first when it has grown
// past walLimit. SQLite's own checkpoints (after a commit, never waiting)
// copy the log into the file only up to the oldest snapshot still read,
// and start the log again from its beginning only when no reader uses it:
// readers that overlap (a broker's lookups, `publish --wait`'s polls,
// from any process) starve them, and the -wal file grows by every write,
// for good. A fold (wal_checkpoint(TRUNCATE)) holds off other writers,
// waits up to walFoldWait for the readers of older snapshots to end
// (readers that begin meanwhile read the file itself), and truncates the
// log. One that a reader held up past its wait is tried again at the
// next check, and while readers keep holding folds up, after 2, 4, 8,
// then every 16 checks (1,024 writes): a reader that never lets go costs
// a fold's wait only every so often, and the log is folded soon after
// the reads that held it up end, having grown by at most that many
// writes. Once the log is under walLimit (folded by this process or
// another), the next fold is tried as soon as it is past it again.
func (db *DB) endWrite() {
	defer func() { <-db.writeSem }()
	db.writes++
	if db.writes%db.walCheckEvery != 0 {
		return
	}
	fi, err := os.Stat(db.path + "-wal")
	if err != nil || fi.Size() <= db.walLimit {
		db.walHeldUp, db.walRetry = 0, 0
		return
	}
	if db.writes < db.walRetry {
		return
	}
	db.walFolds++
	if db.foldWAL() {
		db.walHeldUp, db.walRetry = 0, 0
		return
	}
	db.walHeldUp++
	db.walRetry = db.writes + db.walCheckEvery<<min(db.walHeldUp-1, walMaxBackOff)
}

// WriteLockHeld reports whether another connection holds the state
// file's write lock for longer than wait: it asks for the lock (BEGIN
// IMMEDIATE, with SQLite waiting at most wait) and lets it go at once,
// writing nothing. A stuck socks command or an sqlite3 shell with a
// transaction open holds it so, and every write then waits for it and
// fails after about a minute; a running serve's writes hold it for
// milliseconds. A DB opened read-only holds no write lock to ask for:
// false.
func (db *DB) WriteLockHeld(ctx context.Context, wait time.Duration) (bool, error) {
	if db.opts.ReadOnly {
		return false, nil
	}
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	restore, err := db.waitForLocks(ctx, conn, wait)
	if err != nil {
		return false, err
	}
	defer restore()
	_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	if isBusy(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	_, err = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	return false, err
}

// waitForLocks sets SQLite's wait for other connections' locks on conn
// (busy_timeout) to wait, for one piece of work that waits otherwise than
// the file's setting (db.opts.lockWait). restore sets it back before conn
// returns to the pool; if that fails, conn is dropped rather than kept.
func (db *DB) waitForLocks(ctx context.Context, conn *sql.Conn, wait time.Duration) (restore func(), err error) {
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", wait.Milliseconds())); err != nil {
		return nil, err
	}
	return func() {
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA busy_timeout = %d", db.opts.lockWait.Milliseconds())); err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}, nil
}

// foldWAL copies the write-ahead log into the state file and truncates
// it, reporting whether it did.
func (db *DB) foldWAL() bool {
	ctx, cancel := context.WithTimeout(context.Background(), db.foldWait+db.opts.lockWait)
	defer cancel()
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return false
	}
	defer conn.Close()
	restore, err := db.waitForLocks(ctx, conn, db.foldWait)
	if err != nil {
		return false
	}
	defer restore()
	var busy, logged, folded int
	if err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logged, &folded); err != nil {
		return false
	}
	return busy == 0
}

// write runs fn in a write (BEGIN IMMEDIATE) transaction and commits it. fn
// may run more than once when SQLite reports the file busy, so it must not
// keep state from an earlier run.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := db.beginWrite(ctx); err != nil {
		return err
	}
	defer db.endWrite()
	began := time.Now()
	return db.writeError(db.retryBusyWrite(ctx, func() error { return runTx(ctx, db.sql, nil, fn) }), began)
}

// writeUncancelled is write for fn that runs its statements with the
// context it is given: ctx bounds the wait for this process's turn to
// write and the pauses between retries, but once begun the transaction
// runs to its end (SQLite's busy_timeout bounds its waits for locks)
// under a context that is never cancelled, so that neither database/sql
// nor the driver starts a goroutine per transaction and per statement to
// watch it.
func (db *DB) writeUncancelled(ctx context.Context, fn func(tx *wtx) error) error {
	if err := db.beginWrite(ctx); err != nil {
		return err
	}
	defer db.endWrite()
	txCtx := context.WithoutCancel(ctx)
	began := time.Now()
	return db.writeError(db.retryBusyWrite(ctx, func() error {
		return runTx(txCtx, db.sql, nil, func(tx *sql.Tx) error { return fn(&wtx{Tx: tx, ctx: txCtx}) })
	}), began)
}

// writeDurable is write with synchronous=FULL for this transaction: when
// it returns, the commit is on disk (the WAL fsynced), so that it survives
// a crash of the machine, not only of the process. The file's other writes
// run with synchronous=NORMAL, which in WAL mode survives a crash of the
// process but may lose the last commits on a power loss or kernel panic.
// docs/reliability.md says which writes are which.
func (db *DB) writeDurable(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := db.beginWrite(ctx); err != nil {
		return err
	}
	defer db.endWrite()
	began := time.Now()
	return db.writeError(db.retryBusyWrite(ctx, func() error {
		conn, err := db.sql.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = FULL"); err != nil {
			return err
		}
		// Back to the file's setting before the connection returns to the
		// pool; if that fails, the connection is dropped rather than kept.
		defer func() {
			if _, err := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous = NORMAL"); err != nil {
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}()
		return runTx(ctx, conn, nil, fn)
	}), began)
}

// writeError says in the user's words why a write begun at began failed
// where SQLite says "database or disk is full" (ENOSPC), "disk I/O
// error" (EFBIG past a file size limit, EIO) or "database is locked"
// (another process held the lock past busy_timeout and the retries).
func (db *DB) writeError(err error, began time.Time) error {
	if d := diskError(db.path, err); d != nil {
		return d
	}
	if isBusy(err) {
		return lockedError(db.path, time.Since(began), err)
	}
	if sqliteCode(err) == sqlite3.SQLITE_READONLY && !db.opts.ReadOnly {
		return unavailableError{error: readOnlyError(db.path, err)}
	}
	return err
}

// readOnlyError is the *NotWritableError of a write to the state file at
// path that SQLite refused as read-only (err): the file, or its -wal or
// -shm file, was made read-only (or its file system remounted so) after
// the process opened it, and SQLite opened a connection again. It names
// those of them this user may not write (asking without opening them:
// see writable), or all three when it cannot tell which; on a file
// system mounted read-only it says so, as no chmod helps there.
func readOnlyError(path string, err error) error {
	var named []string
	why := err
	for _, suffix := range []string{"", "-wal", "-shm"} {
		werr := access(path + suffix)
		if werr == nil || errors.Is(werr, fs.ErrNotExist) {
			continue
		}
		if errors.Is(werr, syscall.EROFS) {
			return &NotWritableError{What: "state file", Path: path, Err: werr, Fix: readOnlyMountFix}
		}
		if named == nil {
			why = werr
		}
		named = append(named, path+suffix)
	}
	if named == nil {
		return &NotWritableError{What: "state file", Path: path, Err: why,
			Fix: "make it and its -wal and -shm files writable by this user (chmod u+w " + shellWords(path, path+"-wal", path+"-shm") + "), or set --state-dir or SOCKS_STATE_DIR"}
	}
	it := "it"
	if len(named) > 1 {
		it = "them"
	}
	return &NotWritableError{What: "state file", Path: strings.Join(named, " and "), Err: why,
		Fix: "make " + it + " writable by this user (chmod u+w " + shellWords(named...) + "), or set --state-dir or SOCKS_STATE_DIR"}
}

// access is writable.Check; tests change it.
var access = writable.Check

// shellWords is paths as words of a shell command.
func shellWords(paths ...string) string {
	words := make([]string, len(paths))
	for i, p := range paths {
		words[i] = text.ShellWord(p)
	}
	return strings.Join(words, " ")
}

// lockedError is the error of a write to the state file at path that
// found it locked by another process for d, past SQLite's busy_timeout
// and retryBusy's tries. It is store.ErrUnavailable: the same write may
// pass once the lock is let go.
func lockedError(path string, d time.Duration, err error) error {
	return unavailableError{error: fmt.Errorf("state file %s stayed locked by another process for %s: a socks command may be stuck, or a program (an sqlite3 shell) holds a transaction open on it; end it and try again: %w",
		path, d.Round(100*time.Millisecond), err), locked: true}
}

// ErrLocked says that the state file stayed locked by another process
// past SQLite's wait and the retries: ending that process is the fix,
// not moving the file away. Every such error is store.ErrUnavailable too.
var ErrLocked = errors.New("stayed locked by another process")

// diskError is the error of a write to the state file at path that
// failed for want of room (or an I/O error), or nil for any other error.
// It is store.ErrUnavailable.
func diskError(path string, err error) error {
	switch sqliteCode(err) {
	case sqlite3.SQLITE_FULL:
		return unavailableError{error: fmt.Errorf("cannot write the state file %s: the disk is full; free some space and try again: %w", path, err)}
	case sqlite3.SQLITE_IOERR:
		return unavailableError{error: fmt.Errorf("cannot write the state file %s: the disk is full, a file size limit was reached, or the disk failed: %w", path, err)}
	}
	return nil
}

// unavailableError is an error that is store.ErrUnavailable too (and,
// locked, ErrLocked), and says what it wraps.
type unavailableError struct {
	error
	locked bool
}

func (e unavailableError) Unwrap() error { return e.error }

func (e unavailableError) Is(target error) bool {
	return target == store.ErrUnavailable || e.locked && target == ErrLocked
}

// read runs fn in a read transaction, so that its statements see one
// snapshot of the file.
func (db *DB) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return retryBusy(ctx, func() error {
		return runTx(ctx, db.sql, &sql.TxOptions{ReadOnly: true}, fn)
	})
}

// txBeginner is a *sql.DB or a *sql.Conn.
type txBeginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

func runTx(ctx context.Context, sqldb txBeginner, opts *sql.TxOptions, fn func(tx *sql.Tx) error) error {
	tx, err := sqldb.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return txError(ctx, err)
	}
	return txError(ctx, tx.Commit())
}

// txError says that a transaction ended because its context did, where
// database/sql, having rolled it back, says only that it is done.
func txError(ctx context.Context, err error) error {
	if errors.Is(err, sql.ErrTxDone) && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// retryBusy runs fn again, with a growing pause, while it fails because the
// file is locked by someone else.
func retryBusy(ctx context.Context, fn func() error) error {
	return retryBusyTelling(ctx, nil, fn)
}

// retryBusyWrite is retryBusy for a write of db, which tells the
// function given to NotifyLockWait when the first try found the lock
// taken.
func (db *DB) retryBusyWrite(ctx context.Context, fn func() error) error {
	return retryBusyTelling(ctx, db, fn)
}

// NotifyLockWait has fn called each time a write of db found the state
// file locked by another process past SQLite's wait (busy_timeout, 10 s)
// and is about to wait again (about a minute in all before it fails,
// ErrLocked): a command on a terminal says that it waits and for what
// (`socks publish`), where it was silent. nil stops the calls. Writes
// that pass the first time cost nothing of it.
func (db *DB) NotifyLockWait(fn func()) {
	if fn == nil {
		db.lockWait.Store(nil)
		return
	}
	db.lockWait.Store(&fn)
}

// retryBusyTelling is retryBusy, telling db's NotifyLockWait function
// (db nil: none) when the first try found the lock taken.
func retryBusyTelling(ctx context.Context, db *DB, fn func() error) error {
	pause := 20 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || attempt >= busyRetries || !isBusy(err) {
			return err
		}
		if attempt == 0 && db != nil {
			if told := db.lockWait.Load(); told != nil {
				(*told)()
			}
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		pause *= 2
	}
}

// sqliteCode returns the primary SQLite result code of err, or 0.
func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff
	}
	return 0
}

func isBusy(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
}

// notify wakes the long polls of this process and of the other processes
// watching the state file.
func (db *DB) notify() {
	db.notifyLocal()
	db.signalOthers()
}

// notifyLocal wakes the long polls of this process.
func (db *DB) notifyLocal() {
	db.wakeMu.Lock()
	defer db.wakeMu.Unlock()
	close(db.wake)
	db.wake = make(chan struct{})
}

// woken returns a channel that is closed at the next notify.
func (db *DB) woken() <-chan struct{} {
	db.wakeMu.Lock()
	defer db.wakeMu.Unlock()
	return db.wake
}

// randomID returns prefix followed by 128 random bits in hex.
func randomID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	return prefix + hex.EncodeToString(b[:])
}

// millis converts a time to what the file stores.
func millis(t time.Time) int64 { return t.UnixMilli() }

// fromMillis converts a stored time back.
func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// nullMillis stores the zero time as NULL ("never").
func nullMillis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

// fromNullMillis converts a stored nullable time back; NULL is the zero time.
func fromNullMillis(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMillis(n.Int64)
}

// placeholders returns "?, ?, ..." for n values.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	b := make([]byte, 0, 3*n)
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '?')
	}
	return string(b)
}

// chunks splits s into slices of at most n elements.
func chunks[T any](s []T, n int) [][]T {
	var out [][]T
	for len(s) > n {
		out = append(out, s[:n:n])
		s = s[n:]
	}
	if len(s) > 0 {
		out = append(out, s)
	}
	return out
}

// anys converts values for binding.
func anys[T any](s []T) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
