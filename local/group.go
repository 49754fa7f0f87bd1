package local

import (
	"context"
	"database/sql"
	"runtime"
	"sync"
	"time"
)

// Grouped writes. Many small writes at once (a burst of $connect and
// $disconnect records) each paid for a transaction and a commit, one after
// the other under writeSem. writeGrouped queues a write; whoever finds no
// group being written becomes the leader and writes every queued write in
// one transaction. The others wait for the leader's result.
//
// A write that fails is rare (the limits refuse without failing), so the
// leader first writes the group as it is. Only when one fails does it
// write the group again with each write in its own savepoint, so that one
// write's failure rolls back only its own changes. Savepoints for every
// write cost two more statements each and a copy of every page it
// changed (SQLite's statement journal).

// groupTimeout bounds one grouped transaction: the leader writes for
// others, so no single caller's context governs it.
const groupTimeout = 30 * time.Second

// groupedWrite is one queued write and where its result goes.
type groupedWrite struct {
	fn   func(ctx context.Context, tx *sql.Tx) error
	done chan error
}

// grouper holds the queued writes.
type grouper struct {
	mu      sync.Mutex
	pending []*groupedWrite
	leading bool
}

// writeGrouped runs fn in a write transaction shared with the other writes
// queued at the same time, and returns fn's error, or the transaction's if
// it could not commit. As with write, fn may run more than once (when the
// file is busy) and must not keep state from an earlier run. The write
// goes ahead even when ctx ends while it waits: only a write not yet
// started is given up. fn runs its statements with the context it is
// given, not with ctx: one that is never cancelled, so that the driver
// does not start a goroutine per statement to watch it (SQLite's
// busy_timeout bounds their waits).
func (db *DB) writeGrouped(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w := &groupedWrite{fn: fn, done: make(chan error, 1)}
	g := &db.group
	g.mu.Lock()
	g.pending = append(g.pending, w)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if lead {
		db.leadGroups()
	}
	return <-w.done
}

// leadGroups writes the queued groups until none is left.
func (db *DB) leadGroups() {
	g := &db.group
	for {
		// Let the goroutines that are about to queue a write (the other
		// connects of a burst) do so before taking the group: groups grew
		// from about 5 writes to over 10 in BenchmarkConnectVsCeiling,
		// for a tenth less CPU per connect (a transaction's begin and
		// commit are a quarter of its cost). It costs one pass of the
		// scheduler.
		runtime.Gosched()
		g.mu.Lock()
		batch := g.pending
		g.pending = nil
		if len(batch) == 0 {
			g.leading = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		db.writeGroup(batch)
	}
}

// writeGroup writes batch in one transaction and hands each its result.
func (db *DB) writeGroup(batch []*groupedWrite) {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	if len(batch) == 1 {
		batch[0].done <- db.writeUncancelled(ctx, batch[0].fn)
		return
	}
	err := db.writeUncancelled(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, w := range batch {
			if err := w.fn(ctx, tx); err != nil {
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
	// Again, each write in a savepoint, to give each its own result.
	results := make([]error, len(batch))
	err = db.writeUncancelled(ctx, func(ctx context.Context, tx *sql.Tx) error {
		savepoint := tx.StmtContext(ctx, db.stmts.savepoint)
		rollbackTo := tx.StmtContext(ctx, db.stmts.rollbackTo)
		release := tx.StmtContext(ctx, db.stmts.release)
		for i, w := range batch {
			results[i] = nil
			if _, err := savepoint.ExecContext(ctx); err != nil {
				return err
			}
			if err := w.fn(ctx, tx); err != nil {
				results[i] = err
				if _, err := rollbackTo.ExecContext(ctx); err != nil {
					return err
				}
			}
			if _, err := release.ExecContext(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	for i, w := range batch {
		if err != nil {
			w.done <- err
		} else {
			w.done <- results[i]
		}
	}
}
