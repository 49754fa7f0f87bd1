package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

// Admissions. A burst of $connects queues many AdmitConnections at once.
// Each alone runs three statements (the chatter check with the count, the
// record, its topics), and over half of a statement's cost was
// database/sql's and the driver's, not SQLite's. So the admissions of one
// group (group.go) are written together: one statement reads every
// admission's chatter ID, count and existing record, Go decides each in
// turn (counting the records admitted before it in the group against the
// cap), and one statement each writes the admitted records and their
// topics. An admission whose record exists already (a replacement) and a
// second admission of the same ID are written alone, after the others.
// When a group fails, group.go writes each write alone again, an admission
// too, so that one's failure is its own.

var _ store.ConnectionAdmitter = (*Store)(nil)

// admission is one AdmitConnection: what it asks and, once written, its
// outcome.
type admission struct {
	// want is the hash of the chatter ID's secret.
	id, geek, want string
	now            time.Time
	limit          int
	record         func(store.ChatterID) (pubsub.Connection, error)

	// n is the count of the geek's other live records (up to the limit);
	// refused is the outcome that wrote nothing. They are not returned
	// from the write: an error there would make the group write itself
	// again.
	n       int
	refused error
}

// AdmitConnection verifies a $connect's chatter ID, asks record for the
// connection to write, counts the geek's live records besides it and
// writes it unless that reaches limit: all in one write transaction
// (BEGIN IMMEDIATE, which SQLite serialises across processes), grouped
// with the other writes of the moment. So a connect costs a share of one
// transaction and of its statements; the chatter check and the count are
// read on the writing connection, whose cache its own writes keep fresh;
// and no number of concurrent connects leaves more than limit.
func (s *Store) AdmitConnection(ctx context.Context, id, geek, secret string, now time.Time, limit int, record func(store.ChatterID) (pubsub.Connection, error)) (int, error) {
	a := &admission{id: id, geek: geek, want: pubsub.HashChatterID(secret), now: now, limit: limit, record: record}
	err := s.db.queueWrite(ctx, s.admitAlone(a), a)
	if err != nil {
		return 0, fmt.Errorf("admitting connection %s of %s: %w", id, geek, err)
	}
	return a.n, a.refused
}

// admitAlone returns the write of a alone.
func (s *Store) admitAlone(a *admission) func(tx *wtx) error {
	return func(tx *wtx) error { return s.admitOne(tx, a) }
}

// admitOne writes one admission alone.
func (s *Store) admitOne(tx *wtx, a *admission) error {
	var r chatterRow
	var n int
	var exists bool
	err := tx.stmt(s.db.stmts.admit).QueryRowContext(tx.ctx, a.geek, a.want, a.id, millis(a.now), max(a.limit, 0)).
		Scan(&r.hash, &r.issued, &r.expires, &r.topics, &n, &exists)
	c, ok, err := a.decide(r, err, n)
	if err != nil || !ok {
		return err
	}
	return s.writeConnection(tx, c, exists)
}

// decide sets a's outcome from the chatter ID read for it (and the error of
// reading it) and n, the count of the geek's other live records, and
// returns the record to write if a is admitted. An error is a failure to
// read, not a refusal.
func (a *admission) decide(r chatterRow, readErr error, n int) (pubsub.Connection, bool, error) {
	a.n, a.refused = n, nil
	chatter, err := r.check(readErr, a.geek, a.want, a.now)
	if errors.Is(err, store.ErrUnauthorized) || errors.Is(err, store.ErrExpired) {
		a.refused = err
		return pubsub.Connection{}, false, nil
	}
	if err != nil {
		return pubsub.Connection{}, false, err
	}
	c, err := a.record(chatter)
	if err != nil {
		a.refused = err
		return pubsub.Connection{}, false, nil
	}
	if a.limit >= 1 && n >= a.limit {
		a.refused = fmt.Errorf("geek %s already has %d live connections, the most allowed: %w", a.geek, n, store.ErrLimit)
		return pubsub.Connection{}, false, nil
	}
	c.ID, c.Geek = a.id, a.geek
	return c, true, nil
}

// admitRead is what the group's read found for one admission.
type admitRead struct {
	found  bool // a chatter ID of the geek with the hash
	r      chatterRow
	n      int
	exists bool
}

// admitGroup writes the admissions of batch together, when there are two
// or more, and returns the writes left to write one by one: the others,
// the replacements and the repeated IDs.
func (s *Store) admitGroup(tx *wtx, batch []*groupedWrite) ([]*groupedWrite, error) {
	count := 0
	for _, w := range batch {
		if w.admit != nil {
			count++
		}
	}
	if count < 2 {
		return batch, nil
	}
	together := make([]*groupedWrite, 0, count)
	rest := make([]*groupedWrite, 0, len(batch)-count)
	ids := make(map[string]bool, count)
	for _, w := range batch {
		if a := w.admit; a != nil && !ids[a.id] {
			ids[a.id] = true
			together = append(together, w)
			continue
		}
		rest = append(rest, w)
	}
	reads := make([]admitRead, len(together))
	for start := 0; start < len(together); start += maxBatchRows {
		end := min(start+maxBatchRows, len(together))
		if err := s.readAdmissions(tx, together[start:end], reads[start:end]); err != nil {
			return nil, err
		}
	}
	conns := make([]pubsub.Connection, 0, len(together))
	// The expiry of each record admitted so far, by geek: they count
	// against the cap of the geek's later admissions.
	var admitted map[string][]sql.NullInt64
	for i, w := range together {
		a, rd := w.admit, reads[i]
		if rd.exists {
			rest = append(rest, w)
			continue
		}
		var readErr error
		if !rd.found {
			readErr = sql.ErrNoRows
		}
		n, now := rd.n, millis(a.now)
		for _, e := range admitted[a.geek] {
			if !e.Valid || e.Int64 > now {
				n++
			}
		}
		c, ok, err := a.decide(rd.r, readErr, min(n, max(a.limit, 0)))
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		conns = append(conns, c)
		if admitted == nil {
			admitted = make(map[string][]sql.NullInt64)
		}
		admitted[a.geek] = append(admitted[a.geek], nullMillis(c.ExpiresAt))
	}
	if err := s.insertConnections(tx, conns); err != nil {
		return nil, err
	}
	return rest, nil
}

// readAdmissions reads, in one statement, each admission's chatter ID,
// the count of its geek's other live records and whether its record
// exists, into reads (at the same index).
func (s *Store) readAdmissions(tx *wtx, part []*groupedWrite, reads []admitRead) error {
	rows := batchRows(len(part))
	limit := 0
	for _, w := range part {
		limit = max(limit, w.admit.limit)
	}
	stmt, err := s.db.batchStmt(tx, admitReadBatch, rows, countBound(limit))
	if err != nil {
		return err
	}
	args := make([]any, 0, rows*admitReadBatch.width)
	for k, w := range part {
		a := w.admit
		args = append(args, k, a.geek, a.want, a.id, millis(a.now))
	}
	res, err := stmt.QueryContext(tx.ctx, padRows(args, admitReadBatch.width, rows)...)
	if err != nil {
		return err
	}
	defer res.Close()
	for res.Next() {
		// Integers and one string: the cheapest to scan. The row's hash
		// is the one the admission gave: the join matched it.
		var k, n, exists int64
		var rd admitRead
		if err := res.Scan(&k, &rd.r.issued, &rd.r.expires, &rd.r.topics, &n, &exists); err != nil {
			return err
		}
		if k < 0 || k >= int64(len(reads)) {
			return fmt.Errorf("reading the admissions: row %d of %d", k, len(reads))
		}
		rd.found, rd.r.hash, rd.n, rd.exists = true, part[k].admit.want, int(n), exists != 0
		reads[k] = rd
	}
	return res.Err()
}

// insertConnections writes new connection records and their topics, a
// batch of rows per statement.
func (s *Store) insertConnections(tx *wtx, conns []pubsub.Connection) error {
	for part := range slices.Chunk(conns, maxBatchRows) {
		rows := batchRows(len(part))
		stmt, err := s.db.batchStmt(tx, connectionBatch, rows, 0)
		if err != nil {
			return err
		}
		args := make([]any, 0, rows*connectionBatch.width)
		for _, c := range part {
			args = append(args, c.ID, c.Geek, millis(c.ConnectedAt), nullMillis(c.ExpiresAt), joinNames(c.Allowed))
		}
		if _, err := stmt.ExecContext(tx.ctx, padRows(args, connectionBatch.width, rows)...); err != nil {
			return err
		}
	}
	var subs []any
	for _, c := range conns {
		for _, t := range c.Topics {
			subs = append(subs, t, c.Geek, c.ID)
		}
	}
	for part := range slices.Chunk(subs, maxBatchRows*subscriptionBatch.width) {
		rows := batchRows(len(part) / subscriptionBatch.width)
		stmt, err := s.db.batchStmt(tx, subscriptionBatch, rows, 0)
		if err != nil {
			return err
		}
		if _, err := stmt.ExecContext(tx.ctx, padRows(part, subscriptionBatch.width, rows)...); err != nil {
			return err
		}
	}
	return nil
}

// Batch statements: one statement for many rows, the rows given as a
// VALUES list of placeholders. A statement is prepared for each number of
// rows, rounded up (batchRows; the rows after the last given are NULLs,
// which the statements skip), up to maxBatchRows.
const maxBatchRows = 64

// batchKind is a statement for many rows: its SQL, with %[1]s for the
// VALUES rows (and %[2]d for the bound of a count, if it has one), and how
// many values a row has.
type batchKind struct {
	sql     string
	width   int
	counted bool
}

var (
	// admitReadBatch is the statement of stmts.admit for many admissions:
	// rows of (index, geek, hash, connection ID, now). An admission
	// without a chatter ID has no row. CROSS JOIN keeps the admissions
	// the outer loop. The bound of the counts is written into the
	// statement: SQLite plans a LIMIT with the value bound to it, so that
	// binding a parameter after the 31st (any row after the sixth) would
	// make it prepare the statement again at every run.
	admitReadBatch = &batchKind{sql: `WITH a (k, geek, hash, id, now) AS (VALUES %[1]s)
SELECT a.k, c.issued_at, c.expires_at, c.topics,
	(SELECT count(*) FROM (SELECT 1 FROM connections
		WHERE geek = a.geek AND id <> a.id AND (expires_at IS NULL OR expires_at > a.now) LIMIT %[2]d)),
	EXISTS (SELECT 1 FROM connections WHERE id = a.id)
FROM a CROSS JOIN chatter_ids c ON c.geek = a.geek AND c.hash = a.hash`, width: 5, counted: true}
	// connectionBatch is stmts.putConnection for many records.
	connectionBatch = &batchKind{sql: `INSERT INTO connections (id, geek, connected_at, expires_at, allowed)
SELECT * FROM (VALUES %[1]s) WHERE column1 IS NOT NULL
ON CONFLICT (id) DO UPDATE SET geek = excluded.geek,
	connected_at = excluded.connected_at, expires_at = excluded.expires_at, allowed = excluded.allowed`, width: 5}
	// subscriptionBatch is stmts.subscribe for many subscriptions.
	subscriptionBatch = &batchKind{sql: `INSERT OR IGNORE INTO subscriptions (topic, geek, conn_id)
SELECT * FROM (VALUES %[1]s) WHERE column1 IS NOT NULL`, width: 3}
)

// batchStmts are the batch statements prepared so far.
type batchStmts struct {
	mu sync.Mutex
	m  map[batchKey]*sql.Stmt
}

type batchKey struct {
	kind        *batchKind
	rows, bound int
}

// batchStmt returns the statement of kind for rows rows, bound to tx;
// bound is the bound of its count (countBound), so that few statements
// are prepared.
func (db *DB) batchStmt(tx *wtx, kind *batchKind, rows, bound int) (*sql.Stmt, error) {
	b := &db.batches
	b.mu.Lock()
	defer b.mu.Unlock()
	key := batchKey{kind, rows, bound}
	s, ok := b.m[key]
	if !ok {
		row := "(" + placeholders(kind.width) + ")"
		values := strings.Repeat(row+", ", rows-1) + row
		text := fmt.Sprintf(kind.sql, values)
		if kind.counted {
			text = fmt.Sprintf(kind.sql, values, bound)
		}
		var err error
		if s, err = db.sql.PrepareContext(tx.ctx, text); err != nil {
			return nil, err
		}
		if b.m == nil {
			b.m = make(map[batchKey]*sql.Stmt)
		}
		b.m[key] = s
	}
	return tx.stmt(s), nil
}

// batchRows is the number of rows of the statement for n rows: the next
// of 1, 2, 3, 4, 6, 8, 12, 16, …, a power of two or three quarters of one
// (0 for 0), so that at most a third of the rows are padding.
func batchRows(n int) int {
	p := nextPow2(n)
	if p >= 4 && n <= p/4*3 {
		return p / 4 * 3
	}
	return p
}

// nextPow2 is the least power of two at least n (0 for 0).
func nextPow2(n int) int {
	if n <= 1 {
		return max(n, 0)
	}
	return 1 << bits.Len(uint(n-1))
}

// countBound is the bound of the counts of the group's read for the
// largest limit of its admissions: the next power of two, or -1 (no
// bound) past a million. Go caps each count at its own limit.
func countBound(limit int) int {
	if limit > 1<<20 {
		return -1
	}
	return nextPow2(limit)
}

// padRows fills args, rows of width values, with NULL rows up to rows.
func padRows(args []any, width, rows int) []any {
	for len(args) < width*rows {
		args = append(args, nil)
	}
	return args
}
