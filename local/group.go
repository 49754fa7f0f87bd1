package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// Grouped writes. Many small writes at once (a burst of $connect and
// $disconnect records) each paid for a transaction and a commit, one after
// the other under writeSem. writeGrouped queues a write; one long-lived
// goroutine per DB, the group writer, writes every write queued by then
// in one transaction, and the callers wait for its result. The writer
// lives as long as the DB: its stack, grown once to what SQLite needs,
// stays grown, where a caller leading the group (as before) grew its own
// stack for every group.
//
// The admissions of a group ($connect's AdmitConnection) are written
// together, in a few statements for all of them (admit.go), and the
// group's other writes after them.
//
// A write that fails is rare (the limits refuse without failing), so the
// writer first writes the group as it is. Only when one fails does it
// write the group again with each write in its own savepoint, so that one
// write's failure rolls back only its own changes. Savepoints for every
// write cost two more statements each and a copy of every page it
// changed (SQLite's statement journal).

// groupTimeout bounds one grouped transaction, with the wait for its
// turn to write: the writer writes for every caller, so no single
// caller's context governs it.
const groupTimeout = 30 * time.Second

// errClosed is the error of a write queued after Close.
var errClosed = errors.New("the state file is closed")

// groupedWrite is one queued write and where its result goes.
type groupedWrite struct {
	fn func(tx *wtx) error
	// admit is set when the write is an AdmitConnection, which fn also
	// writes: the admissions of a group are written together (admit.go).
	admit *admission
	done  chan error
}

// grouper holds the queued writes.
type grouper struct {
	mu      sync.Mutex
	pending []*groupedWrite
	closed  bool
	// wake tells the writer that writes are pending (one token at most);
	// it is closed by Close.
	wake chan struct{}
	// stopped is closed when the writer has written its last group.
	stopped chan struct{}
}

// wtx is a write transaction with the context its statements run under.
// Each prepared statement (stmts.go) is bound to the transaction once,
// however many writes of a group run it.
type wtx struct {
	*sql.Tx
	ctx   context.Context
	bound []boundStmt
}

type boundStmt struct{ of, tx *sql.Stmt }

// stmt returns s bound to the transaction.
func (t *wtx) stmt(s *sql.Stmt) *sql.Stmt {
	for _, b := range t.bound {
		if b.of == s {
			return b.tx
		}
	}
	ts := t.StmtContext(t.ctx, s)
	t.bound = append(t.bound, boundStmt{s, ts})
	return ts
}

// startGroups starts the group writer.
func (db *DB) startGroups() {
	db.group.wake = make(chan struct{}, 1)
	db.group.stopped = make(chan struct{})
	go db.writeGroups()
}

// stopGroups lets the group writer write what is queued and waits for it
// to end; writes queued later fail.
func (db *DB) stopGroups() {
	g := &db.group
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.wake)
	}
	g.mu.Unlock()
	<-g.stopped
}

// writeGrouped runs fn in a write transaction shared with the other writes
// queued at the same time, and returns fn's error, or the transaction's if
// it could not commit. As with write, fn may run more than once (when the
// file is busy) and must not keep state from an earlier run. The write
// goes ahead even when ctx ends while it waits: only a write not yet
// queued is given up. fn runs its statements with tx.ctx, not with ctx:
// one that is never cancelled, so that the driver does not start a
// goroutine per statement to watch it (SQLite's busy_timeout bounds their
// waits).
func (db *DB) writeGrouped(ctx context.Context, fn func(tx *wtx) error) error {
	return db.queueWrite(ctx, fn, nil)
}

// queueWrite is writeGrouped for a write that may be an admission (a
// non-nil admit), which fn writes alone.
func (db *DB) queueWrite(ctx context.Context, fn func(tx *wtx) error, admit *admission) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w := writePool.Get().(*groupedWrite)
	w.fn, w.admit = fn, admit
	g := &db.group
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		w.fn, w.admit = nil, nil
		writePool.Put(w)
		return errClosed
	}
	g.pending = append(g.pending, w)
	if len(g.pending) == 1 {
		select {
		case g.wake <- struct{}{}:
		default: // the writer has been told already
		}
	}
	g.mu.Unlock()
	err := <-w.done
	// The writer is done with w: it sent its one result.
	w.fn, w.admit = nil, nil
	writePool.Put(w)
	return err
}

// writePool keeps queued writes and their result channels for reuse: one
// of each per $connect and per $disconnect otherwise.
var writePool = sync.Pool{New: func() any { return &groupedWrite{done: make(chan error, 1)} }}

// writeGroups is the group writer: it writes the queued groups until the
// DB closes.
func (db *DB) writeGroups() {
	g := &db.group
	defer close(g.stopped)
	for range g.wake {
		for {
			// Let the goroutines that are about to queue a write (the
			// other connects of a burst) do so before taking the group:
			// groups grew from about 5 writes to over 10 in
			// BenchmarkConnectVsCeiling, for a tenth less CPU per connect
			// (a transaction's begin and commit are a quarter of its
			// cost). It costs one pass of the scheduler.
			runtime.Gosched()
			g.mu.Lock()
			batch := g.pending
			g.pending = nil
			g.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			db.writeGroup(batch)
		}
	}
}

// writeGroup writes batch in one transaction and hands each its result.
func (db *DB) writeGroup(batch []*groupedWrite) {
	ctx, cancel := context.WithTimeout(context.Background(), db.groupTimeout)
	defer cancel()
	began := time.Now()
	// A group whose time ran out waiting for its turn (another write of
	// this process held the file, waiting out another process's lock)
	// failed as a write that found the lock taken does.
	busy := func(err error) error {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return unavailableError{error: fmt.Errorf("state file %s stayed busy with this process's other writes for %s (another process may hold its lock); try again: %w",
				db.path, time.Since(began).Round(100*time.Millisecond), err), locked: true}
		}
		return err
	}
	// The grouped writes, and the savepoints that give each its result,
	// use the prepared statements: prepared before the transaction, which
	// holds a connection of the pool.
	if err := db.needStmts(ctx); err != nil {
		err = busy(err)
		for _, w := range batch {
			w.done <- err
		}
		return
	}
	if len(batch) == 1 {
		batch[0].done <- busy(db.writeUncancelled(ctx, batch[0].fn))
		return
	}
	err := db.writeUncancelled(ctx, func(tx *wtx) error {
		// The admissions first, together; then the other writes. They
		// were all queued at once, so any order is one their callers
		// could have seen.
		rest, err := db.store.admitGroup(tx, batch)
		if err != nil {
			return err
		}
		for _, w := range rest {
			if err := w.fn(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		for _, w := range batch {
			w.done <- nil
		}
		return
	}
	// Again, each write (an admission too) in a savepoint, to give each
	// its own result.
	results := make([]error, len(batch))
	err = db.writeUncancelled(ctx, func(tx *wtx) error {
		savepoint, rollbackTo, release := tx.stmt(db.stmts.savepoint), tx.stmt(db.stmts.rollbackTo), tx.stmt(db.stmts.release)
		for i, w := range batch {
			results[i] = nil
			if _, err := savepoint.ExecContext(tx.ctx); err != nil {
				return err
			}
			if err := w.fn(tx); err != nil {
				results[i] = err
				if _, rerr := rollbackTo.ExecContext(tx.ctx); rerr != nil {
					// SQLite rolled back the whole transaction, its
					// savepoints with it (it may, on a full disk or an
					// I/O error): every write of the group failed, for
					// this one's reason.
					return err
				}
			}
			if _, err := release.ExecContext(tx.ctx); err != nil {
				return err
			}
		}
		return nil
	})
	err = busy(err)
	for i, w := range batch {
		if err != nil {
			w.done <- err
		} else {
			// A write's own failure says what a write alone would (a
			// full disk, store.ErrUnavailable), not SQLite's words.
			w.done <- db.writeError(results[i], began)
		}
	}
}
