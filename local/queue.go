package local

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
)

var _ store.Queue = (*Queue)(nil)
var _ store.ExpiredDeadLetterDeleter = (*Queue)(nil)

// Queue is the store.Queue kept in the state file, with the semantics of an
// SQS standard queue and its redrive policy:
//
//   - Receive hands out visible messages oldest first and hides them for the
//     visibility timeout; a message that is not deleted in time comes back
//     with a higher receive count (at-least-once delivery).
//   - Each receive gives the message a fresh receipt. Delete,
//     ChangeVisibility and DeadLetter with a stale receipt (one from an
//     earlier receive of a message that was received again, or of a message
//     already deleted) do nothing, so a slow worker can never delete a
//     message someone else is now handling; Delete and ChangeVisibility
//     then return nil, DeadLetter an error wrapping store.ErrStaleReceipt.
//   - A message that would be received more than Options.MaxReceives times
//     is moved to the dead letters instead, with the reason "received N
//     times without being handled (max M)".
type Queue struct {
	db *DB
}

func (q *Queue) now() time.Time { return q.db.opts.Now() }

// visibleAlways is the visible_at of a message that is visible at once:
// one sent, redriven, or made visible again with ChangeVisibility 0. It is
// not the time of the write, so that a wall clock stepped back afterwards
// (an NTP correction, a resumed VM) does not hide the message for the
// size of the step, as an SQS queue would not.
const visibleAlways = 0

// Send enqueues one message body and returns its queue message ID ("q-…").
func (q *Queue) Send(ctx context.Context, body []byte) (string, error) {
	ids, err := q.SendBatch(ctx, [][]byte{body})
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

// SendBatch enqueues bodies, all or none, and returns their IDs in order.
// There is no batch limit locally; the bodies are written in one
// transaction, with synchronous=FULL (see DB.writeDurable).
func (q *Queue) SendBatch(ctx context.Context, bodies [][]byte) ([]string, error) {
	if len(bodies) == 0 {
		return nil, nil
	}
	for i, b := range bodies {
		if len(b) == 0 {
			return nil, fmt.Errorf("message %d of %d is empty: a queue message needs a body", i+1, len(bodies))
		}
		if len(b) > pubsub.MaxEnvelopeBytes {
			return nil, fmt.Errorf("message %d of %d is %d bytes; a queue message holds at most %d bytes", i+1, len(bodies), len(b), pubsub.MaxEnvelopeBytes)
		}
	}
	ids := make([]string, len(bodies))
	for i := range ids {
		ids[i] = randomID("q-")
	}
	// An acknowledged send is on disk: it survives a machine crash.
	err := q.db.writeDurable(ctx, func(tx *sql.Tx) error {
		now := millis(q.now())
		for i, b := range bodies {
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO queue (id, body, sent_at, visible_at, receive_count) VALUES (?, ?, ?, ?, 0)`,
				ids[i], b, now, visibleAlways); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		what := fmt.Sprintf("%d messages", len(bodies))
		if len(bodies) == 1 {
			what = "a message"
		}
		return nil, fmt.Errorf("sending %s to the local queue: %w", what, err)
	}
	q.db.notify()
	return ids, nil
}

// Receive returns up to n messages (1 to store.MaxBatch), oldest first,
// hiding them for visibility. When none is visible it polls until one is or
// wait (at most store.MaxWait) has passed, and then returns an empty slice.
// If ctx ends first it returns ctx's error.
func (q *Queue) Receive(ctx context.Context, n int, visibility, wait time.Duration) ([]store.Message, error) {
	n = min(max(n, 1), store.MaxBatch)
	visibility = max(visibility, 0)
	wait = min(max(wait, 0), store.MaxWait)
	deadline := time.Now().Add(wait)
	pause := q.db.opts.PollInterval
	q.db.startWatch()
	for {
		woken := q.db.woken()
		msgs, err := q.receiveOnce(ctx, n, visibility)
		if err != nil || len(msgs) > 0 {
			return msgs, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return []store.Message{}, nil
		}
		t := time.NewTimer(min(pause, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-woken:
			t.Stop()
		case <-t.C:
		}
		pause = min(pause*3/2, max(maxPollInterval, q.db.opts.PollInterval))
	}
}

// candidate is a visible queue row Receive looks at.
type candidate struct {
	seq          int64
	id           string
	body         []byte
	sentAt       int64
	receiveCount int
}

// receiveOnce takes up to n visible messages, moving those past
// MaxReceives to the dead letters. It looks first without the write lock,
// so that the empty polls of an idle broker never wait for, or hold up,
// the writers of other processes.
func (q *Queue) receiveOnce(ctx context.Context, n int, visibility time.Duration) ([]store.Message, error) {
	var visible bool
	err := retryBusy(ctx, func() error {
		return q.db.sql.QueryRowContext(ctx,
			`SELECT EXISTS (SELECT 1 FROM queue WHERE visible_at <= ?)`, millis(q.now())).Scan(&visible)
	})
	if err != nil {
		return nil, fmt.Errorf("receiving from the local queue: %w", err)
	}
	if !visible {
		return nil, nil
	}
	var out []store.Message
	err = q.db.write(ctx, func(tx *sql.Tx) error {
		out = nil
		now := q.now()
		nowMs := millis(now)
		visibleAt := millis(now.Add(visibility))
		last := int64(-1)
		for len(out) < n {
			cands, err := visibleCandidates(ctx, tx, nowMs, last, n-len(out))
			if err != nil {
				return err
			}
			if len(cands) == 0 {
				return nil
			}
			for _, c := range cands {
				last = c.seq
				if c.receiveCount+1 > q.db.opts.MaxReceives {
					reason := fmt.Sprintf("received %d times without being handled (max %d)", c.receiveCount, q.db.opts.MaxReceives)
					if err := moveToDeadLetters(ctx, tx, c.seq, reason, nowMs); err != nil {
						return err
					}
					if err := q.reportDeadLetter(ctx, tx, c.id, c.body, reason, now); err != nil {
						return err
					}
					continue
				}
				receipt := randomID("r-")
				if _, err := tx.ExecContext(ctx,
					`UPDATE queue SET visible_at = ?, receive_count = receive_count + 1, receipt = ? WHERE seq = ?`,
					visibleAt, receipt, c.seq); err != nil {
					return err
				}
				out = append(out, store.Message{
					ID:           c.id,
					Receipt:      receipt,
					Body:         c.body,
					ReceiveCount: c.receiveCount + 1,
					SentAt:       fromMillis(c.sentAt),
				})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("receiving from the local queue: %w", err)
	}
	return out, nil
}

// reportDeadLetter records in tx, in the report of the message whose queue
// message id (with body) the queue dead-lettered by itself, that it did,
// as the broker would have (store.DeadLettered): no broker settled it, so
// without this its report would never say (and `publish --wait` would
// wait in vain). A body that does not parse has no report, as for the
// broker.
func (q *Queue) reportDeadLetter(ctx context.Context, tx *sql.Tx, id string, body []byte, reason string, now time.Time) error {
	env, err := pubsub.ParseMessage(body, nil)
	if err != nil {
		return nil
	}
	env.ID = cmp.Or(env.ID, id)
	var data string
	err = tx.QueryRowContext(ctx, `SELECT json FROM reports WHERE message_id = ? AND at >= ?`,
		env.ID, millis(now.Add(-reportTTL))).Scan(&data)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	var prev *store.Report
	if err == nil {
		if r, err := store.ParseReport([]byte(data)); err == nil {
			prev = &r
		}
	}
	next := store.DeadLettered(prev, env, reason, now)
	enc, err := json.Marshal(next)
	if err != nil {
		return err
	}
	return putReport(ctx, tx, next, enc, now, q.db.reportsPerPut)
}

// visibleCandidates reads up to n visible rows after seq last, oldest first.
func visibleCandidates(ctx context.Context, tx *sql.Tx, now, last int64, n int) ([]candidate, error) {
	rows, err := tx.QueryContext(ctx,
		`SELECT seq, id, body, sent_at, receive_count FROM queue
		 WHERE visible_at <= ? AND seq > ? ORDER BY seq LIMIT ?`, now, last, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []candidate
	for rows.Next() {
		var c candidate
		if err := rows.Scan(&c.seq, &c.id, &c.body, &c.sentAt, &c.receiveCount); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// moveToDeadLetters moves the queue row seq to the dead letters.
func moveToDeadLetters(ctx context.Context, tx *sql.Tx, seq int64, reason string, now int64) error {
	if _, err := tx.ExecContext(ctx,
		`INSERT OR REPLACE INTO dead_letters (id, body, reason, receive_count, sent_at, failed_at)
		 SELECT id, body, ?, receive_count, sent_at, ? FROM queue WHERE seq = ?`, reason, now, seq); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM queue WHERE seq = ?`, seq)
	return err
}

// Delete removes a handled message by its receipt. A stale or unknown
// receipt does nothing and returns nil.
func (q *Queue) Delete(ctx context.Context, receipt string) error {
	err := q.db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM queue WHERE receipt = ?`, receipt)
		return err
	})
	if err != nil {
		return fmt.Errorf("deleting a message from the local queue: %w", err)
	}
	return nil
}

// ChangeVisibility makes a received message visible again after d (0: at
// once). A stale or unknown receipt does nothing and returns nil.
func (q *Queue) ChangeVisibility(ctx context.Context, receipt string, d time.Duration) error {
	d = max(d, 0)
	err := q.db.write(ctx, func(tx *sql.Tx) error {
		at := int64(visibleAlways)
		if d > 0 {
			at = millis(q.now().Add(d))
		}
		_, err := tx.ExecContext(ctx, `UPDATE queue SET visible_at = ? WHERE receipt = ?`, at, receipt)
		return err
	})
	if err != nil {
		return fmt.Errorf("changing the visibility of a message in the local queue: %w", err)
	}
	if d == 0 {
		q.db.notify()
	}
	return nil
}

// ChangeVisibilityBatch is ChangeVisibility for each of receipts, in one
// transaction: every receipt is changed, or (the transaction failed) none,
// and then each gets the error.
func (q *Queue) ChangeVisibilityBatch(ctx context.Context, receipts []string, d time.Duration) []error {
	if len(receipts) == 0 {
		return nil
	}
	d = max(d, 0)
	err := q.db.write(ctx, func(tx *sql.Tx) error {
		at := int64(visibleAlways)
		if d > 0 {
			at = millis(q.now().Add(d))
		}
		stmt, err := tx.PrepareContext(ctx, `UPDATE queue SET visible_at = ? WHERE receipt = ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, r := range receipts {
			if _, err := stmt.ExecContext(ctx, at, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("changing the visibility of %d messages in the local queue: %w", len(receipts), err)
		errs := make([]error, len(receipts))
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	if d == 0 {
		q.db.notify()
	}
	return nil
}

// GiveBackInFlight makes every message hidden on the queue visible at
// once and returns how many there were. Call it only when no receiver of
// the queue runs (backend.HoldBroker finds no other broker): each such
// message was then received by a broker that died with it in hand (kill
// -9, a crash), or was put off for a retry by one that stopped, and would
// otherwise wait out the rest of its visibility timeout (60 s). Receive
// counts stay as they are, so a message that kills its brokers is still
// dead-lettered after MaxReceives.
func (q *Queue) GiveBackInFlight(ctx context.Context) (int, error) {
	var n int
	err := q.db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE queue SET visible_at = ? WHERE visible_at > ?`, visibleAlways, millis(q.now()))
		if err != nil {
			return err
		}
		n = rowsAffected(res)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("giving back the messages of brokers that stopped: %w", err)
	}
	if n > 0 {
		q.db.notify()
	}
	return n, nil
}

// DeadLetter moves a received message (found by m.Receipt) to the dead
// letters with reason (as store.DeadLetterReason gives it, as on SQS). A stale receipt moves nothing and returns an error
// wrapping store.ErrStaleReceipt: the message was deleted, or received
// again and is someone else's now.
func (q *Queue) DeadLetter(ctx context.Context, m store.Message, reason string) error {
	if m.Receipt == "" {
		return fmt.Errorf("dead-lettering message %s: it has no receipt; only a received message can be dead-lettered", m.ID)
	}
	reason = store.DeadLetterReason(reason)
	err := q.db.write(ctx, func(tx *sql.Tx) error {
		var seq int64
		err := tx.QueryRowContext(ctx, `SELECT seq FROM queue WHERE receipt = ?`, m.Receipt).Scan(&seq)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrStaleReceipt
		}
		if err != nil {
			return err
		}
		return moveToDeadLetters(ctx, tx, seq, reason, millis(q.now()))
	})
	if err != nil {
		return fmt.Errorf("dead-lettering message %s: %w", m.ID, err)
	}
	return nil
}

// ListDeadLetters returns up to limit dead letters (all when limit <= 0),
// oldest failure first.
func (q *Queue) ListDeadLetters(ctx context.Context, limit int) ([]store.DeadLetter, error) {
	query := `SELECT id, body, reason, receive_count, sent_at, failed_at FROM dead_letters ORDER BY failed_at, rowid`
	var args []any
	if limit > 0 {
		query += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := q.db.sql.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("listing dead letters: %w", err)
	}
	defer rows.Close()
	var out []store.DeadLetter
	for rows.Next() {
		var d store.DeadLetter
		var sent, failed int64
		if err := rows.Scan(&d.ID, &d.Body, &d.Reason, &d.ReceiveCount, &sent, &failed); err != nil {
			return nil, fmt.Errorf("listing dead letters: %w", err)
		}
		d.SentAt, d.FailedAt = fromMillis(sent), fromMillis(failed)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing dead letters: %w", err)
	}
	return out, nil
}

// Redrive moves the dead letters with the given IDs (all when ids is nil;
// none when it is empty) back onto the queue, visible at once, with a
// receive count of 0, their original send time and their body as
// pubsub.Redriven gives it (a follow-up starts its attempts again). Unknown
// IDs are ignored. It returns how many moved.
func (q *Queue) Redrive(ctx context.Context, ids []string) (int, error) {
	return q.RedriveEach(ctx, ids, nil)
}

// RedriveEach is Redrive telling moved about each dead letter it moved
// (store.EachRedriver).
func (q *Queue) RedriveEach(ctx context.Context, ids []string, moved func(store.DeadLetter)) (int, error) {
	var n int
	var done []store.DeadLetter
	err := q.db.write(ctx, func(tx *sql.Tx) error {
		n, done = 0, nil
		move := func(where string, args ...any) error {
			rows, err := tx.QueryContext(ctx,
				`SELECT id, body, sent_at FROM dead_letters`+where+` ORDER BY failed_at, rowid`, args...)
			if err != nil {
				return err
			}
			type letter struct {
				id     string
				body   []byte
				sentAt int64
			}
			var letters []letter
			for rows.Next() {
				var l letter
				if err := rows.Scan(&l.id, &l.body, &l.sentAt); err != nil {
					rows.Close()
					return err
				}
				letters = append(letters, l)
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return err
			}
			for _, l := range letters {
				if _, err := tx.ExecContext(ctx,
					`INSERT INTO queue (id, body, sent_at, visible_at, receive_count) VALUES (?, ?, ?, ?, 0)`,
					l.id, pubsub.Redriven(l.body), l.sentAt, visibleAlways); err != nil {
					return err
				}
				if moved != nil {
					done = append(done, store.DeadLetter{ID: l.id, Body: l.body})
				}
			}
			n += len(letters)
			_, err = tx.ExecContext(ctx, `DELETE FROM dead_letters`+where, args...)
			return err
		}
		if ids == nil {
			return move("")
		}
		for _, part := range chunks(pubsub.Unique(ids), maxVars) {
			if err := move(` WHERE id IN (`+placeholders(len(part))+`)`, anys(part)...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("redriving dead letters: %w", err)
	}
	if n > 0 {
		q.db.notify()
	}
	for _, d := range done {
		moved(d)
	}
	return n, nil
}

// PurgeDeadLetters deletes the dead letters with the given IDs (all when ids
// is nil; none when it is empty) and returns how many it deleted.
func (q *Queue) PurgeDeadLetters(ctx context.Context, ids []string) (int, error) {
	var n int
	err := q.db.write(ctx, func(tx *sql.Tx) error {
		n = 0
		if ids == nil {
			res, err := tx.ExecContext(ctx, `DELETE FROM dead_letters`)
			if err != nil {
				return err
			}
			n = rowsAffected(res)
			return nil
		}
		for _, part := range chunks(pubsub.Unique(ids), maxVars) {
			res, err := tx.ExecContext(ctx, `DELETE FROM dead_letters WHERE id IN (`+placeholders(len(part))+`)`, anys(part)...)
			if err != nil {
				return err
			}
			n += rowsAffected(res)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("purging dead letters: %w", err)
	}
	return n, nil
}

// DeleteExpiredDeadLetters deletes the dead letters that failed
// store.DeadLetterRetention (14 days) or longer before now, as SQS
// deletes them from socks's dead-letter queue, in write transactions of
// at most expiredBatch letters (see DeleteExpiredChatterIDs). It returns
// how many it deleted, also when it fails part way.
func (q *Queue) DeleteExpiredDeadLetters(ctx context.Context, now time.Time) (int, error) {
	n, err := q.db.deleteExpired(ctx, "dead_letters", "failed_at", now.Add(-store.DeadLetterRetention))
	if err != nil {
		return n, fmt.Errorf("deleting dead letters older than %d days: %w", store.DeadLetterRetention/(24*time.Hour), err)
	}
	return n, nil
}

// CountExpiredDeadLetters counts the dead letters
// DeleteExpiredDeadLetters would delete at now, in the file, without
// reading them.
func (q *Queue) CountExpiredDeadLetters(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := q.db.read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM dead_letters WHERE failed_at <= ?`,
			millis(now.Add(-store.DeadLetterRetention))).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("counting dead letters older than %d days: %w", store.DeadLetterRetention/(24*time.Hour), err)
	}
	return n, nil
}

// Stats reports the queue's depth: visible and in-flight messages (exact,
// at Options.Now) and dead letters.
func (q *Queue) Stats(ctx context.Context) (store.QueueStats, error) {
	var st store.QueueStats
	err := q.db.read(ctx, func(tx *sql.Tx) error {
		now := millis(q.now())
		if err := tx.QueryRowContext(ctx,
			`SELECT COALESCE(SUM(visible_at <= ?), 0), COALESCE(SUM(visible_at > ?), 0) FROM queue`, now, now).
			Scan(&st.Visible, &st.InFlight); err != nil {
			return err
		}
		var oldest sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), MIN(failed_at) FROM dead_letters`).
			Scan(&st.Dead, &oldest); err != nil {
			return err
		}
		st.OldestDeadAt = fromNullMillis(oldest)
		return nil
	})
	if err != nil {
		return store.QueueStats{}, fmt.Errorf("reading the local queue's depth: %w", err)
	}
	return st, nil
}
