package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
	"github.com/socks-dev/socks/store/storetest"
)

// openTest opens a fresh state file in a temporary directory.
func openTest(t *testing.T, opts Options) *DB {
	t.Helper()
	return openPath(t, filepath.Join(t.TempDir(), "state", "socks.db"), opts)
}

// openPath opens path and closes it when the test ends.
func openPath(t *testing.T, path string, opts Options) *DB {
	t.Helper()
	db, err := Open(t.Context(), path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func TestStoreConformance(t *testing.T) {
	storetest.RunStore(t, func(t *testing.T) store.Store {
		return openTest(t, Options{}).Store()
	})
}

func TestLimitsHoldAcrossClients(t *testing.T) {
	storetest.RunLimits(t, func(t *testing.T) storetest.Clients {
		path := filepath.Join(t.TempDir(), "socks.db")
		return func() store.Store {
			// A separate DB per client: its own pool and write lock, as a
			// separate process would have.
			db, err := Open(context.Background(), path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db.Store()
		}
	})
}

func TestQueueConformance(t *testing.T) {
	storetest.RunQueue(t, func(t *testing.T, o storetest.QueueOptions) store.Queue {
		return openTest(t, Options{MaxReceives: o.MaxReceives}).Queue()
	})
}

// fakeClock is a settable Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestOpen(t *testing.T) {
	t.Run("a new state file gets mode 0600 in a directory of mode 0700", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "b")
		openPath(t, filepath.Join(dir, "socks.db"), Options{})
		for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "socks.db"): 0o600} {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("%s has mode %o, want %o", path, got, want)
			}
		}
	})
	t.Run("reopening keeps the data and the schema", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "socks.db")
		db, err := Open(t.Context(), path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.SetMeta(t.Context(), "k", "v"); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db = openPath(t, path, Options{})
		if v, ok, err := db.GetMeta(t.Context(), "k"); err != nil || !ok || v != "v" {
			t.Errorf("GetMeta = %q, %v, %v; want v", v, ok, err)
		}
	})
	t.Run("a path with URI characters in it works", func(t *testing.T) {
		db := openPath(t, filepath.Join(t.TempDir(), "we?ird #dir%20", "so?cks.db"), Options{})
		if _, err := os.Stat(db.Path()); err != nil {
			t.Errorf("the file is not where asked: %v", err)
		}
	})
	t.Run("many handles opening a new file at once all succeed", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "socks.db")
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				db, err := Open(t.Context(), path, Options{})
				if err != nil {
					errs <- err
					return
				}
				errs <- db.Close()
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})

	bad := []struct {
		name  string
		setup func(t *testing.T) string
		want  []string
	}{
		{"a state dir under a regular file says it is not writable and what to set", func(t *testing.T) string {
			file := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(file, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(file, "state", "socks.db")
		}, []string{"is not writable", "SOCKS_STATE_DIR", "--state-dir"}},
		{"a state file that is a directory says so", func(t *testing.T) string {
			return t.TempDir()
		}, []string{"is a directory", "SOCKS_STATE_DIR"}},
		{"a file that is not a database says so and what to do", func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "socks.db")
			if err := os.WriteFile(path, []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
				t.Fatal(err)
			}
			return path
		}, []string{"is not a socks state database", "move it away"}},
		{"a file from a newer socks asks for an upgrade", func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "socks.db")
			db, err := Open(t.Context(), path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.sql.Exec(`PRAGMA user_version = 99`); err != nil {
				t.Fatal(err)
			}
			return path
		}, []string{"newer socks", "schema version 99", "upgrade socks"}},
		{"an empty path says what to set", func(t *testing.T) string { return "" }, []string{"SOCKS_STATE_DIR"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.setup(t)
			db, err := Open(t.Context(), path, Options{})
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			want := tc.want
			if path != "" {
				want = append(want, filepath.Dir(path)) // the message names the file or its directory
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestMeta(t *testing.T) {
	db := openTest(t, Options{})
	ctx := t.Context()
	if _, ok, err := db.GetMeta(ctx, "gateway.endpoint"); err != nil || ok {
		t.Fatalf("GetMeta of a missing key = %v, %v; want not found", ok, err)
	}
	for _, v := range []string{"http://127.0.0.1:1/", "http://127.0.0.1:2/"} {
		if err := db.SetMeta(ctx, "gateway.endpoint", v); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := db.GetMeta(ctx, "gateway.endpoint"); err != nil || !ok || got != v {
			t.Fatalf("GetMeta = %q, %v, %v; want %q", got, ok, err, v)
		}
	}
	for range 2 {
		if err := db.DeleteMeta(ctx, "gateway.endpoint"); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, err := db.GetMeta(ctx, "gateway.endpoint"); err != nil || ok {
		t.Errorf("GetMeta after delete = %v, %v; want not found", ok, err)
	}
}

// TestFindTargetsUsesKeyLookups checks the query plans: only a broadcast (the
// wildcard topic to everyone) may scan.
func TestFindTargetsUsesKeyLookups(t *testing.T) {
	db := openTest(t, Options{})
	cases := []struct {
		name          string
		users, topics []string
		mayScan       bool
	}{
		{"a topic to everyone looks subscriptions up by topic", nil, []string{"updates", "news"}, false},
		{"a topic to some geeks looks subscriptions up by topic and geek", []string{"alice", "bob"}, []string{"updates"}, false},
		{"the wildcard to some geeks looks their connections up by geek", []string{"alice"}, []string{".", "updates"}, false},
		{"the wildcard to everyone reads every connection", nil, []string{"."}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// FindTargets' queries and FindTargetIDs' alike.
			qs := append(targetQueries(tc.users, tc.topics, targetSelect, targetSelectAll), targetQueries(tc.users, tc.topics, targetIDSelect, targetIDSelectAll)...)
			for _, q := range qs {
				args := q.args
				if strings.Count(q.sql, "?") > len(args) {
					args = append(args, int64(0)) // FindTargets' time
				}
				plan := queryPlan(t, db, q.sql, args...)
				scans := strings.Contains(plan, "SCAN")
				if scans && !tc.mayScan {
					t.Errorf("the plan scans:\n%s", plan)
				}
			}
		})
	}
}

// TestFindTargetsSplitsLongLists checks that lists longer than one
// statement binds are split and the results merged.
func TestFindTargetsSplitsLongLists(t *testing.T) {
	s := openTest(t, Options{}).Store()
	now := time.Now()
	for _, id := range []string{"g0001", "g0600", "g1199"} {
		c := pubsub.Connection{ID: "c-" + id, Geek: id, Topics: []string{"t-700"}, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := s.PutConnection(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	many := func(prefix string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("%s%04d", prefix, i))
		}
		return out
	}
	var topics []string
	for i := range 800 {
		topics = append(topics, fmt.Sprintf("t-%d", i))
	}
	cases := []struct {
		name          string
		users, topics []string
	}{
		{"1200 users and one topic", many("g", 1200), []string{"t-700"}},
		{"1200 users and the wildcard", many("g", 1200), []string{"."}},
		{"three users and 800 topics", []string{"g0001", "g0600", "g1199"}, topics},
		{"no users and 800 topics", nil, topics},
	}
	for _, tc := range cases {
		t.Run(tc.name+" find every match once", func(t *testing.T) {
			got, err := s.FindTargets(t.Context(), tc.users, tc.topics, now)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 {
				t.Errorf("found %d connections, want 3", len(got))
			}
		})
	}
}

func TestSendRejectsOversizedAndEmptyMessages(t *testing.T) {
	q := openTest(t, Options{}).Queue()
	cases := []struct {
		name string
		body []byte
		want string
	}{
		{"a message over 1 MiB", make([]byte, pubsub.MaxEnvelopeBytes+1), "at most 1048576 bytes"},
		{"an empty message", nil, "is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name+" is refused and nothing is sent", func(t *testing.T) {
			_, err := q.SendBatch(t.Context(), [][]byte{[]byte(`{}`), tc.body})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("SendBatch = %v, want an error saying %q", err, tc.want)
			}
			if st, err := q.Stats(t.Context()); err != nil || st.Visible != 0 {
				t.Errorf("Stats = %+v, %v; want nothing sent", st, err)
			}
		})
	}
}

// TestTwoHandlesShareTheQueue simulates two processes on one state file:
// both send, both receive, and every message is received exactly once.
func TestTwoHandlesShareTheQueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "socks.db")
	a := openPath(t, path, Options{})
	b := openPath(t, path, Options{})
	const total = 200

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var mu sync.Mutex
	seen := make(map[string]int)
	sent := make(map[string]bool)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i, db := range []*DB{a, b} {
		wg.Go(func() {
			for n := range total / 2 {
				id, err := db.Queue().Send(ctx, fmt.Appendf(nil, `{"from":%d,"n":%d}`, i, n))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				sent[id] = true
				mu.Unlock()
			}
		})
		wg.Go(func() {
			for {
				mu.Lock()
				received := 0
				for _, n := range seen {
					received += n
				}
				mu.Unlock()
				if received >= total {
					return
				}
				msgs, err := db.Queue().Receive(ctx, store.MaxBatch, 30*time.Second, 200*time.Millisecond)
				if err != nil {
					errs <- err
					return
				}
				for _, m := range msgs {
					mu.Lock()
					seen[m.ID]++
					mu.Unlock()
					if err := db.Queue().Delete(ctx, m.Receipt); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(sent) != total || len(seen) != total {
		t.Fatalf("sent %d, received %d distinct messages; want %d", len(sent), len(seen), total)
	}
	for id, n := range seen {
		if n != 1 || !sent[id] {
			t.Errorf("%s received %d times (sent: %v)", id, n, sent[id])
		}
	}
	if st, err := a.Queue().Stats(t.Context()); err != nil || st != (store.QueueStats{}) {
		t.Errorf("Stats = %+v, %v; want an empty queue", st, err)
	}
}

// TestCrashBeforeDeleteRedelivers: a process receives a message and dies
// without deleting it; once the visibility timeout passes, another process
// gets it again (at-least-once).
func TestCrashBeforeDeleteRedelivers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "socks.db")
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	opts := Options{Now: clock.Now}

	crashed, err := Open(t.Context(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	id, err := crashed.Queue().Send(t.Context(), []byte(`{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	first, err := crashed.Queue().Receive(t.Context(), 1, time.Minute, 0)
	if err != nil || len(first) != 1 {
		t.Fatalf("Receive = %d, %v", len(first), err)
	}
	if err := crashed.Close(); err != nil { // the process dies without Delete
		t.Fatal(err)
	}

	other := openPath(t, path, opts)
	if msgs, err := other.Queue().Receive(t.Context(), 1, time.Minute, 0); err != nil || len(msgs) != 0 {
		t.Fatalf("before the timeout: Receive = %d, %v; want nothing", len(msgs), err)
	}
	clock.Advance(time.Minute)
	again, err := other.Queue().Receive(t.Context(), 1, time.Minute, 0)
	if err != nil || len(again) != 1 {
		t.Fatalf("after the timeout: Receive = %d, %v; want the message", len(again), err)
	}
	if again[0].ID != id || again[0].ReceiveCount != 2 {
		t.Errorf("got %s with count %d, want %s with count 2", again[0].ID, again[0].ReceiveCount, id)
	}
	// The crashed process's receipt is stale now.
	if err := other.Queue().Delete(t.Context(), first[0].Receipt); err != nil {
		t.Errorf("Delete with a stale receipt = %v, want nil", err)
	}
	if err := other.Queue().DeadLetter(t.Context(), first[0], "stale"); !errors.Is(err, store.ErrStaleReceipt) {
		t.Errorf("DeadLetter with a stale receipt = %v, want an error wrapping store.ErrStaleReceipt", err)
	}
	if st, _ := other.Queue().Stats(t.Context()); st.InFlight != 1 || st.Dead != 0 {
		t.Errorf("Stats = %+v; the stale receipt changed the message", st)
	}
}

func TestAutoDeadLetterSaysWhy(t *testing.T) {
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	q := openTest(t, Options{Now: clock.Now, MaxReceives: 3}).Queue()
	id, err := q.Send(t.Context(), []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if msgs, err := q.Receive(t.Context(), 1, time.Second, 0); err != nil || len(msgs) != 1 {
			t.Fatalf("Receive = %d, %v", len(msgs), err)
		}
		clock.Advance(time.Second)
	}
	if msgs, err := q.Receive(t.Context(), 1, time.Second, 0); err != nil || len(msgs) != 0 {
		t.Fatalf("fourth Receive = %d, %v; want nothing", len(msgs), err)
	}
	dls, err := q.ListDeadLetters(t.Context(), 0)
	if err != nil || len(dls) != 1 {
		t.Fatalf("ListDeadLetters = %d, %v", len(dls), err)
	}
	d := dls[0]
	if d.ID != id || d.Reason != "received 3 times without being handled (max 3)" || d.ReceiveCount != 3 || !d.FailedAt.Equal(clock.Now()) {
		t.Errorf("dead letter = %+v", d)
	}
}

// TestReceiveWithCancelledContext: a long poll ends with its context's
// error when the context ends during the wait. The first pause here is
// longer than the wait, so that only the context can end it early (with
// the default, the next poll noticed the context and the wait's own
// handling of it went untested). Receive waits on the real clock, so the
// one bound left is a guard on waiting for it: half its wait, which it
// would sit out in full if it ignored the context.
func TestReceiveWithCancelledContext(t *testing.T) {
	q := openTest(t, Options{PollInterval: time.Hour}).Queue()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	type result struct {
		msgs []store.Message
		err  error
	}
	done := make(chan result, 1)
	go func() {
		msgs, err := q.Receive(ctx, 1, time.Second, store.MaxWait)
		done <- result{msgs, err}
	}()
	select {
	case r := <-done:
		if !errors.Is(r.err, context.DeadlineExceeded) || len(r.msgs) != 0 {
			t.Errorf("Receive = %d, %v; want the context's error", len(r.msgs), r.err)
		}
	case <-time.After(store.MaxWait / 2):
		t.Fatalf("Receive still waiting %s after its context ended; want it to end with the context", store.MaxWait/2)
	}
}

// TestAnEmptyPollDoesNotWaitForAnotherProcesssWriteLock: an idle broker
// polls all the time; while another process holds the file's write lock
// (a long prune, say), its polls of an empty queue must neither wait for
// the lock nor fail.
func TestAnEmptyPollDoesNotWaitForAnotherProcesssWriteLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "socks.db")
	broker := openPath(t, path, Options{})
	other := openPath(t, path, Options{})
	conn, err := other.sql.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(context.Background(), `ROLLBACK`)

	ctx, cancel := context.WithTimeout(t.Context(), busyTimeout/2)
	defer cancel()
	msgs, err := broker.Queue().Receive(ctx, store.MaxBatch, time.Minute, 0)
	if err != nil || len(msgs) != 0 {
		t.Errorf("Receive on an empty queue while another process writes = %d messages, %v; want none and no error", len(msgs), err)
	}
}

func TestQueueSendsAreWrittenWithSynchronousFull(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "socks.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// PRAGMA synchronous: 1 is NORMAL, 2 is FULL.
	level := func(tx *sql.Tx) (int, error) {
		var n int
		return n, tx.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&n)
	}
	var durable, plain int
	if err := db.writeDurable(ctx, func(tx *sql.Tx) (err error) { durable, err = level(tx); return err }); err != nil {
		t.Fatal(err)
	}
	// Every pooled connection is back to NORMAL afterwards.
	for range 4 {
		if err := db.write(ctx, func(tx *sql.Tx) (err error) { plain, err = level(tx); return err }); err != nil {
			t.Fatal(err)
		}
		if plain != 1 {
			t.Fatalf("a plain write runs with synchronous=%d; want 1 (NORMAL)", plain)
		}
	}
	if durable != 2 {
		t.Fatalf("a queue send runs with synchronous=%d; want 2 (FULL)", durable)
	}
	if _, err := db.Queue().SendBatch(ctx, [][]byte{[]byte(`{"topics":["t"],"body":1}`)}); err != nil {
		t.Fatal(err)
	}
}

// openOldFile writes a state file as a socks of schema version would
// have (its migrations, then stmts), opens it with this build and checks
// that Open brought it up to date.
func openOldFile(t *testing.T, version int, stmts ...string) *DB {
	t.Helper()
	db := openPath(t, writeOldFile(t, version, stmts...), Options{})
	var v int
	if err := db.sql.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != schemaVersion {
		t.Fatalf("user_version = %d, %v; want %d", v, err, schemaVersion)
	}
	return db
}

// writeOldFile writes a state file as a socks of schema version wrote it,
// with stmts run on it, and returns its path.
func writeOldFile(t *testing.T, version int, stmts ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "socks.db")
	old, err := sql.Open("sqlite", dsn(path, busyTimeout))
	if err != nil {
		t.Fatal(err)
	}
	all := append(slices.Clone(migrations[:version]), stmts...)
	for _, stmt := range append(all, fmt.Sprintf(`PRAGMA user_version = %d`, version)) {
		if _, err := old.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// schemaOf reads a state file without socks: its user_version, and the
// names of its tables, indexes and triggers.
func schemaOf(t *testing.T, path string) (int, []string) {
	t.Helper()
	raw, err := sql.Open("sqlite", dsn(path, busyTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var v int
	if err := raw.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	rows, err := raw.Query(`SELECT type || ' ' || name FROM sqlite_master WHERE name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return v, names
}

// TestAMigrationThatFailsHalfWayLeavesTheFileAsItWas: the steps from a
// file's version to this one run in one transaction, so a migration that
// stops part way (here step 6 fails, after steps 3 to 5 ran; a process
// killed between steps is the same) leaves the file at its old version
// with its old schema and data, and the next open migrates it whole.
func TestAMigrationThatFailsHalfWayLeavesTheFileAsItWas(t *testing.T) {
	path := writeOldFile(t, 2,
		`INSERT INTO connections (id, geek, connected_at, expires_at) VALUES ('c1', 'alice', 0, NULL)`,
		`INSERT INTO subscriptions (topic, geek, conn_id) VALUES ('news', 'alice', 'c1')`,
		// What step 6 adds is there already: it fails.
		`ALTER TABLE reports ADD COLUMN version INTEGER NOT NULL DEFAULT 0`,
	)
	wantVersion, wantSchema := schemaOf(t, path)
	db, err := Open(t.Context(), path, Options{})
	if err == nil {
		db.Close()
		t.Fatal("Open migrated a file whose step 6 fails")
	}
	if !strings.Contains(err.Error(), "version 6") {
		t.Errorf("Open = %q; want it to name the step that failed", err)
	}
	if v, schema := schemaOf(t, path); v != wantVersion || !slices.Equal(schema, wantSchema) {
		t.Fatalf("after the failed migration: version %d, schema %q; want it as it was: version %d, %q", v, schema, wantVersion, wantSchema)
	}
	raw, err := sql.Open("sqlite", dsn(path, busyTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`ALTER TABLE reports DROP COLUMN version`); err != nil {
		t.Fatal(err)
	}
	db = openPath(t, path, Options{})
	ids, err := db.Store().FindTargetIDs(t.Context(), nil, []string{"news"}, time.Now())
	if err != nil || !slices.Equal(ids, []string{"c1"}) {
		t.Errorf("after the migration FindTargetIDs(news) = %q, %v; want [c1]", ids, err)
	}
}

// TestAnOldFileOpenedByManyAtOnceIsMigratedOnce: processes started at
// once on a file of an older socks (a serve and a publish after an
// upgrade) all open it; one migrates it, the others find it migrated, and
// the data is all there once.
func TestAnOldFileOpenedByManyAtOnceIsMigratedOnce(t *testing.T) {
	path := writeOldFile(t, 2,
		`INSERT INTO connections (id, geek, connected_at, expires_at) VALUES ('c1', 'alice', 0, NULL)`,
		`INSERT INTO subscriptions (topic, geek, conn_id) VALUES ('news', 'alice', 'c1')`,
		`INSERT INTO queue (id, body, sent_at, visible_at) VALUES ('m1', '{"n":1}', 0, 0)`,
	)
	fresh := openPath(t, filepath.Join(t.TempDir(), "socks.db"), Options{})
	_, wantSchema := schemaOf(t, fresh.Path())
	var wg sync.WaitGroup
	dbs := make([]*DB, 8)
	errs := make([]error, 8)
	for i := range dbs {
		wg.Go(func() { dbs[i], errs[i] = Open(t.Context(), path, Options{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("open %d: %v", i, err)
			continue
		}
		defer dbs[i].Close()
	}
	if t.Failed() {
		return
	}
	if v, schema := schemaOf(t, path); v != schemaVersion || !slices.Equal(schema, wantSchema) {
		t.Errorf("after the opens: version %d, schema %q; want %d, %q (a new file's)", v, schema, schemaVersion, wantSchema)
	}
	ids, err := dbs[3].Store().FindTargetIDs(t.Context(), nil, []string{"news"}, time.Now())
	if err != nil || !slices.Equal(ids, []string{"c1"}) {
		t.Errorf("FindTargetIDs(news) = %q, %v; want [c1]", ids, err)
	}
	msgs, err := dbs[5].Queue().Receive(t.Context(), store.MaxBatch, time.Minute, 0)
	if err != nil || len(msgs) != 1 || msgs[0].ID != "m1" {
		t.Errorf("Receive = %v, %v; want the one message queued before the upgrade", msgs, err)
	}
}

// TestAFileOfANewerSocksIsLeftAsItWas: a socks that finds a file written
// by a newer one (here the version after this one's, with a column this
// one does not know) refuses it and writes nothing to it: the newer socks
// opens it as it left it.
func TestAFileOfANewerSocksIsLeftAsItWas(t *testing.T) {
	path := writeOldFile(t, schemaVersion,
		`ALTER TABLE connections ADD COLUMN future TEXT`,
		`INSERT INTO connections (id, geek, connected_at, future) VALUES ('c1', 'alice', 0, 'x')`,
	)
	raw, err := sql.Open("sqlite", dsn(path, busyTimeout))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
	wantVersion, wantSchema := schemaOf(t, path)
	for _, opts := range []Options{{}, {ReadOnly: true}} {
		db, err := Open(t.Context(), path, opts)
		if err == nil {
			db.Close()
			t.Fatalf("Open(%+v) took a file of a newer socks", opts)
		}
		if !strings.Contains(err.Error(), "upgrade socks") {
			t.Errorf("Open(%+v) = %q; want it to say upgrade socks", opts, err)
		}
	}
	if v, schema := schemaOf(t, path); v != wantVersion || !slices.Equal(schema, wantSchema) {
		t.Errorf("after the refusals: version %d, schema %q; want %d, %q", v, schema, wantVersion, wantSchema)
	}
}

// TestOpenMigratesAVersion2File opens a file written by a socks of schema
// version 2, with a connection in it: Open brings it up to date, drops the
// index of subscriptions by geek, and the wildcard to a geek still finds
// the geek's connection.
func TestOpenMigratesAVersion2File(t *testing.T) {
	db := openOldFile(t, 2,
		`INSERT INTO connections (id, geek, connected_at, expires_at) VALUES ('c1', 'alice', 0, NULL)`,
		`INSERT INTO subscriptions (topic, geek, conn_id) VALUES ('.', 'alice', 'c1')`,
	)
	var indexes int
	if err := db.sql.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'subscriptions_geek'`).Scan(&indexes); err != nil || indexes != 0 {
		t.Errorf("subscriptions_geek indexes after the migration = %d, %v; want 0", indexes, err)
	}
	ids, err := db.Store().FindTargetIDs(t.Context(), []string{"alice"}, []string{".", "news"}, time.Now())
	if err != nil || len(ids) != 1 || ids[0] != "c1" {
		t.Errorf("FindTargetIDs(alice, [. news]) = %v, %v; want [c1]", ids, err)
	}
}

// TestOpenMigratesAVersion5FileWithItsReports opens a file written by a
// socks of schema version 5, whose reports have no version: a report is
// still read (at version 0), and replaced once from that read.
func TestOpenMigratesAVersion5FileWithItsReports(t *testing.T) {
	at := time.Now().UnixMilli()
	db := openOldFile(t, 5, fmt.Sprintf(
		`INSERT INTO reports (message_id, json, at) VALUES ('m-1', '%s', %d)`, storetest.UnversionedReport, at))
	storetest.CheckUnversionedReport(t, db.Store())
}

// A version 4 file loses the generation triggers of a connection record's
// insert and delete, keeps those of its ID and expiry and of
// subscriptions, and its lookups still see every change.
func TestOpenMigratesAVersion4File(t *testing.T) {
	ctx := t.Context()
	db := openOldFile(t, 4,
		`INSERT INTO connections (id, geek, connected_at, expires_at) VALUES ('c1', 'alice', 0, NULL)`,
		`INSERT INTO subscriptions (topic, geek, conn_id) VALUES ('news', 'alice', 'c1')`,
	)
	rows, err := db.sql.Query(`SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var triggers []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		triggers = append(triggers, name)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"connections_update_generation", "subscriptions_delete_generation", "subscriptions_insert_generation", "subscriptions_update_generation"}
	if !slices.Equal(triggers, want) {
		t.Errorf("triggers after the migration: %q; want %q", triggers, want)
	}
	s := db.Store()
	lookup := func(want ...string) {
		t.Helper()
		ids, err := s.FindTargetIDs(ctx, nil, []string{"news"}, time.Now())
		slices.Sort(ids)
		if err != nil || !slices.Equal(ids, want) && (len(ids) != 0 || len(want) != 0) {
			t.Fatalf("FindTargetIDs(news) = %q, %v; want %q", ids, err, want)
		}
	}
	lookup("c1")
	if err := s.PutConnection(ctx, pubsub.Connection{ID: "c2", Geek: "bob", Topics: []string{"news"}, ConnectedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	lookup("c1", "c2")
	if err := s.DeleteConnection(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	lookup("c2")
}

// TestAClockSteppedBackDoesNotHideQueuedMessages: the queue's times are
// the wall clock's, which may step back (an NTP correction, a VM resumed).
// A message sent, redriven or made visible again before the step is
// visible at once after it, as on SQS, not hidden for the size of the step.
func TestAClockSteppedBackDoesNotHideQueuedMessages(t *testing.T) {
	clock := &fakeClock{t: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
	q := openTest(t, Options{Now: clock.Now}).Queue()
	ctx := t.Context()
	receive := func(what string) store.Message {
		t.Helper()
		msgs, err := q.Receive(ctx, 1, time.Minute, 0)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("%s: Receive after the clock stepped back = %d messages, %v; want the message at once", what, len(msgs), err)
		}
		return msgs[0]
	}

	sent, err := q.Send(ctx, []byte(`{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(-time.Hour)
	m := receive("a sent message")
	if m.ID != sent {
		t.Fatalf("received %s, want %s", m.ID, sent)
	}

	if err := q.ChangeVisibility(ctx, m.Receipt, 0); err != nil {
		t.Fatal(err)
	}
	clock.Advance(-time.Hour)
	m = receive("a message made visible again")

	if err := q.DeadLetter(ctx, m, "test"); err != nil {
		t.Fatal(err)
	}
	if n, err := q.Redrive(ctx, nil); err != nil || n != 1 {
		t.Fatalf("Redrive = %d, %v", n, err)
	}
	clock.Advance(-time.Hour)
	receive("a redriven message")
}

// TestASQLiteFileOfAnotherProgramIsNotTakenOver: a state file that is an
// SQLite database of some other program (user_version 0, tables of its
// own) is refused as not a socks state database; socks created its tables
// inside it.
func TestASQLiteFileOfAnotherProgramIsNotTakenOver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "socks.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT); INSERT INTO notes (text) VALUES ('mine')`); err != nil {
		t.Fatal(err)
	}
	db, err := Open(t.Context(), path, Options{})
	if err == nil {
		db.Close()
		t.Error("Open took over another program's database")
	} else if !strings.Contains(err.Error(), "is not a socks state database") || !strings.Contains(err.Error(), "move it away") {
		t.Errorf("Open = %q; want it to say the file is not a socks state database", err)
	}
	var n int
	if err := raw.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name <> 'notes'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d tables added to the other program's database (%v)", n, err)
	}
}

// TestANegativeSchemaVersionIsRefusedNotACrash: socks never writes a
// negative user_version; a file with one (another program's) is refused
// as not a socks state database, by a read-write and a read-only Open,
// where migrate indexed its steps with it and panicked.
func TestANegativeSchemaVersionIsRefusedNotACrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "socks.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`PRAGMA user_version = -1`); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		db, err := Open(t.Context(), path, Options{ReadOnly: ro})
		if err == nil {
			db.Close()
			t.Fatalf("Open (read-only %v) of a file at user_version -1 succeeded", ro)
		}
		if !strings.Contains(err.Error(), "is not a socks state database") {
			t.Errorf("Open (read-only %v) = %q; want it to say the file is not a socks state database", ro, err)
		}
	}
}

// TestAWriteCancelledMidwaySaysCancelled: a write whose context ends
// while it runs (Ctrl-C as serve records itself) fails with the
// cancellation, not with database/sql's "transaction has already been
// committed or rolled back", which reached the user.
func TestAWriteCancelledMidwaySaysCancelled(t *testing.T) {
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "socks.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := range 50 {
		ctx, cancel := context.WithCancel(t.Context())
		err := db.write(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES ('k', 'v') ON CONFLICT(key) DO UPDATE SET value = excluded.value`); err != nil {
				return err
			}
			cancel()
			// database/sql rolls the transaction back when its
			// context ends, in a goroutine of its own.
			for range 100 {
				runtime.Gosched()
			}
			return nil // and the commit meets the ended context
		})
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("write %d = %q; want the cancellation", i, err)
		}
	}
}

// TestDeleteAllConnectionsLeavesNoRecordAndNoTarget: what a gateway that
// starts deletes (the records of one that was killed) is gone with its
// subscriptions, and a cached target lookup does not still name it.
func TestDeleteAllConnectionsLeavesNoRecordAndNoTarget(t *testing.T) {
	db := openTest(t, Options{})
	ctx, now := t.Context(), time.Now()
	for i := range 3 {
		c := pubsub.Connection{ID: fmt.Sprintf("c%d=", i), Geek: "alice", Topics: []string{"updates"}, ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := db.Store().PutConnection(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if ids, err := db.Store().FindTargetIDs(ctx, nil, []string{"updates"}, now); err != nil || len(ids) != 3 {
		t.Fatalf("before: targets %q, %v; want 3", ids, err)
	}
	n, err := db.Store().DeleteAllConnections(ctx)
	if err != nil || n != 3 {
		t.Fatalf("DeleteAllConnections = %d, %v; want 3", n, err)
	}
	if ids, err := db.Store().FindTargetIDs(ctx, nil, []string{"updates"}, now); err != nil || len(ids) != 0 {
		t.Errorf("after: targets %q, %v; want none", ids, err)
	}
	var subs int
	if err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM subscriptions`).Scan(&subs); err != nil || subs != 0 {
		t.Errorf("%d subscriptions left (%v); want none", subs, err)
	}
}

// TestWatchReplacedSeesTheStateFileDeletedOrReplaced: WatchReplaced ends
// with ErrReplaced once the path names another file or none, and with nil
// when its context ends while the file is still the one opened.
func TestWatchReplacedSeesTheStateFileDeletedOrReplaced(t *testing.T) {
	replace := map[string]func(t *testing.T, path string){
		"deleted": func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		},
		"replaced by another file": func(t *testing.T, path string) {
			other := path + ".new"
			if err := os.WriteFile(other, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(other, path); err != nil {
				t.Fatal(err)
			}
		},
	}
	// Each subtest watches a state file of its own for a poll or more
	// (replacedCheck): they wait side by side.
	for name, fn := range replace {
		t.Run("a state file "+name+" is seen", func(t *testing.T) {
			t.Parallel()
			db := openTest(t, Options{})
			fn(t, db.Path())
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			if err := db.WatchReplaced(ctx); !errors.Is(err, ErrReplaced) {
				t.Errorf("WatchReplaced = %v; want ErrReplaced", err)
			}
		})
	}
	t.Run("a state file left alone is watched until the context ends", func(t *testing.T) {
		t.Parallel()
		db := openTest(t, Options{})
		ctx, cancel := context.WithTimeout(t.Context(), 2*replacedCheck+replacedCheck/2)
		defer cancel()
		if err := db.WatchReplaced(ctx); err != nil {
			t.Errorf("WatchReplaced = %v; want nil", err)
		}
	})
}

// A read-only DB reads what is there, writes nothing (its writes fail),
// makes no file where none is, and one of an older schema says it cannot
// be read without writing it (a read-write Open brings it up to date).
func TestAReadOnlyDBReadsAndWritesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "socks.db")
	if _, err := Open(ctx, path, Options{ReadOnly: true}); err == nil {
		t.Fatal("a read-only Open of a missing state file succeeded")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a read-only Open made the state file: %v", err)
	}
	now := time.Now()
	db := openPath(t, path, Options{})
	if _, _, err := store.IssueChatterID(ctx, db.Store(), "alice", time.Hour, now); err != nil {
		t.Fatal(err)
	}
	ro := openPath(t, path, Options{ReadOnly: true})
	if ids, err := ro.Store().ListChatterIDs(ctx, ""); err != nil || len(ids) != 1 || ids[0].Geek != "alice" {
		t.Fatalf("read-only list: %v, %v; want alice's", ids, err)
	}
	if _, _, err := store.IssueChatterID(ctx, ro.Store(), "bob", time.Hour, now); err == nil {
		t.Fatal("a write through a read-only DB succeeded")
	}

	old := filepath.Join(t.TempDir(), "socks.db")
	o, err := sql.Open("sqlite", dsn(old, busyTimeout))
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range append(slices.Clone(migrations[:schemaVersion-1]), fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion-1)) {
		if _, err := o.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, old, Options{ReadOnly: true}); !errors.Is(err, ErrOlderSchema) || !strings.Contains(err.Error(), "cannot be read without writing it") {
		t.Fatalf("read-only Open of an older file: %v; want ErrOlderSchema", err)
	}
}

// TestAnOlderFileInUseIsNotMigrated: while Options.InUse names a running
// process (an older socks's serve), Open of a file of an older schema
// refuses, says which process to stop and to run the command again, and
// leaves the file as it was; once none runs, the same Open brings it up to
// date. An up-to-date or a new file is opened without asking.
func TestAnOlderFileInUseIsNotMigrated(t *testing.T) {
	ctx := t.Context()
	path := writeOldFile(t, schemaVersion-1)
	_, before := schemaOf(t, path)
	who := "`socks serve` (pid 4242)"
	asked := 0
	inUse := func(context.Context, *DB) string { asked++; return who }
	_, err := Open(ctx, path, Options{InUse: inUse})
	if !errors.Is(err, ErrInUseByOlder) {
		t.Fatalf("Open of an older file in use: %v; want ErrInUseByOlder", err)
	}
	for _, want := range []string{path, who, "stop it, then run this command again"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if v, schema := schemaOf(t, path); v != schemaVersion-1 || !slices.Equal(schema, before) {
		t.Fatalf("after the refused Open: version %d, schema %q; want %d, %q", v, schema, schemaVersion-1, before)
	}

	who = ""
	db := openPath(t, path, Options{InUse: inUse})
	var v int
	if err := db.sql.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != schemaVersion {
		t.Fatalf("user_version once no process uses the file = %d, %v; want %d", v, err, schemaVersion)
	}
	who, asked = "`socks serve` (pid 4242)", 0
	openPath(t, path, Options{InUse: inUse})
	openPath(t, filepath.Join(t.TempDir(), "socks.db"), Options{InUse: inUse})
	if asked != 0 {
		t.Errorf("InUse asked %d times by Opens of an up-to-date and a new file; want 0", asked)
	}
}

// TestAnOlderFileMigratedMeanwhileByANewerProcessIsOpened: a newer socks
// (serve and broker started together after an upgrade) that finds the
// file older, then a process running on it, opens it all the same when
// that process is a newer socks that brought the schema up to date in
// between: the refusal is for a process of the older schema only.
func TestAnOlderFileMigratedMeanwhileByANewerProcessIsOpened(t *testing.T) {
	path := writeOldFile(t, schemaVersion-1)
	inUse := func(ctx context.Context, _ *DB) string {
		// The other, newer, process: it migrates the file and runs.
		other, err := Open(ctx, path, Options{})
		if err != nil {
			t.Errorf("the other process's Open: %v", err)
			return ""
		}
		other.Close()
		return "`socks serve` (pid 4242)"
	}
	db := openPath(t, path, Options{InUse: inUse})
	var v int
	if err := db.sql.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != schemaVersion {
		t.Fatalf("user_version = %d, %v; want %d", v, err, schemaVersion)
	}
}

// queryPlan returns SQLite's plan for query with args (EXPLAIN QUERY
// PLAN), one step a line.
func queryPlan(t *testing.T, db *DB, query string, args ...any) string {
	t.Helper()
	rows, err := db.sql.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "\n")
}
