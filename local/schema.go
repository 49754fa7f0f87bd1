package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// migrations bring the schema from version i to version i+1 (PRAGMA
// user_version). Append to the list; never edit a step that was released.
var migrations = []string{
	// 1: the first schema. Times are unix milliseconds.
	`
CREATE TABLE chatter_ids (
	geek       TEXT    NOT NULL,
	hash       TEXT    NOT NULL,
	issued_at  INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (geek, hash)
);
CREATE INDEX chatter_ids_expires ON chatter_ids (expires_at);

CREATE TABLE connections (
	id           TEXT    NOT NULL PRIMARY KEY,
	geek         TEXT    NOT NULL,
	connected_at INTEGER NOT NULL,
	expires_at   INTEGER -- NULL: never
);
CREATE INDEX connections_geek ON connections (geek, id);

CREATE TABLE subscriptions (
	topic   TEXT NOT NULL,
	geek    TEXT NOT NULL,
	conn_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
	PRIMARY KEY (topic, geek, conn_id)
) WITHOUT ROWID;
CREATE INDEX subscriptions_conn ON subscriptions (conn_id);
CREATE INDEX subscriptions_geek ON subscriptions (geek, topic);

CREATE TABLE reports (
	message_id TEXT    NOT NULL PRIMARY KEY,
	json       TEXT    NOT NULL,
	at         INTEGER NOT NULL
);
CREATE INDEX reports_at ON reports (at);

CREATE TABLE queue (
	seq           INTEGER PRIMARY KEY AUTOINCREMENT,
	id            TEXT    NOT NULL UNIQUE,
	body          BLOB    NOT NULL,
	sent_at       INTEGER NOT NULL,
	visible_at    INTEGER NOT NULL,
	receive_count INTEGER NOT NULL DEFAULT 0,
	receipt       TEXT
);
CREATE INDEX queue_visible ON queue (visible_at);
CREATE UNIQUE INDEX queue_receipt ON queue (receipt) WHERE receipt IS NOT NULL;

CREATE TABLE dead_letters (
	id            TEXT    NOT NULL PRIMARY KEY,
	body          BLOB    NOT NULL,
	reason        TEXT    NOT NULL,
	receive_count INTEGER NOT NULL,
	sent_at       INTEGER NOT NULL,
	failed_at     INTEGER NOT NULL
);
CREATE INDEX dead_letters_failed ON dead_letters (failed_at);

CREATE TABLE meta (
	key   TEXT NOT NULL PRIMARY KEY,
	value TEXT NOT NULL
);
`,
	// 2: topic permissions of chatter IDs, copied onto their connections
	// (comma-joined; names never hold a comma).
	`
ALTER TABLE chatter_ids ADD COLUMN topics TEXT NOT NULL DEFAULT '';
ALTER TABLE connections ADD COLUMN allowed TEXT NOT NULL DEFAULT '';
`,
	// 3: no index of subscriptions by geek. Every $connect and
	// $disconnect wrote it; the one lookup that used it (the wildcard to
	// some geeks) finds the geeks' connections through connections_geek
	// and their subscriptions through subscriptions_conn instead.
	`
DROP INDEX IF EXISTS subscriptions_geek;
`,
	// 4: the generation of the target lookups: a counter raised by
	// triggers, in the transaction of the change and whichever process
	// makes it, by every change to subscriptions and to what of
	// connections a lookup reads. A cached lookup (targets.go) stays
	// valid while the counter is unchanged.
	`
CREATE TABLE target_generation (
	id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	n  INTEGER NOT NULL
);
INSERT INTO target_generation (id, n) VALUES (1, 0);
CREATE TRIGGER subscriptions_insert_generation AFTER INSERT ON subscriptions
	BEGIN UPDATE target_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER subscriptions_update_generation AFTER UPDATE ON subscriptions
	BEGIN UPDATE target_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER subscriptions_delete_generation AFTER DELETE ON subscriptions
	BEGIN UPDATE target_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER connections_insert_generation AFTER INSERT ON connections
	BEGIN UPDATE target_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER connections_update_generation AFTER UPDATE OF id, expires_at ON connections
	BEGIN UPDATE target_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER connections_delete_generation AFTER DELETE ON connections
	BEGIN UPDATE target_generation SET n = n + 1 WHERE id = 1; END;
`,
	// 5: no generation raised by a connection record's insert or delete,
	// a write per $connect and per $disconnect. A lookup reads only
	// connections that have a subscription, and (foreign keys on) a
	// subscription exists only while its record does: a new record has
	// none yet, and a record's subscriptions go before it or with it (ON
	// DELETE CASCADE), raising the generation themselves. A change of a
	// record's ID, geek (the wildcard to some geeks reads the record's) or
	// expiry still raises it.
	`
DROP TRIGGER IF EXISTS connections_insert_generation;
DROP TRIGGER IF EXISTS connections_delete_generation;
DROP TRIGGER IF EXISTS connections_update_generation;
CREATE TRIGGER connections_update_generation AFTER UPDATE OF id, geek, expires_at ON connections
	BEGIN UPDATE target_generation SET n = n + 1 WHERE id = 1; END;
`,
	// 6: the version of a report, raised by every write, for
	// ReplaceReport's check (0: written before it existed).
	`
ALTER TABLE reports ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
`,
	// 7: chatter IDs by geek and expiry, for the count of a geek's live
	// IDs at each issue (--max-live): a range of this index, whatever
	// number of expired IDs the geek still has.
	`
CREATE INDEX chatter_ids_geek_expires ON chatter_ids (geek, expires_at);
`,
	// 8: connection records by expiry, for serve's hourly sweep of those
	// expired a day ago (DeleteExpiredConnections): a range of this index
	// inside its write transaction, not a scan of every record.
	`
CREATE INDEX connections_expires ON connections (expires_at);
`,
}

// schemaVersion is the schema version this build writes.
var schemaVersion = len(migrations)

// errForeign says that the state file is an SQLite database of another
// program.
var errForeign = errors.New("it is an SQLite database with tables of another program")

// ErrNewerSchema says that the state file was written by a newer socks:
// upgrading socks is the fix, not moving the file (and its state) away.
var ErrNewerSchema = errors.New("was written by a newer socks")

// migrate brings the file's schema up to date. It is idempotent and safe
// when several processes open a new file at once: the version is read and
// raised inside one write transaction.
// checkSchema is migrate for a state file opened read-only: one whose
// schema is not up to date cannot be read.
func (db *DB) checkSchema(ctx context.Context) error {
	var v int
	err := retryBusy(ctx, func() error {
		return db.sql.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v)
	})
	switch {
	case err != nil:
		return err
	case v < 0:
		return errForeign
	case v > schemaVersion:
		return fmt.Errorf("%w (schema version %d; this socks knows up to %d): upgrade socks", ErrNewerSchema, v, schemaVersion)
	case v < schemaVersion:
		return fmt.Errorf("%w: it was written by an older socks (schema version %d, this one reads %d) and is brought up to date by a command that writes it (socks publish), which a user who may write it must run once", ErrOlderSchema, v, schemaVersion)
	}
	return nil
}

// ErrOlderSchema says that a state file opened read-only has an older
// schema: a read-write open brings it up to date.
var ErrOlderSchema = errors.New("cannot be read without writing it")

// ErrInUseByOlder says that a state file of an older schema is open in a
// running process of an older socks (Options.InUse), and so was left as
// it was.
var ErrInUseByOlder = errors.New("is in use by an older socks")

func (db *DB) migrate(ctx context.Context) error {
	// A read first, so that an up-to-date file (the usual case) needs no
	// write lock.
	var v int
	err := retryBusy(ctx, func() error {
		return db.sql.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v)
	})
	if err != nil {
		return err
	}
	if v == schemaVersion {
		return nil
	}
	if v < 0 {
		return errForeign // socks never writes one
	}
	if v > schemaVersion {
		return fmt.Errorf("%w (schema version %d; this socks knows up to %d): upgrade socks", ErrNewerSchema, v, schemaVersion)
	}
	// A new file (version 0) has no process of an older socks on it.
	if v > 0 && db.opts.InUse != nil {
		if who := db.opts.InUse(ctx, db); who != "" {
			// The process may be a newer socks that brought the file up
			// to date since the read above (serve and broker started
			// together after an upgrade): only one on the older schema
			// is refused.
			var now int
			if err := retryBusy(ctx, func() error {
				return db.sql.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&now)
			}); err != nil {
				return err
			}
			if now == schemaVersion {
				return nil
			}
			return fmt.Errorf("%w: %s still has it open, and this socks must first bring its schema up to date (version %d to %d), which would break that process: stop it, then run this command again", ErrInUseByOlder, who, v, schemaVersion)
		}
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		var v int
		if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
			return err
		}
		if v > schemaVersion {
			return fmt.Errorf("%w (schema version %d; this socks knows up to %d): upgrade socks", ErrNewerSchema, v, schemaVersion)
		}
		if v == 0 {
			// A new file has no tables; one with tables is another
			// program's database, not socks's to add to.
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite\_%' ESCAPE '\'`).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return errForeign
			}
		}
		for ; v < schemaVersion; v++ {
			if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
				return fmt.Errorf("migrating the schema to version %d: %w", v+1, err)
			}
		}
		// PRAGMA takes no bound parameters; v is an int we computed.
		_, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v))
		return err
	})
}
