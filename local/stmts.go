package local

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
)

// stmts are the statements of the connect and disconnect paths and the
// generation check of every target lookup, prepared once: parsing them
// again on every $connect was a fifth of its CPU.
// database/sql prepares each on a pooled connection the first time it runs
// there and keeps it; tx.StmtContext reuses it inside a transaction.
// They are prepared at the first call that needs them (needStmts), not
// when the file is opened: a process that only publishes (socks publish)
// uses none, and preparing them (parsing the schema and ten statements)
// was a fifth of its work with the file.
type stmts struct {
	// ready says they are prepared; mu guards preparing them.
	ready atomic.Bool
	mu    sync.Mutex

	verifyChatterID  *sql.Stmt
	admit            *sql.Stmt
	putConnection    *sql.Stmt
	clearSubs        *sql.Stmt
	subscribe        *sql.Stmt
	deleteConnection *sql.Stmt
	// targetGeneration reads the generation of the target lookups
	// (targets.go).
	targetGeneration *sql.Stmt
	// The savepoints of grouped writes (group.go).
	savepoint, rollbackTo, release *sql.Stmt
}

// needStmts prepares the statements unless they are: every method that
// uses db.stmts calls it first, before its transaction (preparing takes a
// connection of the pool). A failure is returned, and the next call tries
// again.
func (db *DB) needStmts(ctx context.Context) error {
	if db.stmts.ready.Load() {
		return nil
	}
	db.stmts.mu.Lock()
	defer db.stmts.mu.Unlock()
	if db.stmts.ready.Load() {
		return nil
	}
	if err := db.prepareStmts(ctx); err != nil {
		return err
	}
	db.stmts.ready.Store(true)
	return nil
}

func (db *DB) prepareStmts(ctx context.Context) error {
	for _, p := range []struct {
		to  **sql.Stmt
		sql string
	}{
		{&db.stmts.verifyChatterID, `SELECT hash, issued_at, expires_at, topics FROM chatter_ids WHERE geek = ? AND hash = ?`},
		// $connect's chatter check, and in the same statement the count of
		// the geek's live records other than the connection's (up to a
		// bound, through the (geek, id) index) and whether the
		// connection's record exists: ?1 geek, ?2 hash, ?3 connection ID,
		// ?4 now, ?5 the bound.
		{&db.stmts.admit, `SELECT hash, issued_at, expires_at, topics,
			(SELECT count(*) FROM (SELECT 1 FROM connections
				WHERE geek = ?1 AND id <> ?3 AND (expires_at IS NULL OR expires_at > ?4) LIMIT ?5)),
			EXISTS (SELECT 1 FROM connections WHERE id = ?3)
			FROM chatter_ids WHERE geek = ?1 AND hash = ?2`},
		{&db.stmts.putConnection, `INSERT INTO connections (id, geek, connected_at, expires_at, allowed) VALUES (?, ?, ?, ?, ?)
			 ON CONFLICT (id) DO UPDATE SET geek = excluded.geek,
				connected_at = excluded.connected_at, expires_at = excluded.expires_at, allowed = excluded.allowed`},
		{&db.stmts.clearSubs, `DELETE FROM subscriptions WHERE conn_id = ?`},
		{&db.stmts.subscribe, `INSERT OR IGNORE INTO subscriptions (topic, geek, conn_id) VALUES (?, ?, ?)`},
		{&db.stmts.deleteConnection, `DELETE FROM connections WHERE id = ?`},
		{&db.stmts.targetGeneration, `SELECT n FROM target_generation WHERE id = 1`},
		{&db.stmts.savepoint, `SAVEPOINT grouped`},
		{&db.stmts.rollbackTo, `ROLLBACK TO grouped`},
		{&db.stmts.release, `RELEASE grouped`},
	} {
		s, err := db.sql.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("preparing the statements of %s: %w", db.path, err)
		}
		*p.to = s
	}
	return nil
}
