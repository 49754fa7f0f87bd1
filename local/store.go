package local

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

var _ store.Store = (*Store)(nil)
var _ store.TargetIDFinder = (*Store)(nil)
var _ store.LiveChatterIDCounter = (*Store)(nil)
var _ store.ExpiredReportDeleter = (*Store)(nil)
var _ store.ExpiredConnectionDeleter = (*Store)(nil)

// reportTTL is how long a report is kept: long enough for `publish --wait`
// and for troubleshooting the same day.
const reportTTL = 24 * time.Hour

// maxScanWorkers bounds the goroutines of ScanConnections, whatever the
// number of segments.
const maxScanWorkers = 16

// Store is the store.Store kept in the state file.
//
// Connection topics come back sorted, whatever order they were given in.
type Store struct {
	db *DB
	// targets are the cached target lookups (targets.go).
	targets targetCache
}

// queryer is what *sql.DB and *sql.Tx share.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// PutChatterID records an issued chatter ID, replacing one with the same
// geek and hash.
func (s *Store) PutChatterID(ctx context.Context, c store.ChatterID) error {
	err := s.db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO chatter_ids (geek, hash, issued_at, expires_at, topics) VALUES (?, ?, ?, ?, ?)
			 ON CONFLICT (geek, hash) DO UPDATE SET issued_at = excluded.issued_at, expires_at = excluded.expires_at,
				topics = excluded.topics`,
			c.Geek, c.Hash, millis(c.IssuedAt), millis(c.ExpiresAt), joinNames(c.Topics))
		return err
	})
	if err != nil {
		return fmt.Errorf("recording a chatter ID for %s: %w", c.Geek, err)
	}
	return nil
}

// VerifyChatterID looks the secret's hash up under geek, compares it in
// constant time, and returns nil, store.ErrUnauthorized (no such ID for this
// geek) or store.ErrExpired (the ID matched but expired at or before now).
func (s *Store) VerifyChatterID(ctx context.Context, geek, secret string, now time.Time) (store.ChatterID, error) {
	if err := ctx.Err(); err != nil {
		return store.ChatterID{}, fmt.Errorf("verifying a chatter ID for %s: %w", geek, err)
	}
	if err := s.db.needStmts(ctx); err != nil {
		return store.ChatterID{}, fmt.Errorf("verifying a chatter ID for %s: %w", geek, err)
	}
	// One key lookup, which never waits for a lock in WAL mode: not worth
	// the goroutine the driver starts to watch a context that can end.
	return verifyChatterID(context.WithoutCancel(ctx), s.db.stmts.verifyChatterID, geek, pubsub.HashChatterID(secret), now)
}

// verifyChatterID is VerifyChatterID with the hash of the secret, through
// stmt (stmts.verifyChatterID).
func verifyChatterID(ctx context.Context, stmt *sql.Stmt, geek, want string, now time.Time) (store.ChatterID, error) {
	var r chatterRow
	err := stmt.QueryRowContext(ctx, geek, want).Scan(&r.hash, &r.issued, &r.expires, &r.topics)
	return r.check(err, geek, want, now)
}

// chatterRow is a chatter_ids row as read.
type chatterRow struct {
	hash, topics    string
	issued, expires int64
}

// check turns the row read for geek and the hash want, and the error of
// reading it, into VerifyChatterID's result.
func (r chatterRow) check(err error, geek, want string, now time.Time) (store.ChatterID, error) {
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.ChatterID{}, fmt.Errorf("geek %s: %w", geek, store.ErrUnauthorized)
	case err != nil:
		return store.ChatterID{}, fmt.Errorf("verifying a chatter ID for %s: %w", geek, err)
	}
	if subtle.ConstantTimeCompare([]byte(r.hash), []byte(want)) != 1 {
		return store.ChatterID{}, fmt.Errorf("geek %s: %w", geek, store.ErrUnauthorized)
	}
	c := store.ChatterID{Geek: geek, Hash: r.hash, IssuedAt: fromMillis(r.issued), ExpiresAt: fromMillis(r.expires), Topics: splitNames(r.topics)}
	if c.Expired(now) {
		return store.ChatterID{}, fmt.Errorf("geek %s: %w", geek, store.ErrExpired)
	}
	return c, nil
}

// joinNames and splitNames keep a list of names in one column; names
// never hold a comma (pubsub.ValidateTopic).
func joinNames(names []string) string { return strings.Join(names, ",") }

func splitNames(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// countLiveChatterIDs counts a geek's (?1) chatter IDs live at ?2 (unix
// milliseconds): a range of the chatter_ids_geek_expires index.
const countLiveChatterIDs = `SELECT count(*) FROM chatter_ids WHERE geek = ?1 AND expires_at > ?2`

// CountLiveChatterIDs counts geek's chatter IDs not expired at now,
// without reading them: a pile of expired IDs does not slow it.
func (s *Store) CountLiveChatterIDs(ctx context.Context, geek string, now time.Time) (int, error) {
	var n int
	if err := s.db.sql.QueryRowContext(ctx, countLiveChatterIDs, geek, millis(now)).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting the live chatter IDs of %s: %w", geek, err)
	}
	return n, nil
}

// ListChatterIDs lists the chatter IDs of geek ("" for every geek), expired
// ones included, ordered by geek then issue time.
func (s *Store) ListChatterIDs(ctx context.Context, geek string) ([]store.ChatterID, error) {
	q := `SELECT geek, hash, issued_at, expires_at, topics FROM chatter_ids`
	var args []any
	if geek != "" {
		q += ` WHERE geek = ?`
		args = append(args, geek)
	}
	q += ` ORDER BY geek, issued_at, hash`
	rows, err := s.db.sql.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing chatter IDs: %w", err)
	}
	defer rows.Close()
	var out []store.ChatterID
	for rows.Next() {
		var c store.ChatterID
		var issued, expires int64
		var topics string
		if err := rows.Scan(&c.Geek, &c.Hash, &issued, &expires, &topics); err != nil {
			return nil, fmt.Errorf("listing chatter IDs: %w", err)
		}
		c.IssuedAt, c.ExpiresAt, c.Topics = fromMillis(issued), fromMillis(expires), splitNames(topics)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing chatter IDs: %w", err)
	}
	return out, nil
}

// RevokeChatterIDs deletes geek's chatter IDs whose hash starts with one of
// prefixes. A nil prefixes revokes all of geek's IDs; an empty non-nil slice
// and empty prefixes revoke nothing, so that a caller's empty list never
// widens into "everything".
func (s *Store) RevokeChatterIDs(ctx context.Context, geek string, prefixes []string) (int, error) {
	var n int
	err := s.db.write(ctx, func(tx *sql.Tx) error {
		n = 0
		if prefixes == nil {
			res, err := tx.ExecContext(ctx, `DELETE FROM chatter_ids WHERE geek = ?`, geek)
			if err != nil {
				return err
			}
			n = rowsAffected(res)
			return nil
		}
		for _, p := range prefixes {
			if p == "" {
				continue
			}
			res, err := tx.ExecContext(ctx,
				`DELETE FROM chatter_ids WHERE geek = ? AND substr(hash, 1, length(?)) = ?`, geek, p, p)
			if err != nil {
				return err
			}
			n += rowsAffected(res)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("revoking chatter IDs of %s: %w", geek, err)
	}
	return n, nil
}

// DeleteExpiredChatterIDs removes the chatter IDs expired at now, in
// write transactions of at most expiredBatch IDs: a pile of them (serve's
// sweep at start, prune-stale) holds the file from other writers one
// batch at a time. It returns how many it removed, also when it fails
// part way.
func (s *Store) DeleteExpiredChatterIDs(ctx context.Context, now time.Time) (int, error) {
	n, err := s.db.deleteExpired(ctx, "chatter_ids", "expires_at", now)
	if err != nil {
		return n, fmt.Errorf("deleting expired chatter IDs: %w", err)
	}
	return n, nil
}

// countExpiredChatterIDs counts the chatter IDs expired at ?1 (unix
// milliseconds): a range of the chatter_ids_expires index.
const countExpiredChatterIDs = `SELECT count(*) FROM chatter_ids WHERE expires_at <= ?1`

// CountExpiredChatterIDs counts the chatter IDs DeleteExpiredChatterIDs
// would remove at now, without reading them (prune-stale's dry run).
func (s *Store) CountExpiredChatterIDs(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := s.db.read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, countExpiredChatterIDs, millis(now)).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("counting expired chatter IDs: %w", err)
	}
	return n, nil
}

// PutConnection records (or replaces) a connection and its topics.
func (s *Store) PutConnection(ctx context.Context, c pubsub.Connection) error {
	err := s.db.writeGrouped(ctx, func(tx *wtx) error { return s.writeConnection(tx, c, true) })
	if err != nil {
		return fmt.Errorf("recording connection %s: %w", c.ID, err)
	}
	return nil
}

// writeConnection writes a connection record and its topics, first
// removing the topics it has when it may exist already.
func (s *Store) writeConnection(tx *wtx, c pubsub.Connection, mayExist bool) error {
	_, err := tx.stmt(s.db.stmts.putConnection).ExecContext(tx.ctx,
		c.ID, c.Geek, millis(c.ConnectedAt), nullMillis(c.ExpiresAt), joinNames(c.Allowed))
	if err != nil {
		return err
	}
	if mayExist {
		if _, err := tx.stmt(s.db.stmts.clearSubs).ExecContext(tx.ctx, c.ID); err != nil {
			return err
		}
	}
	return s.subscribe(tx, c.ID, c.Geek, c.Topics)
}

// subscribe adds topics to a connection; topics it already has are kept.
func (s *Store) subscribe(tx *wtx, id, geek string, topics []string) error {
	if len(topics) == 0 {
		return nil
	}
	stmt := tx.stmt(s.db.stmts.subscribe)
	for _, t := range topics {
		if _, err := stmt.ExecContext(tx.ctx, t, geek, id); err != nil {
			return err
		}
	}
	return nil
}

// GetConnection returns a connection record, expired or not;
// store.ErrNotFound if there is none.
func (s *Store) GetConnection(ctx context.Context, id string) (pubsub.Connection, error) {
	var c pubsub.Connection
	err := s.db.read(ctx, func(tx *sql.Tx) error {
		var err error
		c, err = getConnection(ctx, tx, id)
		return err
	})
	if err != nil {
		return pubsub.Connection{}, fmt.Errorf("connection %s: %w", id, err)
	}
	return c, nil
}

func getConnection(ctx context.Context, q queryer, id string) (pubsub.Connection, error) {
	var c pubsub.Connection
	var connected int64
	var expires sql.NullInt64
	var allowed string
	err := q.QueryRowContext(ctx,
		`SELECT id, geek, connected_at, expires_at, allowed FROM connections WHERE id = ?`, id).
		Scan(&c.ID, &c.Geek, &connected, &expires, &allowed)
	c.Allowed = splitNames(allowed)
	if errors.Is(err, sql.ErrNoRows) {
		return pubsub.Connection{}, store.ErrNotFound
	}
	if err != nil {
		return pubsub.Connection{}, err
	}
	c.ConnectedAt, c.ExpiresAt = fromMillis(connected), fromNullMillis(expires)
	topics, err := loadTopics(ctx, q, []string{id})
	if err != nil {
		return pubsub.Connection{}, err
	}
	c.Topics = topics[id]
	return c, nil
}

// AddTopics subscribes a connection to more topics, up to max in all, and
// returns the updated record; store.ErrNotFound if the connection is
// unknown, store.ErrLimit (with the record as it is) if it would follow
// more than max. The count and the write share one write transaction
// (BEGIN IMMEDIATE), which SQLite serialises across processes.
func (s *Store) AddTopics(ctx context.Context, id string, topics []string, max int) (pubsub.Connection, error) {
	if max < 1 {
		max = pubsub.MaxTopicsPerConnection
	}
	if err := s.db.needStmts(ctx); err != nil {
		return pubsub.Connection{}, fmt.Errorf("subscribing connection %s: %w", id, err)
	}
	var c pubsub.Connection
	var over int
	err := s.db.write(ctx, func(tx *sql.Tx) error {
		over = 0
		var err error
		c, err = getConnection(ctx, tx, id)
		if err != nil {
			return err
		}
		n := len(c.Topics)
		for _, t := range pubsub.Unique(topics) {
			if !slices.Contains(c.Topics, t) {
				n++
			}
		}
		if n > max {
			over = n
			return nil // Nothing to write; commit the empty transaction.
		}
		if err := s.subscribe(&wtx{Tx: tx, ctx: ctx}, id, c.Geek, topics); err != nil {
			return err
		}
		c, err = getConnection(ctx, tx, id)
		return err
	})
	if err != nil {
		return pubsub.Connection{}, fmt.Errorf("subscribing connection %s: %w", id, err)
	}
	if over > 0 {
		return c, fmt.Errorf("subscribing connection %s would make %d topics, over %d: %w", id, over, max, store.ErrLimit)
	}
	return c, nil
}

// RemoveTopics unsubscribes a connection from topics and returns the updated
// record; store.ErrNotFound if the connection is unknown. Topics the
// connection does not follow are ignored.
func (s *Store) RemoveTopics(ctx context.Context, id string, topics []string) (pubsub.Connection, error) {
	var c pubsub.Connection
	err := s.db.write(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM connections WHERE id = ?`, id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		for _, part := range chunks(topics, maxVars) {
			args := append([]any{id}, anys(part)...)
			if _, err := tx.ExecContext(ctx,
				`DELETE FROM subscriptions WHERE conn_id = ? AND topic IN (`+placeholders(len(part))+`)`, args...); err != nil {
				return err
			}
		}
		c, err = getConnection(ctx, tx, id)
		return err
	})
	if err != nil {
		return pubsub.Connection{}, fmt.Errorf("unsubscribing connection %s: %w", id, err)
	}
	return c, nil
}

// DeleteConnection removes a connection and its subscriptions. Deleting an
// unknown ID is not an error.
func (s *Store) DeleteConnection(ctx context.Context, id string) error {
	if _, err := s.DeleteConnections(ctx, []string{id}); err != nil {
		return err
	}
	return nil
}

// DeleteConnections removes many connections at once and returns how many
// existed.
func (s *Store) DeleteConnections(ctx context.Context, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	var n int
	err := s.db.writeGrouped(ctx, func(tx *wtx) error {
		ctx := tx.ctx
		n = 0
		if len(ids) == 1 {
			// $disconnect: the prepared statements.
			if _, err := tx.stmt(s.db.stmts.clearSubs).ExecContext(ctx, ids[0]); err != nil {
				return err
			}
			res, err := tx.stmt(s.db.stmts.deleteConnection).ExecContext(ctx, ids[0])
			if err != nil {
				return err
			}
			n = rowsAffected(res)
			return nil
		}
		var err error
		n, err = deleteConnectionRows(ctx, tx.Tx, ids)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("deleting %d connections: %w", len(ids), err)
	}
	return n, nil
}

// DeleteAllConnections removes every connection record and its
// subscriptions, and returns how many records there were. A gateway that
// starts holding the state dir's gateway lock calls it: the records then
// are all of a gateway that stopped without running their $disconnects
// (killed, crashed, a power loss), and would count against their geeks'
// caps and be posted to as targets.
func (s *Store) DeleteAllConnections(ctx context.Context) (int, error) {
	var n int
	err := s.db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM subscriptions`); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM connections`)
		if err != nil {
			return err
		}
		n = rowsAffected(res)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("deleting the connection records of a gateway that stopped: %w", err)
	}
	return n, nil
}

// deleteConnectionRows deletes the connection records ids and their
// subscriptions in tx, maxVars at a time, and returns how many records
// existed. The foreign key cascades too; deleting the subscriptions
// explicitly keeps a file opened without foreign_keys consistent.
func deleteConnectionRows(ctx context.Context, tx *sql.Tx, ids []string) (int, error) {
	n := 0
	for _, part := range chunks(ids, maxVars) {
		in := placeholders(len(part))
		if _, err := tx.ExecContext(ctx, `DELETE FROM subscriptions WHERE conn_id IN (`+in+`)`, anys(part)...); err != nil {
			return n, err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM connections WHERE id IN (`+in+`)`, anys(part)...)
		if err != nil {
			return n, err
		}
		n += rowsAffected(res)
	}
	return n, nil
}

// expiredConnectionIDs selects up to ? connection records expired at ?.
const expiredConnectionIDs = `SELECT id FROM connections WHERE expires_at <= ? LIMIT ?`

// DeleteExpiredConnections removes the connection records expired at
// now (never those without an expiry) and their subscriptions, in write
// transactions of at most expiredBatch records (see
// DeleteExpiredChatterIDs). It returns how many it removed, also when it
// fails part way.
func (s *Store) DeleteExpiredConnections(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for {
		var n int
		err := s.db.write(ctx, func(tx *sql.Tx) error {
			n = 0
			rows, err := tx.QueryContext(ctx, expiredConnectionIDs, millis(now), s.db.expiredBatch)
			if err != nil {
				return err
			}
			var ids []string
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				ids = append(ids, id)
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return err
			}
			n, err = deleteConnectionRows(ctx, tx, ids)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("deleting expired connection records: %w", err)
		}
		total += n
		if n < s.db.expiredBatch {
			return total, nil
		}
	}
}

// FindTargets returns the live connections (not expired at now) that an
// envelope addressed to users (empty: everyone) and topics reaches, each
// once with its full topic list, ordered by connection ID. The semantics are
// those of pubsub.Connection.Matches.
//
// Every lookup goes through an index — subscriptions by topic (the given
// topics and the wildcard) or by topic and geek, or, when topics hold the
// wildcard, the geeks' connections and then their subscriptions — except
// for a broadcast (the wildcard topic and no users), which reads every
// subscribed connection.
func (s *Store) FindTargets(ctx context.Context, users, topics []string, now time.Time) ([]pubsub.Connection, error) {
	queries := targetQueries(users, topics, targetSelect, targetSelectAll)
	if len(queries) == 0 {
		return nil, nil
	}
	var out []pubsub.Connection
	err := s.db.read(ctx, func(tx *sql.Tx) error {
		out = nil
		seen := make(map[string]bool)
		for _, q := range queries {
			conns, err := queryConnectionsWithTopics(ctx, tx, q.sql, append(q.args, millis(now))...)
			if err != nil {
				return err
			}
			for _, c := range conns {
				if !seen[c.ID] {
					seen[c.ID] = true
					out = append(out, c)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, lookupFailed(users, topics, err)
	}
	if len(queries) > 1 {
		slices.SortFunc(out, func(a, b pubsub.Connection) int { return strings.Compare(a.ID, b.ID) })
	}
	return out, nil
}

// targetQuery is one statement of FindTargets, whose last parameter (not
// in args) is the current time, or of FindTargetIDs.
type targetQuery struct {
	sql  string
	args []any
}

// targetSelect joins the chosen connection IDs with their records and all
// their topics, one row per subscription.
const targetSelect = `SELECT c.id, c.geek, c.connected_at, c.expires_at, s.topic
FROM connections c JOIN subscriptions s ON s.conn_id = c.id
WHERE c.id IN (SELECT conn_id FROM subscriptions s WHERE %s) AND (c.expires_at IS NULL OR c.expires_at > ?)
ORDER BY c.id, s.topic`

// targetSelectAll is targetSelect for a broadcast: every subscribed
// connection.
const targetSelectAll = `SELECT c.id, c.geek, c.connected_at, c.expires_at, s.topic
FROM connections c JOIN subscriptions s ON s.conn_id = c.id
WHERE (c.expires_at IS NULL OR c.expires_at > ?)
ORDER BY c.id, s.topic`

// targetQueries builds the statements FindTargets runs. Long lists of users
// or topics are split so that no statement binds too many values; a
// connection found by several statements is kept once.
func targetQueries(users, topics []string, sel, selAll string) []targetQuery {
	users = pubsub.Unique(users)
	topics = pubsub.Unique(topics)
	if len(topics) == 0 {
		return nil
	}
	wildcard := slices.Contains(topics, pubsub.AllTopics)
	if wildcard && len(users) == 0 {
		return []targetQuery{{sql: selAll}}
	}
	var out []targetQuery
	if wildcard {
		// Every subscribed connection of the users: their records by
		// geek, then the subscriptions of each.
		for _, u := range chunks(users, maxVars) {
			out = append(out, targetQuery{
				sql:  fmt.Sprintf(sel, `s.conn_id IN (SELECT id FROM connections WHERE geek IN (`+placeholders(len(u))+`))`),
				args: anys(u),
			})
		}
		return out
	}
	// The followers of the topics, and the wildcard subscribers.
	topics = append(slices.Clip(topics), pubsub.AllTopics)
	for _, t := range chunks(topics, maxVars) {
		if len(users) == 0 {
			out = append(out, targetQuery{
				sql:  fmt.Sprintf(sel, `s.topic IN (`+placeholders(len(t))+`)`),
				args: anys(t),
			})
			continue
		}
		for _, u := range chunks(users, maxVars) {
			out = append(out, targetQuery{
				sql: fmt.Sprintf(sel,
					`s.topic IN (`+placeholders(len(t))+`) AND s.geek IN (`+placeholders(len(u))+`)`),
				args: append(anys(t), anys(u)...),
			})
		}
	}
	return out
}

// queryConnectionsWithTopics runs a statement returning (id, geek,
// connected_at, expires_at, topic) rows ordered by id and folds them into
// connections.
func queryConnectionsWithTopics(ctx context.Context, q queryer, query string, args ...any) ([]pubsub.Connection, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []pubsub.Connection
	for rows.Next() {
		var c pubsub.Connection
		var connected int64
		var expires sql.NullInt64
		var topic string
		if err := rows.Scan(&c.ID, &c.Geek, &connected, &expires, &topic); err != nil {
			return nil, err
		}
		if n := len(out); n > 0 && out[n-1].ID == c.ID {
			out[n-1].Topics = append(out[n-1].Topics, topic)
			continue
		}
		c.ConnectedAt, c.ExpiresAt = fromMillis(connected), fromNullMillis(expires)
		c.Topics = []string{topic}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ListConnections calls fn with pages of up to 500 connections matching
// filter, ordered by geek then connection ID. filter.Topic matches the
// connections subscribed to exactly that topic: a wildcard subscriber is
// listed under "." only. Expired records are hidden unless
// filter.IncludeExpired. Each page is read in its own transaction, so
// records changed between pages may be missed or seen in their new state.
// An error from fn stops the walk and is returned as is.
func (s *Store) ListConnections(ctx context.Context, filter store.ConnectionFilter, now time.Time, fn func([]pubsub.Connection) error) error {
	var after *pubsub.Connection
	for {
		var where []string
		var args []any
		if after != nil {
			where = append(where, `(c.geek, c.id) > (?, ?)`)
			args = append(args, after.Geek, after.ID)
		}
		if filter.Geek != "" {
			where = append(where, `c.geek = ?`)
			args = append(args, filter.Geek)
		}
		if filter.Topic != "" {
			where = append(where, `c.id IN (SELECT conn_id FROM subscriptions WHERE topic = ?)`)
			args = append(args, filter.Topic)
		}
		if !filter.IncludeExpired {
			where = append(where, `(c.expires_at IS NULL OR c.expires_at > ?)`)
			args = append(args, millis(now))
		}
		q := `SELECT c.id, c.geek, c.connected_at, c.expires_at FROM connections c`
		if len(where) > 0 {
			q += ` WHERE ` + strings.Join(where, ` AND `)
		}
		q += fmt.Sprintf(` ORDER BY c.geek, c.id LIMIT %d`, pageSize)

		var page []pubsub.Connection
		err := s.db.read(ctx, func(tx *sql.Tx) error {
			var err error
			page, err = queryPage(ctx, tx, q, args...)
			return err
		})
		if err != nil {
			return fmt.Errorf("listing connections: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		if err := fn(page); err != nil {
			return err
		}
		if len(page) < pageSize {
			return nil
		}
		last := page[len(page)-1]
		after = &last
	}
}

// ScanConnections walks every connection record, expired ones included. The
// records are split into segments ranges of rowid that are read in pages of
// up to 500, in parallel (at most 16 at once); fn may be called concurrently.
// Records added during the walk may be missed. The first error stops the walk
// and is returned.
func (s *Store) ScanConnections(ctx context.Context, segments int, fn func([]pubsub.Connection) error) error {
	if segments < 1 {
		segments = 1
	}
	var lo, hi sql.NullInt64
	if err := s.db.sql.QueryRowContext(ctx, `SELECT MIN(rowid), MAX(rowid) FROM connections`).Scan(&lo, &hi); err != nil {
		return fmt.Errorf("scanning connections: %w", err)
	}
	if !lo.Valid || !hi.Valid {
		return nil
	}
	span := hi.Int64 - lo.Int64 + 1
	per := (span + int64(segments) - 1) / int64(segments)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(min(segments, maxScanWorkers))
	for i := int64(0); i < int64(segments); i++ {
		from := lo.Int64 + i*per
		if from > hi.Int64 {
			break
		}
		to := min(from+per, hi.Int64+1) // exclusive
		g.Go(func() error { return s.scanSegment(gctx, from, to, fn) })
	}
	return g.Wait()
}

// scanSegment reads the connections with from <= rowid < to.
func (s *Store) scanSegment(ctx context.Context, from, to int64, fn func([]pubsub.Connection) error) error {
	last := from - 1
	for {
		var page []pubsub.Connection
		var lastRow int64
		err := s.db.read(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx,
				fmt.Sprintf(`SELECT rowid, id, geek, connected_at, expires_at FROM connections
				 WHERE rowid > ? AND rowid < ? ORDER BY rowid LIMIT %d`, pageSize), last, to)
			if err != nil {
				return err
			}
			page, lastRow, err = scanConnectionRows(rows, true)
			if err != nil {
				return err
			}
			return attachTopics(ctx, tx, page)
		})
		if err != nil {
			return fmt.Errorf("scanning connections: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		if err := fn(page); err != nil {
			return err
		}
		if len(page) < pageSize {
			return nil
		}
		last = lastRow
	}
}

// queryPage runs a statement returning (id, geek, connected_at, expires_at)
// rows and attaches each connection's topics.
func queryPage(ctx context.Context, q queryer, query string, args ...any) ([]pubsub.Connection, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	page, _, err := scanConnectionRows(rows, false)
	if err != nil {
		return nil, err
	}
	return page, attachTopics(ctx, q, page)
}

// scanConnectionRows reads (id, geek, connected_at, expires_at) rows,
// preceded by the rowid when withRowid; it returns the last rowid read. It
// closes rows.
func scanConnectionRows(rows *sql.Rows, withRowid bool) ([]pubsub.Connection, int64, error) {
	defer rows.Close()
	var out []pubsub.Connection
	var rowid int64
	for rows.Next() {
		var c pubsub.Connection
		var connected int64
		var expires sql.NullInt64
		dest := []any{&c.ID, &c.Geek, &connected, &expires}
		if withRowid {
			dest = append([]any{&rowid}, dest...)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, 0, err
		}
		c.ConnectedAt, c.ExpiresAt = fromMillis(connected), fromNullMillis(expires)
		out = append(out, c)
	}
	return out, rowid, rows.Err()
}

// attachTopics fills in the topics of conns.
func attachTopics(ctx context.Context, q queryer, conns []pubsub.Connection) error {
	ids := make([]string, len(conns))
	for i, c := range conns {
		ids[i] = c.ID
	}
	topics, err := loadTopics(ctx, q, ids)
	if err != nil {
		return err
	}
	for i := range conns {
		conns[i].Topics = topics[conns[i].ID]
	}
	return nil
}

// loadTopics returns the sorted topics of each connection in ids.
func loadTopics(ctx context.Context, q queryer, ids []string) (map[string][]string, error) {
	out := make(map[string][]string, len(ids))
	for _, part := range chunks(ids, maxVars) {
		rows, err := q.QueryContext(ctx,
			`SELECT conn_id, topic FROM subscriptions WHERE conn_id IN (`+placeholders(len(part))+`) ORDER BY conn_id, topic`,
			anys(part)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id, topic string
			if err := rows.Scan(&id, &topic); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = append(out[id], topic)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// PutReport records what the broker did with a message, replacing an
// earlier report for the same message whatever its version. Up to 100
// reports older than a day (by their At) are removed on the way, and
// DeleteExpiredReports removes the rest.
func (s *Store) PutReport(ctx context.Context, r store.Report) error {
	return s.writeReport(ctx, r, false)
}

// ReplaceReport records r as PutReport does, unless the report stored is
// no longer the one read at r.Version: then it writes nothing and returns
// an error wrapping store.ErrConflict. The check and the write are one
// transaction.
func (s *Store) ReplaceReport(ctx context.Context, r store.Report) error {
	return s.writeReport(ctx, r, true)
}

func (s *Store) writeReport(ctx context.Context, r store.Report, check bool) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding the report of %s: %w", r.MessageID, err)
	}
	now := s.db.opts.Now()
	err = s.db.write(ctx, func(tx *sql.Tx) error {
		if check {
			v, err := reportVersion(ctx, tx, r.MessageID, now)
			if err != nil {
				return err
			}
			if v != r.Version {
				return fmt.Errorf("read at version %d, now %d: %w", r.Version, v, store.ErrConflict)
			}
		}
		return putReport(ctx, tx, r, data, now, s.db.reportsPerPut)
	})
	if err != nil {
		return fmt.Errorf("recording the report of %s: %w", r.MessageID, err)
	}
	return nil
}

// reportVersion reads in tx the version of the report of id live at now;
// 0 when there is none.
func reportVersion(ctx context.Context, tx *sql.Tx, id string, now time.Time) (int64, error) {
	var v int64
	err := tx.QueryRowContext(ctx, `SELECT version FROM reports WHERE message_id = ? AND at >= ?`,
		id, millis(now.Add(-reportTTL))).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

// putReport writes r, encoded as data, in tx, raising the stored version;
// now stands for a zero At. It deletes up to old reports older than a day
// before r.At on the way: a report write is on the broker's path, and
// one that deleted every such report held the file from every other
// writer for as long as a day of reports took to delete, after a day
// without messages; more than one a write keeps up with the reports
// written, and DeleteExpiredReports (serve's sweep) clears a backlog.
func putReport(ctx context.Context, tx *sql.Tx, r store.Report, data []byte, now time.Time, old int) error {
	at := r.At
	if at.IsZero() {
		at = now
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO reports (message_id, json, at, version) VALUES (?, ?, ?, 1)
		 ON CONFLICT (message_id) DO UPDATE SET json = excluded.json, at = excluded.at, version = reports.version + 1`,
		r.MessageID, string(data), millis(at)); err != nil {
		return err
	}
	if !r.At.IsZero() {
		_, err := tx.ExecContext(ctx, `DELETE FROM reports WHERE rowid IN
			(SELECT rowid FROM reports WHERE at < ? LIMIT ?)`, millis(r.At.Add(-reportTTL)), old)
		return err
	}
	return nil
}

// DeleteExpiredReports removes the reports older than a day at now (by
// their At), which GetReport no longer finds, in write transactions of
// at most expiredBatch reports (see DeleteExpiredChatterIDs). It returns
// how many it removed, also when it fails part way.
func (s *Store) DeleteExpiredReports(ctx context.Context, now time.Time) (int, error) {
	// at < now-TTL, as GetReport reads at >= now-TTL: at <= now-TTL-1ms.
	n, err := s.db.deleteExpired(ctx, "reports", "at", now.Add(-reportTTL-time.Millisecond))
	if err != nil {
		return n, fmt.Errorf("deleting reports older than a day: %w", err)
	}
	return n, nil
}

// GetReport returns the report of a message with its version;
// store.ErrNotFound until it exists and once it is older than a day (by
// its At), whether or not a later PutReport has removed it yet.
func (s *Store) GetReport(ctx context.Context, messageID string) (store.Report, error) {
	var data string
	var version int64
	err := s.db.sql.QueryRowContext(ctx, `SELECT json, version FROM reports WHERE message_id = ? AND at >= ?`,
		messageID, millis(s.db.opts.Now().Add(-reportTTL))).Scan(&data, &version)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Report{}, fmt.Errorf("report of %s: %w", messageID, store.ErrNotFound)
	}
	if err != nil {
		return store.Report{}, fmt.Errorf("report of %s: %w", messageID, err)
	}
	r, err := store.ParseReport([]byte(data))
	if err != nil {
		return store.Report{}, fmt.Errorf("report of %s is damaged: %w", messageID, err)
	}
	r.Version = version
	return r, nil
}

// rowsAffected returns the count of an Exec; SQLite always knows it.
func rowsAffected(res sql.Result) int {
	n, err := res.RowsAffected()
	if err != nil {
		return 0
	}
	return int(n)
}
