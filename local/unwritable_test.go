package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// Faults of a state file that cannot take writes, injected on the
// connections of a DB's pool: every connection the pool may hand out
// (maxOpenConns of them) runs the pragma, and stays in the pool
// afterwards (the pool keeps as many idle).

// onEveryConn runs pragma on every connection of db's pool.
func onEveryConn(t *testing.T, db *DB, pragma string) {
	t.Helper()
	ctx := context.Background()
	conns := make([]*sql.Conn, 0, maxOpenConns)
	for range maxOpenConns {
		c, err := db.sql.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		if _, err := c.ExecContext(ctx, pragma); err != nil {
			t.Fatalf("%s: %v", pragma, err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
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
