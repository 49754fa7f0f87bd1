package local

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/socks-dev/socks/pubsub"
)

// Target lookups. The broker looks up the targets of every envelope it
// fans out; the envelopes of a moment mostly go to the same few topics,
// and subscriptions change far less often than messages come. Reading and
// decoding the IDs of 2,000 subscribers was a fifth of the CPU of
// `socks serve` during a fan-out.
//
// So a Store keeps the IDs it found, with each one's expiry, under the
// generation they were read at: target_generation, a counter that
// triggers in the file itself raise by every change to subscriptions and
// to the connections' IDs and expiries, in the transaction of the change,
// whichever process makes it (`socks subs`, another broker, the routes of
// `socks serve`). A lookup first reads the counter, one row: while it is
// unchanged, nothing a lookup reads has changed, so the cached IDs are
// what the lookup would find, less those expired at now. Otherwise it
// reads the IDs and the counter in one snapshot and keeps them. A record
// inserted or deleted changes no lookup by itself: lookups read only
// records with subscriptions, whose changes raise the counter (schema 5).

// maxCachedLookups and maxCachedIDs bound the lookups a Store keeps, and
// the IDs in them all (some 40 bytes each).
const (
	maxCachedLookups = 64
	maxCachedIDs     = 200_000
)

// targetIDSelect and targetIDSelectAll are targetSelect and
// targetSelectAll for the IDs alone and their expiry (unix milliseconds;
// the largest int64 for never), as two JSON arrays in the same order, expired
// connections included: a cached lookup filters by the time of each use.
// One row: the per-row cost of database/sql and the driver was most of the
// lookup. targetIDSelect reads the subscriptions first and joins each to
// its record (a connection on several of the topics comes once per
// subscription): cheaper than targetSelect's list of IDs looked up one by
// one.
const (
	targetIDSelect = `SELECT json_group_array(s.conn_id), json_group_array(coalesce(c.expires_at, 9223372036854775807))
FROM subscriptions s JOIN connections c ON c.id = s.conn_id
WHERE %s`
	targetIDSelectAll = `SELECT json_group_array(c.id), json_group_array(coalesce(c.expires_at, 9223372036854775807))
FROM connections c
WHERE EXISTS (SELECT 1 FROM subscriptions s WHERE s.conn_id = c.id)`
)

// targetCache holds a Store's cached lookups by lookupKey.
type targetCache struct {
	mu      sync.Mutex
	entries map[string]*targetEntry
	// ids counts the IDs in entries.
	ids int
	// hits and misses count the lookups, for tests.
	hits, misses int
}

// targetEntry is one lookup's result at generation gen: the connections'
// IDs and, at the same index, their expiry.
type targetEntry struct {
	gen     int64
	ids     []string
	expires []int64
}

// live returns the IDs of e not expired at now, in a slice of their own.
func (e *targetEntry) live(now time.Time) []string {
	t := millis(now)
	out := make([]string, 0, len(e.ids))
	for i, id := range e.ids {
		if e.expires[i] > t {
			out = append(out, id)
		}
	}
	return out
}

// get returns the entry of key if it was read at generation gen.
func (c *targetCache) get(key string, gen int64) (*targetEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if ok && e.gen == gen {
		c.hits++
		return e, true
	}
	c.misses++
	return nil, false
}

// put keeps e under key, unless an entry of a later generation is there
// or e alone is over the bound of IDs; when full, it drops other entries
// first.
func (c *targetCache) put(key string, e *targetEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, ok := c.entries[key]
	if ok && old.gen > e.gen || len(e.ids) > maxCachedIDs {
		return
	}
	if c.entries == nil {
		c.entries = make(map[string]*targetEntry)
	}
	if ok {
		c.drop(key)
	}
	for k := range c.entries {
		if len(c.entries) < maxCachedLookups && c.ids+len(e.ids) <= maxCachedIDs {
			break
		}
		c.drop(k)
	}
	c.entries[key] = e
	c.ids += len(e.ids)
}

// drop removes the entry of key.
func (c *targetCache) drop(key string) {
	c.ids -= len(c.entries[key].ids)
	delete(c.entries, key)
}

// lookupFailed is the error of a failed lookup of the connections of
// users and topics. It names each once, as the AWS store's does: an
// envelope may name one thousands of times, and the error goes into the
// broker's log and the dead letter's reason.
func lookupFailed(users, topics []string, err error) error {
	return fmt.Errorf("finding the connections for users %v and topics %v: %w", pubsub.Unique(users), pubsub.Unique(topics), err)
}

// lookupKey names a lookup of users and topics, whatever their order and
// repeats.
func lookupKey(users, topics []string) string {
	var b []byte
	for _, list := range [][]string{users, topics} {
		names := slices.Clone(pubsub.Unique(list))
		slices.Sort(names)
		b = strconv.AppendInt(b, int64(len(names)), 10)
		for _, n := range names {
			b = append(b, ';')
			b = strconv.AppendInt(b, int64(len(n)), 10)
			b = append(b, ':')
			b = append(b, n...)
		}
		b = append(b, '|')
	}
	return string(b)
}

// FindTargetIDs returns the IDs of the connections FindTargets returns, in
// no promised order (store.TargetIDFinder): the same lookups, without
// reading the records' other columns and every topic of each, and cached
// while nothing they read changes (see above).
func (s *Store) FindTargetIDs(ctx context.Context, users, topics []string, now time.Time) ([]string, error) {
	queries := targetQueries(users, topics, targetIDSelect, targetIDSelectAll)
	if len(queries) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, lookupFailed(users, topics, err)
	}
	if err := s.db.needStmts(ctx); err != nil {
		return nil, lookupFailed(users, topics, err)
	}
	key := lookupKey(users, topics)
	// One row read by key, which never waits for a lock in WAL mode: not
	// worth the goroutine the driver starts to watch a context that can
	// end.
	var gen int64
	if err := s.db.stmts.targetGeneration.QueryRowContext(context.WithoutCancel(ctx)).Scan(&gen); err != nil {
		return nil, lookupFailed(users, topics, err)
	}
	if e, ok := s.targets.get(key, gen); ok {
		return e.live(now), nil
	}
	var e *targetEntry
	err := s.db.read(ctx, func(tx *sql.Tx) error {
		e = &targetEntry{}
		// The generation in the snapshot the IDs are read in.
		if err := tx.StmtContext(ctx, s.db.stmts.targetGeneration).QueryRowContext(ctx).Scan(&e.gen); err != nil {
			return err
		}
		// A connection on several of the topics is found once per
		// subscription.
		seen := make(map[string]bool)
		for _, q := range queries {
			var idList, expiryList string
			if err := tx.QueryRowContext(ctx, q.sql, q.args...).Scan(&idList, &expiryList); err != nil {
				return err
			}
			var ids []string
			var expires []int64
			if err := json.Unmarshal([]byte(idList), &ids); err != nil {
				return fmt.Errorf("reading the connection IDs: %w", err)
			}
			if err := json.Unmarshal([]byte(expiryList), &expires); err != nil {
				return fmt.Errorf("reading the connections' expiry: %w", err)
			}
			if len(ids) != len(expires) {
				return fmt.Errorf("reading the connection IDs: %d IDs but %d expiry times", len(ids), len(expires))
			}
			for i, id := range ids {
				if !seen[id] {
					seen[id] = true
					e.ids = append(e.ids, id)
					e.expires = append(e.expires, expires[i])
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, lookupFailed(users, topics, err)
	}
	s.targets.put(key, e)
	return e.live(now), nil
}
